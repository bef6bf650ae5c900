/**
 * The server side of one Streamable HTTP session, on plain node:http (the SDK's
 * transport converts every request to web streams, which costs more than the
 * whole proxy hop). A POST that carries requests is answered with plain JSON when
 * its reply is the first thing to send, and switches to an SSE stream as soon as a
 * notification or a server-to-client request for it comes first (progress,
 * sampling); both are valid answers per the spec, and the client accepts either.
 * Messages not tied to a request go to the session's GET stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js';
import type { JsonRpcId } from './requestTable';

type Message = { id?: JsonRpcId | null; method?: string; result?: unknown; error?: unknown };

/** The answer to one POST: undecided until the first message for it is written. */
class PostStream {
  mode: 'undecided' | 'json' | 'sse' = 'undecided';
  readonly open = new Set<JsonRpcId>();
  private readonly batchReplies: unknown[] = [];

  constructor(
    readonly res: ServerResponse,
    readonly ids: JsonRpcId[],
    private readonly batch: boolean,
    private readonly headers: Record<string, string>,
  ) {
    for (const id of ids) this.open.add(id);
  }

  get finished(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  /** Writes a message for one of this POST's requests; returns true when the POST is done. */
  write(message: Message, isReply: boolean): boolean {
    if (this.finished) return true;
    if (isReply && this.mode === 'undecided') {
      this.open.delete(message.id as JsonRpcId);
      if (!this.batch) {
        const body = JSON.stringify(message);
        this.res.writeHead(200, { ...this.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        this.res.end(body);
        return true;
      }
      this.batchReplies.push(message);
      if (this.open.size > 0) return false;
      this.res.writeHead(200, { ...this.headers, 'content-type': 'application/json' });
      this.res.end(JSON.stringify(this.batchReplies));
      return true;
    }
    if (this.mode === 'undecided') {
      this.mode = 'sse';
      this.res.writeHead(200, { ...this.headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      for (const reply of this.batchReplies) this.res.write(sseEvent(reply));
      this.res.flushHeaders();
    }
    this.res.write(sseEvent(message));
    if (isReply) this.open.delete(message.id as JsonRpcId);
    if (this.open.size === 0) {
      this.res.end();
      return true;
    }
    return false;
  }
}

function sseEvent(message: unknown): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

export class HttpSessionTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;

  private readonly byRequest = new Map<JsonRpcId, PostStream>();
  private standalone?: ServerResponse;
  private keepAlive?: NodeJS.Timeout;
  private closed = false;

  constructor(readonly sessionId: string) {}

  async start(): Promise<void> {}

  /** A request id of this session that still awaits its reply (ids must be unique while in flight). */
  inFlight(id: unknown): boolean {
    return (typeof id === 'string' || typeof id === 'number') && this.byRequest.has(id);
  }

  /** A POST whose body was parsed and validated by the caller; `extra` goes with each of its messages. */
  handlePost(res: ServerResponse, messages: Message[], batch: boolean, headers: Record<string, string> = {}, extra?: MessageExtraInfo): void {
    const ids = messages.filter((m) => m.method !== undefined && m.id !== undefined && m.id !== null).map((m) => m.id as JsonRpcId);
    if (ids.length === 0) {
      res.writeHead(202, headers).end();
    } else {
      const stream = new PostStream(res, ids, batch, { ...headers, 'mcp-session-id': this.sessionId });
      for (const id of ids) this.byRequest.set(id, stream);
      res.on('close', () => {
        for (const id of stream.open) if (this.byRequest.get(id) === stream) this.byRequest.delete(id);
      });
    }
    for (const message of messages) this.onmessage?.(message as JSONRPCMessage, extra);
  }

  /** The GET stream for messages not tied to a request; one at a time. */
  handleGet(req: IncomingMessage, res: ServerResponse): void {
    if (this.standalone && !this.standalone.writableEnded) {
      res.writeHead(409, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Conflict: Only one SSE stream is allowed per session' }, id: null }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'mcp-session-id': this.sessionId });
    res.flushHeaders();
    this.standalone = res;
    clearInterval(this.keepAlive);
    this.keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 25_000).unref();
    req.on('close', () => {
      if (this.standalone === res) {
        this.standalone = undefined;
        clearInterval(this.keepAlive);
      }
    });
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.closed) return;
    const m = message as Message;
    const isReply = m.method === undefined;
    const related = isReply ? m.id : options?.relatedRequestId;
    const stream = related !== undefined && related !== null ? this.byRequest.get(related) : undefined;
    if (stream && !stream.finished) {
      if (isReply) this.byRequest.delete(related as JsonRpcId);
      stream.write(m, isReply);
      return;
    }
    // A reply whose POST is gone is lost with that connection; anything else may use the GET stream.
    if (!isReply && this.standalone && !this.standalone.writableEnded) this.standalone.write(sseEvent(message));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepAlive);
    this.standalone?.end();
    for (const stream of new Set(this.byRequest.values())) if (!stream.finished) stream.res.end();
    this.byRequest.clear();
    this.onclose?.();
  }
}
