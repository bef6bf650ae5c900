#!/usr/bin/env node
/**
 * `npm start`: the embedded default on one machine. Installs and compiles what is
 * missing, gets the pinned toolchain, a Docker engine and the local images, starts the
 * Temporal dev server (SQLite + Web UI) and OpenBao (persistent) unless the environment
 * names existing ones, then runs and supervises mcpd (`node dist/src/main.js`):
 *
 * - mcpd exits on its own (a crash, kill -9): the exit and its cause (exit code or
 *   signal, last stderr line) are logged and mcpd is restarted after a backoff (1 s
 *   doubling to 30 s, reset after 60 s of stable running) while Temporal and OpenBao
 *   keep running. Five exits within a minute are a crash loop: everything is stopped
 *   with one message and npm start exits 1 (src/embedded/restartPolicy.ts).
 * - Ctrl-C (or SIGTERM) stops what it started, in reverse order: mcpd, OpenBao, Temporal.
 *
 * Environment beyond the README's: MCPD_TEMPORAL_PORT, MCPD_TEMPORAL_UI_PORT and
 * MCPD_OPENBAO_PORT move the embedded servers (default 7233, 8233, 8200);
 * MCPD_SUPERVISED_COMMAND, a JSON array, replaces `node dist/src/main.js` (tests use
 * it to supervise a stand-in that crashes on purpose).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ROOT, buildProject, embedded, prepareInfrastructure, say } from './lib/bootstrap.mjs';

const P = 'mcpd';
const log = (msg) => say(P, msg);
const require = createRequire(import.meta.url);

function portFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name} must be a port number (1-65535), got "${raw}"`);
  return port;
}

/** The command npm start supervises: mcpd itself, or MCPD_SUPERVISED_COMMAND. */
function supervisedCommand() {
  const raw = process.env.MCPD_SUPERVISED_COMMAND;
  if (!raw) {
    const mainJs = path.join(ROOT, 'dist', 'src', 'main.js');
    return fs.existsSync(mainJs) ? [process.execPath, mainJs] : null;
  }
  let command;
  try {
    command = JSON.parse(raw);
  } catch {
    command = null;
  }
  if (!Array.isArray(command) || command.length === 0 || !command.every((part) => typeof part === 'string')) {
    throw new Error(`MCPD_SUPERVISED_COMMAND must be a JSON array of strings (command and arguments), got ${raw}`);
  }
  return command;
}

