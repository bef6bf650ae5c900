/**
 * Child processes the embedded stack starts: each runs in its own process group with
 * its output in a log file, and stop() ends exactly that group (never anything else).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  hasExited(): boolean;
  /** SIGTERM to the process group, SIGKILL after graceMs; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL to the process group (a crash, nothing cleans up); resolves when it has exited. */
  kill(): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function startProcess(options: StartOptions): ManagedProcess {
  fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = fs.openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', log, log],
      // Own process group: a Ctrl-C in the terminal reaches the launcher only, which
      // then stops the parts in order; stop() can signal the whole group.
      detached: true,
    });
  } finally {
    fs.closeSync(log);
  }
  let exitedFlag = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (err) => {
      exitedFlag = true;
      fs.appendFileSync(options.logFile, `failed to start ${options.command}: ${err.message}\n`);
      resolve(`error: ${err.message}`);
    });
  });
  const pid = child.pid ?? -1;
  return {
    name: options.name,
    pid,
    logFile: options.logFile,
    exited,
    hasExited: () => exitedFlag,
    async stop(graceMs = 10_000) {
      if (exitedFlag || pid < 0) return;
      signalGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      // Anything the leader left behind in its group goes too.
      signalGroup(pid, 'SIGKILL');
    },
    async kill() {
      if (exitedFlag || pid < 0) return;
      signalGroup(pid, 'SIGKILL');
      await exited;
    },
  };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** The last lines of a log file, for error messages when a part fails to start. */
export function tailLog(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A loopback port nothing listens on right now, outside the range the OS hands out to
 * outgoing connections. A port the OS picks (port 0) comes from that range, and any client
 * socket of any process could take it between this check and the caller's listen: a test's
 * mcpd once failed to start with EADDRINUSE that way.
 */
export async function freePort(): Promise<number> {
  const [low, high] = ephemeralPortRange();
  // Above the ephemeral range when it leaves room there (Linux's default leaves 61000-65535), else below it.
  const [from, to] = 65535 - high >= 1000 ? [high + 1, 65535] : [10000, low - 1];
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free loopback port found in ${from}-${to} after 50 tries`);
}

/** The OS's range for outgoing connections' local ports (Linux's default when it cannot be read). */
function ephemeralPortRange(): [number, number] {
  try {
    const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low <= high) return [low, high];
  } catch {
    // Not Linux, or no /proc.
  }
  return [32768, 60999];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** True when something accepts TCP connections on host:port. */
export function isPortOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Polls `check` until it returns true; fails with `what`, the last error and the
 * process log when `deadlineMs` passes or `proc` exits first.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  { timeoutMs, intervalMs = 250, proc }: { timeoutMs: number; intervalMs?: number; proc?: ManagedProcess },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    if (proc?.hasExited()) {
      throw new Error(`${proc.name} exited before ${what} (exit ${await proc.exited}); log ${proc.logFile}:\n${tailLog(proc.logFile)}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      const logPart = proc ? `; log ${proc.logFile}:\n${tailLog(proc.logFile)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}${logPart}`);
    }
    await sleep(intervalMs);
  }
}

/** Runs a short command; returns its exit status and output (never throws on non-zero exit). */
export function runQuiet(command: string, args: string[], env?: NodeJS.ProcessEnv): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', env: env ?? process.env, timeout: 120_000 });
  if (result.error) return { ok: false, output: result.error.message };
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}
