/**
 * The activities behind nodes and placement.
 *
 * On the node's own task queue (mcpd-node-<node>), run by its worker:
 *   - registerNode: what the node is (engine, labels, capacity); it completes only
 *     when this node's worker polls, so its completion means the node is up;
 *   - holdNodeLease: heartbeats for a lease period; a worker that stops (killed,
 *     partitioned, shut down) stops heartbeating and the node workflow marks the
 *     node NotReady when the heartbeat timeout passes.
 * On the control queue: listNodes, the nodes and their instance counts that the
 * workflows place instances with.
 */
import os from 'node:os';
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { nodeNotReadySignal } from '../src/contracts/messages';
import type { NodeLabels, NodeRegistration, NodeView } from '../src/contracts/node';
import { nodeInstancesQuery } from '../src/contracts/visibility';
import { valueWithin } from '../src/concurrency';
import type { ContainerRuntime } from '../src/docker/runtime';
import { readNodes } from '../src/nodes/registry';

export interface NodeLeaseDeps {
  runtime: ContainerRuntime;
  /** Where the engine answers, as the operator configured it. */
  engineHost: string;
  labels: NodeLabels;
  capacity: number;
  /** Where this node's gateway answers once it listens (see NodeRegistration.gatewayUrl). */
  gatewayUrl?: () => Promise<string | undefined>;
}

/** How long registerNode waits for the engine's version before it reports none. */
const ENGINE_VERSION_TIMEOUT_MS = 5_000;

export function createNodeLeaseActivities(deps: NodeLeaseDeps) {
  return {
    async registerNode(): Promise<NodeRegistration> {
      const gatewayUrl = await deps.gatewayUrl?.();
      return {
        engineHost: deps.engineHost,
        engineVersion: await engineVersion(deps.runtime),
        labels: deps.labels,
        capacity: deps.capacity,
        worker: `${os.hostname()}/${process.pid}`,
        ...(gatewayUrl !== undefined ? { gatewayUrl } : {}),
      };
    },

    /** Heartbeats until `leaseSeconds` pass (the node workflow then renews it) or the worker stops. */
    async holdNodeLease(leaseSeconds: number): Promise<void> {
      const context = Context.current();
      // The SDK sends at most one heartbeat per 0.8 heartbeat timeout; ticking at a quarter keeps that pace.
      const tickMs = Math.max(1_000, (context.info.heartbeatTimeoutMs ?? 20_000) / 4);
      context.heartbeat();
      const ticker = setInterval(() => context.heartbeat(), tickMs);
      try {
        // Rejects when the activity is cancelled (the worker shuts down): the node is NotReady at once.
        await context.sleep(leaseSeconds * 1000);
      } finally {
        clearInterval(ticker);
      }
    },
  };
}

async function engineVersion(runtime: ContainerRuntime): Promise<string | null> {
  if (!runtime.engineVersion) return null;
  try {
    return await valueWithin(runtime.engineVersion(), ENGINE_VERSION_TIMEOUT_MS);
  } catch {
    // The engine is down: the node still registers (its worker polls), and says it does not know the version.
    return null;
  }
}

export function createNodeRegistryActivities({ client }: { client: Client }) {
  return {
    /** Every registered node with its status, registration and instance count. */
    async listNodes(): Promise<NodeView[]> {
      return readNodes(client);
    },

    /** Tells every running instance placed on `node` that it is NotReady; returns how many were told. */
    async evictNode(node: string, reason: string): Promise<number> {
      let told = 0;
      for await (const info of client.workflow.list({ query: nodeInstancesQuery(node) })) {
        try {
          await client.workflow.getHandle(info.workflowId).signal(nodeNotReadySignal, { node, reason });
          told++;
        } catch (err) {
          // Ended since the list: nothing to move.
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }
      return told;
    },
  };
}

export type NodeLeaseActivities = ReturnType<typeof createNodeLeaseActivities>;
export type NodeRegistryActivities = ReturnType<typeof createNodeRegistryActivities>;
