/**
 * The HTTP face of the gateway: Streamable HTTP on POST/GET/DELETE /mcp (the
 * aggregate, an SDK Server per session) and /mcp/servers/:name (one server,
 * transparent). This module validates what arrives (headers, size, JSON, session,
 * and every JSON-RPC frame and client request's params with the SDK's own
 * schemas) with the statuses and JSON-RPC codes the MCP spec and the SDK use,
 * then hands messages to the session's HttpSessionTransport.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import type { Principal } from '../contracts/api';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  ClientRequestSchema,
  ErrorCode,
  JSONRPCErrorResponseSchema,
  JSONRPCNotificationSchema,
  JSONRPCRequestSchema,
  JSONRPCResultResponseSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type MessageExtraInfo,
} from '@modelcontextprotocol/sdk/types.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { traceHeadersOf } from '../tracing/http';
import { AggregateCatalog, createAggregateServer } from './aggregate';
import type { Gateway, ListChange } from './gateway';
import type { VirtualServerSpec } from '../contracts/virtualServer';
import { HttpSessionTransport } from './httpTransport';
import type { GatewayKeys } from './linkKeys';
import { PassthroughSession } from './passthrough';
import { auditTransport, SessionAudit } from './requestAudit';
import type { AuditSink } from '../audit/log';
import type { PolicyEngine } from '../policy/engine';
import { sessionPolicy } from './sessionPolicy';

export interface GatewayHttpOptions {
  /** Runs before every /mcp request (e.g. the API's bearer-token check). */
  authenticate?: express.RequestHandler;
  /** Largest accepted request body (default 4 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Sessions idle this long are closed (clients that never send DELETE). Default 30 min. */
  sessionIdleMs?: number;
  /**
   * Signs session ids, so a session opened on one front gateway continues on any other
   * of the cluster (the id says what it routes to). Without keys, ids are random UUIDs
   * only this process knows.
   */
  keys?: GatewayKeys;
  /** The node whose instances this gateway owns (its worker runs here); the link listing names it. */
  node?: string;
  /** Where the specs of virtual servers (/mcp/virtual/<name>) are read; without it that route answers 404. */
  virtualServers?: VirtualServerDirectory;
  /** Told about name clashes a virtual server withholds (naming none, or overrides), once per clash. */
  onVirtualServerClash?: (message: string) => void;
  /** Where a record of every client request on /mcp and /mcp/servers/<name> goes (none: not recorded). */
  audit?: AuditSink;
  /** The Cedar policies client sessions are held to (none: only roles decide). */
  policy?: PolicyEngine;
}

/** The stored virtual server specs, as the gateway reads them (a short cache in front of Temporal). */
export interface VirtualServerDirectory {
  get(name: string): Promise<VirtualServerSpec | undefined>;
}

/** The route of a virtual server's session. */
const VIRTUAL_ROUTE = 'virtual:';

/** The route of a node-link session: one instance this node runs. */
const INSTANCE_ROUTE = 'instance:';

interface Session {
  /** '' for /mcp, the server name for /mcp/servers/:name, `virtual:<name>` for /mcp/virtual/:name, `instance:<id>` for the node link */
  route: string;
  transport: HttpSessionTransport;
  /** Who opened it (undefined on the node link, which the front already checked): only they may use it. */
  principal?: Principal;
  lastSeen: number;
  close(): Promise<void>;
}

type Message = { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };

const MAX_BATCH = 100;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function sendError(res: ServerResponse, status: number, code: number, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A zod error as one line: the first few bad fields with what is wrong with each. */
function describeIssues(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  const shown = issues.slice(0, 3).map((issue) => `${issue.path.length ? issue.path.map(String).join('.') : '(message)'}: ${issue.message}`);
  return `${shown.join('; ')}${issues.length > 3 ? `; and ${issues.length - 3} more` : ''}`.replace(/\s+/g, ' ');
}

/**
 * Null for a valid JSON-RPC 2.0 message (the SDK's schemas), else what is wrong
 * with it, naming the field. The kind it looks like (request, notification,
 * result, error) picks the schema, so the reason is about that kind.
 */
function frameProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'a message must be a JSON object';
  const m = value as Message;
  const schema =
    m.method !== undefined
      ? m.id !== undefined
        ? JSONRPCRequestSchema
        : JSONRPCNotificationSchema
      : m.error !== undefined
        ? JSONRPCErrorResponseSchema
        : JSONRPCResultResponseSchema;
  const parsed = schema.safeParse(value);
  return parsed.success ? null : describeIssues(parsed.error.issues);
}

