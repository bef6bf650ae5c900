/**
 * nodeWorkflow on the dev server (a namespace of its own) with node activities in
 * memory and short timings: Ready once its worker registers, NotReady with the reason
 * when the lease stops heartbeating, its instances told once it stays away past the
 * grace period, and Ready again when its worker returns; all of it also in the memo
 * that listing reads. Real time, not the time-skipping server: heartbeat timeouts are.
 */
import assert from 'node:assert/strict';
import { Context } from '@temporalio/activity';
import { Client, type WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { nodeTaskQueue, TASK_QUEUE } from '../../src/contracts/instance';
import { nodeQuery, type NodeWorkflowInput } from '../../src/contracts/messages';
import { NODE_MEMO_KEY, nodeWorkflowId, type NodeRegistration, type NodeState } from '../../src/contracts/node';
import { waitFor } from '../support/stack';
import { DevServerNamespace, recordHistory } from './fixtures/env';

const NAMESPACE = 'mcpd-node-tests';
const NODE = 'wf-node';

describe('nodeWorkflow (dev server)', function () {
  this.timeout(60_000);
  let devServer: DevServerNamespace | undefined;
  let client: Client;
  const evictions: { node: string; reason: string }[] = [];
  let registrations = 0;
  /** The node's worker "returns" when this resolves: registrations after the first wait for it. */
  let workerBack!: () => void;
  const returned = new Promise<void>((resolve) => (workerBack = resolve));
  let leases = 0;

  const registration: NodeRegistration = { engineHost: '/run/test.sock', engineVersion: '26.1.5', labels: { disk: 'ssd' }, capacity: 5, worker: 'test/1' };

  before(async () => {
    devServer = await DevServerNamespace.open(NAMESPACE);
    client = devServer.client;
    await devServer.runWorkers([
      {
        taskQueue: TASK_QUEUE,
        workflowsPath: require.resolve('../../workflows/index'),
        activities: {
          evictNode: async (node: string, reason: string) => {
            evictions.push({ node, reason });
            return 2;
          },
        },
      },
      {
        taskQueue: nodeTaskQueue(NODE),
        activities: {
          registerNode: async () => {
            if (registrations++ > 0) await returned;
            return registration;
          },
          // The first lease goes silent, as a worker that died would; later ones heartbeat until cancelled.
          holdNodeLease: async () => {
            const context = Context.current();
            if (leases++ > 0) {
              const ticker = setInterval(() => context.heartbeat(), 300);
              await context.cancelled.finally(() => clearInterval(ticker));
            } else {
              await context.cancelled;
            }
          },
        },
      },
    ]);
  });

  after(async () => {
    workerBack();
    await devServer?.close();
  });

  async function until(handle: WorkflowHandle, ok: (s: NodeState) => boolean, what: string): Promise<NodeState> {
    let last: NodeState | undefined;
    return waitFor(
      async () => {
        last = await handle.query(nodeQuery);
        return ok(last) ? last : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: `${what}; last state: ${JSON.stringify(last)}` },
    );
  }

  it('is Ready while its worker heartbeats, NotReady with the reason when it stops, tells its instances, and is Ready again when it returns', async () => {
    const input: NodeWorkflowInput = { name: NODE, tuning: { heartbeatTimeoutSeconds: 2, leaseSeconds: 60, evictionGraceSeconds: 1 } };
    const handle = await client.workflow.start('nodeWorkflow', { taskQueue: TASK_QUEUE, workflowId: nodeWorkflowId(NODE), args: [input] });
    const ready = await until(handle, (s) => s.status === 'Ready', 'Ready');
    assert.deepEqual(ready.registration, registration);

    const lost = await until(handle, (s) => s.status === 'NotReady', 'NotReady once the lease stops heartbeating');
    assert.equal(lost.reason, 'no heartbeat from its worker for 2 s');
    assert.deepEqual(lost.registration, registration, 'what the node last reported stays visible');
    const memo = (await handle.describe()).memo?.[NODE_MEMO_KEY] as NodeState;
    assert.equal(memo.status, 'NotReady', 'listing (the memo) says the same');

    await waitFor(() => evictions.length > 0, { timeoutMs: 10_000, what: 'the instances told after the grace period' });
    assert.deepEqual(evictions, [{ node: NODE, reason: 'no heartbeat from its worker for 2 s' }]);

    workerBack();
    const back = await until(handle, (s) => s.status === 'Ready', 'Ready again');
    assert.equal(back.reason, null);
    assert.ok(Date.parse(back.since) > Date.parse(lost.since), 'since says when it came back');
    assert.equal(evictions.length, 1, 'told once per outage');
    await recordHistory(handle, 'node-lease-lost-evicted');
    await handle.terminate('test over');
  });

  it('is NotReady when its worker stops right after registering, before it takes its lease', async () => {
    const gone = `${NODE}-gone`;
    let leasesTaken = 0;
    const started: { worker?: Worker } = {};
    [started.worker] = await devServer!.runWorkers([
      {
        taskQueue: nodeTaskQueue(gone),
        activities: {
          registerNode: async () => {
            // Stops polling as the registration is answered: the lease the workflow asks for next finds no worker.
            setImmediate(() => started.worker?.shutdown());
            return registration;
          },
          holdNodeLease: async () => {
            leasesTaken++;
          },
        },
      },
    ]);
    const input: NodeWorkflowInput = { name: gone, tuning: { heartbeatTimeoutSeconds: 2, leaseSeconds: 60, evictionGraceSeconds: 60 } };
    const handle = await client.workflow.start('nodeWorkflow', { taskQueue: TASK_QUEUE, workflowId: nodeWorkflowId(gone), args: [input] });
    await until(handle, (s) => s.status === 'Ready', 'Ready');
    const lost = await until(handle, (s) => s.status === 'NotReady', 'NotReady once nobody takes the lease');
    assert.equal(lost.reason, 'its worker did not take its lease within 2 s');
    assert.equal(leasesTaken, 0);
    await handle.terminate('test over');
  });
});
