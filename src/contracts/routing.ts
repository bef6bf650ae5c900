/**
 * The seam between the lifecycle (workflows and their node activities) and the
 * gateway. Node activities publish what they start; the gateway routes to it.
 */
export interface UpstreamTarget {
  instanceId: string;
  server: string;
  transport: 'stdio' | 'http' | 'sse';
  containerId: string;
  /** For http/sse: the loopback port the container listens on, and the endpoint path. */
  port?: number;
  path?: string;
}

export interface InstanceRouting {
  /** A container is up for this instance: connect to it (idempotent for the same containerId). */
  attach(target: UpstreamTarget): Promise<void>;
  /** Health decides routing: only ready instances receive client traffic and appear in /mcp. */
  setReady(instanceId: string, ready: boolean): void;
  /** The instance stopped or its container is gone: fail in-flight calls promptly and forget it. */
  detach(instanceId: string, reason: string): Promise<void>;
  /**
   * The values of the secrets injected into this container, handed over in memory on the
   * node (never through Temporal): whatever the instance sends back is redacted of them.
   * Call before attach, so the handshake is covered too; an empty list forgets them.
   */
  protectSecrets?(instanceId: string, containerId: string, values: string[]): void;
}

export interface McpRequest {
  method: string;
  params?: Record<string, unknown>;
}

export interface ExecuteOptions {
  /** A hard deadline: the call fails with "timeout after N s" whatever the upstream does. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * The single proxy path: client traffic and health probes both go through it, so
 * a probe fails exactly when a user's call would. Resolves with the JSON-RPC
 * `result`; rejects (Error with a clear message) on a JSON-RPC error, a broken
 * connection, an unknown or unready instance, or the deadline.
 */
export interface ProxyExecutor {
  execute(instanceId: string, request: McpRequest, options: ExecuteOptions): Promise<Record<string, unknown>>;
}
