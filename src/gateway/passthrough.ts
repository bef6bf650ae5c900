/**
 * /mcp/servers/<name>: one client session relayed to one replica of one server,
 * transparently. JSON-RPC ids are remapped on the shared upstream connection (see
 * UpstreamConnection); here the session keeps its own ids, answers initialize
 * from the upstream's handshake, relays progress, cancellation, logging and
 * resource updates, and forwards server-to-client requests to this client.
 *
 * Pinned to one instance (`pinned`), it is the node side of the gateway link: a front
 * gateway's upstream connection to an instance this node runs. Then every call goes
 * to that instance (never the discovery cache, never another replica), and every
 * notification of the instance is passed on: the front filters per client session.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Context } from '@opentelemetry/api';
import { traceContextOf } from '../tracing/http';
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Gateway, ListKind } from './gateway';
import { RequestTable, type JsonRpcId } from './requestTable';
import { GatewayErrorCode, UpstreamError, type Params, type Result, type ServerRequest } from './upstream';
import type { SessionAudit } from './requestAudit';
import { isPolicyListKind, listFilter, type SessionPolicy } from './sessionPolicy';
import type { PolicyResource } from '../policy/entities';
import type { PolicyAction } from '../contracts/policy';
import { POLICY_DENIED_CODE } from '../contracts/policy';

type Message = {
  id?: JsonRpcId | null;
  method?: string;
  params?: Params;
  result?: Result;
  error?: { code: number; message: string; data?: unknown };
};

/** Lists answered from the discovery cache (whole lists; a cursor bypasses it). */
const CACHED_LISTS: Record<string, ListKind> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
};

export class PassthroughSession {
  private readonly inFlight = new Map<JsonRpcId, AbortController>();
  private readonly toClient = new RequestTable<{ resolve(r: Result): void; reject(e: Error): void }>();
  private readonly subscriptions = new Set<string>();
  private unsubscribe?: () => void;

  constructor(
    private readonly gateway: Gateway,
    readonly server: string,
    readonly transport: Transport,
    private readonly sessionKey: string,
    /** The one instance this session talks to (the node side of the gateway link). */
    private readonly pinned?: string,
    /** The client session's audit (none on the node link: the front records). */
    private readonly audit?: SessionAudit,
    /** The client's policy (none on the node link: the front decided). */
    private readonly policy?: SessionPolicy,
  ) {}

  start(): void {
    this.transport.onmessage = (message, extra) => this.receive(message, traceContextOf(extra?.requestInfo?.headers));
    this.unsubscribe = this.gateway.onUpstreamNotification((n) => {
      if (this.pinned !== undefined) {
        if (n.instanceId === this.pinned) this.send({ jsonrpc: '2.0', method: n.method, ...(n.params ? { params: n.params } : {}) });
        return;
      }
      if (n.server !== this.server || this.gateway.router.boundTo(this.sessionKey, this.server) !== n.instanceId) return;
      if (n.method === 'notifications/resources/updated' && !this.subscriptions.has(String(n.params?.uri))) return;
      this.send({ jsonrpc: '2.0', method: n.method, ...(n.params ? { params: n.params } : {}) });
    });
  }

  /** The client went away: cancel what it started upstream and forget it. */
  closed(): void {
    this.unsubscribe?.();
    for (const controller of this.inFlight.values()) controller.abort();
    for (const pending of this.toClient.drain()) pending.reject(new Error('client session closed'));
    this.gateway.router.forgetSession(this.sessionKey);
  }

  private receive(message: Message, traceContext: Context | undefined): void {
    if (message.method === undefined) {
      const pending = this.toClient.take(message.id);
      if (!pending) return;
      if (message.error) pending.reject(new UpstreamError(message.error.message, message.error.code, message.error.data, true));
      else pending.resolve(message.result ?? {});
    } else if (message.id !== undefined && message.id !== null) {
      void this.handleRequest(message.id, message.method, message.params, traceContext);
    } else {
      this.handleNotification(message.method, message.params);
    }
  }

  private async handleRequest(id: JsonRpcId, method: string, params: Params | undefined, traceContext: Context | undefined): Promise<void> {
    const controller = new AbortController();
    this.inFlight.set(id, controller);
    try {
      const result = await this.answer(id, method, params, controller.signal, traceContext);
      if (method === 'resources/subscribe') this.subscriptions.add(String(params?.uri));
      if (method === 'resources/unsubscribe') this.subscriptions.delete(String(params?.uri));
      this.send({ jsonrpc: '2.0', id, result }, id);
    } catch (error) {
      // After notifications/cancelled the client expects no reply.
      if (controller.signal.aborted) return;
      const e = error as Partial<UpstreamError> & Error;
      const code = typeof e.code === 'number' ? e.code : -32603;
      this.send({ jsonrpc: '2.0', id, error: { code, message: e.message, ...(e.data !== undefined ? { data: e.data } : {}) } }, id);
    } finally {
      this.inFlight.delete(id);
    }
  }

