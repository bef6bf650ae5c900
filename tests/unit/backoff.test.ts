import assert from 'node:assert/strict';
import { retrySchema } from '../../src/contracts/spec';
import { retryDelaySeconds } from '../../workflows/backoff';

describe('retryDelaySeconds', () => {
  const schedule = (retry: Parameters<typeof retryDelaySeconds>[1], attempts: number) =>
    Array.from({ length: attempts }, (_, i) => retryDelaySeconds(i + 1, retry));

  it('waits 30 s after each of the first five failed attempts, then 300 s, by default', () => {
    assert.deepEqual(schedule(retrySchema.parse({}), 8), [30, 30, 30, 30, 30, 300, 300, 300]);
  });

  it('keeps the slow delay however many attempts fail', () => {
    assert.equal(retryDelaySeconds(10_000, retrySchema.parse({})), 300);
  });

  it('follows custom fastDelaySeconds, fastAttempts and slowDelaySeconds', () => {
    assert.deepEqual(schedule({ fastDelaySeconds: 5, fastAttempts: 2, slowDelaySeconds: 45 }, 5), [5, 5, 45, 45, 45]);
  });

  it('goes straight to the slow delay when fastAttempts is 0', () => {
    assert.deepEqual(schedule({ fastDelaySeconds: 5, fastAttempts: 0, slowDelaySeconds: 60 }, 3), [60, 60, 60]);
  });

  it('after a reset (attemptCount 0) waits the fast delay', () => {
    assert.equal(retryDelaySeconds(0, retrySchema.parse({})), 30);
  });
});
