/**
 * Server operations on top of serverWorkflow: one workflow per McpServer holds
 * the spec and reconciles its replicas. The API never talks to instances of a
 * server directly; the server workflow owns them.
 */
import { Client, WithStartWorkflowOperation, type WorkflowHandle } from '@temporalio/client';
import { isDeepStrictEqual } from 'node:util';
import { mcpServerSpecSchema, type McpServerSpec } from '../contracts/spec';
import { serverWorkflowId, TASK_QUEUE } from '../contracts/instance';
import { mcpHealthKey, mcpInstanceStatusKey, mcpServerKey } from '../contracts/searchAttributes';
import type { ApplyOutcome, ServerResource } from '../contracts/api';
import {
  applySpecUpdate,
  deleteServerUpdate,
  scaleServerUpdate,
  serverQuery,
  startServerUpdate,
  stopServerUpdate,
  type ServerView,
  type ServerWorkflowInput,
} from '../contracts/messages';
import { badRequest, notFound, toApiError } from './errors';
import { mapLimit } from '../concurrency';
import { instanceListQuery, serverListQuery } from '../contracts/visibility';
import { parseWith } from './validation';

/** A request body as the spec of server `name` (already a valid name); 400 naming every bad field. */
export function parseSpecBody(name: string, body: unknown): McpServerSpec {
  const spec = parseWith(mcpServerSpecSchema, body, 'spec');
  if (spec.name !== name) {
    throw badRequest(`spec.name "${spec.name}" does not match the URL name "${name}"`, [{ field: 'name', message: `must equal "${name}"` }]);
  }
  return spec;
}

export class ServerControl {
  constructor(
    private readonly client: Client,
    private readonly node: string,
  ) {}

  /** Creates the server workflow if needed and applies the spec to it (update-with-start: one atomic call). */
  async apply(spec: McpServerSpec): Promise<{ server: ServerResource; outcome: ApplyOutcome }> {
    const before = await this.find(spec.name);
    const input: ServerWorkflowInput = { spec, node: this.node, running: false };
    const startWorkflowOperation = new WithStartWorkflowOperation('serverWorkflow', {
      workflowId: serverWorkflowId(spec.name),
      taskQueue: TASK_QUEUE,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    let view: ServerView;
    try {
      view = await this.client.workflow.executeUpdateWithStart(applySpecUpdate, { args: [spec], startWorkflowOperation });
    } catch (err) {
      throw toApiError(err, `server "${spec.name}"`);
    }
    const outcome: ApplyOutcome = !before ? 'created' : isDeepStrictEqual(before.spec, view.spec) ? 'unchanged' : 'configured';
    return { server: await this.decorate(view, before?.createdAt ?? new Date().toISOString()), outcome };
  }

  async get(name: string): Promise<ServerResource> {
    const found = await this.find(name);
    if (!found) throw notFound(`server "${name}" not found`);
    return found;
  }

  async list(): Promise<ServerResource[]> {
    const infos = [];
    for await (const info of this.client.workflow.list({ query: serverListQuery() })) infos.push(info);
    const ready = await this.readyCounts();
    const views = await mapLimit(infos, 8, async (info): Promise<ServerResource | null> => {
      try {
        const view = await this.client.workflow.getHandle(info.workflowId).query(serverQuery);
        return { ...view, createdAt: info.startTime.toISOString(), readyReplicas: ready.get(view.name) ?? 0 };
      } catch {
        return null; // Deleted between the list and the query.
      }
    });
    return views.filter((v): v is ServerResource => v !== null).sort((a, b) => a.name.localeCompare(b.name));
  }

  async start(name: string): Promise<string[]> {
    return this.update(name, (h) => h.executeUpdate(startServerUpdate));
  }

  async stop(name: string): Promise<string[]> {
    return this.update(name, (h) => h.executeUpdate(stopServerUpdate));
  }

  async scale(name: string, replicas: number): Promise<ServerResource> {
    const view = await this.update(name, (h) => h.executeUpdate(scaleServerUpdate, { args: [replicas] }));
    return this.decorate(view, null);
  }

  async delete(name: string): Promise<string[]> {
    return this.update(name, (h) => h.executeUpdate(deleteServerUpdate));
  }

  /** The running server workflow's view, or null when there is none (never created, or deleted). */
  private async find(name: string): Promise<ServerResource | null> {
    const handle = this.client.workflow.getHandle(serverWorkflowId(name));
    try {
      const description = await handle.describe();
      if (description.status.name !== 'RUNNING') return null;
      const view = await handle.query(serverQuery);
      return this.decorate(view, description.startTime.toISOString());
    } catch (err) {
      const apiError = toApiError(err, `server "${name}"`);
      if (apiError.status === 404) return null;
      throw apiError;
    }
  }

  private async update<R>(name: string, op: (handle: WorkflowHandle) => Promise<R>): Promise<R> {
    if (!(await this.isRunning(name))) throw notFound(`server "${name}" not found`);
    try {
      return await op(this.client.workflow.getHandle(serverWorkflowId(name)));
    } catch (err) {
      throw toApiError(err, `server "${name}"`);
    }
  }

  private async isRunning(name: string): Promise<boolean> {
    try {
      const description = await this.client.workflow.getHandle(serverWorkflowId(name)).describe();
      return description.status.name === 'RUNNING';
    } catch (err) {
      const apiError = toApiError(err, `server "${name}"`);
      if (apiError.status === 404) return false;
      throw apiError;
    }
  }

  private async decorate(view: ServerView, createdAt: string | null): Promise<ServerResource> {
    const ready = await this.readyCounts(view.name);
    return { ...view, createdAt, readyReplicas: ready.get(view.name) ?? 0 };
  }

  /** Ready instances per server, from search attributes (no query per instance). */
  private async readyCounts(server?: string): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const query = instanceListQuery({ server, status: 'RUNNING', health: 'healthy' });
    try {
      for await (const info of this.client.workflow.list({ query })) {
        const s = info.typedSearchAttributes.get(mcpServerKey);
        if (s && info.typedSearchAttributes.get(mcpInstanceStatusKey) === 'RUNNING' && info.typedSearchAttributes.get(mcpHealthKey) === 'healthy') {
          counts.set(s, (counts.get(s) ?? 0) + 1);
        }
      }
    } catch (err) {
      throw toApiError(err);
    }
    return counts;
  }
}
