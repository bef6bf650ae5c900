/**
 * When `npm start` restarts a crashed mcpd, and when it gives up. Pure: the caller
 * passes the clock, so the schedule is tested without waiting.
 *
 * - Backoff: 1 s after the first crash, doubling up to 30 s (like Kubernetes'
 *   CrashLoopBackOff, shorter: mcpd is one process on one machine).
 * - A run that lasted `stableAfterMs` resets the backoff: the next crash is a new story.
 * - A crash loop, `crashLoopExits` exits within `crashLoopWindowMs`, stops everything:
 *   restarting again would only hide a broken install or configuration.
 */

export interface RestartPolicyOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  /** A run at least this long resets the backoff. */
  stableAfterMs: number;
  crashLoopExits: number;
  crashLoopWindowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  initialDelayMs: 1_000,
  maxDelayMs: 30_000,
  stableAfterMs: 60_000,
  crashLoopExits: 5,
  crashLoopWindowMs: 60_000,
};

export type RestartDecision = { action: 'restart'; delayMs: number; exitsInWindow: number } | { action: 'give-up'; exitsInWindow: number; reason: string };

/** The delay before restart number `consecutiveCrashes` (1 = the first crash after a stable run). */
export function restartDelayMs(consecutiveCrashes: number, options: RestartPolicyOptions = DEFAULT_RESTART_POLICY): number {
  const doublings = Math.max(0, consecutiveCrashes - 1);
  // 2^doublings overflows to Infinity long after the cap applies; Math.min keeps it finite.
  return Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** doublings);
}

export class RestartPolicy {
  private readonly options: RestartPolicyOptions;
  private readonly exitTimes: number[] = [];
  private consecutiveCrashes = 0;

  constructor(options: Partial<RestartPolicyOptions> = {}) {
    this.options = { ...DEFAULT_RESTART_POLICY, ...options };
    for (const [key, value] of Object.entries(this.options)) {
      if (!Number.isFinite(value) || value <= 0) throw new Error(`restart policy: ${key} must be a positive number, got ${value}`);
    }
  }

  /** Records that a run which started at `startedAt` exited at `exitedAt` (ms since epoch), and decides what comes next. */
  onExit(startedAt: number, exitedAt: number): RestartDecision {
    const { stableAfterMs, crashLoopExits, crashLoopWindowMs } = this.options;
    if (exitedAt - startedAt >= stableAfterMs) this.consecutiveCrashes = 0;
    this.consecutiveCrashes += 1;
    this.exitTimes.push(exitedAt);
    while (this.exitTimes.length > 0 && this.exitTimes[0] <= exitedAt - crashLoopWindowMs) this.exitTimes.shift();
    const exitsInWindow = this.exitTimes.length;
    if (exitsInWindow >= crashLoopExits) {
      return {
        action: 'give-up',
        exitsInWindow,
        reason: `crash loop: mcpd exited ${exitsInWindow} times within ${formatDuration(crashLoopWindowMs)}`,
      };
    }
    return { action: 'restart', delayMs: restartDelayMs(this.consecutiveCrashes, this.options), exitsInWindow };
  }
}

/** How a child process ended, for one log line: "exit code 1" or "signal SIGKILL", plus its last stderr line when there is one. */
export function describeExit(code: number | null, signal: string | null, lastStderrLine?: string): string {
  const how = signal ? `signal ${signal}` : `exit code ${code ?? 'unknown'}`;
  const last = lastStderrLine?.trim();
  return last ? `${how}; last stderr line: ${last}` : `${how}; no stderr output`;
}

export function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}

/**
 * Keeps the last non-empty line of a byte stream fed in arbitrary chunks (a child's
 * stderr), without holding more than one line.
 */
export class LastLine {
  private partial = '';
  private last = '';

  push(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) this.last = line;
    // A single line without a newline can grow without bound (a flood); keep its tail.
    if (this.partial.length > 4096) this.partial = this.partial.slice(-4096);
  }

  /** The last complete non-empty line, or the unterminated one after it. */
  get value(): string {
    return this.partial.trim() ? this.partial : this.last;
  }
}
