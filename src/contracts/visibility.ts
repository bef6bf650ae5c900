/**
 * Builders for Temporal visibility queries. Pure, so the escaping is unit-tested:
 * filter values arrive from URLs (validated by instanceFiltersSchema in
 * contracts/api.ts) and must never change the shape of a query.
 */
import type { InstanceFilters } from './api';
import { SEARCH_ATTRIBUTES } from './searchAttributes';

/** A visibility string literal: single-quoted, with backslashes and quotes escaped. */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function instanceListQuery(filters: InstanceFilters = {}): string {
  const clauses = [`WorkflowType = 'instanceWorkflow'`];
  if (!filters.all) clauses.push(`ExecutionStatus = 'Running'`);
  if (filters.server !== undefined) clauses.push(`${SEARCH_ATTRIBUTES.server} = ${quoteLiteral(filters.server)}`);
  if (filters.status !== undefined) clauses.push(`${SEARCH_ATTRIBUTES.status} = ${quoteLiteral(filters.status)}`);
  if (filters.health !== undefined) clauses.push(`${SEARCH_ATTRIBUTES.health} = ${quoteLiteral(filters.health)}`);
  if (filters.node !== undefined) clauses.push(`${SEARCH_ATTRIBUTES.node} = ${quoteLiteral(filters.node)}`);
  return clauses.join(' AND ');
}

export function serverListQuery(): string {
  return `WorkflowType = 'serverWorkflow' AND ExecutionStatus = 'Running'`;
}

export function nodeListQuery(): string {
  return `WorkflowType = 'nodeWorkflow' AND ExecutionStatus = 'Running'`;
}

/** The running instances placed on `node`: what counts against its capacity. */
export function nodeInstancesQuery(node: string): string {
  return `WorkflowType = 'instanceWorkflow' AND ExecutionStatus = 'Running' AND ${SEARCH_ATTRIBUTES.node} = ${quoteLiteral(node)}`;
}

export function virtualServerListQuery(): string {
  return `WorkflowType = 'virtualServerWorkflow' AND ExecutionStatus = 'Running'`;
}
