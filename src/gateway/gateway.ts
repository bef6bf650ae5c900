/**
 * The gateway owns one upstream connection per instance (the only owner of a
 * STDIO container's attach stream), routes client sessions to ready replicas,
 * caches discovery, and is the single proxy path for client traffic and health
 * probes alike (execute).
 */
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { context, SpanKind, SpanStatusCode, trace, TraceFlags, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { ExecuteOptions, InstanceRouting, McpRequest, ProxyExecutor, UpstreamTarget } from '../contracts/routing';
import type { ContainerRuntime } from '../docker/runtime';
import { silentLogger, type Logger } from '../logger';
import { callOutcome, methodLabel } from '../metrics/classify';
import { secondsSince, type CallOrigin, type McpdMetrics } from '../metrics/registry';
import { tracePropagatingFetch } from '../tracing/http';
import { retry } from '../retry';
import { DiscoveryCache } from './discoveryCache';
import { DockerAttachTransport } from './dockerAttachTransport';
import { SecretRedactor } from './redaction';
import { ReplicaRouter } from './replicas';
import { GatewayErrorCode, UpstreamConnection, UpstreamError, type CallHooks, type Params, type Result } from './upstream';

export interface GatewayOptions {
  /** Where STDIO upstreams are attached and container exits are watched. */
  runtime: ContainerRuntime;
  logger?: Logger;
  /** How long attach waits for the MCP handshake (an HTTP server may still be starting). */
  connectTimeoutMs?: number;
  /** The deadline of a client's call through the gateway. */
  callTimeoutMs?: number;
  discovery?: { positiveTtlMs?: number; negativeTtlMs?: number; timeoutMs?: number };
  /** The longest stdout line a STDIO upstream may write (default DEFAULT_MAX_LINE_BYTES); longer is a protocol error that ends its connection. */
  stdioMaxLineBytes?: number;
  /** Where upstream requests and discovery look-ups are counted (none: nothing is recorded). */
  metrics?: McpdMetrics;
  /** A span per upstream request, and traceparent sent to HTTP upstreams (none: no spans). */
  tracer?: Tracer;
}

export type ListKind = 'tools' | 'resources' | 'resourceTemplates' | 'prompts';

const LIST_METHOD: Record<ListKind, string> = {
  tools: 'tools/list',
  resources: 'resources/list',
  resourceTemplates: 'resources/templates/list',
  prompts: 'prompts/list',
};
const LIST_CAPABILITY: Record<ListKind, string> = {
  tools: 'tools',
  resources: 'resources',
  resourceTemplates: 'resources',
  prompts: 'prompts',
};
const LIST_CHANGED: Record<string, ListKind[]> = {
  'notifications/tools/list_changed': ['tools'],
  'notifications/resources/list_changed': ['resources', 'resourceTemplates'],
  'notifications/prompts/list_changed': ['prompts'],
};
const ALL_KINDS: ListKind[] = ['tools', 'resources', 'resourceTemplates', 'prompts'];

export interface GatewayInstanceInfo {
  id: string;
  /** The node whose gateway owns this instance's upstream, when that is another process (null: this one). */
  remoteNode: string | null;
  server: string;
  transport: UpstreamTarget['transport'];
  containerId: string;
  ready: boolean;
  connected: boolean;
  inFlight: number;
  lastError: string | null;
  /** How many secret values were replaced in what this instance sent back (on the node that runs it). */
  redactions: number;
}

/** Extra options of the internal call path: the public execute plus relaying hooks. */
export interface CallOptions extends ExecuteOptions {
  hooks?: CallHooks;
  /** Who asks, for the metrics (default client). */
  origin?: CallOrigin;
  /** The trace the call continues (the server span of the client's request); default the active context. */
  traceContext?: Context;
}

export type ListChange = { servers: Set<string>; kinds: Set<ListKind> };
export type UpstreamNotification = { instanceId: string; server: string; method: string; params?: Params };

/** How a front gateway reaches an instance another node's gateway owns: that gateway's link endpoint for it. */
export interface RemoteLink {
  node: string;
  /** The node gateway's Streamable HTTP endpoint of this one instance. */
  url: string;
  /** The Authorization header of the link (a secret: never logged). */
  authorization: string;
}

interface InstanceEntry {
  target: UpstreamTarget;
  /** Set when the upstream is another node's: calls go over the link, and this process has no container to watch. */
  remote?: RemoteLink;
  /** The link transport of the current connection attempt, to end its session on the node when the entry goes. */
  linkTransport?: StreamableHTTPClientTransport;
  ready: boolean;
  connection?: UpstreamConnection;
  connecting?: Promise<void>;
  lastError?: string;
  detached: boolean;
  watch: AbortController;
  /** Secret values replaced in this instance's messages so far. */
  redactions: number;
}

export class Gateway implements InstanceRouting, ProxyExecutor {
  readonly router = new ReplicaRouter();
  readonly callTimeoutMs: number;
  private readonly runtime: ContainerRuntime;
  private readonly log: Logger;
  private readonly connectTimeoutMs: number;
  private readonly stdioMaxLineBytes: number | undefined;
  private readonly discoveryTimeoutMs: number;
  private readonly cache: DiscoveryCache<unknown[]>;
  private readonly entries = new Map<string, InstanceEntry>();
  /** The injected secret values of each local instance's container, as redactors (in memory only, never logged). */
  private readonly injectedSecrets = new Map<string, { containerId: string; redactor: SecretRedactor }>();
  /** How many values were redacted in a result, by the result object (for its audit record; forgotten with the result). */
  private readonly redactedResults = new WeakMap<object, number>();
  private readonly listListeners = new Set<(change: ListChange) => void>();
  private readonly notificationListeners = new Set<(n: UpstreamNotification) => void>();
  private pendingChange?: ListChange;
  /** Grows with every change of who is attached, ready or connected (what a node's link listing reports). */
  private membership = 0;
  private readonly membershipWaiters = new Set<() => void>();
  private readonly metrics?: McpdMetrics;
  private readonly tracer?: Tracer;

  constructor(options: GatewayOptions) {
    this.runtime = options.runtime;
    this.metrics = options.metrics;
    this.tracer = options.tracer;
    this.metrics?.observeGateway(() => this.instances());
    this.log = options.logger ?? silentLogger;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
    this.stdioMaxLineBytes = options.stdioMaxLineBytes;
    this.callTimeoutMs = options.callTimeoutMs ?? 10 * 60_000;
    this.discoveryTimeoutMs = options.discovery?.timeoutMs ?? 5_000;
    this.cache = new DiscoveryCache({
      positiveTtlMs: options.discovery?.positiveTtlMs ?? 60_000,
      negativeTtlMs: options.discovery?.negativeTtlMs ?? 15_000,
    });
  }

  // ---- InstanceRouting ---------------------------------------------------

  async attach(target: UpstreamTarget): Promise<void> {
    const existing = this.entries.get(target.instanceId);
    if (existing && !existing.remote && existing.target.containerId === target.containerId && !existing.detached) {
      if (existing.connection && !existing.connection.closed) return;
      if (existing.connecting) return existing.connecting;
      existing.connecting = this.connect(existing).finally(() => (existing.connecting = undefined));
      return existing.connecting;
    }
    if (existing) await this.detach(target.instanceId, `replaced by container ${target.containerId.slice(0, 12)}`);
    const entry: InstanceEntry = {
      target: { ...target },
      ready: true,
      detached: false,
      watch: new AbortController(),
      redactions: 0,
    };
    this.entries.set(target.instanceId, entry);
    entry.connecting = this.connect(entry).finally(() => (entry.connecting = undefined));
    return entry.connecting;
  }

  /**
   * An instance another node's gateway owns, reached over the gateway link. A local
   * upstream of the same instance always wins (while an instance moves between nodes,
   * the new node's own attach must not be replaced by a stale listing of the old one).
   */
  async attachRemote(target: UpstreamTarget, link: RemoteLink, ready: boolean): Promise<void> {
    const existing = this.entries.get(target.instanceId);
    if (existing && !existing.remote) return;
    if (existing && existing.remote?.url === link.url && existing.target.containerId === target.containerId) {
      this.setReady(target.instanceId, ready);
      if (existing.connecting) return existing.connecting;
      if (existing.connection && !existing.connection.closed) return;
      existing.connecting = this.connect(existing).finally(() => (existing.connecting = undefined));
      return existing.connecting;
    }
    if (existing) await this.detach(target.instanceId, `now reached through node ${link.node}`);
    if (this.entries.has(target.instanceId)) return; // a local attach came first meanwhile
    const entry: InstanceEntry = { target: { ...target }, remote: { ...link }, ready, detached: false, watch: new AbortController(), redactions: 0 };
    this.entries.set(target.instanceId, entry);
    entry.connecting = this.connect(entry).finally(() => (entry.connecting = undefined));
    return entry.connecting;
  }

  /** Whether this process's own node runs the instance (its upstream is attached here, not over a link). */
  isLocal(instanceId: string): boolean {
    const entry = this.entries.get(instanceId);
    return entry !== undefined && !entry.remote;
  }

  /** The node of each remote instance, by instance id. */
  remoteInstances(): Map<string, { node: string; url: string; containerId: string }> {
    const out = new Map<string, { node: string; url: string; containerId: string }>();
    for (const [id, e] of this.entries) if (e.remote) out.set(id, { node: e.remote.node, url: e.remote.url, containerId: e.target.containerId });
    return out;
  }

  get membershipVersion(): number {
    return this.membership;
  }

  /** Resolves when the membership version passes `after`, or when timeoutMs or the signal ends the wait. */
  waitForMembershipChange(after: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.membership !== after || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.membershipWaiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.membershipWaiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  setReady(instanceId: string, ready: boolean): void {
    const entry = this.entries.get(instanceId);
    if (!entry || entry.ready === ready) return;
    entry.ready = ready;
    this.log.info({ instanceId, ready }, 'gateway: readiness changed');
    this.changed(entry.target.server, ALL_KINDS, true);
  }

  protectSecrets(instanceId: string, containerId: string, values: string[]): void {
    const redactor = new SecretRedactor(values);
    if (redactor.active) this.injectedSecrets.set(instanceId, { containerId, redactor });
    else this.injectedSecrets.delete(instanceId);
  }

  async detach(instanceId: string, reason: string): Promise<void> {
    const entry = this.entries.get(instanceId);
    if (entry && this.injectedSecrets.get(instanceId)?.containerId === entry.target.containerId) this.injectedSecrets.delete(instanceId);
    if (!entry) return;
    entry.detached = true;
    this.entries.delete(instanceId);
    entry.watch.abort();
    const connection = entry.connection;
    entry.connection = undefined;
    this.log.info({ instanceId, reason }, 'gateway: detached');
    // The node keeps a link session until it idles out unless told; a node that is gone gets a second to answer.
    if (entry.linkTransport?.sessionId) await withTimeout(entry.linkTransport.terminateSession(), 1_000).catch(() => undefined);
    if (connection) await connection.close(`instance ${instanceId} stopped: ${reason}`);
    this.changed(entry.target.server, ALL_KINDS, true);
  }

  // ---- ProxyExecutor -----------------------------------------------------

  /**
   * The proxy path of probes and client calls. An instance that setReady(false)
   * is still reachable here: routing excludes it from client traffic, but its
   * probe must go on seeing whether it has recovered.
   */
  async execute(instanceId: string, request: McpRequest, options: ExecuteOptions): Promise<Record<string, unknown>> {
    try {
      return await this.call(instanceId, request, { ...options, origin: 'probe' });
    } catch (error) {
      if (error instanceof UpstreamError && error.fromUpstream) {
        throw new UpstreamError(`${request.method}: JSON-RPC error ${error.code}: ${error.message}`, error.code, error.data, true);
      }
      throw error;
    }
  }

  /** Like execute, with upstream errors verbatim and hooks for progress and server-to-client requests. */
  call(instanceId: string, request: McpRequest, options: CallOptions): Promise<Result> {
    const metrics = this.metrics;
    const server = this.entries.get(instanceId)?.target.server;
    if ((!metrics && !this.tracer) || server === undefined) return this.callUpstream(instanceId, request, options);
    const method = methodLabel(request.method);
    const origin = options.origin ?? 'client';
    // Explicit parents, not the active context (src/tracing/http.ts says why); a probe's comes from its activity.
    const parent = options.traceContext ?? context.active();
    // In a trace its parent did not sample, no standard sampler samples the call either: it needs no span of its own.
    const parentFlags = trace.getSpanContext(parent)?.traceFlags;
    const unsampled = parentFlags !== undefined && (parentFlags & TraceFlags.SAMPLED) === 0;
    const span = unsampled ? undefined : this.tracer?.startSpan(`mcp ${method}`, { kind: SpanKind.CLIENT }, parent);
    // Attributes only for the spans sampled: most are not, and each costs every call.
    if (span?.isRecording())
      span.setAttributes({ 'mcp.method.name': request.method, 'mcpd.server': server, 'mcpd.instance': instanceId, 'mcpd.call.origin': origin });
    const startedAt = performance.now();
    const ended = (end: Parameters<typeof callOutcome>[0]) => {
      const outcome = callOutcome(end);
      metrics?.gatewayCall(server, method, origin, outcome, secondsSince(startedAt));
      if (span) finishSpan(span, outcome);
    };
    return this.callUpstream(instanceId, request, span ? { ...options, traceContext: trace.setSpan(parent, span) } : options).then(
      (result) => {
        ended({ result });
        return result;
      },
      (error: unknown) => {
        ended({ error });
        throw error;
      },
    );
  }

  private async callUpstream(instanceId: string, request: McpRequest, options: CallOptions): Promise<Result> {
    const entry = this.entries.get(instanceId);
    if (!entry) throw new UpstreamError(`unknown instance ${instanceId}`, GatewayErrorCode.Unavailable);
    if (entry.connecting && !entry.connection) await entry.connecting.catch(() => undefined);
    const connection = entry.connection;
    if (!connection || connection.closed) {
      const why = entry.lastError ? `: ${entry.lastError}` : '';
      throw new UpstreamError(`instance ${instanceId} is not connected${why}`, GatewayErrorCode.Unavailable);
    }
    return connection.request(request.method, request.params, options);
  }

  // ---- views for the API and the endpoints --------------------------------

  instances(): GatewayInstanceInfo[] {
    return [...this.entries.entries()].map(([id, e]) => ({
      id,
      remoteNode: e.remote?.node ?? null,
      server: e.target.server,
      transport: e.target.transport,
      containerId: e.target.containerId,
      ready: e.ready,
      connected: !!e.connection && !e.connection.closed,
      inFlight: e.connection?.inFlight ?? 0,
      lastError: e.lastError ?? null,
      redactions: e.redactions,
    }));
  }

  /** Instances of a server that may receive client traffic: ready and connected. */
  readyInstances(server: string): string[] {
    const ids: string[] = [];
    for (const [id, e] of this.entries) {
      if (e.target.server === server && e.ready && e.connection && !e.connection.closed) ids.push(id);
    }
    return ids;
  }

  knowsServer(server: string): boolean {
    for (const e of this.entries.values()) if (e.target.server === server) return true;
    return false;
  }

  /** Servers with at least one ready instance, sorted. */
  readyServers(): string[] {
    const servers = new Set<string>();
    for (const e of this.entries.values()) {
      if (e.ready && e.connection && !e.connection.closed) servers.add(e.target.server);
    }
    return [...servers].sort();
  }

  connectionOf(instanceId: string): UpstreamConnection | undefined {
    return this.entries.get(instanceId)?.connection;
  }

  /** The session's replica of a server, or an UpstreamError when none is ready. */
  route(session: string, server: string): string {
    const id = this.router.choose(session, server, this.readyInstances(server));
    if (id === undefined) {
      const why = this.knowsServer(server) ? 'has no ready instance' : 'is not running';
      throw new UpstreamError(`MCP server "${server}" ${why}`, GatewayErrorCode.Unavailable);
    }
    return id;
  }

  /**
   * One discovery list of a server, through the cache. A dead or slow upstream
   * costs discoveryTimeoutMs once; the failure is then cached for the negative TTL.
   */
  list(server: string, kind: ListKind): Promise<unknown[]> {
    const key = `${server}\n${kind}`;
    // A look-up that joins a load already under way counts as a miss: it waits for the upstream.
    this.metrics?.discoveryLookup(kind, this.cache.peek(key) !== undefined);
    return this.cache.get(key, () => this.fetchList(server, kind));
  }

  onListChanged(listener: (change: ListChange) => void): () => void {
    this.listListeners.add(listener);
    return () => this.listListeners.delete(listener);
  }

  onUpstreamNotification(listener: (n: UpstreamNotification) => void): () => void {
    this.notificationListeners.add(listener);
    return () => this.notificationListeners.delete(listener);
  }

  /** Secret values replaced in this result from an upstream (0 when none were, or it came from elsewhere). */
  redactionsIn(result: Result): number {
    return this.redactedResults.get(result) ?? 0;
  }

  /** Closes every upstream connection (mcpd shutdown); containers keep running. */
  async close(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((id) => this.detach(id, 'mcpd is shutting down')));
  }

  // ---- internals -----------------------------------------------------------

  private async fetchList(server: string, kind: ListKind): Promise<unknown[]> {
    const [instanceId] = this.readyInstances(server);
    if (instanceId === undefined) throw new UpstreamError(`MCP server "${server}" has no ready instance`, GatewayErrorCode.Unavailable);
    if (!this.connectionOf(instanceId)?.hasCapability(LIST_CAPABILITY[kind])) return [];
    const deadline = Date.now() + this.discoveryTimeoutMs;
    const items: unknown[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const result = await this.call(
        instanceId,
        { method: LIST_METHOD[kind], params: cursor === undefined ? undefined : { cursor } },
        { timeoutMs: Math.max(1, deadline - Date.now()), origin: 'discovery' },
      );
      const pageItems = result[kind];
      if (Array.isArray(pageItems)) items.push(...(pageItems as unknown[]));
      cursor = typeof result.nextCursor === 'string' ? result.nextCursor : undefined;
      if (cursor === undefined) break;
    }
    return items;
  }

  /** Fresh transports for a target, one per connection attempt; throws when the target cannot have any. */
  private transportFactory(entry: InstanceEntry): () => Transport {
    const { target, remote } = entry;
    if (remote) {
      const url = new URL(remote.url);
      const headers = { authorization: remote.authorization };
      // A node that restarts keeps the link session (its id is signed, any node gateway takes it over); the GET stream of its notifications comes back by itself.
      const reconnectionOptions = { initialReconnectionDelay: 500, maxReconnectionDelay: 10_000, reconnectionDelayGrowFactor: 2, maxRetries: 1_000 };
      const traced = this.tracer ? { fetch: this.traceFetch(entry) } : {};
      return () => (entry.linkTransport = new StreamableHTTPClientTransport(url, { requestInit: { headers }, reconnectionOptions, ...traced }));
    }
    if (target.transport === 'stdio') return () => new DockerAttachTransport(this.runtime, target.containerId, undefined, this.stdioMaxLineBytes);
    if (target.port === undefined) throw new Error(`instance ${target.instanceId}: ${target.transport} transport needs a port`);
    const url = new URL(`http://127.0.0.1:${target.port}${target.path ?? (target.transport === 'sse' ? '/sse' : '/mcp')}`);
    // With tracing, each request to the upstream carries the trace of the call that sends it.
    const options = this.tracer ? { fetch: this.traceFetch(entry) } : {};
    return target.transport === 'sse' ? () => new SSEClientTransport(url, options) : () => new StreamableHTTPClientTransport(url, options);
  }

  /** A fetch that sends each request to the entry's upstream with the trace of the call it carries. */
  private traceFetch(entry: InstanceEntry): typeof fetch {
    return tracePropagatingFetch((id) => entry.connection?.traceContextOf(id));
  }

  /** Connects (and re-connects) an entry; an HTTP server may take a moment to listen. */
  private async connect(entry: InstanceEntry): Promise<void> {
    const { instanceId } = entry.target;
    // Outside the retry: only a failed handshake is worth another attempt.
    const newTransport = this.transportFactory(entry);
    const deadline = Date.now() + this.connectTimeoutMs;
    let attempts = 0;
    const connection = await retry(
      async (attempt) => {
        attempts = attempt;
        const connection = new UpstreamConnection(`instance ${instanceId}`, newTransport());
        if (!entry.remote) connection.inboundFilter = (message) => this.redactInbound(entry, message);
        try {
          await connection.open(Math.max(1000, deadline - Date.now()));
          // A node answers a link handshake with an error until its own upstream is connected; try again shortly.
          if (entry.remote && !connection.initializeResult) throw new Error(`node ${entry.remote.node} has not connected the instance yet`);
          return connection;
        } catch (error) {
          await connection.close('handshake failed');
          entry.lastError = `MCP handshake failed: ${(error as Error).message}`;
          throw error;
        }
      },
      {
        retryAfter: async (error, attempt) => {
          if (entry.detached || Date.now() + 250 >= deadline || !(await this.containerRunning(entry))) {
            this.log.warn({ instanceId, attempt, error: (error as Error).message }, 'gateway: attach failed');
            return null;
          }
          return Math.min(1000, 100 * attempt);
        },
      },
    ).catch(() => {
      throw new Error(`cannot attach to instance ${instanceId}: ${entry.lastError}`);
    });
    if (entry.detached) {
      await connection.close(`instance ${instanceId} was detached`);
      throw new Error(`instance ${instanceId} was detached while attaching`);
    }
    entry.connection = connection;
    entry.lastError = undefined;
    connection.onNotification = (method, params) => this.upstreamNotification(entry, method, params);
    connection.onClose = (reason) => this.connectionClosed(entry, connection, reason);
    this.watchContainer(entry, connection);
    this.log.info({ instanceId, transport: entry.target.transport, attempt: attempts }, 'gateway: attached');
    this.changed(entry.target.server, ALL_KINDS, true);
  }

  /** Replaces the instance's injected secret values in one message from its container, and counts them. */
  private redactInbound<T>(entry: InstanceEntry, message: T): T {
    const injected = this.injectedSecrets.get(entry.target.instanceId);
    if (!injected || injected.containerId !== entry.target.containerId) return message;
    const { message: redacted, count } = injected.redactor.redact(message);
    if (count > 0) {
      entry.redactions += count;
      const result = (redacted as { result?: unknown }).result;
      if (typeof result === 'object' && result !== null) this.redactedResults.set(result, count);
    }
    return redacted;
  }

  private async containerRunning(entry: InstanceEntry): Promise<boolean> {
    // The container is on another node's engine: its listing says whether it is still wanted.
    if (entry.remote) return !entry.detached;
    try {
      return (await this.runtime.inspect(entry.target.containerId))?.running === true;
    } catch {
      return false;
    }
  }

  /** Fails calls promptly when the container dies, whatever the transport noticed. */
  private watchContainer(entry: InstanceEntry, connection: UpstreamConnection): void {
    if (entry.remote) return; // its node watches it and takes it out of its listing
    entry.watch.abort();
    entry.watch = new AbortController();
    this.runtime
      .wait(entry.target.containerId, entry.watch.signal)
      .then((exitCode) => {
        if (entry.detached || entry.connection !== connection) return;
        const reason = `instance ${entry.target.instanceId} stopped: container exited with code ${exitCode ?? 'unknown'}`;
        entry.lastError = reason;
        void connection.close(reason);
      })
      .catch(() => undefined);
  }

  private connectionClosed(entry: InstanceEntry, connection: UpstreamConnection, reason: string): void {
    if (entry.connection !== connection) return;
    entry.connection = undefined;
    entry.lastError ??= reason;
    this.log.warn({ instanceId: entry.target.instanceId, reason }, 'gateway: upstream connection closed');
    this.changed(entry.target.server, ALL_KINDS, true);
    if (!entry.detached) void this.reconnectWhileRunning(entry);
  }

  /** A stream that broke while its container still runs (e.g. a daemon hiccup) is re-attached. */
  private async reconnectWhileRunning(entry: InstanceEntry): Promise<void> {
    const stillWanted = () => !entry.detached && !entry.connection && !entry.connecting && this.entries.get(entry.target.instanceId) === entry;
    await retry(
      async () => {
        if (!stillWanted() || !(await this.containerRunning(entry))) return;
        entry.connecting = this.connect(entry).finally(() => (entry.connecting = undefined));
        await entry.connecting;
      },
      { firstDelayMs: 500, retryAfter: (_error, attempt) => Math.min(500 * 2 ** attempt, 15_000), ref: false },
    );
  }

  private upstreamNotification(entry: InstanceEntry, method: string, params: Params | undefined): void {
    const kinds = LIST_CHANGED[method];
    if (kinds) this.changed(entry.target.server, kinds, false);
    const n: UpstreamNotification = { instanceId: entry.target.instanceId, server: entry.target.server, method, params };
    for (const listener of this.notificationListeners) listener(n);
  }

  /**
   * Invalidates discovery of a server and tells listeners, coalescing bursts
   * (a restart detaches and attaches in quick succession) into one notification.
   */
  private changed(server: string, kinds: ListKind[], membership: boolean): void {
    if (membership) {
      this.membership++;
      for (const wake of [...this.membershipWaiters]) wake();
    }
    this.cache.invalidateWhere((key) => key.startsWith(`${server}\n`) && (membership || kinds.some((k) => key.endsWith(`\n${k}`))));
    if (!this.pendingChange) {
      this.pendingChange = { servers: new Set(), kinds: new Set() };
      setImmediate(() => {
        const change = this.pendingChange!;
        this.pendingChange = undefined;
        for (const listener of this.listListeners) listener(change);
      });
    }
    this.pendingChange.servers.add(server);
    for (const k of kinds) this.pendingChange.kinds.add(k);
  }
}

/** Ends an upstream request's span; a tool error is an answer, not a failed request. */
function finishSpan(span: Span, outcome: ReturnType<typeof callOutcome>): void {
  span.setAttribute('mcpd.call.outcome', outcome);
  if (outcome !== 'ok' && outcome !== 'tool_error') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
  span.end();
}

/** Waits for a promise at most ms. */
function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return Promise.race([promise.then(() => undefined), timeout]).finally(() => clearTimeout(timer));
}
