#!/usr/bin/env node
/**
 * `npm run bench`: compiles, then runs the gateway benchmark (dist/bench/gateway.bench.js),
 * which starts its own container and gateway process on loopback, prints the table
 * and cleans up. Environment: BENCH_CALLS, BENCH_CONCURRENT_MS, BENCH_PORT, BENCH_SERVER.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT, buildProject } from './lib/bootstrap.mjs';

buildProject('bench');
const result = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'bench', 'gateway.bench.js')], { cwd: ROOT, stdio: 'inherit' });
process.exit(result.status ?? 1);
