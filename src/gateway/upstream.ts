/**
 * One upstream MCP connection shared by every client session and by probes.
 * Requests get upstream ids from a RequestTable (and progress tokens likewise),
 * replies and progress go back to the call that caused them, server-to-client
 * requests (sampling, elicitation, roots) go to a call in flight that can answer
 * them, and everything else is handed to the owner (the Gateway).
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Context } from '@opentelemetry/api';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { RequestTable, withProgressToken, type JsonRpcId } from './requestTable';

export type Params = Record<string, unknown>;
export type Result = Record<string, unknown>;

/** Gateway error codes (JSON-RPC "server error" range) for failures that are not the upstream's own. */
export const GatewayErrorCode = {
  /** The connection broke or the instance stopped while the call was in flight. */
  ConnectionClosed: -32000,
  RequestTimeout: -32001,
  /** No instance, or none ready, to send the call to. */
  Unavailable: -32003,
  Cancelled: -32800,
} as const;

/** A failed call: the upstream's JSON-RPC error (code, message, data verbatim) or a gateway failure. */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly data?: unknown,
    /** True when the upstream itself answered with this JSON-RPC error. */
    readonly fromUpstream = false,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

export interface ServerRequest {
  method: string;
  params?: Params;
}

export interface CallHooks {
  /** A progress notification for this call, carrying the caller's own progress token. */
  onProgress?: (params: Params) => void;
  /** The upstream asks the client something while this call runs. */
  onServerRequest?: (request: ServerRequest, signal: AbortSignal) => Promise<Result>;
}

export interface CallOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  hooks?: CallHooks;
  /** The trace the call belongs to (its span, when it has one); an HTTP upstream's request carries it. */
  traceContext?: Context;
}

interface Pending {
  method: string;
  traceContext?: Context;
  resolve(result: Result): void;
  reject(error: Error): void;
  hooks?: CallHooks;
  callerToken?: JsonRpcId;
  settle(): void;
}

type Incoming = {
  id?: JsonRpcId | null;
  method?: string;
  params?: Params;
  result?: Result;
  error?: { code: number; message: string; data?: unknown };
};

export interface InitializeResult {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  serverInfo: { name: string; version: string; [k: string]: unknown };
  instructions?: string;
  [k: string]: unknown;
}

/** What mcpd tells upstreams it can do: it relays these to its clients. */
const CLIENT_CAPABILITIES = { sampling: {}, elicitation: {}, roots: { listChanged: true } };

export function formatTimeout(timeoutMs: number): string {
  const seconds = timeoutMs / 1000;
  return `timeout after ${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s`;
}

export class UpstreamConnection {
  initializeResult?: InitializeResult;
  /** Notifications not tied to a call (logging, list_changed, resources/updated). */
  onNotification?: (method: string, params: Params | undefined) => void;
  onClose?: (reason: string) => void;
  /**
   * Rewrites every message from the upstream before anything else sees it (the gateway
   * redacts the instance's injected secret values here).
   */
  inboundFilter?: (message: JSONRPCMessage) => JSONRPCMessage;
  /** Sees every message on the wire (debug logging, tests that check what the upstream received). */
  onTrace?: (direction: 'in' | 'out', message: Record<string, unknown>) => void;

  private readonly pending = new RequestTable<Pending>();
  private readonly serverRequests = new Map<JsonRpcId, AbortController>();
  private closedReason?: string;
  private shutdownDone = false;

