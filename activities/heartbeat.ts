import { Context } from '@temporalio/activity';

/** Between two heartbeats when the activity has no heartbeat timeout (unit tests, old schedules). */
const HEARTBEAT_EVERY_MS = 2_000;

/**
 * Heartbeats while `work` runs, so that with a heartbeatTimeout Temporal notices
 * within seconds when the worker running this activity dies (e.g. mcpd is killed
 * mid-start) and retries it on a live worker, instead of waiting for the whole
 * startToCloseTimeout. Outside an activity (unit tests) it just runs `work`.
 *
 * The first heartbeat comes after half the timeout, not at once: the activity's start
 * already tells Temporal the worker is alive, and each heartbeat is a write in its
 * history store, so the many starts that finish sooner cost none.
 */
export async function withHeartbeat<T>(work: () => Promise<T>): Promise<T> {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return work();
  }
  const everyMs = context.info.heartbeatTimeoutMs ? context.info.heartbeatTimeoutMs / 2 : HEARTBEAT_EVERY_MS;
  const timer = setInterval(() => context.heartbeat(), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
