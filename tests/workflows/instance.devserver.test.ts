/**
 * instanceWorkflow on the real Temporal dev server (npm test's stack), with the
 * in-memory node and secret store of the time-skipping tests.
 *
 * Why not the time-skipping server: a workflow task that continues as new while a
 * new event (a signal, a child's cancellation, a timer) arrives is mishandled there
 * (temporalio/sdk-java#3088 and #2606): the old run keeps a started task and no close
 * event, so a client following the run chain waits forever. That is the race these
 * tests are about, so they run where production runs it, in their own namespace.
 */
import assert from 'node:assert/strict';
import Long from 'long';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createControlActivities } from '../../activities/control';
import { TASK_QUEUE, instanceId, nodeTaskQueue, type InstanceView } from '../../src/contracts/instance';
import { healthChangedSignal, statusQuery, stopSignal, type HealthTransition } from '../../src/contracts/messages';
import { SEARCH_ATTRIBUTES } from '../../src/contracts/searchAttributes';
import type { InstanceWorkflowArgs } from '../../workflows/instance';
import { testEnv, waitFor, waitForValue } from '../support/stack';
import { FakeNode, MemorySecretStore, readyNodes, spec } from './fixtures/fakes';

const NAMESPACE = 'mcpd-workflow-tests';
const NODE = 't-wf-devserver-node';
const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD

