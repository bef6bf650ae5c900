/**
 * Builders for Temporal visibility queries. Pure, so the escaping is unit-tested:
 * filter values arrive from URLs and must never change the shape of a query.
 */
import { SERVER_NAME_PATTERN } from '../contracts/spec';
import type { HealthStatus, InstanceStatus } from '../contracts/instance';
import { SEARCH_ATTRIBUTES } from '../contracts/searchAttributes';
import { badRequest } from './errors';

export const INSTANCE_STATUSES: readonly InstanceStatus[] = ['PENDING', 'STARTING', 'RUNNING', 'ERROR', 'STOPPING', 'STOPPED'];
export const HEALTH_STATUSES: readonly HealthStatus[] = ['unknown', 'healthy', 'degraded', 'unhealthy'];

/** A visibility string literal: single-quoted, with backslashes and quotes escaped. */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export interface InstanceFilters {
  server?: string;
  status?: InstanceStatus;
  health?: HealthStatus;
  /** Include closed (ended) instance workflows too. */
  all?: boolean;
}

/** Reads and validates `?server=&status=&health=&all=` into filters; 400 naming the bad parameter. */
export function parseInstanceFilters(query: Record<string, unknown>): InstanceFilters {
  const filters: InstanceFilters = {};
  const one = (name: string): string | undefined => {
    const v = query[name];
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string') throw badRequest(`query parameter "${name}" must be given once`, [{ field: name, message: 'must be a single value' }]);
    return v;
  };
  const server = one('server');
  if (server !== undefined) {
    if (!SERVER_NAME_PATTERN.test(server)) throw badRequest(`invalid server filter "${server}"`, [{ field: 'server', message: 'must be a server name' }]);
    filters.server = server;
  }
  const status = one('status');
  if (status !== undefined) {
    const upper = status.toUpperCase() as InstanceStatus;
    if (!INSTANCE_STATUSES.includes(upper)) {
      throw badRequest(`invalid status filter "${status}"`, [{ field: 'status', message: `must be one of ${INSTANCE_STATUSES.join(', ')}` }]);
    }
    filters.status = upper;
  }
  const health = one('health');
  if (health !== undefined) {
    const lower = health.toLowerCase() as HealthStatus;
    if (!HEALTH_STATUSES.includes(lower)) {
      throw badRequest(`invalid health filter "${health}"`, [{ field: 'health', message: `must be one of ${HEALTH_STATUSES.join(', ')}` }]);
    }
    filters.health = lower;
  }
  const all = one('all');
  if (all !== undefined) filters.all = all === 'true' || all === '1';
  return filters;
}

export function instanceListQuery(filters: InstanceFilters = {}): string {
  const clauses = [`WorkflowType = 'instanceWorkflow'`];
  if (!filters.all) clauses.push(`ExecutionStatus = 'Running'`);
  if (filters.server !== undefined) clauses.push(`${SEARCH_ATTRIBUTES.server} = ${quoteLiteral(filters.server)}`);
  if (filters.status !== undefined) clauses.push(`${SEARCH_ATTRIBUTES.status} = ${quoteLiteral(filters.status)}`);
  if (filters.health !== undefined) clauses.push(`${SEARCH_ATTRIBUTES.health} = ${quoteLiteral(filters.health)}`);
  return clauses.join(' AND ');
}

export function serverListQuery(): string {
  return `WorkflowType = 'serverWorkflow' AND ExecutionStatus = 'Running'`;
}
