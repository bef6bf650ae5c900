/**
 * Servers from packages: the first start of a package server (install on the host,
 * image build, container, MCP initialize: start -> RUNNING) and later starts (image
 * cached), beside the baselines measured in the same run on the same host: `npx -y
 * <package>` to its `initialize` reply for npm, and for PyPI what `uvx` does (a venv,
 * pip install, run the console script). "Cold" rows start from empty npm / pip caches
 * (mcpd and the baseline each get their own), "warm" rows from what the cold run left.
 *
 * mcpd builds FROM bench-private copies of the base images (MCPD_PACKAGE_NODE_BASE /
 * MCPD_PACKAGE_PYTHON_BASE), so its first start really builds, without touching the
 * engine's shared package images; everything the bench builds is removed at the end.
 * Needs the stack `npm run bench` starts. BENCH_PACKAGE_RUNS (default 3).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { LABELS } from '../src/contracts/labels';
import type { InstanceView } from '../src/contracts/instance';
import { removeContainers, startMcpd, waitFor } from '../tests/support/stack';
import { callApi } from '../tests/support/clients';

const RUNS = Number(process.env.BENCH_PACKAGE_RUNS ?? 3);
const docker = new Docker();

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
});

/** Runs a command on the host, sends initialize, resolves with the ms to the reply; kills the whole process group. */
function toInitialize(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => finish(new Error(`${command} ${args.join(' ')}: no initialize reply in 300 s: ${stderr.slice(-300)}`)), 300_000);
    const finish = (err: Error | null, ms?: number) => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      if (err) reject(err);
      else resolve(ms!);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (stdout.includes('"id":1')) finish(null, Number(process.hrtime.bigint() - started) / 1e6);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', (err) => finish(err));
    child.once('exit', (code) => {
      if (!stdout.includes('"id":1')) finish(new Error(`${command} exited with ${code} before answering: ${stderr.slice(-300)}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.write(`${INITIALIZE}\n`);
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A bench-private copy of a base image: same content, its own id, so the build key is new. */
function privateBase(base: string, tag: string): void {
  const built = spawnSync('docker', ['build', '--quiet', '--tag', tag, '-'], {
    input: `FROM ${base}\nLABEL io.mcpd.bench=${tag}\n`,
    encoding: 'utf8',
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
  });
  if (built.status !== 0) throw new Error(`docker build ${tag}: ${built.stderr}`);
}

interface Row {
  label: string;
  values: number[];
}

async function main(): Promise<void> {
  const suffix = randomBytes(3).toString('hex');
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-bench-pkg-'));
  const nodeBase = `mcpd/t-bench-node-base:${suffix}`;
  const pythonBase = `mcpd/t-bench-python-base:${suffix}`;
  privateBase('mcpd/node-base:20', nodeBase);
  privateBase('mcpd/python-base:3', pythonBase);
  // Separate empty caches: mcpd's installs and the host baselines both start cold.
  const caches = (who: string) => ({ npm_config_cache: path.join(scratch, who, 'npm'), PIP_CACHE_DIR: path.join(scratch, who, 'pip') });
  const mcpd = await startMcpd({
    env: { MCPD_LOG_LEVEL: 'warn', MCPD_PACKAGE_NODE_BASE: nodeBase, MCPD_PACKAGE_PYTHON_BASE: pythonBase, ...caches('mcpd') },
    readyTimeoutMs: 120_000,
  });
  const api = async (method: string, urlPath: string, body?: unknown) => {
    const res = await callApi(mcpd, method, urlPath, body);
    if (res.status >= 300) throw new Error(`${method} ${urlPath}: ${res.status} ${res.text}`);
    return res.json as unknown;
  };
  const servers: string[] = [];
  const builtImages = new Set<string>();
  const tables: { title: string; rows: Row[]; notes: string[] }[] = [];

  /** POST start -> RUNNING in ms; returns the instance's last view too. */
  const timedStart = async (server: string) => {
    const id = `mcp-instance:${server}:0`;
    const progress = new Set<string>();
    const started = process.hrtime.bigint();
    await api('POST', `/api/v1/servers/${server}/start`);
    const view = await waitFor(
      async () => {
        const v = (await api('GET', `/api/v1/instances/${encodeURIComponent(id)}`)) as InstanceView;
        if (v.progress) progress.add(v.progress);
        if (v.status === 'ERROR') throw new Error(`${server}: ${v.error}`);
        return v.status === 'RUNNING' ? v : undefined;
      },
      { timeoutMs: 600_000, intervalMs: 20, what: `${server} RUNNING` },
    );
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    await api('POST', `/api/v1/servers/${server}/stop`);
    await waitFor(async () => ((await api('GET', `/api/v1/instances/${encodeURIComponent(id)}`)) as InstanceView).status === 'STOPPED', {
      timeoutMs: 60_000,
      intervalMs: 50,
      what: `${server} STOPPED`,
    });
    const imageEvent = [...view.events].reverse().find((e) => e.type === 'PackageImage')?.message ?? '';
    const image = /^image (\S+)/.exec(imageEvent)?.[1];
    if (image) builtImages.add(image);
    return { ms, imageEvent, progress: [...progress] };
  };

  const measureMcpd = async (server: string, packageName: string) => {
    servers.push(server);
    await api('PUT', `/api/v1/servers/${server}`, { name: server, packageName });
    const first = await timedStart(server);
    const later: number[] = [];
    let cachedEvent = '';
    for (let i = 0; i < RUNS; i++) {
      const run = await timedStart(server);
      later.push(run.ms);
      cachedEvent = run.imageEvent;
    }
    // With the exact version in the spec, a start asks no registry: only the local image is looked up.
    const version = / for \S+@([^@\s]+) \(/.exec(first.imageEvent)?.[1];
    const pinned: number[] = [];
    if (version) {
      await api('PUT', `/api/v1/servers/${server}`, { name: server, packageName: `${packageName}@${version}` });
      for (let i = 0; i < RUNS; i++) pinned.push((await timedStart(server)).ms);
    }
    return { first, later, pinned, cachedEvent };
  };

  try {
    // ---- npm ------------------------------------------------------------------------
    const npmPackage = '@modelcontextprotocol/server-memory';
    const npmServer = `t-bench-pkg-npm-${suffix}`;
    const npm = await measureMcpd(npmServer, npmPackage);
    const npxEnv = { ...process.env, ...caches('npx') };
    const npxCold = await toInitialize('npx', ['-y', npmPackage], npxEnv);
    const npxWarm: number[] = [];
    for (let i = 0; i < RUNS; i++) npxWarm.push(await toInitialize('npx', ['-y', npmPackage], npxEnv));
    tables.push({
      title: `npm: ${npmPackage}`,
      rows: [
        { label: 'host: npx -y <package>, empty npm cache -> initialize', values: [npxCold] },
        { label: 'mcpd: first start, empty npm cache (install + image build)', values: [npm.first.ms] },
        { label: 'host: npx -y <package>, npm cache warm -> initialize', values: npxWarm },
        { label: 'mcpd: later starts (image cached) -> RUNNING', values: npm.later },
        { label: 'mcpd: later starts, exact version in the spec -> RUNNING', values: npm.pinned },
      ],
      notes: [
        npm.first.imageEvent,
        npm.cachedEvent,
        ...(npm.first.progress.length ? [`progress seen in GET /instances/:id: ${npm.first.progress.slice(-1)[0]}`] : []),
      ],
    });

    // ---- PyPI -----------------------------------------------------------------------
    const pypiPackage = 'mcp-server-time';
    const pypiServer = `t-bench-pkg-pypi-${suffix}`;
    const pypi = await measureMcpd(pypiServer, `pypi:${pypiPackage}`);
    const python = (await docker.getImage('mcpd/python-base:3').inspect()).Config.Labels['io.mcpd.python.executable'];
    const venv = path.join(scratch, 'uvx-like', 'venv');
    const pipEnv = { ...process.env, ...caches('uvx-like') };
    const coldStarted = process.hrtime.bigint();
    for (const args of [
      ['-m', 'venv', '--without-pip', venv],
      ['-m', 'pip', '--python', path.join(venv, 'bin', 'python'), 'install', '--only-binary=:all:', '--quiet', pypiPackage],
    ]) {
      const r = spawnSync(python, args, { env: pipEnv, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${python} ${args.join(' ')}: ${r.stderr}`);
    }
    const installMs = Number(process.hrtime.bigint() - coldStarted) / 1e6;
    const script = path.join(venv, 'bin', pypiPackage);
    const uvxCold = installMs + (await toInitialize(script, [], pipEnv));
    const uvxWarm: number[] = [];
    for (let i = 0; i < RUNS; i++) uvxWarm.push(await toInitialize(script, [], pipEnv));
    tables.push({
      title: `PyPI: ${pypiPackage}`,
      rows: [
        { label: 'host: venv + pip install (as uvx), empty cache -> initialize', values: [uvxCold] },
        { label: 'mcpd: first start, empty pip cache (install + image build)', values: [pypi.first.ms] },
        { label: 'host: installed console script (as uvx, cached) -> initialize', values: uvxWarm },
        { label: 'mcpd: later starts (image cached) -> RUNNING', values: pypi.later },
        { label: 'mcpd: later starts, exact version in the spec -> RUNNING', values: pypi.pinned },
      ],
      notes: [
        pypi.first.imageEvent,
        pypi.cachedEvent,
        ...(pypi.first.progress.length ? [`progress seen in GET /instances/:id: ${pypi.first.progress.slice(-1)[0]}`] : []),
      ],
    });

    for (const table of tables) {
      console.log(`\nServers from packages, ${table.title} (${RUNS} later starts / warm runs), ms`);
      console.log(`| ${'path'.padEnd(64)} | ${'median'.padStart(8)} | ${'min'.padStart(8)} | ${'max'.padStart(8)} |`);
      console.log(`|${'-'.repeat(66)}|${'-'.repeat(10)}|${'-'.repeat(10)}|${'-'.repeat(10)}|`);
      for (const row of table.rows.filter((r) => r.values.length > 0)) {
        console.log(
          `| ${row.label.padEnd(64)} | ${median(row.values).toFixed(0).padStart(8)} | ${Math.min(...row.values)
            .toFixed(0)
            .padStart(8)} | ${Math.max(...row.values)
            .toFixed(0)
            .padStart(8)} |`,
        );
      }
      for (const note of table.notes.filter(Boolean)) console.log(`  ${note}`);
    }
    console.log('  mcpd rows: POST /servers/:name/start -> instance RUNNING (container started, gateway attached, MCP initialize answered).');
    console.log(
      '  "later starts" of a spec without a version ask the registry which version is newest (npm view / a pip dry run); an exact version skips that.',
    );
  } finally {
    for (const server of servers) await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
    await mcpd.stop();
    for (const server of servers) await removeContainers({ label: `${LABELS.server}=${server}` });
    for (const image of builtImages)
      await docker
        .getImage(image)
        .remove()
        .catch(() => undefined);
    for (const base of [nodeBase, pythonBase])
      await docker
        .getImage(base)
        .remove()
        .catch(() => undefined);
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`packages bench: ${err.message}\n`);
  process.exit(1);
});