/** Polls GET url until 200 (true) or the child exits (false); says so when it takes long. */
async function waitForReady(url, child) {
  const slowAt = Date.now() + 120_000;
  let toldSlow = false;
  for (;;) {
    if (!toldSlow && Date.now() > slowAt) {
      toldSlow = true;
      log(`mcpd (pid ${child.pid}) has not answered ${url} for 120 s; still waiting (its output above says why; Ctrl-C stops everything)`);
    }
    if (child.exitCode !== null || child.signalCode !== null) return false;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function main() {
  const startedAt = Date.now();
  // Until the stack exists, a Ctrl-C only takes note; the stack is stopped as soon as
  // startStack returns, so no detached server outlives an early interrupt.
  let interrupted = false;
  let startingStack = false;
  let stopAll = null;
  const onSignal = () => {
    if (stopAll) stopAll(0);
    else if (startingStack) interrupted = true;
    else process.exit(130); // nothing started yet
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const dataDir = path.resolve(process.env.MCPD_DATA_DIR ?? path.join(ROOT, '.data'));
  const ports = {
    temporal: portFromEnv('MCPD_TEMPORAL_PORT', 7233),
    temporalUi: portFromEnv('MCPD_TEMPORAL_UI_PORT', 8233),
    openbao: portFromEnv('MCPD_OPENBAO_PORT', 8200),
  };
  const command = supervisedCommand();
  fs.mkdirSync(dataDir, { recursive: true });
  buildProject(P);
  const { tools, docker } = await prepareInfrastructure(P, dataDir);
  const { RestartPolicy, describeExit, formatDuration, LastLine, DEFAULT_RESTART_POLICY } = require(path.join(ROOT, 'dist/src/embedded/restartPolicy.js'));

  const { stack: stackModule } = embedded();
  startingStack = true;
  const stack = await stackModule.startStack(
    {
      dataDir,
      temporal: { port: ports.temporal, uiPort: ports.temporalUi, persistent: true },
      openbao: { port: ports.openbao, persistent: true },
      env: process.env,
    },
    tools,
    log,
  );

  let stopping = false;
  /** The running mcpd (or null between a crash and its restart). */
  let mcpd = null;
  let restartTimer = null;
  /** Resolves whenever a new mcpd process is spawned (or everything stops). */
  let onSpawn = () => undefined;
  stopAll = async (code) => {
    if (stopping) return;
    stopping = true;
    clearTimeout(restartTimer);
    onSpawn();
    log('stopping what npm start started…');
    if (mcpd && mcpd.exitCode === null && mcpd.signalCode === null) {
      log('stopping mcpd');
      const child = mcpd;
      const exited = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 15_000);
      await exited;
      clearTimeout(timer);
    }
    await stack.stop();
    log('stopped.');
    process.exit(code);
  };
  if (interrupted) return stopAll(130);

  const host = process.env.MCPD_HOST ?? '127.0.0.1';
  const port = process.env.MCPD_PORT ?? '7400';
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: stack.temporalAddress,
    BAO_ADDR: stack.baoAddress,
    BAO_TOKEN: stack.baoToken,
    MCPD_DATA_DIR: dataDir,
    MCPD_HOST: host,
    MCPD_PORT: port,
  };
  const api = `http://${host}:${port}`;
  const policy = new RestartPolicy();

  const spawnMcpd = () => {
    const runStartedAt = Date.now();
    // Own process group: Ctrl-C reaches this launcher only, which stops mcpd first.
    // stderr passes through a pipe so an exit can be logged with its last line.
    const child = spawn(command[0], command.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'pipe'], detached: true });
    const lastLine = new LastLine();
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      lastLine.push(chunk.toString('utf8'));
    });
    child.once('error', (err) => lastLine.push(`\ncould not start ${command[0]}: ${err.message}\n`));
    log(`mcpd started (pid ${child.pid})`);
    child.once('exit', async (code, signal) => {
      // The exit can arrive before the last stderr bytes; give the pipe a moment to drain.
      await Promise.race([new Promise((r) => child.stderr.once('close', r)), new Promise((r) => setTimeout(r, 500))]);
      if (stopping) return;
      mcpd = null;
      const cause = describeExit(code, signal, lastLine.value);
      const decision = policy.onExit(runStartedAt, Date.now());
      if (decision.action === 'give-up') {
        log(
          `mcpd exited (${cause}); ${decision.reason}, so npm start is stopping everything. Fix the cause (see mcpd's output above) and run npm start again.`,
        );
        stopAll(1);
        return;
      }
      log(
        `mcpd exited (${cause}); restarting it in ${formatDuration(decision.delayMs)} ` +
          `(exit ${decision.exitsInWindow} of ${DEFAULT_RESTART_POLICY.crashLoopExits} within ${formatDuration(DEFAULT_RESTART_POLICY.crashLoopWindowMs)} stops everything); Temporal and OpenBao keep running`,
      );
      restartTimer = setTimeout(() => {
        restartTimer = null;
        if (stopping) return;
        mcpd = spawnMcpd();
        onSpawn();
      }, decision.delayMs);
    });
    return child;
  };

  const nextSpawn = () => new Promise((r) => (onSpawn = r));
  const hasExited = (child) => child.exitCode !== null || child.signalCode !== null;

  if (!command) {
    log(`dist/src/main.js does not exist yet (src/main.ts is not written); running the infrastructure only`);
    printSummary();
    return;
  }
  log('starting mcpd (worker, API, gateway)');
  mcpd = spawnMcpd();
  // Follows mcpd for as long as npm start runs: the summary once the first mcpd answers
  // /readyz, one line whenever a restarted one answers again.
  let everReady = false;
  for (;;) {
    const child = mcpd;
    if (stopping) return;
    if (!child || hasExited(child)) {
      await nextSpawn();
      continue;
    }
    if (!(await waitForReady(`${api}/readyz`, child))) continue; // exited before ready
    if (stopping) return;
    if (everReady) log(`mcpd (pid ${child.pid}) is ready again at ${api}`);
    else printSummary();
    everReady = true;
    await new Promise((r) => (hasExited(child) ? r() : child.once('exit', r)));
  }

  function printSummary() {
    const lines = [
      '',
      `mcpd is up (${((Date.now() - startedAt) / 1000).toFixed(1)}s):`,
      ...(command
        ? [
            `  API              ${api}/api/v1`,
            `  MCP gateway      ${api}/mcp`,
            `  readiness        ${api}/readyz`,
            `  API token        ${path.join(dataDir, 'api-token')} (send Authorization: Bearer <token>)`,
          ]
        : []),
      `  Temporal         ${stack.temporalAddress}`,
      ...(stack.temporalUiUrl ? [`  Temporal Web UI  ${stack.temporalUiUrl}`] : []),
      `  OpenBao          ${stack.baoAddress}`,
      `  data dir         ${dataDir} (logs in ${path.join(dataDir, 'logs')})`,
      ...stack.summary.map((s) => `  - ${s}`),
      '',
      `Press Ctrl-C to stop everything npm start started (the Docker engine${docker.started ? ', which npm start started,' : ''} and the MCP server containers stay up). A crashed mcpd is restarted.`,
      '',
    ];
    console.log(lines.join('\n'));
  }
}

main().catch((err) => {
  console.error(`[${P}] ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
