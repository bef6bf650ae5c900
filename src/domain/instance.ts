/**
 * The McpInstance view and the naming rules every part agrees on. Pure and
 * type-only enough to be imported from workflow code.
 */
export type InstanceStatus = 'PENDING' | 'STARTING' | 'RUNNING' | 'ERROR' | 'STOPPING' | 'STOPPED';
export type HealthStatus = 'unknown' | 'healthy' | 'degraded' | 'unhealthy';

export interface InstanceEvent {
  /** ISO-8601 time. */
  at: string;
  type: string;
  message: string;
}

/** What `status` returns and what the API shows; never carries a secret value. */
export interface InstanceView {
  id: string;
  server: string;
  ordinal: number;
  status: InstanceStatus;
  health: HealthStatus;
  containerId: string | null;
  attemptCount: number;
  lastAttemptAt: string | null;
  nextRetryAt: string | null;
  error: string | null;
  /** Why health is what it is (the last probe's reason), when known. */
  healthReason: string | null;
  runningSince: string | null;
  events: InstanceEvent[];
}

export const MAX_EVENTS = 50;

export const TASK_QUEUE = 'mcpd';
/** Activities that must run next to a Docker engine use the queue of that node. */
export function nodeTaskQueue(node: string): string {
  return `mcpd-node-${node}`;
}

export function instanceId(server: string, ordinal: number): string {
  return `mcp-instance:${server}:${ordinal}`;
}

export function serverWorkflowId(server: string): string {
  return `mcp-server:${server}`;
}

export function parseInstanceId(id: string): { server: string; ordinal: number } | null {
  const m = /^mcp-instance:([a-z0-9-]+):(\d+)$/.exec(id);
  return m ? { server: m[1], ordinal: Number(m[2]) } : null;
}

/** Docker names cannot contain ':'; one container name per instance makes start idempotent. */
export function containerName(id: string): string {
  const parsed = parseInstanceId(id);
  if (!parsed) throw new Error(`not an instance id: ${id}`);
  return `mcpd-${parsed.server}-${parsed.ordinal}`;
}

export const LABELS = {
  managed: 'io.mcpd.managed',
  server: 'io.mcpd.server',
  instance: 'io.mcpd.instance',
  /** Which start of the instance made this container; a retried activity reuses its own, never an older one. */
  generation: 'io.mcpd.generation',
  /** The Docker node whose worker made the container. */
  node: 'io.mcpd.node',
  /** The Temporal address and namespace whose workflows own the container; the reaper and exit watcher only touch their own. */
  owner: 'io.mcpd.owner',
  /** JSON UpstreamEndpoint (transport, loopback port, path), so a restarted mcpd can re-attach. */
  endpoint: 'io.mcpd.endpoint',
} as const;

export const SEARCH_ATTRIBUTES = {
  server: 'McpServer',
  status: 'McpInstanceStatus',
  health: 'McpHealth',
} as const;
