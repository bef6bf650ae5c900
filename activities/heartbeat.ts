import { Context } from '@temporalio/activity';

const HEARTBEAT_EVERY_MS = 2_000;

/**
 * Heartbeats while `work` runs, so that with a heartbeatTimeout Temporal notices
 * within seconds when the worker running this activity dies (e.g. mcpd is killed
 * mid-start) and retries it on a live worker, instead of waiting for the whole
 * startToCloseTimeout. Outside an activity (unit tests) it just runs `work`.
 */
export async function withHeartbeat<T>(work: () => Promise<T>): Promise<T> {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return work();
  }
  context.heartbeat();
  const timer = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
