/**
 * The cluster as mcpd_instances and mcpd_node_ready report it: one visibility list of
 * the running instance workflows (their search attributes McpServer, McpInstanceStatus,
 * McpHealth) and one of the node workflows, read at scrape time. Search attributes can
 * lag a workflow's state by a moment; the API's status query is the exact answer.
 */
import type { Client } from '@temporalio/client';
import { instanceListQuery } from '../contracts/visibility';
import { mcpHealthKey, mcpInstanceStatusKey, mcpServerKey } from '../contracts/searchAttributes';
import { readNodeStates } from '../nodes/registry';
import type { ClusterView } from './registry';

export async function readClusterView(client: Client): Promise<ClusterView> {
  const [instances, nodes] = await Promise.all([readInstances(client), readNodeStates(client)]);
  return { instances, nodes: nodes.map((n) => ({ name: n.name, ready: n.status === 'Ready' })) };
}

async function readInstances(client: Client): Promise<ClusterView['instances']> {
  const instances: ClusterView['instances'] = [];
  for await (const info of client.workflow.list({ query: instanceListQuery() })) {
    const attributes = info.typedSearchAttributes;
    const server = attributes.get(mcpServerKey);
    // A workflow that has not published its attributes yet (its first task is still ahead) has nothing to count by.
    if (server === undefined) continue;
    instances.push({ server, status: attributes.get(mcpInstanceStatusKey) ?? 'PENDING', health: attributes.get(mcpHealthKey) ?? 'unknown' });
  }
  return instances;
}
