#!/usr/bin/env node
/**
 * `npm test`: builds what is needed, starts a TEST STACK on its own ports (so it can run
 * next to `npm start`): an in-memory Temporal dev server with mcpd's search attributes
 * and a dev-mode OpenBao with a random root token; runs mocha over dist/tests; stops the
 * stack; removes leftover test containers (io.mcpd.managed=true, io.mcpd.server t-*,
 * created during this run);
 * exits with mocha's code.
 *
 *   npm test                                  lint (npm run lint), then every dist/tests/**\/*.test.js
 *   npm test -- tests/embedded/*.test.ts      only these (.ts paths map to dist .js)
 *   npm test -- --grep "OpenBao"              any mocha option
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { ROOT, buildProject, embedded, lintProject, prepareInfrastructure, say, stackEnv } from './lib/bootstrap.mjs';

const P = 'test';
const log = (msg) => say(P, msg);

const DEFAULT_PORTS = { temporal: 17233, temporalUi: 18233, openbao: 18200 };

/** The default port, or a free one when another test run already holds it. */
async function portFor(name) {
  const wanted = DEFAULT_PORTS[name];
  const inUse = await embedded().process.isPortOpen('127.0.0.1', wanted);
  if (!inUse) return wanted;
  const port = await embedded().process.freePort();
  log(`port ${wanted} (${name}) is in use (another npm test?); using ${port}`);
  return port;
}

/** `npm test -- <args>`: paths/globs under tests/ become dist/tests/*.js; options pass through. */
function mochaArgs(userArgs) {
  const specs = [];
  const options = [];
  for (let i = 0; i < userArgs.length; i++) {
    const arg = userArgs[i];
    if (arg.startsWith('-')) {
      options.push(arg);
      // options with a value: --grep x, -g x, --fgrep x, --timeout n ...
      if (
        !arg.includes('=') &&
        i + 1 < userArgs.length &&
        !userArgs[i + 1].startsWith('-') &&
        /^(-g|--grep|--fgrep|-f|--timeout|-t|--reporter|-R|--slow|-s|--retries|--jobs|-j)$/.test(arg)
      ) {
        options.push(userArgs[++i]);
      }
    } else {
      let spec = arg.replace(/^\.\//, '');
      if (!spec.startsWith('dist/')) spec = path.join('dist', spec);
      specs.push(spec.replace(/\.ts$/, '.js'));
    }
  }
  if (specs.length === 0) specs.push('dist/tests/**/*.test.js');
  return ['--timeout', '120000', '--exit', '--require', 'dist/tests/support/quiet-temporal.js', ...options, ...specs];
}

/**
 * Removes test containers (io.mcpd.server t-*) this run left behind. Only those created
 * since the run began: on a shared engine, older ones belong to someone else's run.
 */
function removeTestContainers(since) {
  const list = spawnSync('docker', ['ps', '-a', '-q', '--filter', 'label=io.mcpd.managed=true'], { encoding: 'utf8' });
  const ids = list.status === 0 ? list.stdout.split('\n').filter(Boolean) : [];
  if (ids.length === 0) return;
  const inspected = spawnSync('docker', ['inspect', '--format', '{{.Id}}\t{{index .Config.Labels "io.mcpd.server"}}\t{{.Created}}', ...ids], {
    encoding: 'utf8',
  });
  const leftovers = (inspected.stdout ?? '')
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([id, server, created]) => id && server?.startsWith('t-') && Date.parse(created) >= since - 1000)
    .map(([id]) => id);
  if (leftovers.length > 0) {
    spawnSync('docker', ['rm', '-f', ...leftovers], { stdio: 'ignore' });
    log(`removed ${leftovers.length} leftover test container(s)`);
  }
}

/**
 * Mocha's summary ("N passing", "N failing", "N pending" lines) as the plain closing line any CI
 * reads: "N passed, N failed, N skipped". Read from the whole output: long failure reports follow
 * the summary.
 */
