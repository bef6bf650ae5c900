/**
 * Reads the nodes from Temporal: every node workflow publishes its state in its memo,
 * so one visibility list gives them all (no query per node), and a visibility count
 * per node gives the running instances placed on it (search attribute McpNode).
 * The API's GET /nodes and the placement activity read the same way.
 */
import type { Client } from '@temporalio/client';
import { mapLimit } from '../concurrency';
import { NODE_MEMO_KEY, type NodeState, type NodeView } from '../contracts/node';
import { nodeInstancesQuery, nodeListQuery } from '../contracts/visibility';

const NODE_ID_PREFIX = 'mcp-node:';

/** Every registered node with its instance count, sorted by name. */
export async function readNodes(client: Client): Promise<NodeView[]> {
  const states = await readNodeStates(client);
  const views = await mapLimit(states, 8, async (state) => {
    const { count } = await client.workflow.count(nodeInstancesQuery(state.name));
    return { ...state, instances: count };
  });
  return views.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every registered node's published state (one visibility list, no counts): what front gateways follow. */
export async function readNodeStates(client: Client): Promise<NodeState[]> {
  const states: NodeState[] = [];
  for await (const info of client.workflow.list({ query: nodeListQuery() })) {
    const published = info.memo?.[NODE_MEMO_KEY] as NodeState | undefined;
    states.push(
      published ?? {
        name: info.workflowId.slice(NODE_ID_PREFIX.length),
        status: 'NotReady',
        reason: 'the node workflow has not published its state yet',
        since: info.startTime.toISOString(),
        registration: null,
      },
    );
  }
  return states;
}
