/**
 * Whether Temporal (the control plane) answers. A stopped or partitioned Temporal
 * keeps TCP connections open and simply never replies, so without deadlines every
 * API call would hang; the gateway keeps serving meanwhile (it does not need
 * Temporal). This module gives the API two things:
 *   - a quick health check (gRPC health service, short deadline) to tell "Temporal
 *     does not answer" from "a workflow is slow", and
 *   - a background monitor whose last verdict /readyz reports.
 */
import type { Connection } from '@temporalio/client';
import { ApiError } from './errors';

/** How long one health check may take before Temporal counts as unreachable. */
export const HEALTH_CHECK_TIMEOUT_MS = 1_000;
/** Answer an API request that has not finished after this long with the control plane's state, if it is down. */
export const API_CALL_DEADLINE_MS = 3_000;

export type ControlPlaneState = { reachable: true } | { reachable: false; reason: string };

/** One check of Temporal's gRPC health service with a deadline; never throws. */
export async function checkTemporal(
  connection: Pick<Connection, 'withDeadline' | 'healthService'>,
  timeoutMs = HEALTH_CHECK_TIMEOUT_MS,
): Promise<ControlPlaneState> {
  try {
    await connection.withDeadline(Date.now() + timeoutMs, () => connection.healthService.check({}));
    return { reachable: true };
  } catch (err) {
    return { reachable: false, reason: describeFailure(err, timeoutMs) };
  }
}

function describeFailure(err: unknown, timeoutMs: number): string {
  const code = (err as { code?: unknown })?.code;
  // 4 = DEADLINE_EXCEEDED: the server holds the connection but does not reply (stopped, overloaded).
  if (code === 4) return `no answer within ${timeoutMs} ms`;
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^\d+ [A-Z_]+: /, '').split('\n')[0] || 'health check failed';
}

/** The error every API call answers with while Temporal does not answer. */
export function temporalUnreachable(address: string, reason: string): ApiError {
  return new ApiError(503, `Temporal unreachable at ${address}: ${reason}`);
}

/** Polls Temporal's health in the background, so /readyz answers at once with the last verdict. */
export class ControlPlaneMonitor {
  private state: ControlPlaneState = { reachable: true };
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    private readonly connection: Pick<Connection, 'withDeadline' | 'healthService'>,
    readonly address: string,
    private readonly intervalMs = 2_000,
  ) {}

  start(): void {
    if (this.timer) return;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  current(): ControlPlaneState {
    return this.state;
  }

  /** Runs fn with a gRPC deadline on every Temporal call it makes (the connection's async-local context). */
  withDeadline<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
    return this.connection.withDeadline(deadline, fn);
  }

  /** Checks now (and records the verdict). */
  async check(): Promise<ControlPlaneState> {
    this.state = await checkTemporal(this.connection);
    return this.state;
  }

  private async poll(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      await this.check();
    } finally {
      this.checking = false;
    }
  }
}
