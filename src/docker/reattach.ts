/**
 * After an mcpd restart its gateway knows no upstream, while the containers of
 * RUNNING instances live on. This pass hands each of them back to the gateway
 * (re-attach and re-initialize), but only where the instance workflow says that
 * container is its current one, and with the routing its health calls for.
 *
 * Then it reconciles what is recorded with what is there: an instance recorded
 * RUNNING on this node whose container is gone or stopped is told so (a
 * containerExited signal), so it goes through the attempt path with a fresh
 * container instead of staying RUNNING with a container that does not exist.
 * repairInstance does the same for one instance, for the probe that finds the
 * gateway does not know an instance its workflow calls RUNNING.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { containerExitedSignal, probeLoopLostSignal, statusQuery, type ContainerExit } from '../contracts/messages';
import { instanceListQuery } from '../contracts/visibility';
import { mapLimit, valueWithin } from '../concurrency';
import { probeWorkflowId, type InstanceView } from '../contracts/instance';
import { LABELS } from '../contracts/labels';
import type { InstanceRouting } from '../contracts/routing';
import type { Logger } from '../logger';
import { endpointFromLabels, exitReason, injectedSecretValues } from './containers';
import type { ContainerRuntime } from './runtime';

export interface ReattachOptions {
  runtime: ContainerRuntime;
  client: Client;
  routing: InstanceRouting;
  owner: string;
  node: string;
  /** How long to wait for an instance workflow to answer its status query. */
  queryTimeoutMs?: number;
  log?: Logger;
}

const REATTACH_CONCURRENCY = 16;

/** Returns the ids of the instances it re-attached. */
export async function reattachRunningInstances(options: ReattachOptions): Promise<string[]> {
  const containers = await options.runtime.listOwned(options.owner, { status: ['running'], node: options.node });
  const reattached: string[] = [];
  // Bounded: a node with thousands of instances must not send thousands of status queries at once.
  await mapLimit(containers, REATTACH_CONCURRENCY, async (container) => {
    const instanceId = container.labels[LABELS.instance];
    const endpoint = endpointFromLabels(container.labels);
    if (!instanceId || !endpoint) return;
    await forgetStickyWorker(options, instanceId);
    const view = await currentView(options, instanceId);
    if (!view || view.status !== 'RUNNING' || view.containerId !== container.id) return;
    try {
      options.routing.protectSecrets?.(instanceId, container.id, await injectedSecretValues(options.runtime, container.id, container.labels));
      await options.routing.attach({ instanceId, server: container.labels[LABELS.server], containerId: container.id, ...endpoint });
      if (view.health === 'unhealthy') options.routing.setReady(instanceId, false);
      reattached.push(instanceId);
    } catch (err) {
      options.log?.warn({ instanceId, err: (err as Error).message }, 're-attach after restart failed; the liveness probe will restart it');
    }
    await resumeProbe(options, instanceId, Number(container.labels[LABELS.generation]));
  });
  if (reattached.length > 0) options.log?.info({ instances: reattached }, 're-attached running instances');
  await reconcileRecordedRunning(options, new Set(reattached)).catch((err: Error) =>
    options.log?.warn({ err: err.message }, 'reconciling recorded RUNNING instances with their containers failed'),
  );
  return reattached;
}

/** Every instance recorded RUNNING on this node that was not re-attached gets repaired (its container is gone or stopped). */
async function reconcileRecordedRunning(options: ReattachOptions, reattached: Set<string>): Promise<void> {
  const ids: string[] = [];
  for await (const info of options.client.workflow.list({ query: instanceListQuery({ status: 'RUNNING' }) })) {
    if (!reattached.has(info.workflowId)) ids.push(info.workflowId);
  }
  await mapLimit(ids, REATTACH_CONCURRENCY, async (instanceId) => {
    const outcome = await repairInstance(options, instanceId, 'while mcpd was down');
    if (outcome.kind === 'attachFailed') options.log?.warn({ instanceId, outcome: outcome.message }, 'a recorded RUNNING instance could not be re-attached');
    else if (outcome.kind !== 'nothing')
      options.log?.info({ instanceId, outcome: outcome.message }, 'reconciled a recorded RUNNING instance with its container');
  });
}

/** What a repair did; attachFailed: the container runs but its server did not complete the MCP handshake (in time). */
export type RepairOutcome = { kind: 'nothing' | 'reattached' | 'exitSignalled' | 'attachFailed'; message: string };

