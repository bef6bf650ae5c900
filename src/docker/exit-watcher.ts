/**
 * One per node: turns Docker "die" events of mcpd's containers into
 * containerExited signals, so an instance notices a killed or crashed container
 * within seconds. Events missed while the stream was down are recovered by a
 * sweep of stopped containers on start and on every reconnect; the workflow
 * ignores exits of containers that are not its current one, so repeats are harmless.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import type Dockerode from 'dockerode';
import type { Readable } from 'node:stream';
import { LABELS } from '../contracts/labels';
import { containerExitedSignal, type ContainerExit } from '../contracts/messages';
import { exitReason } from './containers';

export interface ExitWatcherOptions {
  docker: Dockerode;
  client: Client;
  /** Only containers carrying this owner label are watched. */
  owner: string;
  reconnectDelayMs?: number;
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

interface DockerEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

export class ExitWatcher {
  private stream: Readable | null = null;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly abort = new AbortController();

  constructor(private readonly options: ExitWatcherOptions) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.abort.abort();
    this.stream?.destroy();
    this.stream = null;
  }

  /** Signals the workflow of every stopped container this owner has. Returns how many were signalled. */
  async sweep(): Promise<number> {
    const containers = await this.options.docker.listContainers({
      all: true,
      filters: { label: this.labelFilter(), status: ['exited', 'dead'] },
    });
    let signalled = 0;
    for (const c of containers) {
      const instanceId = c.Labels?.[LABELS.instance];
      if (!instanceId) continue;
      const code = /Exited \((-?\d+)\)/.exec(c.Status ?? '');
      const exitCode = code ? Number(code[1]) : null;
      if (await this.signal(instanceId, { containerId: c.Id, exitCode, reason: exitReason(exitCode) })) signalled++;
    }
    return signalled;
  }

  private labelFilter(): string[] {
    return [`${LABELS.managed}=true`, `${LABELS.owner}=${this.options.owner}`];
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    try {
      // Subscribe first, then sweep: an exit between the two is seen twice rather than never.
      const stream = (await this.options.docker.getEvents({
        filters: { type: ['container'], event: ['die'], label: this.labelFilter() },
        abortSignal: this.abort.signal,
      } as Dockerode.GetEventsOptions)) as unknown as Readable;
      this.stream = stream;
      let buffered = '';
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) void this.onEvent(line);
        }
      });
      const reconnect = () => {
        if (this.stream !== stream) return;
        this.stream = null;
        this.scheduleReconnect();
      };
      stream.on('end', reconnect);
      stream.on('close', reconnect);
      stream.on('error', reconnect);
      await this.sweep();
    } catch (err) {
      this.options.log?.warn({ err: String(err) }, 'docker event stream unavailable; retrying');
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, this.options.reconnectDelayMs ?? 2_000);
  }

  private async onEvent(line: string): Promise<void> {
    let event: DockerEvent;
    try {
      event = JSON.parse(line);
    } catch {
      return;
    }
    const attributes = event.Actor?.Attributes ?? {};
    const instanceId = attributes[LABELS.instance];
    const containerId = event.Actor?.ID ?? event.id;
    if (!instanceId || !containerId) return;
    const exitCode = attributes.exitCode !== undefined ? Number(attributes.exitCode) : null;
    await this.signal(instanceId, { containerId, exitCode, reason: exitReason(exitCode) });
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
