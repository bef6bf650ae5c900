import assert from 'node:assert/strict';
import { LastLine, RestartPolicy, describeExit, restartDelayMs } from '../../src/embedded/restartPolicy';

describe('npm start restart policy', () => {
  it('waits 1 s after the first crash, doubling up to 30 s', () => {
    assert.deepEqual(
      Array.from({ length: 8 }, (_, i) => restartDelayMs(i + 1)),
      [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000],
    );
    assert.equal(restartDelayMs(10_000), 30_000);
  });

  it('restarts crashes spread over more than a minute with a growing delay', () => {
    const policy = new RestartPolicy();
    // Each run lasts 20 s (not stable), so exits are 20 s + delay apart: never 5 in a minute.
    let now = 0;
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const startedAt = now;
      now += 20_000;
      const decision = policy.onExit(startedAt, now);
      assert.equal(decision.action, 'restart', `exit ${i + 1}: ${JSON.stringify(decision)}`);
      if (decision.action === 'restart') delays.push(decision.delayMs);
      now += delays[delays.length - 1];
    }
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('gives up at the fifth exit within a minute, naming the crash loop', () => {
    const policy = new RestartPolicy();
    let now = 1_000_000;
    const actions: string[] = [];
    let last: ReturnType<RestartPolicy['onExit']> | undefined;
    for (let i = 0; i < 5; i++) {
      const startedAt = now;
      now += 500; // crashes half a second after each start
      last = policy.onExit(startedAt, now);
      actions.push(last.action);
      if (last.action === 'restart') now += last.delayMs;
    }
    assert.deepEqual(actions, ['restart', 'restart', 'restart', 'restart', 'give-up']);
    assert.equal(last!.action, 'give-up');
    assert.match((last as { reason: string }).reason, /crash loop: mcpd exited 5 times within 60s/);
  });

  it('resets the backoff after a run of 60 s or more', () => {
    const policy = new RestartPolicy();
    assert.deepEqual(policy.onExit(0, 100), { action: 'restart', delayMs: 1_000, exitsInWindow: 1 });
    assert.deepEqual(policy.onExit(1_100, 1_200), { action: 'restart', delayMs: 2_000, exitsInWindow: 2 });
    // Stable for 60 s: the next crash starts again at 1 s, and the old exits left the window.
    const decision = policy.onExit(3_200, 63_200);
    assert.deepEqual(decision, { action: 'restart', delayMs: 1_000, exitsInWindow: 1 });
  });

  it('counts only exits within the window for the crash loop', () => {
    const policy = new RestartPolicy({ crashLoopExits: 3, crashLoopWindowMs: 10_000, stableAfterMs: 1_000_000 });
    assert.equal(policy.onExit(0, 1_000).action, 'restart');
    assert.equal(policy.onExit(2_000, 3_000).action, 'restart');
    // 12 s: the exit at 1 s has left the 10 s window, so only two remain.
    assert.equal(policy.onExit(11_000, 12_000).action, 'restart');
    // 12.9 s: the exits at 3 s, 12 s and 12.9 s are within 10 s.
    assert.equal(policy.onExit(12_500, 12_900).action, 'give-up');
  });

  it('rejects a policy that could never wait or never give up', () => {
    assert.throws(() => new RestartPolicy({ initialDelayMs: 0 }), /initialDelayMs must be a positive number, got 0/);
    assert.throws(() => new RestartPolicy({ crashLoopWindowMs: Number.NaN }), /crashLoopWindowMs must be a positive number/);
  });
});

describe('describeExit', () => {
  it('names the exit code or the signal and the last stderr line', () => {
    assert.equal(describeExit(1, null, 'Error: listen EADDRINUSE 127.0.0.1:7400'), 'exit code 1; last stderr line: Error: listen EADDRINUSE 127.0.0.1:7400');
    assert.equal(describeExit(null, 'SIGKILL', ''), 'signal SIGKILL; no stderr output');
    assert.equal(describeExit(null, 'SIGSEGV', undefined), 'signal SIGSEGV; no stderr output');
  });
});

describe('LastLine', () => {
  it('keeps the last non-empty line across arbitrary chunks', () => {
    const last = new LastLine();
    last.push('first li');
    last.push('ne\nsecond line\n\n');
    assert.equal(last.value, 'second line');
    last.push('third, not yet ended');
    assert.equal(last.value, 'third, not yet ended');
    last.push('\r\n   \n');
    assert.equal(last.value, 'third, not yet ended');
  });

  it('bounds an endless line', () => {
    const last = new LastLine();
    for (let i = 0; i < 100; i++) last.push('x'.repeat(1000));
    assert.ok(last.value.length <= 4096);
  });
});
