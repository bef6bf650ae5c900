/**
 * withHeartbeat in the Temporal SDK's activity environment: a long activity heartbeats
 * within its timeout, a short one costs Temporal no heartbeat write at all.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { withHeartbeat } from '../../activities/heartbeat';

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

function environment(heartbeatTimeoutMs: number) {
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs }, { logger: quietLogger });
  const heartbeatsAt: number[] = [];
  const startedAt = Date.now();
  env.on('heartbeat', () => heartbeatsAt.push(Date.now() - startedAt));
  return { heartbeatsAt, run: <T>(work: () => Promise<T>) => env.run(() => withHeartbeat(work)) };
}

describe('withHeartbeat', () => {
  it('sends no heartbeat for work that ends before half the heartbeat timeout', async () => {
    const { heartbeatsAt, run } = environment(10_000);
    assert.equal(await run(async () => 'started'), 'started');
    assert.deepEqual(heartbeatsAt, []);
  });

  it('heartbeats every half timeout while the work runs, and stops when it ends', async () => {
    const { heartbeatsAt, run } = environment(200);
    await run(() => sleep(450));
    const count = heartbeatsAt.length;
    assert.ok(count >= 1, 'a heartbeat while the work ran');
    assert.ok(heartbeatsAt[0] >= 90, `the first heartbeat came after half the timeout, not at once: ${heartbeatsAt[0]} ms`);
    await sleep(300);
    assert.equal(heartbeatsAt.length, count, 'no heartbeat after the work ended');
  });
});
