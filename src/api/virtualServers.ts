/**
 * VirtualServer operations on top of virtualServerWorkflow, which holds each spec
 * durably (as serverWorkflow holds an McpServer's). Apply is one update-with-start.
 */
import { Client, WithStartWorkflowOperation } from '@temporalio/client';
import { isDeepStrictEqual } from 'node:util';
import { TASK_QUEUE } from '../contracts/instance';
import {
  virtualServerEndpoint,
  virtualServerSpecSchema,
  virtualServerWorkflowId,
  type VirtualServerResource,
  type VirtualServerSpec,
  type VirtualServerView,
  type VirtualServerWorkflowInput,
} from '../contracts/virtualServer';
import { applyVirtualServerUpdate, deleteVirtualServerUpdate, virtualServerQuery } from '../contracts/virtualServerMessages';
import { virtualServerListQuery } from '../contracts/visibility';
import { mapLimit } from '../concurrency';
import { badRequest, notFound, toApiError } from './errors';
import { parseWith } from './validation';

export type VirtualApplyOutcome = 'created' | 'configured' | 'unchanged';

/** A request body as the spec of virtual server `name`; 400 naming every bad field. */
export function parseVirtualServerBody(name: string, body: unknown): VirtualServerSpec {
  const spec = parseWith(virtualServerSpecSchema, body, 'virtual server spec');
  if (spec.name !== name) {
    throw badRequest(`spec.name "${spec.name}" does not match the URL name "${name}"`, [{ field: 'name', message: `must equal "${name}"` }]);
  }
  return spec;
}

function toResource(view: VirtualServerView, createdAt: string | null): VirtualServerResource {
  return { ...view, createdAt, endpoint: virtualServerEndpoint(view.name) };
}

export class VirtualServerControl {
  constructor(private readonly client: Client) {}

  async apply(spec: VirtualServerSpec): Promise<{ virtualServer: VirtualServerResource; outcome: VirtualApplyOutcome }> {
    const before = await this.find(spec.name);
    const input: VirtualServerWorkflowInput = { spec };
    const startWorkflowOperation = new WithStartWorkflowOperation('virtualServerWorkflow', {
      workflowId: virtualServerWorkflowId(spec.name),
      taskQueue: TASK_QUEUE,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    let view: VirtualServerView;
    try {
      view = await this.client.workflow.executeUpdateWithStart(applyVirtualServerUpdate, { args: [spec], startWorkflowOperation });
    } catch (err) {
      throw toApiError(err, `virtual server "${spec.name}"`);
    }
    const outcome: VirtualApplyOutcome = !before ? 'created' : isDeepStrictEqual(before.spec, view.spec) ? 'unchanged' : 'configured';
    return { virtualServer: toResource(view, before?.createdAt ?? new Date().toISOString()), outcome };
  }

  async get(name: string): Promise<VirtualServerResource> {
    const found = await this.find(name);
    if (!found) throw notFound(`virtual server "${name}" not found`);
    return found;
  }

  async list(): Promise<VirtualServerResource[]> {
    const infos = [];
    try {
      for await (const info of this.client.workflow.list({ query: virtualServerListQuery() })) infos.push(info);
    } catch (err) {
      throw toApiError(err);
    }
    const views = await mapLimit(infos, 8, async (info) => {
      try {
        return toResource(await this.client.workflow.getHandle(info.workflowId).query(virtualServerQuery), info.startTime.toISOString());
      } catch {
        return null; // deleted between the list and the query
      }
    });
    return views.filter((v): v is VirtualServerResource => v !== null).sort((a, b) => a.name.localeCompare(b.name));
  }

  async delete(name: string): Promise<void> {
    if (!(await this.find(name))) throw notFound(`virtual server "${name}" not found`);
    try {
      await this.client.workflow.getHandle(virtualServerWorkflowId(name)).executeUpdate(deleteVirtualServerUpdate);
    } catch (err) {
      throw toApiError(err, `virtual server "${name}"`);
    }
  }

  /** The stored spec, or null when there is none (never applied, or deleted). */
  async find(name: string): Promise<VirtualServerResource | null> {
    const handle = this.client.workflow.getHandle(virtualServerWorkflowId(name));
    try {
      const description = await handle.describe();
      if (description.status.name !== 'RUNNING') return null;
      return toResource(await handle.query(virtualServerQuery), description.startTime.toISOString());
    } catch (err) {
      const apiError = toApiError(err, `virtual server "${name}"`);
      if (apiError.status === 404) return null;
      throw apiError;
    }
  }
}
