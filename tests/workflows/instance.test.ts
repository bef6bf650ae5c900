/**
 * instanceWorkflow on the time-skipping server, with in-memory node activities
 * (a fake Docker node) and an in-memory secret store behind the real resolveEnv.
 */
import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createControlActivities } from '../../activities/control';
import { TASK_QUEUE, instanceId, nodeTaskQueue, type InstanceView } from '../../src/contracts/instance';
import type { McpServerSpec } from '../../src/contracts/spec';
import type { InstanceWorkflowArgs } from '../../workflows/instance';
import { mcpInstanceStatusKey, mcpServerKey } from '../../src/contracts/searchAttributes';
import { containerExitedSignal, forceRetrySignal, specChangedSignal, statusQuery, stopSignal } from '../../src/contracts/messages';
import { createTimeSkippingEnv, recordHistory, registerSearchAttributes } from './fixtures/env';
import { FakeNode, MemorySecretStore, readyNodes, spec } from './fixtures/fakes';

const NODE = 't-wf-node';
const SECRET_VALUE = 'wf-Sup3r-Secret-Value-0b1c2d3e4f';

describe('instanceWorkflow (time-skipping)', function () {
  this.timeout(180_000);
  let env: TestWorkflowEnvironment;
  let bundle: WorkflowBundleWithSourceMap;
  let secrets: MemorySecretStore;
  let node: FakeNode;
  let workers: { worker: Worker; done: Promise<void> }[] = [];

  before(async () => {
    env = await createTimeSkippingEnv();
    // As on the dev server (`--search-attribute McpServer=Keyword ...`): the workflow upserts them.
    await registerSearchAttributes(env);
    bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./instance-bundle'), logger: quietLogger });
  });
  after(async () => {
    await env?.teardown();
  });

  beforeEach(async () => {
    secrets = new MemorySecretStore();
    await secrets.put('t-wf-gitea', { token: SECRET_VALUE });
    node = new FakeNode(secrets);
    await startWorkers();
  });
  afterEach(async () => {
    await stopWorkers();
  });

  /** cached: false turns off sticky execution, so a restarted worker is asked at once (the test server's clock does not move sticky timeouts). */
  async function startWorkers({ cached = true } = {}) {
    const control = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: bundle,
      activities: { ...createControlActivities({ secrets }), ...readyNodes(NODE) },
      ...(cached ? {} : { maxCachedWorkflows: 0 }),
    });
    const nodeWorker = await Worker.create({ connection: env.nativeConnection, taskQueue: nodeTaskQueue(NODE), activities: node.activities() });
    workers = [control, nodeWorker].map((worker) => ({ worker, done: worker.run() }));
  }
  async function stopWorkers() {
    for (const { worker } of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    await Promise.all(workers.map((w) => w.done));
    workers = [];
  }

  /**
   * Probes are off: the time-skipping server can wedge when a child's cancellation races a signal
   * (it re-applies the cancel when the task completion is retried), and the probe loop is a
   * long-running activity, during which it does not skip time. The probe tests, a liveness
   * failure's restart among them, run on the dev server (probe.devserver.test.ts).
   */
  async function start(server: string, s: McpServerSpec, tuning: InstanceWorkflowArgs['tuning'] = { probes: false }): Promise<WorkflowHandle> {
    const id = instanceId(server, 0);
    const args: InstanceWorkflowArgs = { server, ordinal: 0, spec: s, node: NODE, tuning };
    return env.client.workflow.start('instanceWorkflow', { taskQueue: TASK_QUEUE, workflowId: id, args: [args] });
  }

  /** Polls the status query (without advancing server time) until `ok`. */
  async function until(handle: WorkflowHandle, ok: (v: InstanceView) => boolean, what: string): Promise<InstanceView> {
    const deadline = Date.now() + 30_000;
    let last: InstanceView | undefined;
    while (Date.now() < deadline) {
      last = await Promise.race([handle.query(statusQuery), new Promise<undefined>((r) => setTimeout(() => r(undefined), 5_000))]);
      if (last && ok(last)) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    const history = await handle.fetchHistory();
    const trail = history.events?.map((e) => `${String(e.eventId)} ${Object.keys(e).find((k) => k.endsWith('Attributes'))}`).join('\n');
    throw new Error(`timed out waiting for ${what}; last view: ${JSON.stringify(last, null, 1)}\nhistory:\n${trail}`);
  }

  const failedAttempt = (n: number) => (v: InstanceView) => v.status === 'ERROR' && v.attemptCount === n;
  const delayOf = (v: InstanceView) => {
    const failed = [...v.events].reverse().find((e) => e.type === 'AttemptFailed')!;
    return (Date.parse(v.nextRetryAt!) - Date.parse(failed.at)) / 1000;
  };

  it('escalates the retry delay: 30 s for the first five failed attempts, then 300 s, retrying the same instance', async () => {
    node.failAllStarts = 'container exited right after start with code 1: boom';
    const handle = await start('t-wf-esc', spec('t-wf-esc'));
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 7; attempt++) {
      const view = await until(handle, failedAttempt(attempt), `failed attempt ${attempt}`);
      assert.equal(view.error, 'container exited right after start with code 1: boom');
      assert.ok(view.lastAttemptAt);
      const delay = delayOf(view);
      delays.push(delay);
      if (attempt === 1) {
        // Nothing happens before the timer fires.
        await env.sleep(delay * 1000 - 5_000);
        assert.equal((await handle.query(statusQuery)).attemptCount, 1);
        await env.sleep(5_000);
      } else {
        await env.sleep(delay * 1000);
      }
    }
    assert.deepEqual(delays, [30, 30, 30, 30, 30, 300, 300]);
    assert.equal(node.containers.size, 1, 'retries replace the container of the same instance');
    await handle.signal(stopSignal);
    const final = (await handle.result()) as InstanceView;
    assert.equal(final.status, 'STOPPED');
    await recordHistory(handle, 'instance-escalating-backoff');
  });

  it('uses the retry settings of the spec', async () => {
    node.failAllStarts = 'image test/none not found locally';
    const handle = await start('t-wf-custom', spec('t-wf-custom', { retry: { fastDelaySeconds: 5, fastAttempts: 2, slowDelaySeconds: 45 } }));
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      const view = await until(handle, failedAttempt(attempt), `failed attempt ${attempt}`);
      delays.push(delayOf(view));
      await env.sleep(delays[delays.length - 1] * 1000);
    }
    assert.deepEqual(delays, [5, 5, 45, 45]);
    await handle.signal(stopSignal);
    await handle.result();
  });

  it('forceRetry ends a wait at once', async () => {
    node.failNextStarts = ['container exited right after start with code 2: no config'];
    const handle = await start('t-wf-force', spec('t-wf-force'));
    const failed = await until(handle, failedAttempt(1), 'the first failure');
    assert.equal(delayOf(failed), 30);
    await handle.signal(forceRetrySignal);
    const running = await until(handle, (v) => v.status === 'RUNNING', 'RUNNING after forceRetry');
    assert.equal(running.attemptCount, 2);
    const secondAttempt = Date.parse(running.lastAttemptAt!);
    assert.ok(secondAttempt - Date.parse(failed.lastAttemptAt!) < 30_000, 'the second attempt did not wait for the timer');
    assert.equal(running.error, null);
    assert.ok(running.events.some((e) => e.type === 'ForceRetry'));
    await handle.signal(stopSignal);
    await handle.result();
    await recordHistory(handle, 'instance-force-retry');
  });

  it('stop during a wait removes the container and ends STOPPED', async () => {
    node.failAllStarts = 'container exited right after start with code 3: crash';
    const handle = await start('t-wf-stop', spec('t-wf-stop'));
    await until(handle, failedAttempt(1), 'the first failure');
    assert.equal(node.containers.size, 1, 'the failed container is kept until the next attempt');
    await handle.signal(stopSignal);
    const final = (await handle.result()) as InstanceView;
    assert.equal(final.status, 'STOPPED');
    assert.equal(final.containerId, null);
    assert.equal(final.nextRetryAt, null);
    assert.equal(node.containers.size, 0, 'the container is removed');
    assert.equal(node.startCalls, 1, 'no attempt after stop');
    await recordHistory(handle, 'instance-stop-in-wait');
  });

  it('keeps attemptCount across a worker restart and goes on escalating', async () => {
    node.failAllStarts = 'container exited right after start with code 1: boom';
    await stopWorkers();
    await startWorkers({ cached: false });
    const handle = await start('t-wf-restart', spec('t-wf-restart'));
    await until(handle, failedAttempt(1), 'failed attempt 1');
    await env.sleep(30_000);
    await until(handle, failedAttempt(2), 'failed attempt 2');

    await stopWorkers();
    await startWorkers({ cached: false });

    const view = await until(handle, failedAttempt(2), 'the same state after the restart');
    assert.equal(view.error, 'container exited right after start with code 1: boom');
    await env.sleep(30_000);
    await until(handle, failedAttempt(3), 'failed attempt 3 on the new worker');
    await handle.signal(stopSignal);
    await handle.result();
  });

  // Continue-as-new (in a retry wait and while RUNNING, with the signals and timers that race it) is
  // tested on the real dev server: tests/workflows/instance.devserver.test.ts says why.
  it('a container that dies while RUNNING goes through the backoff; a late exit of an old container is ignored', async () => {
    const handle = await start('t-wf-exit', spec('t-wf-exit'));
    const running = await until(handle, (v) => v.status === 'RUNNING', 'RUNNING');
    await handle.signal(containerExitedSignal, { containerId: 'some-older-container', exitCode: 1, reason: 'container exited with code 1' });
    await env.sleep(1_000);
    assert.equal((await handle.query(statusQuery)).status, 'RUNNING');

    await handle.signal(containerExitedSignal, { containerId: running.containerId!, exitCode: 137, reason: 'container exited with code 137 (killed)' });
    const failed = await until(handle, failedAttempt(1), 'ERROR after the exit');
    assert.equal(failed.error, 'container exited with code 137 (killed)');
    assert.equal(delayOf(failed), 30);
    await env.sleep(30_000);
    const again = await until(handle, (v) => v.status === 'RUNNING' && v.attemptCount === 2, 'the instance running again');
    assert.notEqual(again.containerId, running.containerId);
    await handle.signal(stopSignal);
    await handle.result();
    await recordHistory(handle, 'instance-container-exit');
  });

  it('resets attemptCount after a stable running period, so the next failure waits the fast delay again', async () => {
    node.failNextStarts = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'];
    const handle = await start(
      't-wf-stable',
      spec('t-wf-stable', { retry: { fastDelaySeconds: 1, fastAttempts: 5, slowDelaySeconds: 2, stableSeconds: 600 } }),
    );
    await until(handle, failedAttempt(1), 'failed attempt 1');
    for (let i = 0; i < 20 && (await handle.query(statusQuery)).status !== 'RUNNING'; i++) await env.sleep(2_000);
    const running = await until(handle, (v) => v.status === 'RUNNING', 'RUNNING');
    assert.equal(running.attemptCount, 7);
    await env.sleep(601_000);
    const stable = await until(handle, (v) => v.attemptCount === 0, 'the reset');
    assert.ok(stable.events.some((e) => e.type === 'BackoffReset'));
    await handle.signal(containerExitedSignal, { containerId: stable.containerId!, exitCode: 1, reason: 'container exited with code 1' });
    const failed = await until(handle, (v) => v.status === 'ERROR', 'ERROR after the exit');
    assert.equal(delayOf(failed), 1, 'the fast delay again, not the slow one');
    await handle.signal(stopSignal);
    await handle.result();
    await recordHistory(handle, 'instance-backoff-reset');
  });

  it('rolls onto a changed spec: the old container is removed and a fresh one starts, not counted as a failure', async () => {
    const handle = await start('t-wf-roll', spec('t-wf-roll'));
    const before = await until(handle, (v) => v.status === 'RUNNING', 'RUNNING');
    await handle.signal(specChangedSignal, spec('t-wf-roll', { image: 'test/never-pulled:v2', env: [{ name: 'MODE', value: 'v2' }] }));
    const after = await until(handle, (v) => v.status === 'RUNNING' && v.containerId !== before.containerId, 'RUNNING on the new spec');
    assert.equal(after.attemptCount, 1, 'a spec change starts a fresh schedule');
    assert.equal(after.error, null);
    assert.ok(after.events.some((e) => e.type === 'SpecChanged'));
    assert.equal(node.containers.get(handle.workflowId)?.env.MODE, 'v2');
    assert.equal(node.containers.size, 1);
    await handle.signal(stopSignal);
    await handle.result();
    await recordHistory(handle, 'instance-spec-change');
  });

  it('keeps secret values out of history, search attributes, memo and the status view', async () => {
    const handle = await start(
      't-wf-secret',
      spec('t-wf-secret', {
        env: [
          { name: 'GITEA_TOKEN', secretRef: { name: 't-wf-gitea', key: 'token' } },
          { name: 'MODE', value: 'plain' },
        ],
      }),
    );
    const running = await until(handle, (v) => v.status === 'RUNNING', 'RUNNING');
    assert.equal(node.containers.get(handle.workflowId)?.env.GITEA_TOKEN, SECRET_VALUE, 'the container got the value');
    const history = readableHistory(await handle.fetchHistory());
    assert.ok(history.includes('t-wf-gitea'), 'history holds the reference');
    assert.ok(!history.includes(SECRET_VALUE), 'history never holds the value');
    const described = await handle.describe();
    assert.ok(!JSON.stringify({ sa: described.typedSearchAttributes, memo: described.memo, raw: described.raw }).includes(SECRET_VALUE));
    assert.ok(!JSON.stringify(running).includes(SECRET_VALUE));
    assert.equal(described.typedSearchAttributes.get(mcpInstanceStatusKey), 'RUNNING');
    assert.equal(described.typedSearchAttributes.get(mcpServerKey), 't-wf-secret');
    await handle.signal(stopSignal);
    await handle.result();
    await recordHistory(handle, 'instance-start-stop');
  });

  it('a missing secret fails the attempt naming secret and key, without starting a container; fixed and retried, it runs', async () => {
    const handle = await start('t-wf-nosecret', spec('t-wf-nosecret', { env: [{ name: 'GITEA_TOKEN', secretRef: { name: 't-wf-gitea', key: 'nope' } }] }));
    const failed = await until(handle, failedAttempt(1), 'the failure');
    assert.equal(failed.error, 'secret resolution failed: secret "t-wf-gitea" has no key "nope" (env GITEA_TOKEN)');
    assert.equal(node.startCalls, 0);
    // The operator adds the key and cuts the wait short: the same instance starts with it.
    await secrets.put('t-wf-gitea', { token: SECRET_VALUE, nope: 'fixed' });
    await handle.signal(forceRetrySignal);
    const running = await until(handle, (v) => v.status === 'RUNNING', 'RUNNING after the fix');
    assert.equal(running.attemptCount, 2);
    assert.equal(running.error, null);
    assert.equal(node.containers.get(handle.workflowId)?.env.GITEA_TOKEN, 'fixed');
    await handle.signal(stopSignal);
    await handle.result();
    await recordHistory(handle, 'instance-secret-failure-force-retry');
  });
});

/** The history as JSON with every payload's bytes decoded as text, so a search sees what the payloads hold. */
function readableHistory(history: unknown): string {
  const texts: string[] = [];
  const walk = (node: unknown): void => {
    if (node instanceof Uint8Array) texts.push(Buffer.from(node).toString('utf8'));
    else if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') Object.values(node).forEach(walk);
    else if (typeof node === 'string') texts.push(node);
  };
  walk(history);
  return texts.join('\n');
}

const quietLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
};
