/**
 * The HTTP face of the gateway: Streamable HTTP on POST/GET/DELETE /mcp (the
 * aggregate) and /mcp/servers/:name (one server, transparent). The SDK transport
 * does the protocol work per session (SSE streams, session ids, header checks,
 * JSON parse errors, body limit); this module finds or creates the session.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { AggregateCatalog, createAggregateServer } from './aggregate';
import type { Gateway } from './gateway';
import { PassthroughSession } from './passthrough';

export interface GatewayHttpOptions {
  /** Runs before every /mcp request (e.g. the API's bearer-token check). */
  authenticate?: express.RequestHandler;
  /** Largest accepted request body; larger ones get 413. */
  maxBodyBytes?: number;
  /** Sessions idle this long are closed (clients that never send DELETE). */
  sessionIdleMs?: number;
}

interface Session {
  /** '' for /mcp, the server name for /mcp/servers/:name */
  route: string;
  transport: StreamableHTTPServerTransport;
  lastSeen: number;
  close(): Promise<void>;
}

function jsonRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

/** The request handlers plus a close() that ends every session (mcpd shutdown). */
export class GatewayHttp {
  private readonly sessions = new Map<string, Session>();
  private readonly catalog: AggregateCatalog;
  private readonly aggregateServers = new Set<Server>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly stopListening: () => void;

  constructor(
    private readonly gateway: Gateway,
    private readonly options: GatewayHttpOptions = {},
  ) {
    this.catalog = new AggregateCatalog(gateway);
    // Every /mcp session hears about every change of the aggregate lists.
    this.stopListening = gateway.onListChanged((change) => {
      for (const server of this.aggregateServers) {
        if (change.kinds.has('tools')) void server.sendToolListChanged().catch(() => undefined);
        if (change.kinds.has('prompts')) void server.sendPromptListChanged().catch(() => undefined);
        if (change.kinds.has('resources') || change.kinds.has('resourceTemplates')) {
          void server.sendResourceListChanged().catch(() => undefined);
        }
      }
    });
    const idleMs = options.sessionIdleMs ?? 30 * 60_000;
    this.sweeper = setInterval(() => {
      const cutoff = Date.now() - idleMs;
      for (const session of this.sessions.values()) if (session.lastSeen < cutoff) void session.close();
    }, Math.min(idleMs, 60_000)).unref();
  }

  /** Handles /mcp (server undefined) or /mcp/servers/<server>. */
  async handle(req: IncomingMessage & { body?: unknown }, res: ServerResponse, server?: string): Promise<void> {
    const route = server ?? '';
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const session = this.sessions.get(sessionId);
      if (!session || session.route !== route) {
        jsonRpcError(res, 404, -32001, 'Session not found');
        return;
      }
      session.lastSeen = Date.now();
      await session.transport.handleRequest(req, res, req.body);
      return;
    }
    if (req.method !== 'POST') {
      jsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      return;
    }
    if (server !== undefined && !this.gateway.knowsServer(server)) {
      jsonRpcError(res, 404, -32003, `MCP server "${server}" is not running`);
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      maxRequestBodySize: this.options.maxBodyBytes,
      onsessioninitialized: (id) => {
        this.sessions.set(id, session);
      },
    });
    const session: Session = { route, transport, lastSeen: Date.now(), close: async () => undefined };
    const sessionKey = () => transport.sessionId ?? 'anonymous';
    if (server === undefined) {
      const aggregate = createAggregateServer(this.gateway, this.catalog, sessionKey);
      this.aggregateServers.add(aggregate);
      session.close = () => aggregate.close();
      transport.onclose = () => {
        this.aggregateServers.delete(aggregate);
        this.forget(transport);
      };
      await aggregate.connect(transport);
    } else {
      const passthrough = new PassthroughSession(this.gateway, server, transport, randomUUID());
      passthrough.start();
      session.close = () => transport.close();
      transport.onclose = () => {
        passthrough.closed();
        this.forget(transport);
      };
      await transport.start();
    }
    await transport.handleRequest(req, res, req.body);
    // Anything but a successful initialize leaves no session behind.
    if (transport.sessionId === undefined || !this.sessions.has(transport.sessionId)) await session.close();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.stopListening();
    await Promise.all([...this.sessions.values()].map((s) => s.close()));
  }

  private forget(transport: StreamableHTTPServerTransport): void {
    if (transport.sessionId) this.sessions.delete(transport.sessionId);
    this.gateway.router.forgetSession(transport.sessionId ?? '');
  }
}

/**
 * Serves the gateway on an express app. Mount it before any body parser (the
 * SDK transport reads the raw body and enforces the size limit); a body that a
 * parser already consumed is used as is.
 */
export function mountGateway(app: express.Express, gateway: Gateway, options: GatewayHttpOptions = {}): GatewayHttp {
  const http = new GatewayHttp(gateway, options);
  const guard: express.RequestHandler = options.authenticate ?? ((_req, _res, next) => next());
  app.all('/mcp', guard, (req, res, next) => {
    http.handle(req, res).catch(next);
  });
  app.all('/mcp/servers/:name', guard, (req, res, next) => {
    http.handle(req, res, String(req.params.name)).catch(next);
  });
  return http;
}
