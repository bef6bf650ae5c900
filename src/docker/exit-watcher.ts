/**
 * One per node: turns "die" events of mcpd's containers into containerExited
 * signals, so an instance notices a killed or crashed container within seconds.
 * Events missed while the stream was down are recovered by a sweep of stopped
 * containers on start and on every reconnect; the workflow ignores exits of
 * containers that are not its current one, so repeats are harmless.
 *
 * The stream ending and coming back is how an engine restart shows: the containers
 * that stopped around the outage were taken down by the engine, not by their
 * servers, so their instances are told so (an external exit and a forceRetry with
 * the reason) and start again at once instead of after their backoff delay.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { LABELS } from '../contracts/labels';
import { containerExitedSignal, type ContainerExit } from '../contracts/messages';
import type { Logger } from '../logger';
import { forceRetrySignal } from '../contracts/messages';
import { exitClass } from '../metrics/classify';
import type { McpdMetrics } from '../metrics/registry';
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
  /** Counts every "die" event of this owner's containers by server and exit class (none: nothing is recorded). */
  metrics?: McpdMetrics;
  /**
   * The containers this node is stopping at their workflow's request (InstanceContainers.stop):
   * their exits are not signalled. A delete of hundreds of instances otherwise sends each one a
   * signal it ignores, each a write and a workflow task in Temporal.
   */
  stopping?: ReadonlySet<string>;
}

/**
 * A container that stopped this long before the event stream was lost counts as taken
 * down by the engine's shutdown (dockerd stops its containers, and reports their "die",
 * before it closes the stream; its default shutdown timeout is 15 s).
 */
export const ENGINE_SHUTDOWN_WINDOW_MS = 30_000;
export const ENGINE_RESTARTED = 'the Docker engine restarted';

export class ExitWatcher {
  private abort: AbortController | null = null;
  private watching: Promise<void> | null = null;
  /** When the event stream was lost (ended or failed); null while it is up. */
  private lostAt: number | null = null;

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
          let handled = new Set<string>();
          if (this.lostAt !== null) {
            const lostAt = this.lostAt;
            this.lostAt = null;
            handled = new Set((await this.engineReturned(lostAt)).containers);
          }
          await this.sweep(handled);
          firstPassDone();
          await subscription.ended;
        } catch (err) {
          attempt.abort();
          this.lostAt ??= Date.now();
          if (!abort.signal.aborted) this.options.log?.warn({ err: String(err) }, 'docker event stream unavailable; retrying');
          firstPassDone();
          throw err;
        }
        this.lostAt ??= Date.now();
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

  /** Signals the workflow of every stopped container this owner has (but those in `skip`). Returns how many were signalled. */
  async sweep(skip: ReadonlySet<string> = new Set()): Promise<number> {
    const containers = await this.options.runtime.listOwned(this.options.owner, { status: ['exited', 'dead'] });
    let signalled = 0;
    for (const c of containers) {
      if (skip.has(c.id)) continue;
      const instanceId = c.labels[LABELS.instance];
      if (!instanceId) continue;
      const code = /Exited \((-?\d+)\)/.exec(c.status);
      const exitCode = code ? Number(code[1]) : null;
      if (await this.signal(instanceId, { containerId: c.id, exitCode, reason: await this.exitReasonOf(c.id, exitCode) })) signalled++;
    }
    return signalled;
  }

  /**
   * The engine answers again after its event stream was lost at `lostAt`: every instance
   * whose container stopped around then is told the engine took it down (an external
   * exit for an instance still RUNNING, a forceRetry for one already waiting in ERROR).
   * Returns the instances and containers signalled.
   */
  async engineReturned(lostAt: number): Promise<{ instances: string[]; containers: string[] }> {
    const containers = await this.options.runtime.listOwned(this.options.owner, { status: ['exited', 'dead'] });
    const instances = new Set<string>();
    const handled: string[] = [];
    for (const c of containers) {
      const instanceId = c.labels[LABELS.instance];
      if (!instanceId) continue;
      const details = await this.options.runtime.inspect(c.id);
      const finishedAt = details?.finishedAt ? Date.parse(details.finishedAt) : NaN;
      if (!details || !(finishedAt >= lostAt - ENGINE_SHUTDOWN_WINDOW_MS)) continue;
      const reason = `${ENGINE_RESTARTED} (${exitReason(details.exitCode, details.oomKilled)})`;
      await this.signal(instanceId, { containerId: c.id, exitCode: details.exitCode, reason, external: true });
      instances.add(instanceId);
      handled.push(c.id);
    }
    for (const instanceId of instances) {
      try {
        await this.options.client.workflow.getHandle(instanceId).signal(forceRetrySignal, { reason: ENGINE_RESTARTED });
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) this.options.log?.warn({ instanceId, err: String(err) }, 'could not signal the engine restart');
      }
    }
    this.options.log?.info({ outageMs: Date.now() - lostAt, instances: [...instances] }, 'docker engine answers again; its instances retry now');
    return { instances: [...instances], containers: handled };
  }

  private async onEvent(event: ContainerEvent): Promise<void> {
    const instanceId = event.attributes[LABELS.instance];
    if (!instanceId) return;
    const exitCode = event.attributes.exitCode !== undefined ? Number(event.attributes.exitCode) : null;
    const reason = await this.exitReasonOf(event.containerId, exitCode);
    // Only live events count: the sweeps after a reconnect see the same exits again.
    this.options.metrics?.containerExited(event.attributes[LABELS.server] ?? 'unknown', exitClass(exitCode, reason === exitReason(exitCode, true)));
    if (this.options.stopping?.has(event.containerId)) return;
    await this.signal(instanceId, { containerId: event.containerId, exitCode, reason });
  }

  /**
   * Why a container exited, as the operator needs it. A "die" event carries the exit code
   * only; a kill by the memory limit also exits 137, so for that code the engine is asked
   * whether its OOM killer did it ("out of memory" tells the operator to raise
   * resources.memory, "killed" alone does not).
   */
  private async exitReasonOf(containerId: string, exitCode: number | null): Promise<string> {
    if (exitCode !== 137) return exitReason(exitCode);
    const details = await this.options.runtime.inspect(containerId).catch(() => null);
    return exitReason(exitCode, details?.oomKilled === true);
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
