/**
 * Removes containers this control plane labelled but no running instance
 * workflow owns any more (the workflow was terminated, or it ended while its
 * node was away), and containers of instances that moved to another node while
 * this one was away (their McpNode names another node than the container's
 * node label), so a node that returns never runs an instance twice. Only
 * containers with this owner's label are considered, so another mcpd on the
 * same Docker engine is never touched.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { LABELS } from '../contracts/labels';
import { mcpNodeKey } from '../contracts/searchAttributes';
import { instanceListQuery } from '../contracts/visibility';
import type { Logger } from '../logger';
import type { ContainerRuntime } from './runtime';

export interface ReaperOptions {
  runtime: ContainerRuntime;
  client: Client;
  owner: string;
  intervalMs?: number;
  log?: Logger;
}

export class Reaper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<string[]> | null = null;

  constructor(private readonly options: ReaperOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(
      () => void this.reapOnce().catch((err) => this.options.log?.warn({ err: String(err) }, 'reaper pass failed')),
      this.options.intervalMs ?? 60_000,
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One pass; returns the ids of the containers it removed. */
  async reapOnce(): Promise<string[]> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<string[]> {
    const containers = await this.options.runtime.listOwned(this.options.owner);
    const removed: string[] = [];
    if (containers.length === 0) return removed;
    // One visibility list per pass instead of a describe per container: with hundreds of instances on a
    // node, a describe of each every minute was a steady load on Temporal. Visibility lags behind, so it
    // only ever clears a container to stay; every removal is decided on a describe.
    const listed = await this.runningInstances();
    const owners = new Map<string, Owner>();
    for (const c of containers) {
      const instanceId = c.labels[LABELS.instance];
      if (!instanceId) continue;
      const seen = listed.get(instanceId);
      if (seen && (seen.node === undefined || seen.node === c.labels[LABELS.node])) continue;
      if (!owners.has(instanceId)) owners.set(instanceId, await this.ownerOf(instanceId));
      const owner = owners.get(instanceId)!;
      const movedTo = owner.running && owner.node !== undefined && owner.node !== c.labels[LABELS.node] ? owner.node : undefined;
      if (owner.running && movedTo === undefined) continue;
      await this.options.runtime.remove(c.id);
      removed.push(c.id);
      if (movedTo !== undefined)
        this.options.log?.info({ instanceId, containerId: c.id, node: movedTo }, 'reaped container of an instance that now runs on another node');
      else this.options.log?.info({ instanceId, containerId: c.id }, 'reaped container without a running workflow');
    }
    return removed;
  }

  /** The running instance workflows visibility lists, with the node each is placed on. */
  private async runningInstances(): Promise<Map<string, Owner>> {
    const running = new Map<string, Owner>();
    for await (const info of this.options.client.workflow.list({ query: instanceListQuery() })) {
      running.set(info.workflowId, { running: true, node: info.typedSearchAttributes.get(mcpNodeKey) });
    }
    return running;
  }

  /** Whether the instance's workflow runs, and the node it is placed on (unknown for workflows from before placement). */
  private async ownerOf(instanceId: string): Promise<Owner> {
    try {
      const description = await this.options.client.workflow.getHandle(instanceId).describe();
      return { running: description.status.name === 'RUNNING', node: description.typedSearchAttributes.get(mcpNodeKey) };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { running: false };
      // Temporal unreachable: keep everything; removing a live server is worse than waiting a pass.
      throw err;
    }
  }
}

interface Owner {
  running: boolean;
  node?: string;
}