describe('instanceWorkflow on the Temporal dev server', function () {
  this.timeout(120_000);
  let connection: Connection;
  let client: Client;
  let workerConnection: NativeConnection;
  let bundle: WorkflowBundleWithSourceMap;
  let node: FakeNode;
  let workers: { worker: Worker; done: Promise<void> }[] = [];

  before(async () => {
    const stack = testEnv();
    connection = await Connection.connect({ address: stack.temporalAddress });
    await connection.workflowService
      .registerNamespace({ namespace: NAMESPACE, workflowExecutionRetentionPeriod: { seconds: Long.fromNumber(86_400) } })
      .catch((err: Error) => {
        if (!/already exists|ALREADY_EXISTS/i.test(err.message)) throw err;
      });
    await connection.operatorService
      .addSearchAttributes({ namespace: NAMESPACE, searchAttributes: Object.fromEntries(Object.values(SEARCH_ATTRIBUTES).map((name) => [name, KEYWORD])) })
      .catch((err: Error) => {
        if (!/already exists|ALREADY_EXISTS/i.test(err.message)) throw err;
      });
    client = new Client({ connection, namespace: NAMESPACE });
    workerConnection = await NativeConnection.connect({ address: stack.temporalAddress });
    bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./instance-bundle'), logger: quietLogger });
    const secrets = new MemorySecretStore();
    node = new FakeNode(secrets);
    // A new namespace takes a moment to reach every service of the dev server.
    await waitFor(() => client.workflow.count().then(() => true), { timeoutMs: 30_000, what: `namespace ${NAMESPACE}` });
    const control = await Worker.create({
      connection: workerConnection,
      namespace: NAMESPACE,
      taskQueue: TASK_QUEUE,
      workflowBundle: bundle,
      activities: { ...createControlActivities({ secrets }), ...readyNodes(NODE) },
    });
    const nodeWorker = await Worker.create({
      connection: workerConnection,
      namespace: NAMESPACE,
      taskQueue: nodeTaskQueue(NODE),
      activities: node.activities(),
    });
    workers = [control, nodeWorker].map((worker) => ({ worker, done: worker.run() }));
  });

  after(async () => {
    for (const { worker } of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    await Promise.all(workers.map((w) => w.done));
    await workerConnection?.close();
    await connection?.close();
  });

  async function start(server: string, historyLimit: number, specOverrides: Parameters<typeof spec>[1] = {}): Promise<WorkflowHandle> {
    const args: InstanceWorkflowArgs = { server, ordinal: 0, spec: spec(server, specOverrides), node: NODE, tuning: { historyLimit } };
    const id = instanceId(server, 0);
    // A leftover from an earlier run of this file on the same dev server would make the start fail.
    await client.workflow
      .getHandle(id)
      .terminate('earlier test run')
      .catch(() => undefined);
    return client.workflow.start('instanceWorkflow', { taskQueue: TASK_QUEUE, workflowId: id, args: [args] });
  }

  const view = (handle: WorkflowHandle) => () => handle.query(statusQuery);
  const describeView = (v: InstanceView) => JSON.stringify({ status: v.status, health: v.health, events: v.events.slice(-8) });
  const transition = (i: number): HealthTransition => ({ health: i % 2 ? 'healthy' : 'degraded', reason: `r${i}`, liveness: false, consecutiveFailures: 0 });

  it('continues as new during the retry waits, carrying attempts, the error and the events', async () => {
    node.failNextStarts = ['e1', 'e2', 'e3'];
    const handle = await start('t-wf-can-waits', 40, { retry: { fastDelaySeconds: 1, fastAttempts: 5, slowDelaySeconds: 1 } });
    const firstRun = (await handle.describe()).runId;
    const running = await waitForValue(view(handle), (v) => v.status === 'RUNNING', { what: 'RUNNING after three failed attempts', describe: describeView });
    assert.equal(running.attemptCount, 4, 'the attempt after the carried ones');
    assert.notEqual((await handle.describe()).runId, firstRun, 'continued as new during the retry waits');
    assert.ok(running.events.some((e) => e.type === 'ContinuedAsNew'));
    for (const error of ['e1', 'e2', 'e3'])
      assert.ok(
        running.events.some((e) => e.message.includes(`failed: ${error}`)),
        `events survive continue-as-new (${error})`,
      );
    await handle.signal(stopSignal);
    assert.equal(((await handle.result()) as InstanceView).status, 'STOPPED');
  });

  it('continues as new while RUNNING: the same container, a new probe child, nothing restarted', async () => {
    const handle = await start('t-wf-can-running', 40);
    const running = await waitForValue(view(handle), (v) => v.status === 'RUNNING', { what: 'RUNNING', describe: describeView });
    const runBefore = (await handle.describe()).runId;
    const startsBefore = node.startCalls;
    // Readiness transitions add history until the run continues as new.
    for (let i = 0; (await handle.describe()).runId === runBefore; i++) {
      assert.ok(i < 20, 'the run never continued as new');
      await handle.signal(healthChangedSignal, transition(i));
      await waitForValue(view(handle), (v) => v.events.some((e) => e.message.endsWith(`: r${i}`)), { what: `health change r${i}`, describe: describeView });
    }
    const described = await handle.describe();
    const after = await waitForValue(view(handle), (v) => v.status === 'RUNNING', { what: 'RUNNING in the new run', describe: describeView });
    assert.equal(after.containerId, running.containerId, 'the same container keeps running');
    assert.equal(node.startCalls, startsBefore, 'no container start for continue-as-new');
    assert.ok(after.events.some((e) => e.type === 'ContinuedAsNew'));
    // The probe child's id carries the container generation, which the last AttemptStarted event names.
    const generation = /generation (\d+)/.exec([...after.events].reverse().find((e) => e.type === 'AttemptStarted')?.message ?? '')?.[1];
    assert.ok(generation, 'the attempt event names the generation');
    const probe = client.workflow.getHandle(`${handle.workflowId}/probe/${generation}`);
    await waitFor(
      async () => {
        const d = await probe.describe();
        return d.status.name === 'RUNNING' && d.parentExecution?.runId === described.runId;
      },
      { what: 'a probe child of the new run' },
    );
    await handle.signal(stopSignal);
    assert.equal(((await handle.result()) as InstanceView).status, 'STOPPED');
  });

  it('carries every signal that arrives while a run continues as new: none is lost, a stop still stops', async () => {
    const handle = await start('t-wf-can-stream', 30);
    await waitForValue(view(handle), (v) => v.status === 'RUNNING', { what: 'RUNNING', describe: describeView });
    const runs = new Set([(await handle.describe()).runId]);
    // A steady stream, not waiting for each to be handled: some land while a run hands over to the next.
    // Bounded so every event still fits the instance's last 50.
    let count = 0;
    while (runs.size < 2 && count < 30) {
      await handle.signal(healthChangedSignal, transition(count++));
      await new Promise((resolve) => setTimeout(resolve, 25));
      runs.add((await handle.describe()).runId);
    }
    // A slow worker (a loaded machine) may take the whole stream in one batch and only then continue as new:
    // the run must still hand over, with every signal of the stream carried.
    await waitFor(async () => runs.add((await handle.describe()).runId).size >= 2, {
      timeoutMs: 30_000,
      what: `a second run after ${count} signals (history ${(await handle.describe()).historyLength})`,
    });
    const seen = await waitForValue(
      view(handle),
      (v) => Array.from({ length: count }, (_, i) => i).every((i) => v.events.some((e) => e.message.endsWith(`: r${i}`))),
      { what: `all ${count} health changes recorded`, describe: describeView },
    );
    assert.equal(seen.status, 'RUNNING');

    await Promise.all([handle.signal(healthChangedSignal, transition(count)), handle.signal(stopSignal)]);
    const final = (await handle.result()) as InstanceView;
    assert.equal(final.status, 'STOPPED');
    assert.equal(node.containers.get(handle.workflowId), undefined, 'the container was removed');
  });
});

const quietLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
