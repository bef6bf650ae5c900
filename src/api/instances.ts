/**
 * Instance operations: visibility finds the instance workflows (filtered by
 * their search attributes), the `status` query gives each one's full view, and
 * signals carry the operator's retry and restart.
 */
import { Client } from '@temporalio/client';
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { awaitStartedUpdate, forceRetrySignal, restartSignal, statusQuery } from '../contracts/messages';
import { parseInstanceId, type HealthStatus, type InstanceStatus, type InstanceView } from '../contracts/instance';
import { mcpHealthKey, mcpInstanceStatusKey, mcpServerKey } from '../contracts/searchAttributes';
import type { InstanceFilters } from '../contracts/api';
import { conflict, toApiError } from './errors';
import { mapLimit } from '../concurrency';
import { instanceListQuery } from '../contracts/visibility';
import { normalizeInstanceId } from './validation';

/** The view visibility alone can give, for an instance whose query did not answer. */
export function viewFromVisibility(info: Pick<WorkflowExecutionInfo, 'workflowId' | 'typedSearchAttributes'>, reason: string): InstanceView {
  const parsed = parseInstanceId(info.workflowId);
  return {
    id: info.workflowId,
    server: info.typedSearchAttributes.get(mcpServerKey) ?? parsed?.server ?? '',
    ordinal: parsed?.ordinal ?? 0,
    status: (info.typedSearchAttributes.get(mcpInstanceStatusKey) as InstanceStatus | undefined) ?? 'PENDING',
    health: (info.typedSearchAttributes.get(mcpHealthKey) as HealthStatus | undefined) ?? 'unknown',
    containerId: null,
    attemptCount: 0,
    lastAttemptAt: null,
    nextRetryAt: null,
    error: null,
    healthReason: reason,
    runningSince: null,
    events: [],
  };
}

export class InstanceControl {
  constructor(private readonly client: Client) {}

  /**
   * Waits, without polling, until each instance's start has an outcome (the instance
   * workflow's awaitStarted update) or timeoutSeconds pass; the views in the order given.
   */
  async awaitStarted(ids: string[], timeoutSeconds: number): Promise<InstanceView[]> {
    try {
      return await mapLimit(ids, 64, (id) => this.client.workflow.getHandle(id).executeUpdate(awaitStartedUpdate, { args: [timeoutSeconds] }));
    } catch (err) {
      throw toApiError(err);
    }
  }

  async list(filters: InstanceFilters = {}): Promise<InstanceView[]> {
    const infos: WorkflowExecutionInfo[] = [];
    try {
      for await (const info of this.client.workflow.list({ query: instanceListQuery(filters) })) infos.push(info);
    } catch (err) {
      throw toApiError(err);
    }
    const views = await mapLimit(infos, 8, async (info) => {
      try {
        return await this.client.workflow.getHandle(info.workflowId, info.runId).query(statusQuery);
      } catch (err) {
        return viewFromVisibility(info, `status query failed: ${(err as Error).message}`);
      }
    });
    // Search attributes can lag the workflow's state; the query's answer is the truth.
    return views
      .filter((v) => (filters.status === undefined || v.status === filters.status) && (filters.health === undefined || v.health === filters.health))
      .sort((a, b) => a.server.localeCompare(b.server) || a.ordinal - b.ordinal);
  }

  /** Works on ended instance workflows too: their last state stays queryable. */
  async describe(rawId: string): Promise<InstanceView> {
    const id = normalizeInstanceId(rawId);
    let view: InstanceView;
    try {
      view = await this.client.workflow.getHandle(id).query(statusQuery);
    } catch (err) {
      throw toApiError(err, `instance "${id}"`);
    }
    if (view.status !== 'STARTING') return view;
    const progress = await this.pendingProgress(id).catch(() => undefined);
    return progress ? { ...view, progress } : view;
  }

  /** The progress line a pending activity heartbeats (preparePackageImage: "building image for … 12 s: installing"). */
  private async pendingProgress(id: string): Promise<string | undefined> {
    const { raw } = await this.client.workflow.getHandle(id).describe();
    const converter = this.client.options.loadedDataConverter.payloadConverter;
    for (const activity of raw.pendingActivities ?? []) {
      const payload = activity.heartbeatDetails?.payloads?.[0];
      if (!payload) continue;
      const details = converter.fromPayload<{ message?: unknown } | undefined>(payload);
      if (typeof details?.message === 'string') return details.message;
    }
    return undefined;
  }

  async retry(rawId: string): Promise<string> {
    return this.signalRunning(rawId, (h) => h.signal(forceRetrySignal));
  }

  async restart(rawId: string): Promise<string> {
    return this.signalRunning(rawId, (h) => h.signal(restartSignal));
  }

  private async signalRunning(rawId: string, send: (h: ReturnType<Client['workflow']['getHandle']>) => Promise<void>): Promise<string> {
    const id = normalizeInstanceId(rawId);
    const handle = this.client.workflow.getHandle(id);
    try {
      const description = await handle.describe();
      if (description.status.name !== 'RUNNING') throw conflict(`instance "${id}" has ended (${description.status.name.toLowerCase()})`);
      await send(handle);
      return id;
    } catch (err) {
      throw toApiError(err, `instance "${id}"`);
    }
  }
}
