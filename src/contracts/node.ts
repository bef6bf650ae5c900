/**
 * Docker nodes: what a node reports about itself, how it is named and labelled,
 * and the node workflow's messages. Each node worker keeps one `nodeWorkflow`
 * (id `mcp-node:<name>`) alive; its liveness is a heartbeating activity on the
 * node's own task queue, so Ready means "this node's worker is polling and
 * heartbeating right now", judged by Temporal itself.
 *
 * No zod here: workflow code imports this module, and every module it imports is
 * evaluated again for each workflow the worker creates (the zod schemas for node
 * names and labels are in nodeSchemas.ts).
 */

/** Node names become task queue names (`mcpd-node-<name>`) and workflow ids; host names fit. */
export const NODE_NAME_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$/;

/** Label keys and values as Kubernetes allows them (keys may carry a "prefix/"). */
export const LABEL_KEY_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
export const LABEL_VALUE_PATTERN = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
export type NodeLabels = Record<string, string>;

/** How many instances a node takes when MCPD_NODE_CAPACITY does not say (REPLICAS.max of one server). */
export const DEFAULT_NODE_CAPACITY = 1000;

export function nodeWorkflowId(name: string): string {
  return `mcp-node:${name}`;
}

/** What a node worker reports when it takes its node's lease (the registerNode activity's result). */
export interface NodeRegistration {
  /** Where the node's Docker engine answers (a unix socket path or DOCKER_HOST). */
  engineHost: string;
  /** The engine's version, or null when it did not answer. */
  engineVersion: string | null;
  labels: NodeLabels;
  /** Most instances this node runs. */
  capacity: number;
  /** The worker's identity (host and pid), for operators. */
  worker: string;
  /**
   * Where this node's gateway answers (http://host:port): front gateways forward the MCP
   * traffic of the instances this node runs to its link endpoints there. Absent when the
   * node's process serves no gateway (or registered before gateways were linked).
   */
  gatewayUrl?: string;
}

export type NodeStatus = 'Ready' | 'NotReady';

/** What the node workflow knows (its `node` query and its memo). */
export interface NodeState {
  name: string;
  status: NodeStatus;
  /** Why it is NotReady ("no heartbeat from its worker for 20 s"), null when Ready. */
  reason: string | null;
  /** When the status last changed. */
  since: string;
  /** The last registration; null until the node's worker first polled. */
  registration: NodeRegistration | null;
}

/** A node as the API shows it and placement sees it: its state plus the instances placed on it. */
export interface NodeView extends NodeState {
  /** Running instance workflows placed on this node (search attribute McpNode). */
  instances: number;
}

/** The memo key under which the node workflow publishes its NodeState (read by listing, without a query per node). */
export const NODE_MEMO_KEY = 'node';

/** A node whose worker has not heartbeated for this long is NotReady. */
export const NODE_HEARTBEAT_TIMEOUT_SECONDS = 20;
/** A node NotReady this long after it lost its lease has its instances started elsewhere. */
export const NODE_EVICTION_GRACE_SECONDS = 15;
/** One lease activity runs this long, then the node workflow renews it (history grows per lease, not per heartbeat). */
export const NODE_LEASE_SECONDS = 600;

/** Where an instance may run: pinned to one node, on nodes with some labels, or anywhere (spread). */
export interface PlacementSpec {
  node?: string;
  nodeSelector?: NodeLabels;
}

/** "node=b, nodeSelector disk=ssd", for reasons and events; "any node" without a placement. */
export function describePlacement(placement: PlacementSpec | undefined): string {
  const parts: string[] = [];
  if (placement?.node !== undefined) parts.push(`node=${placement.node}`);
  const selector = Object.entries(placement?.nodeSelector ?? {});
  if (selector.length) parts.push(`nodeSelector ${selector.map(([k, v]) => `${k}=${v}`).join(',')}`);
  return parts.length ? parts.join(', ') : 'any node';
}
