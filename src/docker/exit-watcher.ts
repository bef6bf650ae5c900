/**
 * One per node: turns "die" events of mcpd's containers into containerExited
 * signals, so an instance notices a killed or crashed container within seconds.
 * Events missed while the stream was down are recovered by a sweep of stopped
 * containers on start and on every reconnect; the workflow ignores exits of
 * containers that are not its current one, so repeats are harmless.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { LABELS } from '../contracts/labels';
import { containerExitedSignal, type ContainerExit } from '../contracts/messages';
import type { Logger } from '../logger';
import { retry } from '../retry';
import { exitReason } from './containers';
import type { ContainerEvent, ContainerRuntime } from './runtime';

export interface ExitWatcherOptions {
  runtime: ContainerRuntime;
  client: Client;
  /** Only containers carrying this owner label are watched. */
  owner: string;
  reconnectDelayMs?: number;
  log?: Logger;
}

export class ExitWatcher {
  private abort: AbortController | null = null;
  private watching: Promise<void> | null = null;

  constructor(private readonly options: ExitWatcherOptions) {}

  /** Resolves once the first subscription and sweep are done (or failed and a reconnect is scheduled). */
  async start(): Promise<void> {
    if (this.abort) return;
    const abort = new AbortController();
    this.abort = abort;
    let firstPassDone!: () => void;
    const firstPass = new Promise<void>((resolve) => (firstPassDone = resolve));
    this.watching = retry(
      async () => {
        // Ends this attempt's stream when its sweep fails, so a retry never leaves a second subscription behind.
        const attempt = new AbortController();
        try {
          // Subscribe first, then sweep: an exit between the two is seen twice rather than never.
          const signal = AbortSignal.any([abort.signal, attempt.signal]);
          const subscription = await this.options.runtime.events(this.options.owner, ['die'], (event) => void this.onEvent(event), signal);
          await this.sweep();
          firstPassDone();
          await subscription.ended;
        } catch (err) {
          attempt.abort();
          if (!abort.signal.aborted) this.options.log?.warn({ err: String(err) }, 'docker event stream unavailable; retrying');
          firstPassDone();
          throw err;
        }
        throw new Error('docker event stream ended');
      },
      { retryAfter: () => this.options.reconnectDelayMs ?? 2_000, signal: abort.signal },
    ).catch(() => undefined);
    await firstPass;
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    this.abort = null;
    await this.watching;
    this.watching = null;
  }

  /** Signals the workflow of every stopped container this owner has. Returns how many were signalled. */
  async sweep(): Promise<number> {
    const containers = await this.options.runtime.listOwned(this.options.owner, { status: ['exited', 'dead'] });
    let signalled = 0;
    for (const c of containers) {
      const instanceId = c.labels[LABELS.instance];
      if (!instanceId) continue;
      const code = /Exited \((-?\d+)\)/.exec(c.status);
      const exitCode = code ? Number(code[1]) : null;
      if (await this.signal(instanceId, { containerId: c.id, exitCode, reason: exitReason(exitCode) })) signalled++;
    }
    return signalled;
  }

  private async onEvent(event: ContainerEvent): Promise<void> {
    const instanceId = event.attributes[LABELS.instance];
    if (!instanceId) return;
    const exitCode = event.attributes.exitCode !== undefined ? Number(event.attributes.exitCode) : null;
    await this.signal(instanceId, { containerId: event.containerId, exitCode, reason: exitReason(exitCode) });
  }

  private async signal(instanceId: string, exit: ContainerExit): Promise<boolean> {
    try {
      await this.options.client.workflow.getHandle(instanceId).signal(containerExitedSignal, exit);
      this.options.log?.info({ instanceId, containerId: exit.containerId, exitCode: exit.exitCode }, 'container exit signalled');
      return true;
    } catch (err) {
      // A finished or unknown workflow has nothing to restart; the reaper removes its container.
      if (!(err instanceof WorkflowNotFoundError)) this.options.log?.warn({ instanceId, err: String(err) }, 'could not signal container exit');
      return false;
    }
  }
}
