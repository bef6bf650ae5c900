import type { RetryPolicy } from '../src/contracts/spec';

/**
 * Seconds to wait after failed attempt number `attemptCount` (1-based):
 * fastDelaySeconds for the first fastAttempts attempts, slowDelaySeconds after.
 */
export function retryDelaySeconds(attemptCount: number, retry: Pick<RetryPolicy, 'fastDelaySeconds' | 'fastAttempts' | 'slowDelaySeconds'>): number {
  return attemptCount <= retry.fastAttempts ? retry.fastDelaySeconds : retry.slowDelaySeconds;
}
