/**
 * A Docker engine of a test's own: its own data root, exec root, pidfile and unix
 * socket, no bridge and no iptables, so a test can restart it or use it as a second
 * host without touching the machine's shared dockerd.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { waitFor } from './stack';

/** A dockerd of the test's own under dir; restartable without touching any other engine. */
export class TestEngine {
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
