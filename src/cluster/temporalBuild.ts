/**
 * The real Temporal server and its SQL tool, built once per machine from the pinned Go
 * module with the Go toolchain it needs, into ~/.cache/mcpd/temporal-v<version>/bin.
 * The build is niced: it takes minutes on two cores and must not starve what runs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { TEMPORAL_GO_TOOLCHAIN, TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from './config';
import { runQuiet } from '../embedded/process';

export interface TemporalBinaries {
  server: string;
  sqlTool: string;
}

export function temporalCacheDir(): string {
  return process.env.MCPD_TEMPORAL_CACHE ?? path.join(os.homedir(), '.cache', 'mcpd', `temporal-v${TEMPORAL_SERVER_VERSION}`);
}

const PACKAGES = [
  { pkg: 'go.temporal.io/server/cmd/server', built: 'server', name: 'temporal-server' },
  { pkg: 'go.temporal.io/server/cmd/tools/sql', built: 'sql', name: 'temporal-sql-tool' },
] as const;

/** The cached binaries; builds whichever is missing or reports another version. */
export function ensureTemporalBinaries(log: (msg: string) => void): TemporalBinaries {
  const binDir = path.join(temporalCacheDir(), 'bin');
  for (const { pkg, built, name } of PACKAGES) {
    const target = path.join(binDir, name);
    if (fs.existsSync(target) && reportsVersion(target, TEMPORAL_SERVER_VERSION)) continue;
    goInstall({ pkg, version: TEMPORAL_SERVER_VERSION, binDir, built, target }, log);
    if (!reportsVersion(target, TEMPORAL_SERVER_VERSION)) throw new Error(`${target} does not report version ${TEMPORAL_SERVER_VERSION}`);
  }
  return { server: path.join(binDir, 'temporal-server'), sqlTool: path.join(binDir, 'temporal-sql-tool') };
}

/** The Web UI server, built once per machine into ~/.cache/mcpd/temporal-ui-v<version>/bin (about a minute). */
export function ensureTemporalUiServer(log: (msg: string) => void): string {
  const binDir = process.env.MCPD_TEMPORAL_UI_CACHE ?? path.join(os.homedir(), '.cache', 'mcpd', `temporal-ui-v${TEMPORAL_UI_VERSION}`, 'bin');
  const target = path.join(binDir, 'temporal-ui-server');
  if (fs.existsSync(target) && reportsVersion(target, TEMPORAL_UI_VERSION)) return target;
  goInstall({ pkg: 'github.com/temporalio/ui-server/v2/cmd/server', version: TEMPORAL_UI_VERSION, binDir, built: 'server', target }, log);
  return target;
}

function reportsVersion(binary: string, version: string): boolean {
  const { ok, output } = runQuiet(binary, ['--version']);
  return ok && output.includes(version);
}

/** `go install pkg@vversion` with the toolchain Temporal needs, niced, renaming what it built (`built`) to `target`. */
function goInstall(build: { pkg: string; version: string; binDir: string; built: string; target: string }, log: (msg: string) => void): void {
  const { pkg, version, binDir } = build;
  fs.mkdirSync(binDir, { recursive: true });
  const started = Date.now();
  log(`building ${pkg}@v${version} with ${TEMPORAL_GO_TOOLCHAIN} (once per machine; minutes)`);
  const result = spawnSync('nice', ['-n', '19', 'go', 'install', `${pkg}@v${version}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
    // Outside any module, so go.mod of this project plays no part.
    cwd: os.tmpdir(),
    env: { ...process.env, GOTOOLCHAIN: TEMPORAL_GO_TOOLCHAIN, GOBIN: binDir, GOFLAGS: process.env.GOFLAGS ?? '-p=1' },
  });
  if (result.status !== 0) throw new Error(`go install ${pkg}@v${version} failed (exit ${result.status ?? result.signal ?? result.error?.message})`);
  fs.renameSync(path.join(binDir, build.built), build.target);
  log(`built ${path.basename(build.target)} in ${((Date.now() - started) / 1000).toFixed(0)}s`);
}
