import assert from 'node:assert/strict';
import { retry } from '../../src/retry';

describe('retry (the one reconnect loop)', () => {
  it('tries again after each failure with the delay retryAfter gives, and returns the first success', async () => {
    const seen: { attempt: number; error: string }[] = [];
    const result = await retry(
      async (attempt) => {
        if (attempt < 3) throw new Error(`failure ${attempt}`);
        return `ok on ${attempt}`;
      },
      {
        retryAfter: (error, attempt) => {
          seen.push({ attempt, error: (error as Error).message });
          return 1;
        },
      },
    );
    assert.equal(result, 'ok on 3');
    assert.deepEqual(seen, [
      { attempt: 1, error: 'failure 1' },
      { attempt: 2, error: 'failure 2' },
    ]);
  });

  it('gives up with the last error when retryAfter answers null (asynchronously too)', async () => {
    let attempts = 0;
    await assert.rejects(
      retry(
        async (attempt) => {
          attempts = attempt;
          throw new Error(`failure ${attempt}`);
        },
        { retryAfter: async (_error, attempt) => (attempt < 2 ? 1 : null) },
      ),
      /^Error: failure 2$/,
    );
    assert.equal(attempts, 2);
  });

  it('waits firstDelayMs before the first attempt', async () => {
    const started = Date.now();
    let firstAt = 0;
    await retry(
      async () => {
        firstAt = Date.now();
      },
      { firstDelayMs: 50, retryAfter: () => 1 },
    );
    assert.ok(firstAt - started >= 45, `first attempt after ${firstAt - started} ms`);
  });

  it('stops when its signal aborts: the pending wait rejects and no further attempt starts', async () => {
    const abort = new AbortController();
    let attempts = 0;
    const looping = retry(
      async () => {
        attempts++;
        throw new Error('down');
      },
      { retryAfter: () => 60_000, signal: abort.signal },
    );
    await new Promise((resolve) => setImmediate(resolve));
    abort.abort();
    await assert.rejects(looping, { name: 'AbortError' });
    assert.equal(attempts, 1);
  });
});
