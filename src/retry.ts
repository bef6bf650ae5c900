/**
 * The one reconnect loop of mcpd (the gateway re-attaching an upstream, the exit
 * watcher re-subscribing to Docker's events): every caller says only what an
 * attempt is and how long to wait after a failure, so the loops cannot drift apart.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryOptions {
  /**
   * Milliseconds to wait after the n-th failed attempt (n from 1), or null to give
   * up and rethrow that attempt's error. It may be async, e.g. to ask whether the
   * container is still worth reconnecting to.
   */
  retryAfter(error: unknown, attempt: number): number | null | Promise<number | null>;
  /** Wait this long before the first attempt too (a reconnect right after a drop would likely fail the same way). */
  firstDelayMs?: number;
  /** Ends the loop: a pending wait rejects with an AbortError, and no further attempt starts. */
  signal?: AbortSignal;
  /** false: the waits do not keep the process alive (background reconnects). Default true. */
  ref?: boolean;
}

/** Runs `attempt` until it resolves, and returns its value. */
export async function retry<T>(attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { signal, ref = true } = options;
  if (options.firstDelayMs) await sleep(options.firstDelayMs, undefined, { signal, ref });
  for (let n = 1; ; n++) {
    signal?.throwIfAborted();
    try {
      return await attempt(n);
    } catch (error) {
      const delay = await options.retryAfter(error, n);
      if (delay === null) throw error;
      await sleep(delay, undefined, { signal, ref });
    }
  }
}