/** The SDK's schema of each request a client may send, by method. */
const CLIENT_REQUESTS = new Map<string, (typeof ClientRequestSchema.options)[number]>(
  ClientRequestSchema.options.map((schema) => [schema.shape.method.value, schema]),
);

/**
 * The -32602 reply to a client request whose params do not match the SDK's
 * schema for its method, with a one-line message naming the bad field; null
 * when they match, or for a method the SDK does not know (the upstream decides).
 */
export function invalidParamsReply(message: JSONRPCMessage): JSONRPCMessage | null {
  const m = message as Message;
  if (typeof m.method !== 'string' || m.id === undefined || m.id === null) return null;
  const schema = CLIENT_REQUESTS.get(m.method);
  if (!schema) return null;
  const parsed = schema.safeParse(message);
  if (parsed.success) return null;
  return {
    jsonrpc: '2.0',
    id: m.id as string | number,
    error: { code: ErrorCode.InvalidParams, message: `Invalid params for ${m.method}: ${describeIssues(parsed.error.issues)}` },
  };
}

/** Puts the params check in front of whatever handles the session's messages. */
function checkParamsBefore(transport: Transport): void {
  const deliver = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const reply = invalidParamsReply(message);
    if (reply) void transport.send(reply).catch(() => undefined);
    else deliver?.(message, extra);
  };
}

function readBody(req: IncomingMessage & { body?: unknown }, limit: number): Promise<unknown> {
  // A body parser mounted before the gateway already consumed the stream.
  if (req.body !== undefined && req.readableEnded) return Promise.resolve(req.body);
  const tooLarge = () => new HttpError(413, -32000, `Payload Too Large: the request body exceeds ${limit} bytes`);
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge());
  // Plain 'data'/'end' listeners: `for await` over the request costs an async
  // iterator, its listeners and a promise per chunk, measurable on every call.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > limit) return;
      try {
        resolve(JSON.parse(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError(400, -32700, 'Parse error: Invalid JSON'));
      }
    });
  });
}

/**
 * Who owns a session: the principal's name qualified by its credential's kind, so an
 * identity provider's user whose `sub` equals a scoped token's name is not its owner.
 */
function sessionOwner(principal: Principal | undefined): string | undefined {
  return principal ? `${principal.source}:${principal.name}` : undefined;
}

/** The request handlers plus a close() that ends every session (mcpd shutdown). */
export class GatewayHttp {
  private readonly sessions = new Map<string, Session>();
  private readonly catalog: AggregateCatalog;
  /** Every aggregate session (/mcp and virtual servers) with its catalog, to tell it about list changes. */
  private readonly aggregateServers = new Map<Server, AggregateCatalog>();
  private readonly virtualCatalogs = new Map<string, AggregateCatalog>();
  private readonly virtualServers?: VirtualServerDirectory;
  private readonly onVirtualServerClash?: (message: string) => void;
  private readonly sweeper: NodeJS.Timeout;
  private readonly stopListening: () => void;
  private readonly maxBodyBytes: number;
  private readonly keys?: GatewayKeys;
  private readonly node?: string;
  private readonly audit?: AuditSink;
  private readonly policy?: PolicyEngine;

