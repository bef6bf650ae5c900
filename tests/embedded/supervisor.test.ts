/**
 * `npm start` (scripts/up.mjs) as a supervisor, for real: it starts its own persistent
 * Temporal dev server and OpenBao (on free ports, in a temporary data dir) and mcpd;
 * a kill -9 of mcpd brings a new mcpd that answers /readyz while Temporal and OpenBao
 * keep running; Ctrl-C stops everything in reverse order; a command that crashes on
 * every start is a crash loop that stops everything with one message and exit code 1.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPortOpen } from '../../src/embedded/process';
import { REPO_ROOT, freePort, testEnv, waitFor } from '../support/stack';

interface Supervisor {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ports: { mcpd: number; temporal: number; temporalUi: number; openbao: number };
  dataDir: string;
}

async function startSupervisor(extraEnv: NodeJS.ProcessEnv = {}): Promise<Supervisor> {
  testEnv(); // fails clearly outside npm test
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-t-up-'));
  const ports = { mcpd: await freePort(), temporal: await freePort(), temporalUi: await freePort(), openbao: await freePort() };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MCPD_DATA_DIR: dataDir,
    MCPD_PORT: String(ports.mcpd),
    MCPD_TEMPORAL_PORT: String(ports.temporal),
    MCPD_TEMPORAL_UI_PORT: String(ports.temporalUi),
    MCPD_OPENBAO_PORT: String(ports.openbao),
    MCPD_NODE: `t-up-${randomBytes(3).toString('hex')}`,
    // The examples' fixed container names would collide with a developer's npm start on the shared engine.
    MCPD_SEED_EXAMPLES: 'false',
    ...extraEnv,
  };
  // npm test points these at its own stack; npm start must start (and stop) its own here.
  for (const name of ['TEMPORAL_ADDRESS', 'BAO_ADDR', 'BAO_TOKEN', 'VAULT_ADDR', 'VAULT_TOKEN']) delete env[name];
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'scripts', 'up.mjs')], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited, ports, dataDir };
}

/** Every "mcpd started (pid N)" line, in order. */
function mcpdPids(output: string): number[] {
  return [...output.matchAll(/mcpd started \(pid (\d+)\)/g)].map((m) => Number(m[1]));
}

/** waitFor, with npm start's output in the error when it times out. */
async function waitWithOutput<T>(s: Supervisor, fn: () => Promise<T | false> | T | false, what: string, timeoutMs: number): Promise<T> {
  try {
    return await waitFor(fn, { timeoutMs, what });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- npm start output ---\n${s.output().split('\n').slice(-40).join('\n')}`, { cause: err });
  }
}

async function readyz(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.status;
}

describe('npm start supervises mcpd', function () {
  this.timeout(300_000);
  let supervisor: Supervisor | undefined;

  afterEach(async () => {
    if (!supervisor) return;
    if (supervisor.child.exitCode === null && supervisor.child.signalCode === null) {
      supervisor.child.kill('SIGINT');
      await supervisor.exited;
    }
    fs.rmSync(supervisor.dataDir, { recursive: true, force: true });
    supervisor = undefined;
  });

  it('restarts mcpd after kill -9, keeps Temporal and OpenBao running, and Ctrl-C stops everything in reverse order', async () => {
    supervisor = await startSupervisor();
    const s = supervisor;
    await waitWithOutput(s, () => s.output().includes('mcpd is up'), 'npm start to report "mcpd is up"', 180_000);
    const [firstPid] = mcpdPids(s.output());
    assert.ok(firstPid, `npm start names mcpd's pid:\n${s.output()}`);

    process.kill(firstPid, 'SIGKILL');
    await waitWithOutput(
      s,
      () => /mcpd exited \(signal SIGKILL; .*\); restarting it in 1s/.test(s.output()),
      'the exit logged with its signal and the 1 s backoff',
      10_000,
    );
    // Meanwhile the rest of the stack stays up.
    assert.equal(await isPortOpen('127.0.0.1', s.ports.temporal), true, 'Temporal keeps running while mcpd is down');
    assert.equal(await isPortOpen('127.0.0.1', s.ports.openbao), true, 'OpenBao keeps running while mcpd is down');

    await waitWithOutput(s, () => mcpdPids(s.output()).length >= 2, 'a second mcpd', 10_000);
    const secondPid = mcpdPids(s.output())[1];
    assert.notEqual(secondPid, firstPid);
    await waitWithOutput(s, async () => (await readyz(s.ports.mcpd)) === 200, 'the restarted mcpd to answer /readyz', 90_000);
    await waitWithOutput(s, () => s.output().includes(`mcpd (pid ${secondPid}) is ready again`), 'the recovery to be logged', 10_000);

    s.child.kill('SIGINT');
    const { code } = await s.exited;
    assert.equal(code, 0, s.output());
    const out = s.output();
    const order = ['stopping mcpd', 'stopping OpenBao', 'stopping the Temporal dev server', 'stopped.'].map((line) =>
      out.indexOf(line, out.indexOf('stopping what npm start started')),
    );
    assert.ok(
      order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1])),
      `stops mcpd, OpenBao, Temporal in that order:\n${out}`,
    );
    assert.equal(await isPortOpen('127.0.0.1', s.ports.mcpd), false);
    assert.equal(await isPortOpen('127.0.0.1', s.ports.temporal), false);
    assert.equal(await isPortOpen('127.0.0.1', s.ports.openbao), false);
    assert.throws(() => process.kill(secondPid, 0), /ESRCH/, 'the restarted mcpd is gone too');
  });

  it('stops everything with one message and exit code 1 when mcpd crashes five times within a minute', async () => {
    const standIn = "console.error('stand-in mcpd: config is broken on purpose'); process.exit(3)";
    supervisor = await startSupervisor({ MCPD_SUPERVISED_COMMAND: JSON.stringify([process.execPath, '-e', standIn]) });
    const s = supervisor;
    const startedAt = Date.now();
    // Backoff 1 + 2 + 4 + 8 s between the five exits, plus starting the stack.
    const { code } = await Promise.race([
      s.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`npm start did not give up within 150 s:\n${s.output()}`)), 150_000)),
    ]);
    const out = s.output();
    assert.equal(code, 1, out);
    const exits = out.match(/mcpd exited \(exit code 3; last stderr line: stand-in mcpd: config is broken on purpose\)/g) ?? [];
    assert.equal(exits.length, 5, `five exits logged with their cause:\n${out}`);
    for (const delay of ['1s', '2s', '4s', '8s']) assert.match(out, new RegExp(`restarting it in ${delay} `));
    assert.equal((out.match(/crash loop/g) ?? []).length, 1, `one crash-loop message:\n${out}`);
    assert.match(out, /crash loop: mcpd exited 5 times within 60s, so npm start is stopping everything/);
    assert.ok(out.indexOf('stopping OpenBao') > out.indexOf('crash loop'), `OpenBao stopped after the crash loop:\n${out}`);
    assert.ok(out.indexOf('stopping the Temporal dev server') > out.indexOf('stopping OpenBao'));
    assert.equal(await isPortOpen('127.0.0.1', s.ports.temporal), false, 'Temporal stopped');
    assert.equal(await isPortOpen('127.0.0.1', s.ports.openbao), false, 'OpenBao stopped');
    assert.ok(Date.now() - startedAt < 150_000);
  });
});
