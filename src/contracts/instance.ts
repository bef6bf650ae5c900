/**
 * The McpInstance view, task queues and the naming rules every part agrees on.
 * Contracts sit at the bottom of the import graph: workflow code, activities,
 * the API and the CLI all import them, and they import nothing of mcpd's but
 * other contracts.
 */
export type InstanceStatus = 'PENDING' | 'STARTING' | 'RUNNING' | 'ERROR' | 'STOPPING' | 'STOPPED';
export type HealthStatus = 'unknown' | 'healthy' | 'degraded' | 'unhealthy';

/** Probe timing when the spec does not say: a readiness healthCheck's defaults and the liveness probe's settings. */
export const PROBE_DEFAULTS = { intervalSeconds: 60, timeoutSeconds: 10, failureThreshold: 3 } as const;

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
  /** The Docker node whose engine runs this instance's containers. */
  node?: string;
  /**
   * While STARTING, what the node is doing right now, from the pending activity's heartbeat
   * (e.g. "building image for pypi:mcp-server-time@2026.10.19 12 s: installing"). Only in a single instance's view.
   */
  progress?: string;
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

/** The probe child of an instance's container generation: a new probe never collides with an old one still finishing. */
export function probeWorkflowId(instanceId: string, generation: number): string {
  return `${instanceId}/probe/${generation}`;
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

/** The longest a caller may wait for instance starts (the awaitStarted update, `start --wait`). */
export const AWAIT_STARTED_MAX_SECONDS = 3_600;
/** How long `start --wait` waits unless told otherwise. */
export const DEFAULT_START_WAIT_SECONDS = 120;