  private async answer(id: JsonRpcId, method: string, params: Params | undefined, signal: AbortSignal, traceContext: Context | undefined): Promise<Result> {
    if (method === 'ping') return {};
    const instanceId = this.pinned ?? this.gateway.route(this.sessionKey, this.server);
    if (method === 'initialize') return this.initializeResult(instanceId, params);
    const note = this.audit?.note(id);
    const governed = this.policy ? governedBy(this.server, method, params) : undefined;
    if (governed) {
      const refusal = this.policy!.refusal(governed.action, governed.resource, note);
      if (refusal) throw new UpstreamError(refusal, POLICY_DENIED_CODE);
    }
    const listKind = CACHED_LISTS[method];
    if (listKind && params?.cursor === undefined && this.pinned === undefined) {
      return this.visibleOnly(method, { [listKind]: await this.gateway.list(this.server, listKind) }, note);
    }
    if (note) note.instance = instanceId;
    const result = await this.gateway.call(
      instanceId,
      { method, params },
      {
        timeoutMs: this.gateway.callTimeoutMs,
        signal,
        traceContext,
        // A front gateway counted this request already; the node's count says what reached it over the link.
        origin: this.pinned === undefined ? 'client' : 'link',
        hooks: {
          onProgress: (progress) => this.send({ jsonrpc: '2.0', method: 'notifications/progress', params: progress }, id),
          onServerRequest: (request, upstreamSignal) => this.requestClient(request, id, upstreamSignal),
        },
      },
    );
    if (note) note.redactions = this.gateway.redactionsIn(result);
    return this.visibleOnly(method, result, note);
  }

  /** A list answer without the items the session's policy hides (see listFilter). */
  private visibleOnly(method: string, result: Result, note: { decidedBy?: string } | undefined): Result {
    const list = CACHED_LISTS[method];
    if (!isPolicyListKind(list)) return result;
    const visible = listFilter(this.policy, list);
    const items = result[list];
    if (!visible || !Array.isArray(items)) return result;
    const keyOf = (item: Record<string, unknown>) => String(list === 'resources' ? item.uri : item.name);
    const shown = (items as Record<string, unknown>[]).filter((item) => visible(this.server, keyOf(item)));
    if (note) note.decidedBy = `policy: ${shown.length} of ${items.length} ${list} visible`;
    return { ...result, [list]: shown };
  }

  private initializeResult(instanceId: string, params: Params | undefined): Result {
    const connection = this.gateway.connectionOf(instanceId);
    // A link handshake before this node's own one would hand the front made-up capabilities; it tries again instead.
    if (this.pinned !== undefined && (!connection || connection.closed)) {
      throw new UpstreamError(`instance ${instanceId} is not connected on this node yet`, GatewayErrorCode.Unavailable);
    }
    const upstream = connection?.initializeResult;
    const requested = params?.protocolVersion;
    const protocolVersion = typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
    return {
      protocolVersion,
      capabilities: upstream?.capabilities ?? { tools: {}, resources: {}, prompts: {} },
      serverInfo: upstream?.serverInfo ?? { name: this.server, version: 'unknown' },
      ...(upstream?.instructions !== undefined ? { instructions: upstream.instructions } : {}),
    };
  }

  private handleNotification(method: string, params: Params | undefined): void {
    if (method === 'notifications/cancelled') {
      const requestId = params?.requestId as JsonRpcId | undefined;
      if (requestId !== undefined) this.inFlight.get(requestId)?.abort();
      return;
    }
    if (method === 'notifications/initialized') return; // the gateway did its own handshake
    const bound = this.pinned ?? this.gateway.router.boundTo(this.sessionKey, this.server);
    if (bound !== undefined) void this.gateway.connectionOf(bound)?.notify(method, params);
  }

  /** A server-to-client request relayed on the stream of the client call that caused it. */
  private requestClient(request: ServerRequest, relatedId: JsonRpcId, signal: AbortSignal): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      const id = this.toClient.add({ resolve, reject });
      signal.addEventListener(
        'abort',
        () => {
          if (!this.toClient.take(id)) return;
          this.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'cancelled by the server' } }, relatedId);
          reject(new UpstreamError('cancelled by the server', GatewayErrorCode.Cancelled));
        },
        { once: true },
      );
      this.send({ jsonrpc: '2.0', id, method: request.method, ...(request.params ? { params: request.params } : {}) }, relatedId);
    });
  }

  private send(message: Record<string, unknown>, relatedRequestId?: JsonRpcId): void {
    this.transport.send(message as JSONRPCMessage, relatedRequestId === undefined ? undefined : { relatedRequestId }).catch(() => undefined);
  }
}

/** The policy action and resource of a client request, or undefined for requests policies do not govern. */
function governedBy(server: string, method: string, params: Params | undefined): { action: PolicyAction; resource: PolicyResource } | undefined {
  const name = typeof params?.name === 'string' ? params.name : undefined;
  const uri = typeof params?.uri === 'string' ? params.uri : undefined;
  if (method === 'tools/call' && name !== undefined) return { action: 'tools/call', resource: { kind: 'tool', server, name } };
  if (method === 'prompts/get' && name !== undefined) return { action: 'prompts/get', resource: { kind: 'prompt', server, name } };
  if (method === 'resources/read' && uri !== undefined) return { action: 'resources/read', resource: { kind: 'resource', server, uri } };
  return undefined;
}
