/**
 * What `npm start` and `npm test` do before anything runs: install node_modules when
 * missing or older than package-lock.json, compile with tsc, then get the pinned
 * toolchain, a Docker engine and the local images.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);

export function say(prefix, msg) {
  console.log(`[${prefix}] ${msg}`);
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}

function npmDependenciesStale() {
  const installed = path.join(ROOT, 'node_modules', '.package-lock.json');
  const lock = path.join(ROOT, 'package-lock.json');
  if (!fs.existsSync(installed)) return 'node_modules is missing';
  const manifest = path.join(ROOT, 'package.json');
  const newest = Math.max(fs.statSync(manifest).mtimeMs, fs.existsSync(lock) ? fs.statSync(lock).mtimeMs : 0);
  return newest > fs.statSync(installed).mtimeMs + 1000 ? 'package.json or package-lock.json changed since the last install' : null;
}

function runOrFail(what, command, args) {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`${what} failed (exit ${result.status ?? result.signal})`);
}

/** Where tsc's last clean run records the hash of its inputs. */
const BUILD_STAMP = path.join(ROOT, 'dist', '.build-inputs.sha256');

/**
 * A hash of everything tsc reads: tsconfig.json, the lock file and every file in the
 * folders tsconfig includes. Content, not mtimes: a copy or an extracted archive keeps
 * old mtimes on changed files.
 */
function buildInputsHash() {
  const hash = createHash('sha256');
  const tsconfig = fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8');
  const lock = path.join(ROOT, 'package-lock.json');
  hash.update(tsconfig).update(fs.existsSync(lock) ? fs.readFileSync(lock) : '');
  const folders = [...new Set(JSON.parse(tsconfig).include.map((pattern) => pattern.split('/')[0]))].sort();
  const visit = (dir) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') visit(full);
      } else if (entry.isFile()) {
        hash.update(`\0${path.relative(ROOT, full)}\0`).update(fs.readFileSync(full));
      }
    }
  };
  for (const folder of folders) visit(path.join(ROOT, folder));
  return hash.digest('hex');
}

/**
 * npm ci/install when needed, then tsc (skipped when its inputs are unchanged since
 * its last clean run); throws a one-line error on failure. With `strict` (npm test), a type error fails the
 * run: tests must not pass on code that does not compile cleanly.
 */
export function buildProject(prefix, { strict = false } = {}) {
  const stale = npmDependenciesStale();
  if (stale) {
    const started = Date.now();
    const ci = fs.existsSync(path.join(ROOT, 'package-lock.json'));
    say(prefix, `${stale}: running npm ${ci ? 'ci' : 'install'}`);
    runOrFail(`npm ${ci ? 'ci' : 'install'}`, 'npm', [ci ? 'ci' : 'install', '--no-audit', '--no-fund']);
    say(prefix, `dependencies installed in ${seconds(started)}`);
  }
  const started = Date.now();
  const inputs = buildInputsHash();
  const upToDate =
    fs.existsSync(BUILD_STAMP) && fs.readFileSync(BUILD_STAMP, 'utf8') === inputs && fs.existsSync(path.join(ROOT, 'dist', 'src', 'embedded', 'toolchain.js'));
  if (upToDate) {
    say(prefix, 'dist/ is up to date (sources unchanged since the last clean compile)');
    repairNpxCacheEntry(prefix);
    return;
  }
  fs.rmSync(BUILD_STAMP, { force: true });
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', ROOT], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const output = `${tsc.stdout}${tsc.stderr}`.trim();
  if (tsc.status !== 0) {
    // tsc still emits JavaScript for files with type errors; show them and go on, so
    // one unfinished file does not block running everything else.
    const errors = output.split('\n').filter((line) => /error TS\d+/.test(line));
    console.log(output);
    if (strict) throw new Error(`tsc reported ${errors.length} type error(s) (listed above)`);
    say(prefix, `tsc reported ${errors.length} type error(s) (listed above); continuing with what it emitted`);
  }
  // tsc does not keep the executable bit: `npx mcpctl` runs the package's own bin straight from dist/.
  const { bin = {} } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  for (const file of Object.values(bin)) {
    if (fs.existsSync(path.join(ROOT, file))) fs.chmodSync(path.join(ROOT, file), 0o755);
  }
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'embedded', 'toolchain.js'))) {
    throw new Error('tsc emitted nothing usable (dist/src/embedded/toolchain.js is missing)');
  }
  if (tsc.status === 0) fs.writeFileSync(BUILD_STAMP, inputs);
  say(prefix, `compiled in ${seconds(started)}`);
  repairNpxCacheEntry(prefix);
}

/** Runs a Node CLI of this package's devDependencies, collecting its output. */
function runNodeTool(script, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output: output.trim() }));
  });
}

/**
 * `npm run lint`, as one step of `npm test`: ESLint (type-checked rules, no warnings
 * allowed) and Prettier's check, side by side. Shows what they found and throws a
 * one-line error when either fails.
 */