function closingLine(mochaOutput) {
  const plain = stripVTControlCharacters(mochaOutput);
  const count = (word) => Number(new RegExp(`^\\s*(\\d+) ${word}\\b`, 'm').exec(plain)?.[1] ?? 0);
  return `${count('passing')} passed, ${count('failing')} failed, ${count('pending')} skipped`;
}

async function main() {
  const userArgs = process.argv.slice(2);
  let interrupted = false;
  let startingStack = false;
  let onStackSignal = null;
  const onSignal = (signal) => {
    if (onStackSignal) onStackSignal(signal);
    else if (startingStack) interrupted = true;
    else process.exit(130); // nothing started yet
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const runStartedAt = Date.now();
  buildProject(P, { strict: true });
  // The whole suite is what CI runs, so it lints too; a run over chosen files does not.
  if (userArgs.length === 0) await lintProject(P);
  // A dockerd started here outlives the run, so its log goes to the project's data dir.
  const { tools } = await prepareInfrastructure(P, path.resolve(process.env.MCPD_DATA_DIR ?? path.join(ROOT, '.data')));
  // promtool and prometheus for the tests of /metrics (tests/metrics/); without them those tests say what is missing.
  const prometheusTools = await embedded()
    .prometheus.ensurePrometheusTools({ root: ROOT, log })
    .catch((err) => {
      log(err.message);
      return null;
    });
  // A real OpenTelemetry Collector for the tests of trace export (tests/tracing/); without it they say what is missing.
  const otelCollector = await embedded()
    .otelCollector.ensureOtelCollector({ root: ROOT, log })
    .catch((err) => {
      log(err.message);
      return null;
    });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-test-'));

  const started = Date.now();
  startingStack = true;
  const ports = { temporal: await portFor('temporal'), temporalUi: await portFor('temporalUi'), openbao: await portFor('openbao') };
  const profile = {
    dataDir,
    temporal: { port: ports.temporal, uiPort: ports.temporalUi, persistent: false },
    openbao: { port: ports.openbao, persistent: false },
    env: {}, // the test stack is always its own, whatever the shell points at
  };
  const stack = await embedded()
    .stack.startStack(profile, tools, log)
    .catch((err) => {
      fs.rmSync(dataDir, { recursive: true, force: true });
      throw err;
    });
  log(
    `test stack up in ${((Date.now() - started) / 1000).toFixed(1)}s: Temporal ${stack.temporalAddress} (UI ${stack.temporalUiUrl}), OpenBao ${stack.baoAddress}; logs in ${dataDir}/logs`,
  );

  let mocha = null;
  // One cleanup, however many callers (mocha's exit and a signal may both ask).
  let cleaning = null;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await stack.stop();
      removeTestContainers(runStartedAt);
      fs.rmSync(dataDir, { recursive: true, force: true });
    })());
  onStackSignal = (signal) => {
    log(`${signal}: stopping tests and the test stack`);
    if (mocha && mocha.exitCode === null) mocha.kill(signal);
    cleanup().then(() => process.exit(130));
  };
  if (interrupted) return onStackSignal('SIGINT');

  const env = { ...stackEnv(stack, tools), MCPD_TEST_STACK: '1' };
  if (prometheusTools) Object.assign(env, { MCPD_PROMTOOL: prometheusTools.promtool, MCPD_PROMETHEUS: prometheusTools.prometheus });
  if (otelCollector) env.MCPD_OTELCOL = otelCollector;
  delete env.MCPD_DATA_DIR; // each test's mcpd gets its own (tests/support/stack.ts)
  const args = mochaArgs(userArgs);
  log(`mocha ${args.join(' ')}`);
  let output = '';
  const code = await new Promise((resolve) => {
    mocha = spawn(process.execPath, [path.join(ROOT, 'node_modules/mocha/bin/mocha.js'), ...args], { cwd: ROOT, env, stdio: ['inherit', 'pipe', 'inherit'] });
    mocha.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      output += chunk.toString('utf8');
    });
    mocha.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  await cleanup();
  console.log(closingLine(output));
  process.exit(code);
}

main().catch((err) => {
  console.error(`[${P}] ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
