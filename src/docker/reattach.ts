/**
 * After an mcpd restart its gateway knows no upstream, while the containers of
 * RUNNING instances live on. This pass hands each of them back to the gateway
 * (re-attach and re-initialize), but only where the instance workflow says that
 * container is its current one, and with the routing its health calls for. An
 * instance it cannot re-attach is left to its liveness probe, which restarts it
 * through the backoff.
 */
import type { Client } from '@temporalio/client';
import { statusQuery } from '../contracts/messages';
import { mapLimit } from '../concurrency';
import { type InstanceView } from '../contracts/instance';
import { LABELS } from '../contracts/labels';
import type { InstanceRouting } from '../contracts/routing';
import type { Logger } from '../logger';
import { endpointFromLabels } from './containers';
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
    const view = await currentView(options, instanceId);
    if (!view || view.status !== 'RUNNING' || view.containerId !== container.id) return;
    try {
      await options.routing.attach({ instanceId, server: container.labels[LABELS.server], containerId: container.id, ...endpoint });
      if (view.health === 'unhealthy') options.routing.setReady(instanceId, false);
      reattached.push(instanceId);
    } catch (err) {
      options.log?.warn({ instanceId, err: (err as Error).message }, 're-attach after restart failed; the liveness probe will restart it');
    }
  });
  if (reattached.length > 0) options.log?.info({ instances: reattached }, 're-attached running instances');
  return reattached;
}

async function currentView(options: ReattachOptions, instanceId: string): Promise<InstanceView | null> {
  const timeoutMs = options.queryTimeoutMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      options.client.workflow.getHandle(instanceId).query(statusQuery),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), timeoutMs);
      }),
    ]);
  } catch {
    // Not found or closed: the reaper deals with containers no workflow owns.
    return null;
  } finally {
    clearTimeout(timer);
  }
}