export async function lintProject(prefix) {
  const started = Date.now();
  const [eslint, prettier] = await Promise.all([
    runNodeTool('node_modules/eslint/bin/eslint.js', ['.', '--max-warnings', '0']),
    runNodeTool('node_modules/prettier/bin/prettier.cjs', ['--check', '.', '--log-level', 'warn']),
  ]);
  const failures = [];
  if (eslint.code !== 0) {
    console.log(eslint.output);
    const problems = /(\d+) problems?/.exec(eslint.output)?.[1];
    failures.push(problems ? `ESLint found ${problems} problem(s)` : `ESLint failed (exit ${eslint.code})`);
  }
  if (prettier.code !== 0) {
    console.log(prettier.output);
    const files = prettier.output.split('\n').filter((line) => line.startsWith('[warn] ') && !line.includes('Code style issues')).length;
    failures.push(files ? `Prettier would reformat ${files} file(s) (npm run format)` : `Prettier failed (exit ${prettier.code})`);
  }
  if (failures.length > 0) throw new Error(`lint failed after ${seconds(started)}: ${failures.join('; ')} (listed above; npm run lint repeats them)`);
  say(prefix, `lint clean (ESLint, Prettier) in ${seconds(started)}`);
}

/**
 * `npx mcpctl` in this checkout runs the package's own bin through a link npm keeps in
 * its npx cache (<cache>/_npx/<first 16 hex of sha512(checkout path)>, libnpmexec), made
 * once and only for bins whose file existed then. A checkout at this path that ran
 * `npx mcpctl` before its bin existed (before bin/mcpctl.cjs, before a build) left an
 * entry without the link, and npx never re-links it: "sh: 1: mcpctl: not found".
 * Removes such an entry, so the next npx makes a complete one. Touches nothing else.
 */
export function repairNpxCacheEntry(prefix) {
  const { name, bin = {} } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const cache = process.env.npm_config_cache || path.join(os.homedir(), '.npm');
  const entry = path.join(cache, '_npx', createHash('sha512').update(ROOT).digest('hex').slice(0, 16));
  if (!fs.existsSync(path.join(entry, 'node_modules', name))) return;
  // existsSync follows the link: a dangling one counts as missing too.
  const missing = Object.keys(bin).filter(
    (command) => fs.existsSync(path.join(ROOT, bin[command])) && !fs.existsSync(path.join(entry, 'node_modules', '.bin', command)),
  );
  if (missing.length === 0) return;
  fs.rmSync(entry, { recursive: true, force: true });
  say(
    prefix,
    `removed npm's npx cache entry for this checkout (${entry}): it had no link for ${missing.join(', ')}, so \`npx ${missing[0]}\` said "not found"; npx makes a new one on its next run`,
  );
}

/** The compiled embedded-stack modules (CommonJS under dist/). */
export function embedded() {
  return {
    toolchain: require(path.join(ROOT, 'dist/src/embedded/toolchain.js')),
    stack: require(path.join(ROOT, 'dist/src/embedded/stack.js')),
    process: require(path.join(ROOT, 'dist/src/embedded/process.js')),
    prometheus: require(path.join(ROOT, 'dist/src/embedded/prometheus.js')),
    otelCollector: require(path.join(ROOT, 'dist/src/embedded/otelCollector.js')),
  };
}

/** Toolchain, Docker engine and images; prints what it did and how long it took. */
export async function prepareInfrastructure(prefix, dataDir) {
  const { toolchain } = embedded();
  const log = (msg) => say(prefix, msg);
  let started = Date.now();
  const tools = await toolchain.ensureToolchain({ root: ROOT, log });
  log(
    tools.installed
      ? `toolchain installed in ${seconds(started)}`
      : `toolchain ready (temporal: ${tools.source.temporal}, bao: ${tools.source.bao}, test server: ${tools.source.temporalTestServer})`,
  );
  started = Date.now();
  const docker = await toolchain.ensureDockerEngine({ dataDir, log });
  log(
    docker.started
      ? `started dockerd (pid ${docker.pid}) in ${seconds(started)}; it stays running after mcpd stops, since containers live in it (log ${docker.logFile})`
      : 'Docker engine answers',
  );
  const { buildImages } = await import('../images.mjs');
  await buildImages({ log: (msg) => say(prefix, msg) });
  return { tools, docker };
}

/** The environment tests and benchmarks get: where the stack is, and the toolchain's binaries. */
export function stackEnv(stack, tools) {
  return {
    ...process.env,
    TEMPORAL_ADDRESS: stack.temporalAddress,
    BAO_ADDR: stack.baoAddress,
    BAO_TOKEN: stack.baoToken,
    MCPD_TEMPORAL_TEST_SERVER: tools.temporalTestServer,
    MCPD_TEMPORAL_CLI: tools.temporal,
    MCPD_BAO_CLI: tools.bao,
  };
}
