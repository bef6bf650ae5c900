#!/usr/bin/env node
/**
 * `npm run bench`: compiles, prepares the toolchain, Docker engine and images,
 * starts a throwaway stack (the Temporal dev server with its SQLite file in a temporary
 * data dir, as `npm start` keeps it; OpenBao in dev mode) on free loopback ports, and
 * runs every benchmark; each prints a table with its
 * baseline measured in the same run.
 *   - dist/bench/lifecycle.bench.js: start call -> RUNNING vs a plain `docker run`
 *   - dist/bench/gateway.bench.js: tools/call latency and throughput, direct vs gateway
 *   - dist/bench/telemetry.bench.js: gateway throughput with metrics off, on, and with tracing sampled at 10 %
 *   - dist/bench/cli.bench.js: mcpctl --help and get servers vs `node -e 0` (median of 10)
 *   - dist/bench/policy.bench.js: p50/p99 of a Cedar policy decision, first (evaluated) and repeated (cached)
 *   - dist/bench/packages.bench.js: first (build included) and later starts of npm and PyPI
 *     package servers vs `npx -y <package>` / a uvx-like venv on the host
 *   - dist/bench/scale.bench.js, only when named (`npm run bench -- scale [--replicas N]`, default
 *     200): N replicas of mcpd/tiny:dev on a real mcpd, time to healthy, steady CPU and memory,
 *     history per instance-hour, delete, extrapolated to 1,000, vs N plain `docker run -d`
 * `npm run bench -- cli packages` runs only the benchmarks whose file name contains one of the words;
 * options (`--name value`) are passed on to every benchmark that runs.
 * Environment: BENCH_START_RUNS, BENCH_CLI_RUNS, BENCH_CALLS, BENCH_CONCURRENT_MS, BENCH_PORT, BENCH_SERVER, BENCH_PACKAGE_RUNS.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, buildProject, embedded, prepareInfrastructure, say, stackEnv } from './lib/bootstrap.mjs';

const P = 'bench';
buildProject(P);
const { freePort } = embedded().process;
const { tools } = await prepareInfrastructure(P, path.resolve(process.env.MCPD_DATA_DIR ?? path.join(ROOT, '.data')));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-bench-'));
const stack = await embedded().stack.startStack(
  {
    dataDir,
    // Persistent like `npm start`'s (SQLite in the data dir): the figures are those of the embedded default.
    temporal: { port: await freePort(), uiPort: null, persistent: true },
    openbao: { port: await freePort(), persistent: false },
    env: {},
  },
  tools,
  (msg) => say(P, msg),
);

const env = stackEnv(stack, tools);
let failed = false;
try {
  // `npm run bench -- cli` runs only the benchmarks whose file name contains "cli"; `--x v` goes to the benchmarks.
  const only = [];
  const options = [];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) only.push(argv[i]);
    else if (argv[i].includes('=') || i + 1 >= argv.length || argv[i + 1].startsWith('--')) options.push(argv[i]);
    else options.push(argv[i], argv[++i]);
  }
  // Starting hundreds of containers takes minutes and most of the machine: only when asked for by name.
  const onlyWhenNamed = ['scale.bench.js'];
  const benches = [
    'lifecycle.bench.js',
    'gateway.bench.js',
    'telemetry.bench.js',
    'cli.bench.js',
    'packages.bench.js',
    'policy.bench.js',
    ...onlyWhenNamed,
  ].filter((b) => (only.length === 0 ? !onlyWhenNamed.includes(b) : only.some((o) => b.includes(o))));
  for (const bench of benches) {
    say(P, `running ${bench}`);
    const result = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'bench', bench), ...options], { cwd: ROOT, env, stdio: 'inherit' });
    if (result.status !== 0) failed = true;
  }
} finally {
  await stack.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
