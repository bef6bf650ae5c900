import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLimiter, valueWithin } from '../../src/concurrency';

describe('createLimiter', () => {
  it('runs at most `limit` calls at once, the others in arrival order, and passes results and errors through', async () => {
    const limit = createLimiter(3);
    let running = 0;
    let most = 0;
    const startedOrder: number[] = [];
    const calls = Array.from({ length: 10 }, (_, i) =>
      limit(async () => {
        startedOrder.push(i);
        running++;
        most = Math.max(most, running);
        await sleep(5 + (i % 3));
        running--;
        if (i === 4) throw new Error('call 4 failed');
        return i * 2;
      }),
    );
    const settled = await Promise.allSettled(calls);
    assert.equal(most, 3);
    assert.deepEqual(startedOrder, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(
      settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
      [0, 2, 4, 6, 'call 4 failed', 10, 12, 14, 16, 18],
    );
    // A failed call gives its slot back: the gate still admits `limit` at once afterwards.
    let after = 0;
    await Promise.all(Array.from({ length: 3 }, () => limit(async () => (after++, await sleep(1)))));
    assert.equal(after, 3);
  });

  it('refuses a limit that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => createLimiter(bad), RangeError);
  });
});

describe('valueWithin', () => {
  it('gives the value when the work settles in time, null when it does not, and passes a rejection through', async () => {
    assert.equal(
      await valueWithin(
        sleep(5).then(() => 'v'),
        1_000,
      ),
      'v',
    );
    const started = Date.now();
    assert.equal(await valueWithin(new Promise<string>(() => undefined), 50), null);
    assert.ok(Date.now() - started < 1_000, 'the wait ended at the bound');
    await assert.rejects(valueWithin(Promise.reject(new Error('engine down')), 1_000), /engine down/);
  });
});