  constructor(
    private readonly gateway: Gateway,
    options: GatewayHttpOptions = {},
  ) {
    this.catalog = new AggregateCatalog(gateway);
    this.maxBodyBytes = options.maxBodyBytes ?? 4 * 1024 * 1024;
    this.keys = options.keys;
    this.node = options.node;
    this.virtualServers = options.virtualServers;
    this.onVirtualServerClash = options.onVirtualServerClash;
    // Every /mcp session hears about every change of the aggregate lists; a virtual server's about its servers' changes.
    this.audit = options.audit;
    this.policy = options.policy;
    this.stopListening = gateway.onListChanged((change) => {
      for (const [server, catalog] of this.aggregateServers) {
        if (catalog.scope) void this.tellVirtualSession(server, catalog, change);
        else this.tellListChanged(server, change.kinds);
      }
    });
    const idleMs = options.sessionIdleMs ?? 30 * 60_000;
    this.sweeper = setInterval(
      () => {
        const cutoff = Date.now() - idleMs;
        for (const session of this.sessions.values()) if (session.lastSeen < cutoff) void session.close();
      },
      Math.min(idleMs, 60_000),
    ).unref();
  }

  /** Handles /mcp (server undefined), /mcp/servers/<server> or, with `virtual`, /mcp/virtual/<virtual>; never throws. */
  async handle(req: IncomingMessage & { body?: unknown }, res: ServerResponse, server?: string, principal?: Principal, virtual?: string): Promise<void> {
    try {
      await this.dispatch(req, res, virtual !== undefined ? `${VIRTUAL_ROUTE}${virtual}` : (server ?? ''), principal);
    } catch (error) {
      if (error instanceof HttpError) sendError(res, error.status, error.code, error.message);
      else sendError(res, 500, -32603, `Internal error: ${(error as Error).message}`);
    }
  }

  /** The node side of the gateway link: one instance this node runs, as an MCP endpoint (the caller checked the link token). */
  async handleInstance(req: IncomingMessage & { body?: unknown }, res: ServerResponse, instanceId: string): Promise<void> {
    try {
      await this.dispatch(req, res, `${INSTANCE_ROUTE}${instanceId}`, undefined);
    } catch (error) {
      if (error instanceof HttpError) sendError(res, error.status, error.code, error.message);
      else sendError(res, 500, -32603, `Internal error: ${(error as Error).message}`);
    }
  }

