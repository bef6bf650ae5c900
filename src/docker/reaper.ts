/**
 * Removes containers this control plane labelled but no running instance
 * workflow owns any more (the workflow was terminated, or it ended while its
 * node was away). Only containers with this owner's label are considered, so
 * another mcpd on the same Docker engine is never touched.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { LABELS } from '../contracts/labels';
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
    const owned = new Map<string, boolean>();
    for (const c of containers) {
      const instanceId = c.labels[LABELS.instance];
      if (!instanceId) continue;
      if (!owned.has(instanceId)) owned.set(instanceId, await this.workflowRunning(instanceId));
      if (owned.get(instanceId)) continue;
      await this.options.runtime.remove(c.id);
      removed.push(c.id);
      this.options.log?.info({ instanceId, containerId: c.id }, 'reaped container without a running workflow');
    }
    return removed;
  }

  private async workflowRunning(instanceId: string): Promise<boolean> {
    try {
      const description = await this.options.client.workflow.getHandle(instanceId).describe();
      return description.status.name === 'RUNNING';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      // Temporal unreachable: keep everything; removing a live server is worse than waiting a pass.
      throw err;
    }
  }
}
