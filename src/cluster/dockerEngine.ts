/**
 * A Docker engine of its own under a directory: its own data root, exec root, pidfile and
 * unix socket, no bridge and no iptables rules, so it never touches the machine's engine
 * or its networks. The cluster runs two as two hosts; the engine-restart chaos test
 * restarts one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DockerRuntime } from '../docker/runtime';
import { tailLog, waitUntil } from '../embedded/process';

export class DockerEngine {
  readonly socket: string;
  /** The engine through mcpd's one Docker adapter (tests that need the full Docker API open their own client on `socket`). */
  readonly runtime: DockerRuntime;
  readonly logFile: string;
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly dir: string,
    socket = path.join(dir, 'docker.sock'),
  ) {
    this.socket = socket;
    this.logFile = path.join(dir, 'dockerd.log');
    this.runtime = new DockerRuntime({ socketPath: this.socket });
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts dockerd and resolves once it answers; returns when that was (ms since epoch). */
  async start(timeoutMs = 60_000): Promise<number> {
    fs.mkdirSync(this.dir, { recursive: true });
    const log = fs.openSync(this.logFile, 'a');
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
      // Own process group: a Ctrl-C in the terminal reaches the launcher, which stops the engine in its turn.
      { stdio: ['ignore', log, log], detached: true },
    );
    fs.closeSync(log);
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitUntil(
      `dockerd at ${this.socket}`,
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null)
          throw new Error(`dockerd exited (${proc.exitCode ?? proc.signalCode}): ${tailLog(this.logFile, 5)}`);
        await this.runtime.engineVersion();
        return true;
      },
      { timeoutMs, intervalMs: 50 },
    );
    return Date.now();
  }

  /** SIGTERM, as systemd stops it: dockerd stops its containers, then exits. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 40_000);
      await this.exited;
      clearTimeout(timer);
    }
    this.proc = null;
  }

  /** docker save from the machine's engine | docker load into this one. */
  async loadImage(image: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const sh = spawn('sh', ['-c', `docker save "$1" | docker -H "unix://$2" load`, 'sh', image, this.socket], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      sh.stderr.on('data', (c) => (stderr += c));
      sh.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`loading ${image} into ${this.socket} failed: ${stderr}`))));
    });
  }

  /** Loads each image this engine lacks; returns the ones it loaded. */
  async loadMissingImages(images: string[]): Promise<string[]> {
    const loaded: string[] = [];
    for (const image of images) {
      if (await this.runtime.imageExists(image)) continue;
      await this.loadImage(image);
      loaded.push(image);
    }
    return loaded;
  }
}
