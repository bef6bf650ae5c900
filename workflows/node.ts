/**
 * nodeWorkflow: one per Docker node (id `mcp-node:<name>`), started by the node's
 * worker. It holds what the node reported (engine, labels, capacity) and whether it
 * is Ready, and publishes both in its memo for listing.
 *
 * Liveness is Temporal's own: registerNode waits in the node's task queue until the
 * node's worker polls it (then the node is Ready), and holdNodeLease heartbeats there
 * for a lease period. A worker that dies or is cut off stops heartbeating; when the
 * heartbeat timeout passes the lease fails and the node is NotReady until its worker
 * polls again. History grows by a few events per lease (10 min), not per heartbeat.
 *
 * A node that stays NotReady past a grace period (a lost lease whose worker comes straight
 * back re-registers within it) has its instances told (nodeNotReady signal): they start
 * again on a Ready node, and the node's worker removes their old containers when it returns.
 */
import { ActivityFailure, condition, continueAsNew, log, proxyActivities, setHandler, TimeoutFailure, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { NodeLeaseActivities, NodeRegistryActivities } from '../activities/nodes';
import { nodeTaskQueue, TASK_QUEUE } from '../src/contracts/instance';
import { nodeQuery, type NodeWorkflowInput } from '../src/contracts/messages';
import {
  NODE_EVICTION_GRACE_SECONDS,
  NODE_HEARTBEAT_TIMEOUT_SECONDS,
  NODE_LEASE_SECONDS,
  NODE_MEMO_KEY,
  type NodeRegistration,
  type NodeState,
} from '../src/contracts/node';

/** Continue as new past this many events (a lease costs about a dozen). */
const HISTORY_LIMIT = 1_000;

export async function nodeWorkflow(input: NodeWorkflowInput): Promise<void> {
  const heartbeatTimeoutSeconds = input.tuning?.heartbeatTimeoutSeconds ?? NODE_HEARTBEAT_TIMEOUT_SECONDS;
  const leaseSeconds = input.tuning?.leaseSeconds ?? NODE_LEASE_SECONDS;
  const taskQueue = nodeTaskQueue(input.name);
  const { registerNode } = proxyActivities<NodeLeaseActivities>({
    taskQueue,
    // No schedule-to-start bound: it waits in the queue for as long as the node's worker is away.
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds' },
  });
  const { holdNodeLease } = proxyActivities<NodeLeaseActivities>({
    taskQueue,
    startToCloseTimeout: `${leaseSeconds + 60} seconds`,
    heartbeatTimeout: `${heartbeatTimeoutSeconds} seconds`,
    // A worker that stops between registering and taking its lease never heartbeats either; without
    // this bound the lease would wait in the queue, and the node would stay Ready, for ever.
    scheduleToStartTimeout: `${heartbeatTimeoutSeconds} seconds`,
    // A lost lease is the news: the node is NotReady, and the loop asks its worker to register again.
    retry: { maximumAttempts: 1 },
  });
  const { evictNode } = proxyActivities<NodeRegistryActivities>({
    taskQueue: TASK_QUEUE,
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', maximumAttempts: 5 },
  });
  const graceSeconds = input.tuning?.evictionGraceSeconds ?? NODE_EVICTION_GRACE_SECONDS;

  let state: NodeState = input.carried ?? {
    name: input.name,
    status: 'NotReady',
    reason: 'its worker has not registered yet',
    since: now(),
    registration: null,
  };
  const publish = (next: NodeState) => {
    state = next;
    upsertMemo({ [NODE_MEMO_KEY]: state });
  };
  setHandler(nodeQuery, () => state);
  if (!input.carried) publish(state);

  for (;;) {
    let registered = false;
    const registering = registerNode().then((r) => {
      registered = true;
      return r;
    });
    // Lost a lease it held: its instances move once it stays away past the grace period.
    if (state.status === 'NotReady' && state.registration !== null && !(await condition(() => registered, `${graceSeconds} seconds`))) {
      const told = await evictNode(input.name, state.reason ?? 'NotReady').catch((err: Error) => {
        log.warn('telling the instances of a NotReady node failed', { node: input.name, error: err.message });
        return 0;
      });
      log.info('node NotReady past its grace period: its instances start elsewhere', { node: input.name, instances: told });
    }
    const registration = await registering;
    if (state.status !== 'Ready' || !sameRegistration(state.registration, registration)) {
      publish({ ...state, status: 'Ready', reason: null, since: state.status === 'Ready' ? state.since : now(), registration });
    }
    try {
      await holdNodeLease(leaseSeconds);
    } catch (err) {
      publish({ ...state, status: 'NotReady', reason: leaseLostReason(err, heartbeatTimeoutSeconds), since: now() });
    }
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > HISTORY_LIMIT) await continueAsNew<typeof nodeWorkflow>({ ...input, carried: state });
  }
}

function sameRegistration(a: NodeRegistration | null, b: NodeRegistration): boolean {
  return a !== null && JSON.stringify(a) === JSON.stringify(b);
}

/** Why the lease ended early, as an operator reads it. */
export function leaseLostReason(err: unknown, heartbeatTimeoutSeconds: number): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof TimeoutFailure && cause.timeoutType === 'SCHEDULE_TO_START') {
    return `its worker did not take its lease within ${heartbeatTimeoutSeconds} s`;
  }
  if (cause instanceof TimeoutFailure) return `no heartbeat from its worker for ${heartbeatTimeoutSeconds} s`;
  return `its worker stopped (${(cause as Error | undefined)?.message ?? String(cause)})`;
}

function now(): string {
  return new Date().toISOString();
}