  constructor(
    readonly label: string,
    private readonly transport: Transport,
  ) {
    transport.onmessage = (received) => {
      const message = this.inboundFilter ? this.inboundFilter(received) : received;
      this.onTrace?.('in', message);
      this.receive(message);
    };
    transport.onclose = () => {
      const why = (transport as { closeReason?: string }).closeReason ?? 'connection closed';
      this.shutdown(this.closedReason ?? `${label}: ${why}`);
    };
    transport.onerror = () => {
      // Errors of individual HTTP requests surface through their calls; a broken
      // attach stream also ends it, which onclose handles.
    };
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Starts the transport and runs the MCP handshake. A STDIO server that a previous
   * mcpd already initialized may answer a second initialize with an error; the
   * connection is usable either way.
   */
  async open(timeoutMs: number): Promise<void> {
    await this.transport.start();
    let result: Result | undefined;
    try {
      result = await this.request(
        'initialize',
        { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: CLIENT_CAPABILITIES, clientInfo: { name: 'mcpd', version: '0.1.0' } },
        { timeoutMs },
      );
    } catch (error) {
      if (!(error instanceof UpstreamError && error.fromUpstream)) throw error;
    }
    if (result) {
      this.initializeResult = result as InitializeResult;
      const version = this.initializeResult.protocolVersion;
      const setVersion = (this.transport as { setProtocolVersion?: (v: string) => void }).setProtocolVersion;
      if (typeof version === 'string' && setVersion) setVersion.call(this.transport, version);
    }
    await this.notify('notifications/initialized');
  }

  /** Whether the upstream declared a capability; unknown (re-attached without a handshake) counts as yes. */
  hasCapability(name: string): boolean {
    return !this.initializeResult || this.initializeResult.capabilities?.[name] !== undefined;
  }

  /** The trace of a request in flight, by its id on this connection. */
  traceContextOf(id: unknown): Context | undefined {
    return this.pending.get(id)?.traceContext;
  }

  request(method: string, params: Params | undefined, options: CallOptions): Promise<Result> {
    if (this.closedReason !== undefined) {
      return Promise.reject(new UpstreamError(this.closedReason, GatewayErrorCode.ConnectionClosed));
    }
    if (options.signal?.aborted) {
      return Promise.reject(new UpstreamError('cancelled', GatewayErrorCode.Cancelled));
    }
    return new Promise<Result>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.cancel(id, 'cancelled by the client');
        entry.reject(new UpstreamError('cancelled', GatewayErrorCode.Cancelled));
      };
      const entry: Pending = {
        method,
        hooks: options.hooks,
        traceContext: options.traceContext,
        callerToken: undefined,
        resolve: (result) => {
          entry.settle();
          resolve(result);
        },
        reject: (error) => {
          entry.settle();
          reject(error);
        },
        settle: () => {
          this.pending.take(id);
          if (timer) clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
        },
      };
      const id = this.pending.add(entry);
      let upstreamParams = params;
      const callerToken = (params?._meta as Params | undefined)?.progressToken;
      if (typeof callerToken === 'string' || typeof callerToken === 'number') {
        // The upstream id doubles as the progress token: unique on this connection.
        entry.callerToken = callerToken;
        upstreamParams = withProgressToken(params, id);
      }
      timer = setTimeout(() => {
        this.cancel(id, 'timeout');
        entry.reject(new UpstreamError(formatTimeout(options.timeoutMs), GatewayErrorCode.RequestTimeout));
      }, options.timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const message = upstreamParams === undefined ? { jsonrpc: '2.0' as const, id, method } : { jsonrpc: '2.0' as const, id, method, params: upstreamParams };
      this.onTrace?.('out', message);
      this.transport.send(message as JSONRPCMessage).catch((error: Error) => {
        entry.reject(new UpstreamError(`${this.label}: send failed: ${error.message}`, GatewayErrorCode.ConnectionClosed));
      });
    });
  }

  async notify(method: string, params?: Params): Promise<void> {
    if (this.closedReason !== undefined) return;
    const message = params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params };
    this.onTrace?.('out', message);
    await this.transport.send(message as JSONRPCMessage).catch(() => undefined);
  }

  /** Fails every call in flight with the reason and closes the transport. */
  async close(reason: string): Promise<void> {
    if (this.closedReason === undefined) this.closedReason = reason;
    this.shutdown(reason);
    await this.transport.close().catch(() => undefined);
  }

  private cancel(id: number, reason: string): void {
    if (!this.pending.get(id)) return;
    void this.notify('notifications/cancelled', { requestId: id, reason });
  }

  private shutdown(reason: string): void {
    if (this.shutdownDone) return;
    this.shutdownDone = true;
    this.closedReason ??= reason;
    const error = new UpstreamError(this.closedReason, GatewayErrorCode.ConnectionClosed);
    for (const entry of this.pending.drain()) entry.reject(error);
    for (const controller of this.serverRequests.values()) controller.abort();
    this.serverRequests.clear();
    this.onClose?.(this.closedReason);
  }

  private receive(message: Incoming): void {
    if (message.method === undefined) {
      // A reply to one of our requests.
      const entry = this.pending.get(message.id);
      if (!entry) return;
      if (message.error) {
        const { code, message: text, data } = message.error;
        entry.reject(new UpstreamError(text, code, data, true));
      } else {
        entry.resolve(message.result ?? {});
      }
      return;
    }
    if (message.id !== undefined && message.id !== null) {
      void this.answerServerRequest(message.id, { method: message.method, params: message.params });
      return;
    }
    switch (message.method) {
      case 'notifications/progress': {
        const entry = this.pending.get(message.params?.progressToken);
        if (entry?.callerToken !== undefined) entry.hooks?.onProgress?.({ ...message.params, progressToken: entry.callerToken });
        return;
      }
      case 'notifications/cancelled': {
        const requestId = message.params?.requestId as JsonRpcId | undefined;
        if (requestId !== undefined) this.serverRequests.get(requestId)?.abort();
        return;
      }
      default:
        this.onNotification?.(message.method, message.params);
    }
  }

  /**
   * Over STDIO nothing in a server-to-client request says which call it belongs
   * to; the most recent call in flight whose client can answer gets it, which is
   * exact whenever one such call is in flight.
   */
  private async answerServerRequest(id: JsonRpcId, request: ServerRequest): Promise<void> {
    const controller = new AbortController();
    this.serverRequests.set(id, controller);
    let reply: Record<string, unknown>;
    try {
      let handler: CallHooks['onServerRequest'];
      for (const entry of this.pending.values()) if (entry.hooks?.onServerRequest) handler = entry.hooks.onServerRequest;
      let result: Result;
      if (request.method === 'ping') result = {};
      else if (handler) result = await handler(request, controller.signal);
      else if (request.method === 'roots/list') result = { roots: [] };
      else throw new UpstreamError(`no client session can answer ${request.method} now`, -32601);
      reply = { jsonrpc: '2.0', id, result };
    } catch (error) {
      const e = error as Partial<UpstreamError> & { message?: string };
      reply = {
        jsonrpc: '2.0',
        id,
        error: { code: typeof e.code === 'number' ? e.code : -32603, message: e.message ?? String(error), ...(e.data !== undefined ? { data: e.data } : {}) },
      };
    } finally {
      this.serverRequests.delete(id);
    }
    this.onTrace?.('out', reply);
    if (!controller.signal.aborted) await this.transport.send(reply as JSONRPCMessage).catch(() => undefined);
  }
}