/**
 * Makes the gateway and the instance workflow agree about one instance of this node:
 * a RUNNING instance whose container runs is (re-)attached; one whose container is
 * stopped or gone gets a containerExited signal (gone counts as not the server's fault:
 * its next attempt starts at once). `when` says when it went missing, for the event line.
 */
export async function repairInstance(
  options: ReattachOptions,
  instanceId: string,
  when = 'while the gateway did not know it',
  /** How long the server's MCP handshake may take (the gateway goes on attaching after it); unbounded when unset. */
  handshakeTimeoutMs?: number,
): Promise<RepairOutcome> {
  const view = await currentView(options, instanceId);
  if (!view || view.node !== options.node || view.status !== 'RUNNING' || !view.containerId) {
    return {
      kind: 'nothing',
      message: view ? `instance is ${view.status}${view.node !== options.node ? ` on node ${view.node}` : ''}` : 'instance did not answer',
    };
  }
  const containerId = view.containerId;
  const details = await options.runtime.inspect(containerId);
  let exit: ContainerExit | null = null;
  if (!details) exit = { containerId, exitCode: null, reason: `container ${containerId.slice(0, 12)} is gone (removed ${when})`, external: true };
  else if (!details.running) exit = { containerId, exitCode: details.exitCode, reason: `${exitReason(details.exitCode, details.oomKilled)} ${when}` };
  if (exit) {
    try {
      await options.client.workflow.getHandle(instanceId).signal(containerExitedSignal, exit);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { kind: 'nothing', message: 'the instance workflow ended' };
      throw err;
    }
    return { kind: 'exitSignalled', message: exit.reason };
  }
  const endpoint = endpointFromLabels(details!.labels);
  if (!endpoint) return { kind: 'nothing', message: `container ${containerId.slice(0, 12)} carries no endpoint label` };
  options.routing.protectSecrets?.(instanceId, containerId, await injectedSecretValues(options.runtime, containerId, details!.labels));
  try {
    const attaching = options.routing.attach({ instanceId, server: details!.labels[LABELS.server] ?? view.server, containerId, ...endpoint }).then(() => {
      // Also when the handshake ends after the probe stopped waiting: an unhealthy instance stays out of rotation.
      if (view.health === 'unhealthy') options.routing.setReady(instanceId, false);
      return true;
    });
    const attached = handshakeTimeoutMs === undefined ? await attaching : await valueWithin(attaching, handshakeTimeoutMs);
    if (!attached) return { kind: 'attachFailed', message: `its server did not complete the MCP handshake within ${handshakeTimeoutMs! / 1000} s` };
  } catch (err) {
    return { kind: 'attachFailed', message: (err as Error).message };
  }
  return { kind: 'reattached', message: `container ${containerId.slice(0, 12)} re-attached to the gateway` };
}

/**
 * The probe loop this node ran for the instance ended with the process before it: its
 * probe workflow starts another at once rather than after the loop's heartbeat timeout.
 */
async function resumeProbe(options: ReattachOptions, instanceId: string, generation: number): Promise<void> {
  if (!Number.isInteger(generation)) return;
  try {
    await options.client.workflow.getHandle(probeWorkflowId(instanceId, generation)).signal(probeLoopLostSignal);
  } catch (err) {
    // No probe running (probes off, or it ended with its instance): nothing to resume.
    if (!(err instanceof WorkflowNotFoundError)) options.log?.warn({ instanceId, err: (err as Error).message }, 'telling the probe its loop is gone failed');
  }
}

/**
 * After a crash (kill -9) Temporal still routes the workflow's tasks and queries to the
 * sticky queue of the dead process's worker, and waits about 10 s for it before it gives
 * up; the status query above, and so readiness and the gateway, would wait with it. The
 * dead worker could not say it was leaving, so we say it for it. Best effort: at worst
 * the next task of this workflow replays its history on a live worker.
 */
async function forgetStickyWorker(options: ReattachOptions, instanceId: string): Promise<void> {
  try {
    await options.client.workflowService.resetStickyTaskQueue({ namespace: options.client.options.namespace, execution: { workflowId: instanceId } });
  } catch (err) {
    options.log?.debug({ instanceId, err: (err as Error).message }, 'resetting the sticky task queue failed');
  }
}

async function currentView(options: ReattachOptions, instanceId: string): Promise<InstanceView | null> {
  try {
    return await valueWithin(options.client.workflow.getHandle(instanceId).query(statusQuery), options.queryTimeoutMs ?? 15_000);
  } catch {
    // Not found or closed: the reaper deals with containers no workflow owns.
    return null;
  }
}