  /**
   * The node side of the gateway link: the instances this node runs, as JSON. With
   * `?after=<version>` it answers once the membership version differs from that (or
   * after `wait` ms, at most 30 s): front gateways long-poll it to follow attaches,
   * readiness changes and detaches within one round trip.
   */
  async handleListing(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const query = new URL(req.url ?? '/', 'http://link').searchParams;
    const after = query.get('after');
    if (after !== null && /^\d+$/.test(after)) {
      const waitMs = Math.min(Number(query.get('wait') ?? 25_000) || 0, 30_000);
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      await this.gateway.waitForMembershipChange(Number(after), waitMs, gone.signal);
      if (gone.signal.aborted && !res.writable) return;
    }
    const body = JSON.stringify({
      node: this.node ?? null,
      version: this.gateway.membershipVersion,
      instances: this.gateway
        .instances()
        .filter((i) => i.remoteNode === null)
        .map((i) => ({ id: i.id, server: i.server, transport: i.transport, containerId: i.containerId, ready: i.ready && i.connected })),
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  }

  /**
   * A virtual server's spec changed (applied or deleted in this process): its sessions
   * re-read it and hear that every list may have changed.
   */
  virtualServerChanged(name: string): void {
    for (const [server, catalog] of this.aggregateServers) {
      if (catalog.scope?.name === name) this.tellListChanged(server, new Set(['tools', 'prompts', 'resources']));
    }
  }

  private tellListChanged(server: Server, kinds: Set<string>): void {
    if (kinds.has('tools')) void server.sendToolListChanged().catch(() => undefined);
    if (kinds.has('prompts')) void server.sendPromptListChanged().catch(() => undefined);
    if (kinds.has('resources') || kinds.has('resourceTemplates')) void server.sendResourceListChanged().catch(() => undefined);
  }

  /** A change of servers a virtual server draws from reaches its sessions; with tool search their two tools stay as they are. */
  private async tellVirtualSession(server: Server, catalog: AggregateCatalog, change: ListChange): Promise<void> {
    const spec = await catalog.scope!.spec().catch(() => undefined);
    if (!spec || !spec.servers.some((s) => change.servers.has(s.name))) return;
    const kinds = new Set<string>(change.kinds);
    if (spec.toolSearch) kinds.delete('tools');
    this.tellListChanged(server, kinds);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.stopListening();
    await Promise.all([...this.sessions.values()].map((s) => s.close()));
  }

  private async dispatch(req: IncomingMessage & { body?: unknown }, res: ServerResponse, route: string, principal: Principal | undefined): Promise<void> {
    const sessionHeader = req.headers['mcp-session-id'];
    let session = typeof sessionHeader === 'string' ? this.sessions.get(sessionHeader) : undefined;
    const claims = typeof sessionHeader === 'string' && !session ? this.keys?.verifySession(sessionHeader) : undefined;
    const opensHere = claims !== undefined && claims.route === route && claims.principal === sessionOwner(principal);
    if (typeof sessionHeader === 'string' && !session && req.method !== 'DELETE' && opensHere) {
      // Opened by another front gateway (or by this one before a restart): the id says all it routes by.
      await this.checkRoute(route);
      session = await this.createSession(route, principal, sessionHeader);
    }
    if (typeof sessionHeader === 'string' && !session && req.method === 'DELETE' && opensHere) {
      res.writeHead(200).end(); // nothing of it lives here
      return;
    }
    // Another token holder who learns a session id gets nothing from it.
    if (typeof sessionHeader === 'string' && (!session || session.route !== route || sessionOwner(session.principal) !== sessionOwner(principal))) {
      throw new HttpError(404, -32001, 'Session not found');
    }
    const version = req.headers['mcp-protocol-version'];
    if (typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      throw new HttpError(400, -32000, `Bad Request: Unsupported protocol version: ${version} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`);
    }
    if (session) session.lastSeen = Date.now();

    if (req.method === 'GET') {
      if (!String(req.headers.accept ?? '').includes('text/event-stream')) {
        throw new HttpError(406, -32000, 'Not Acceptable: Client must accept text/event-stream');
      }
      if (!session) throw new HttpError(400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      session.transport.handleGet(req, res);
      return;
    }
    if (req.method === 'DELETE') {
      if (!session) throw new HttpError(400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      await session.close();
      res.writeHead(200).end();
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'GET, POST, DELETE');
      throw new HttpError(405, -32000, 'Method not allowed.');
    }

    const accept = String(req.headers.accept ?? '');
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      throw new HttpError(406, -32000, 'Not Acceptable: Client must accept both application/json and text/event-stream');
    }
    if (!/^application\/json\s*(;|$)/i.test(String(req.headers['content-type'] ?? ''))) {
      throw new HttpError(415, -32000, 'Unsupported Media Type: Content-Type must be application/json');
    }
    const body = await readBody(req, this.maxBodyBytes);
    const batch = Array.isArray(body);
    const received = batch ? (body as unknown[]) : [body];
    if (received.length === 0 || received.length > MAX_BATCH) {
      throw new HttpError(400, -32600, `Invalid Request: a batch must hold 1 to ${MAX_BATCH} messages`);
    }
    for (const message of received) {
      const problem = frameProblem(message);
      if (problem) throw new HttpError(400, ErrorCode.InvalidRequest, `Invalid Request: not a JSON-RPC 2.0 message: ${problem}`);
    }
    const messages = received as Message[];
    // MCP ids are strings or integers; the SDK drops a request with an id JSON cannot carry exactly
    // and never answers it, so such a request would wait forever (found by tests/fuzz).
    const oddId = messages.find((m) => typeof m.id === 'number' && !Number.isSafeInteger(m.id));
    if (oddId) throw new HttpError(400, ErrorCode.InvalidRequest, `Invalid Request: "id" must be a string or an integer, got ${String(oddId.id)}`);
    const initialize = messages.some((m) => m.method === 'initialize');

    if (session) {
      if (initialize) throw new HttpError(400, -32600, 'Invalid Request: Server already initialized');
      const reused = messages.find((m) => m.method !== undefined && session.transport.inFlight(m.id));
      if (reused) throw new HttpError(400, -32600, `Invalid Request: id ${JSON.stringify(reused.id)} is already used by a request in flight`);
      session.transport.handlePost(res, messages as never, batch, {}, tracedRequest(req));
      return;
    }
    if (!initialize) throw new HttpError(400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    if (messages.length > 1) throw new HttpError(400, -32600, 'Invalid Request: Only one initialization request is allowed');
    await this.checkRoute(route);
    const created = await this.createSession(route, principal);
    created.transport.handlePost(res, messages as never, batch, {}, tracedRequest(req));
  }

  /** A session may start (or be taken over) only where its server, or for a link session its instance, is served. */
  private async checkRoute(route: string): Promise<void> {
    if (route.startsWith(INSTANCE_ROUTE)) {
      const instanceId = route.slice(INSTANCE_ROUTE.length);
      if (!this.gateway.isLocal(instanceId)) throw new HttpError(404, -32003, `instance ${instanceId} does not run on this node`);
    } else if (route.startsWith(VIRTUAL_ROUTE)) {
      const name = route.slice(VIRTUAL_ROUTE.length);
      if (!this.virtualServers || !(await this.virtualServers.get(name))) throw new HttpError(404, -32003, `virtual server "${name}" not found`);
    } else if (route !== '' && !this.gateway.knowsServer(route)) {
      throw new HttpError(404, -32003, `MCP server "${route}" is not running`);
    }
  }

  private async createSession(route: string, principal: Principal | undefined, id?: string): Promise<Session> {
    const transport = new HttpSessionTransport(id ?? this.keys?.issueSession({ route, principal: sessionOwner(principal) }) ?? randomUUID());
    const session: Session = { route, transport, principal, lastSeen: Date.now(), close: () => transport.close() };
    // Client sessions are recorded; the node link is not (the front gateway that took the client's request recorded it).
    const audit =
      this.audit && !route.startsWith(INSTANCE_ROUTE)
        ? new SessionAudit(this.audit, principal, route === '' || route.startsWith(VIRTUAL_ROUTE) ? undefined : route)
        : undefined;
    // The node link has no principal: the front gateway that took the client's request decided.
    const policy = this.policy && principal ? sessionPolicy(this.policy, principal) : undefined;
    this.sessions.set(transport.sessionId, session);
    if (route === '' || route.startsWith(VIRTUAL_ROUTE)) {
      const catalog = route === '' ? this.catalog : this.virtualCatalog(route.slice(VIRTUAL_ROUTE.length));
      const aggregateSession = createAggregateServer(this.gateway, catalog, () => transport.sessionId, audit, policy);
      const aggregate = aggregateSession.server;
      this.aggregateServers.set(aggregate, catalog);
      transport.onclose = () => {
        audit?.closed();
        aggregateSession.close();
        this.aggregateServers.delete(aggregate);
        this.sessions.delete(transport.sessionId);
        this.gateway.router.forgetSession(transport.sessionId);
      };
      await aggregate.connect(transport);
      checkParamsBefore(transport);
      if (audit) auditTransport(transport, audit);
    } else if (route.startsWith(INSTANCE_ROUTE)) {
      const instanceId = route.slice(INSTANCE_ROUTE.length);
      const server = this.gateway.instances().find((i) => i.id === instanceId)?.server ?? '';
      const link = new PassthroughSession(this.gateway, server, transport, transport.sessionId, instanceId);
      transport.onclose = () => {
        link.closed();
        this.sessions.delete(transport.sessionId);
      };
      link.start();
    } else {
      const passthrough = new PassthroughSession(this.gateway, route, transport, transport.sessionId, undefined, audit, policy);
      transport.onclose = () => {
        audit?.closed();
        passthrough.closed();
        this.sessions.delete(transport.sessionId);
      };
      passthrough.start();
      checkParamsBefore(transport);
      if (audit) auditTransport(transport, audit);
    }
    return session;
  }

  /** One catalog per virtual server, shared by its sessions; the spec is read through the directory's cache. */
  private virtualCatalog(name: string): AggregateCatalog {
    let catalog = this.virtualCatalogs.get(name);
    if (!catalog) {
      const directory = this.virtualServers!;
      catalog = new AggregateCatalog(this.gateway, { name, spec: () => directory.get(name) }, this.onVirtualServerClash);
      this.virtualCatalogs.set(name, catalog);
    }
    return catalog;
  }
}

/**
 * Which gateway endpoint a request URL names: { server: undefined } for /mcp,
 * { server } for /mcp/servers/<server>, undefined for any other path (matching
 * what mountGateway's express routes accept, trailing slash and query included).
 * It lets a node:http server hand MCP traffic to GatewayHttp.handle without
 * express: express re-prototypes every request and response, which measured at
 * about 50 µs of CPU per call, a third of the gateway's cost per call.
 */
export function matchGatewayPath(url: string | undefined): { server?: string; virtual?: string } | undefined {
  if (!url) return undefined;
  const queryAt = url.indexOf('?');
  let path = queryAt === -1 ? url : url.slice(0, queryAt);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  if (path === '/mcp') return {};
  for (const [prefix, key] of [
    ['/mcp/servers/', 'server'],
    ['/mcp/virtual/', 'virtual'],
  ] as const) {
    if (!path.startsWith(prefix)) continue;
    const name = path.slice(prefix.length);
    if (name === '' || name.includes('/')) return undefined;
    try {
      return { [key]: decodeURIComponent(name) };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The gateway link's paths on a node (front gateways forward to them; the link token guards them). */
export const LINK_PREFIX = '/mcp-link/v1/instances';

/** The link endpoint of one instance on a node whose gateway answers at `gatewayUrl`. */
export function linkInstanceUrl(gatewayUrl: string, instanceId: string): string {
  return `${gatewayUrl.replace(/\/+$/, '')}${LINK_PREFIX}/${encodeURIComponent(instanceId)}`;
}

/** A link endpoint: the node's listing, one instance's MCP endpoint, or one instance's logs. */
export type LinkPath = { listing: true } | { instanceId: string } | { logsOf: string };

/** Which link endpoint a request URL names, or undefined for any other path. */
export function matchLinkPath(url: string | undefined): LinkPath | undefined {
  if (!url) return undefined;
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  if (path === LINK_PREFIX) return { listing: true };
  if (!path.startsWith(`${LINK_PREFIX}/`)) return undefined;
  const [name, rest, ...more] = path.slice(LINK_PREFIX.length + 1).split('/');
  if (name === '' || more.length > 0 || (rest !== undefined && rest !== 'logs')) return undefined;
  try {
    const instanceId = decodeURIComponent(name);
    return rest === 'logs' ? { logsOf: instanceId } : { instanceId };
  } catch {
    return undefined;
  }
}

/**
 * Serves the gateway on an express app. Mount it before any body parser (it reads
 * the raw body and enforces the size limit itself); a body that a parser already
 * consumed is used as is.
 */
export function mountGateway(app: express.Express, gateway: Gateway, options: GatewayHttpOptions = {}): GatewayHttp {
  const http = new GatewayHttp(gateway, options);
  const guard: express.RequestHandler = options.authenticate ?? ((_req, _res, next) => next());
  app.all('/mcp', guard, (req, res) => void http.handle(req, res));
  app.all('/mcp/servers/:name', guard, (req, res) => void http.handle(req, res, String(req.params.name)));
  app.all('/mcp/virtual/:name', guard, (req, res) => void http.handle(req, res, undefined, undefined, String(req.params.name)));
  return http;
}

/** What each message of a request tells its handlers about the request: its server span, as trace headers. */
function tracedRequest(req: IncomingMessage): MessageExtraInfo | undefined {
  const headers = traceHeadersOf(req);
  return headers ? { requestInfo: { headers } } : undefined;
}
