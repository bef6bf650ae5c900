#!/usr/bin/env node
/**
 * `npm run test:cluster`: builds, gets the toolchain and images, then runs mocha over
 * tests/cluster/*.e2e.ts, which starts and stops the cluster itself (own state dir under
 * .data/cluster-test, ports from 24000) so it can run next to `npm run cluster`.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { prepareCluster, ROOT } from './prepare.mjs';

const { tools, images } = await prepareCluster('test:cluster', { strict: true });
const args = ['--timeout', '600000', '--exit', '--require', 'dist/tests/support/quiet-temporal.js', ...process.argv.slice(2)];
if (!process.argv.slice(2).some((a) => !a.startsWith('-'))) args.push('dist/tests/cluster/*.e2e.js');
const child = spawn(process.execPath, [path.join(ROOT, 'node_modules/mocha/bin/mocha.js'), ...args], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, MCPD_TEMPORAL_CLI: tools.temporal, MCPD_BAO_CLI: tools.bao, MCPD_CLUSTER_IMAGES: JSON.stringify(images) },
});
child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
