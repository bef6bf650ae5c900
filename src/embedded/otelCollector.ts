/**
 * A real OpenTelemetry Collector for the tests of trace export (tests/tracing/): built
 * from the collector's Go modules (tests/tracing/collector, pinned by its go.mod and
 * go.sum) once per machine into ~/.cache/mcpd/otelcol-<hash of the sources>/, as the
 * real Temporal server is (src/cluster/temporalBuild.ts). No container registry is
 * reachable here, and the Go module proxy is. The build is niced: about two minutes
 * on two cores the first time, seconds with Go's build cache warm.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { onPath, withLock } from './toolchain';

const SOURCES = ['main.go', 'go.mod', 'go.sum'];

/** The path of the collector binary, building it when this version of its sources has none. Throws one line when it cannot. */
export async function ensureOtelCollector(options: { root: string; log?: (msg: string) => void }): Promise<string> {
  const sourceDir = path.join(options.root, 'tests', 'tracing', 'collector');
  const hash = createHash('sha256');
  for (const file of SOURCES) hash.update(fs.readFileSync(path.join(sourceDir, file)));
  const cacheDir = process.env.MCPD_OTELCOL_CACHE ?? path.join(os.homedir(), '.cache', 'mcpd', `otelcol-${hash.digest('hex').slice(0, 12)}`);
  const target = path.join(cacheDir, 'mcpd-otelcol');
  if (fs.existsSync(target)) return target;
  if (!onPath('go')) throw new Error('missing: the go command, which builds the OpenTelemetry Collector for tests/tracing');
  fs.mkdirSync(cacheDir, { recursive: true });
  return withLock(path.join(cacheDir, 'build.lock'), async () => {
    if (fs.existsSync(target)) return target;
    const started = Date.now();
    options.log?.('building the OpenTelemetry Collector for tests/tracing (once per machine; minutes)');
    const partial = `${target}.partial`;
    const result = spawnSync('nice', ['-n', '19', 'go', 'build', '-o', partial, '.'], { cwd: sourceDir, stdio: ['ignore', 'inherit', 'inherit'] });
    if (result.status !== 0) throw new Error(`go build of the OpenTelemetry Collector (${sourceDir}) failed with exit code ${result.status}`);
    fs.renameSync(partial, target);
    options.log?.(`built the OpenTelemetry Collector in ${((Date.now() - started) / 1000).toFixed(0)}s: ${target}`);
    return target;
  });
}
