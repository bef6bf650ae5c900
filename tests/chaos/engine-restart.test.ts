/**
 * The Docker engine restarts. The test never touches the machine's shared dockerd:
 * it starts a second engine of its own (own data root, exec root, pidfile and socket,
 * no bridge, no iptables), loads the test image into it, points its own mcpd at it and
 * restarts that engine. The instance the restart took down must not wait out its
 * backoff (30 s): it is retried at once, says the engine restarted, and is RUNNING and
 * healthy within 15 s of the engine answering again.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { LABELS } from '../../src/contracts/labels';
import { callApi, runMcpctl } from '../support/clients';
import { startMcpd, waitFor, type McpdProcess } from '../support/stack';
import {
  applyServer,
  assertNoSecret,
  assertOneCurrentContainer,
  echoThroughGateway,
  runningAndHealthy,
  stopServersAndMcpd,
  waitForInstance,
  type ChaosServer,
} from './support';

/** A dockerd of the test's own under dir; restartable without touching any other engine. */
class TestEngine {
  readonly socket: string;
  readonly docker: Docker;
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor(readonly dir: string) {
    this.socket = path.join(dir, 'docker.sock');
    this.docker = new Docker({ socketPath: this.socket });
  }

  /** Starts dockerd and resolves once it answers; returns when that was (ms since epoch). */
  async start(): Promise<number> {
    const log = fs.openSync(path.join(this.dir, 'dockerd.log'), 'a');
    const proc = spawn(
      'dockerd',
      [
        '--data-root',
        path.join(this.dir, 'data'),
        '--exec-root',
        path.join(this.dir, 'exec'),
        '--pidfile',
        path.join(this.dir, 'docker.pid'),
        '-H',
        `unix://${this.socket}`,
        '--bridge=none',
        '--iptables=false',
        '--ip6tables=false',
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`dockerd exited with ${proc.exitCode}: see ${this.dir}/dockerd.log`);
        await this.docker.ping();
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `the test's dockerd at ${this.socket}` },
    );
    return Date.now();
  }

  /** SIGTERM, as systemd stops it: dockerd stops its containers, then exits. */
  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc?.kill('SIGKILL'), 40_000);
      await this.exited;
      clearTimeout(timer);
    }
    this.proc = null;
  }

  /** docker save from the shared engine | docker load into this one. */
  async loadImage(image: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const sh = spawn('sh', ['-c', `docker save ${image} | docker -H unix://${this.socket} load`], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      sh.stderr.on('data', (c) => (stderr += c));
      sh.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`loading ${image} failed: ${stderr}`))));
    });
  }
}

describe('chaos: the Docker engine restarts', function () {
  this.timeout(300_000);
  let engine: TestEngine;
  let mcpd: McpdProcess;
  let server: ChaosServer;
  let workDir: string;

  before(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-chaos-engine-'));
    engine = new TestEngine(workDir);
    await engine.start();
    await engine.loadImage('mcpd/gitea-like:dev');
    mcpd = await startMcpd({ env: { MCPD_DOCKER_SOCKET: engine.socket } });
    // The default schedule (30 s fast delay): an engine restart must not wait for it.
    server = await applyServer(mcpd, 'engine');
    await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 60_000);
  });

  after(async () => {
    await stopServersAndMcpd(mcpd, [server], engine?.docker);
    if (engine) {
      // Everything this engine ran goes with its data root.
      const left = await engine.docker.listContainers({ all: true }).catch(() => []);
      await Promise.all(
        left.map((c) =>
          engine.docker
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => undefined),
        ),
      );
      await engine.stop();
    }
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('retries the instances the restart took down at once, and they are healthy within 15 s of the engine answering', async () => {
    const before = await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 30_000);
    await engine.stop();
    const back = await engine.start();
    const after = await waitForInstance(
      mcpd,
      server,
      'RUNNING and healthy in a new container',
      (v) => runningAndHealthy(v) && v.containerId !== before.containerId,
      30_000,
    );
    const seconds = (Date.now() - back) / 1000;
    console.log(`      RUNNING and healthy ${seconds.toFixed(1)} s after the engine answered again`);
    assert.ok(seconds <= 15, `healthy within 15 s of the engine answering, took ${seconds.toFixed(1)} s`);
    const recent = after.events.slice(-12);
    assert.ok(
      recent.some((e) => /the Docker engine restarted/.test(e.message)),
      `the events say the engine restarted: ${JSON.stringify(recent)}`,
    );

    await assertOneCurrentContainer(engine.docker, server, after);
    assert.equal(await echoThroughGateway(mcpd, server, 'after the engine restart'), 'after the engine restart');
    const listed = await callApi(mcpd, 'GET', '/api/v1/instances');
    assert.ok(
      listed.json.items.some((v: { id: string }) => v.id === server.instance),
      'no instance was lost',
    );
    const ctl = await runMcpctl(mcpd, ['get', 'instances'], { cwd: workDir });
    assert.equal(ctl.code, 0, ctl.stderr);
    assertNoSecret(server, { 'mcpd output': mcpd.output(), API: listed.text, mcpctl: ctl.stdout + ctl.stderr });
    assert.ok((await engine.docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${server.instance}`] } })).length === 1);
  });
});
