/**
 * /mcp: one MCP server (the SDK's low-level Server, one per client session) whose
 * lists are the union of every server with a ready instance, names prefixed
 * `<server>__`. Each call goes through Gateway.call to the session's replica of
 * that server, relaying progress, cancellation and server-to-client requests.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  ResultSchema,
  type ServerNotification,
  type ServerRequest as SdkServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import { traceContextOf } from '../tracing/http';
import type { Gateway, ListKind } from './gateway';
import { NameTable, type QualifiedName } from './names';
import type { VirtualServerSpec } from '../contracts/virtualServer';
import { clashMessage, exposePrompts, exposeTools, servesResource, ToolIndex, type Clash, type ServerItems } from './virtualCatalog';
import type { CallHooks, Params, Result } from './upstream';
import type { SessionAudit } from './requestAudit';
import { listFilter, type ListFilter, type SessionPolicy } from './sessionPolicy';
import { POLICY_DENIED_CODE, type PolicyAction } from '../contracts/policy';
import type { PolicyResource } from '../policy/entities';
import { mcpTarget } from '../audit/record';

type Extra = RequestHandlerExtra<SdkServerRequest, ServerNotification>;

/** The virtual server a catalog serves (absent: the /mcp aggregate of every ready server). */
export interface CatalogScope {
  name: string;
  /** The stored spec, or undefined once the virtual server is deleted. */
  spec(): Promise<VirtualServerSpec | undefined>;
}

/** Names and URIs seen in the latest lists, shared by all sessions of one endpoint (/mcp, or one virtual server). */
export class AggregateCatalog {
  readonly tools = new NameTable();
  readonly prompts = new NameTable();
  private readonly resourceOwners = new Map<string, string>();
  private readonly templateOwners = new Map<string, { server: string; template: UriTemplate }>();
  /** A virtual server's routes of its exposed names (prefix naming may rename, overrides may too). */
  private toolRoutes = new Map<string, QualifiedName>();
  private promptRoutes = new Map<string, QualifiedName>();
  /** The clashes of the latest lists (virtual servers with naming none, or overrides): names withheld. */
  toolClashes: Clash[] = [];
  promptClashes: Clash[] = [];
  private readonly search = new ToolIndex();

  constructor(
    private readonly gateway: Gateway,
    readonly scope?: CatalogScope,
    private readonly onClash?: (message: string) => void,
  ) {}

  /** The spec of the scope; an McpError when the virtual server was deleted. */
  async currentSpec(): Promise<VirtualServerSpec | undefined> {
    if (!this.scope) return undefined;
    const spec = await this.scope.spec();
    if (!spec) throw new McpError(ErrorCode.InvalidRequest, `virtual server "${this.scope.name}" no longer exists`);
    return spec;
  }

  /** The servers this endpoint draws from, among those ready. */
  async servers(): Promise<string[]> {
    const ready = this.gateway.readyServers();
    const spec = await this.currentSpec();
    if (!spec) return ready;
    const wanted = new Set(spec.servers.map((s) => s.name));
    return ready.filter((s) => wanted.has(s));
  }

  /** Every item of one kind across ready servers; a failing server is left out, never waited on twice. */
  async collect(kind: ListKind): Promise<ServerItems[]> {
    const servers = await this.servers();
    const settled = await Promise.allSettled(servers.map((server) => this.gateway.list(server, kind)));
    const out: ServerItems[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') out.push({ server: servers[i], items: s.value as Record<string, unknown>[] });
    });
    return out;
  }

  /** The tools this endpoint exposes; `visible` (the session's policy) leaves out the ones it may not see. */
  async listTools(visible?: ListFilter): Promise<Result> {
    const spec = await this.currentSpec();
    const collected = await this.collect('tools');
    if (spec) {
      const exposed = exposeTools(spec, collected);
      this.toolRoutes = exposed.routes;
      this.reportClashes('tool', exposed.clashes, this.toolClashes);
      this.toolClashes = exposed.clashes;
      return { tools: visible ? exposed.items.filter((t) => routeVisible(this.toolRoutes, String(t.name), visible)) : exposed.items };
    }
    const tools: Record<string, unknown>[] = [];
    for (const { server, items } of collected) {
      const names = this.tools.setServer(
        server,
        items.map((t) => String(t.name)),
      );
      items.forEach((tool, i) => {
        if (!visible || visible(server, String(tool.name))) tools.push({ ...tool, name: names[i] });
      });
    }
    return { tools };
  }

  /** The server and upstream name of an exposed tool name, or an McpError saying why there is none. */
  async resolveTool(name: string): Promise<QualifiedName> {
    const spec = await this.currentSpec();
    let target: QualifiedName | null | undefined;
    if (spec) {
      target = this.toolRoutes.get(name);
      if (!target) {
        await this.listTools();
        target = this.toolRoutes.get(name);
      }
      const clash = this.toolClashes.find((c) => c.name === name);
      if (!target && clash) throw new McpError(ErrorCode.InvalidParams, clashMessage(this.scope!.name, 'tool', clash));
    } else {
      target = this.tools.resolve(name);
    }
    if (!target || !this.gateway.knowsServer(target.server) || !(await this.mayHaveTool(target.server, target.name))) {
      throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${name}`);
    }
    return target;
  }

  /** False only when the server's tool list is known and lacks the tool. */
  async mayHaveTool(server: string, name: string): Promise<boolean> {
    const tools = await this.gateway.list(server, 'tools').catch(() => undefined);
    return tools === undefined || (tools as { name?: unknown }[]).some((t) => t.name === name);
  }

  /** The prompts this endpoint exposes; `visible` (the session's policy) leaves out the ones it may not get. */
  async listPrompts(visible?: ListFilter): Promise<Result> {
    const spec = await this.currentSpec();
    const collected = await this.collect('prompts');
    if (spec) {
      const exposed = exposePrompts(spec, collected);
      this.promptRoutes = exposed.routes;
      this.reportClashes('prompt', exposed.clashes, this.promptClashes);
      this.promptClashes = exposed.clashes;
      return { prompts: visible ? exposed.items.filter((p) => routeVisible(this.promptRoutes, String(p.name), visible)) : exposed.items };
    }
    const prompts: Record<string, unknown>[] = [];
    for (const { server, items } of collected) {
      const names = this.prompts.setServer(
        server,
        items.map((p) => String(p.name)),
      );
      items.forEach((prompt, i) => {
        if (!visible || visible(server, String(prompt.name))) prompts.push({ ...prompt, name: names[i] });
      });
    }
    return { prompts };
  }

  async resolvePrompt(name: string): Promise<QualifiedName> {
    const spec = await this.currentSpec();
    let target: QualifiedName | null | undefined;
    if (spec) {
      target = this.promptRoutes.get(name);
      if (!target) {
        await this.listPrompts();
        target = this.promptRoutes.get(name);
      }
      const clash = this.promptClashes.find((c) => c.name === name);
      if (!target && clash) throw new McpError(ErrorCode.InvalidParams, clashMessage(this.scope!.name, 'prompt', clash));
    } else {
      target = this.prompts.resolve(name);
    }
    if (!target || !this.gateway.knowsServer(target.server)) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${name}`);
    return target;
  }

  /** The resources this endpoint exposes; `visible` (the session's policy) leaves out the ones it may not read. */
  async listResources(visible?: ListFilter): Promise<Result> {
    const spec = await this.currentSpec();
    const resources: Record<string, unknown>[] = [];
    for (const { server, items } of await this.collect('resources')) {
      for (const r of items) {
        const uri = String(r.uri);
        if (spec && !servesResource(spec, server, uri)) continue;
        if (!this.resourceOwners.has(uri) || this.resourceOwners.get(uri) === server) {
          // Owners are known whatever the session may see: reads are routed (and checked) by them.
          this.resourceOwners.set(uri, server);
          if (!visible || visible(server, uri)) resources.push(r);
        }
      }
    }
    return { resources };
  }

  async listResourceTemplates(): Promise<Result> {
    const spec = await this.currentSpec();
    const resourceTemplates: Record<string, unknown>[] = [];
    for (const { server, items } of await this.collect('resourceTemplates')) {
      for (const t of items) {
        if (spec && !servesResource(spec, server, String(t.uriTemplate))) continue;
        this.rememberTemplate(server, String(t.uriTemplate));
        resourceTemplates.push(t);
      }
    }
    return { resourceTemplates };
  }

  /** Which server serves a URI: a listed resource, else the first matching template (of a server in scope, passing its filter). */
  async ownerOfUri(uri: string): Promise<string | undefined> {
    const spec = await this.currentSpec();
    const ready = new Set(await this.servers());
    const serves = (server: string) => ready.has(server) && (!spec || servesResource(spec, server, uri));
    const owner = this.resourceOwners.get(uri);
    if (owner && serves(owner)) return owner;
    await Promise.all([this.listResources(), this.listResourceTemplates()]);
    const listed = this.resourceOwners.get(uri);
    if (listed && serves(listed)) return listed;
    for (const [uriTemplate, { server, template }] of this.templateOwners) {
      if (ready.has(server) && (!spec || servesResource(spec, server, uriTemplate)) && template.match(uri)) return server;
    }
    return undefined;
  }

  async ownerOfTemplate(uriTemplate: string): Promise<string | undefined> {
    if (!this.templateOwners.has(uriTemplate)) await this.listResourceTemplates();
    const owner = this.templateOwners.get(uriTemplate)?.server;
    if (owner === undefined || !(await this.servers()).includes(owner)) return undefined;
    const spec = await this.currentSpec();
    return !spec || servesResource(spec, owner, uriTemplate) ? owner : undefined;
  }

  /** Tool search: the exposed tools best matching a query (see ToolIndex). */
  /** The best matches of `query` among the exposed tools; `visible` (the session's policy) leaves out the ones it may not see. */
  async findTools(query: string, limit: number, visible?: ListFilter): Promise<Record<string, unknown>[]> {
    const { tools } = (await this.listTools()) as { tools: Record<string, unknown>[] };
    this.search.update(tools);
    if (!visible) return this.search.find(query, limit);
    return this.search
      .find(query, tools.length)
      .filter((t) => routeVisible(this.toolRoutes, String(t.name), visible))
      .slice(0, limit);
  }

  private reportClashes(kind: 'tool' | 'prompt', clashes: Clash[], before: Clash[]): void {
    if (!this.scope || !this.onClash) return;
    const known = new Set(before.map((c) => `${c.name}\n${c.owners.join()}`));
    for (const clash of clashes) if (!known.has(`${clash.name}\n${clash.owners.join()}`)) this.onClash(clashMessage(this.scope.name, kind, clash));
  }

  private rememberTemplate(server: string, uriTemplate: string): void {
    if (this.templateOwners.has(uriTemplate)) return;
    try {
      this.templateOwners.set(uriTemplate, { server, template: new UriTemplate(uriTemplate) });
    } catch {
      // A template the SDK cannot parse is still listed; it just cannot route reads.
    }
  }
}

export interface AggregateServerOptions {
  /** The first page of a list holds at most this many items; the rest follow by cursor (default 1000). */
  pageSize?: number;
}

/** The tools a tool-search endpoint exposes instead of its catalog. */
export const TOOL_SEARCH_TOOLS = [
  {
    name: 'find_tools',
    description:
      'Search the tools this endpoint can call, by words of their names and descriptions. Returns the best matches with their input schemas; call one with call_tool.',
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', description: 'What the tool should do, e.g. "create issue" or "read file"' },
        limit: { type: 'integer', minimum: 1, maximum: 50, description: 'How many tools to return (default 10)' },
      },
      required: ['query'],
    },
    annotations: { readOnlyHint: true, title: 'Find tools' },
  },
  {
    name: 'call_tool',
    description: 'Call a tool found with find_tools, by its name, with arguments matching its input schema.',
    inputSchema: {
      type: 'object',
      properties: {
        name: { type: 'string', description: 'The tool name find_tools returned' },
        arguments: { type: 'object', description: 'The arguments of the tool', additionalProperties: true },
      },
      required: ['name'],
    },
    annotations: { title: 'Call a tool' },
  },
] as const;

/** An opaque list cursor: the offset of the next page. */
function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  const m = /^o:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new McpError(ErrorCode.InvalidParams, 'Invalid cursor');
  return Number(m[1]);
}

/** One page of a list result, with nextCursor when more follow. */
export function page(result: Result, key: string, cursor: string | undefined, size: number): Result {
  const items = result[key] as unknown[];
  const offset = decodeCursor(cursor);
  if (offset === 0 && items.length <= size) return result;
  const slice = items.slice(offset, offset + size);
  return { [key]: slice, ...(offset + size < items.length ? { nextCursor: encodeCursor(offset + size) } : {}) };
}

export interface AggregateSession {
  server: Server;
  /** Ends what the session listens to (call when its transport closes). */
  close(): void;
}

export function createAggregateServer(
  gateway: Gateway,
  catalog: AggregateCatalog,
  session: () => string,
  audit?: SessionAudit,
  policy?: SessionPolicy,
  options: AggregateServerOptions = {},
): AggregateSession {
  const pageSize = options.pageSize ?? 1000;
  const scope = catalog.scope;
  const server = new Server(
    { name: scope ? `mcpd-virtual-${scope.name}` : 'mcpd', version: '0.1.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { listChanged: true, subscribe: true },
        prompts: { listChanged: true },
        completions: {},
        logging: {},
      },
      instructions: scope
        ? `mcpd virtual server "${scope.name}": a curated set of tools, resources and prompts of some of the fleet's MCP servers.`
        : 'mcpd gateway: the tools, resources and prompts of every ready MCP server, named <server>__<name>.',
    },
  );
  const subscriptions = new Map<string, string>(); // uri -> server

  /** Calls the session's replica of a server with the hooks that relay to this client. */
  const forward = async (upstreamServer: string, method: string, params: Params, extra: Extra): Promise<Result> => {
    const note = audit?.note(extra.requestId);
    if (note) {
      note.server = upstreamServer;
      note.target = mcpTarget(method, params); // the upstream's own name, not the prefixed one
    }
    const instanceId = gateway.route(session(), upstreamServer);
    if (note) note.instance = instanceId;
    const hooks: CallHooks = {
      onProgress: (progress) => {
        void extra.sendNotification({ method: 'notifications/progress', params: progress } as ServerNotification);
      },
      onServerRequest: (request, signal) => extra.sendRequest({ method: request.method, params: request.params } as SdkServerRequest, ResultSchema, { signal }),
    };
    const traceContext = traceContextOf(extra.requestInfo?.headers);
    const result = await gateway.call(instanceId, { method, params }, { timeoutMs: gateway.callTimeoutMs, signal: extra.signal, hooks, traceContext });
    if (note) note.redactions = gateway.redactionsIn(result);
    return result;
  };

  /** Throws the JSON-RPC error of a request the session's policy denies. */
  const enforce = (action: PolicyAction, resource: PolicyResource, extra: Extra): void => {
    const note = audit?.note(extra.requestId);
    if (note) {
      // Known before any replica is chosen: a denied request is still about this server and tool.
      note.server = resource.server;
      note.target = resource.kind === 'resource' ? resource.uri : resource.name;
    }
    const refusal = policy?.refusal(action, resource, note);
    if (refusal) throw new McpError(POLICY_DENIED_CODE, refusal);
  };
  const visibleTools = () => listFilter(policy, 'tools');
  const callTool = async (name: string, params: Params, extra: Extra): Promise<Result> => {
    const target = await catalog.resolveTool(name);
    enforce('tools/call', { kind: 'tool', server: target.server, name: target.name }, extra);
    return forward(target.server, 'tools/call', { ...params, name: target.name }, extra);
  };

  server.setRequestHandler(ListToolsRequestSchema, async (request, extra) => {
    const spec = await catalog.currentSpec();
    if (spec?.toolSearch) return { tools: TOOL_SEARCH_TOOLS.map((t) => ({ ...t })) };
    const visible = visibleTools();
    const listed = await catalog.listTools(visible);
    const note = visible ? audit?.note(extra.requestId) : undefined;
    if (note) note.decidedBy = `policy: ${(listed.tools as unknown[]).length} tools visible`;
    return page(listed, 'tools', request.params?.cursor, pageSize);
  });
  server.setRequestHandler(ListPromptsRequestSchema, async (request) =>
    page(await catalog.listPrompts(listFilter(policy, 'prompts')), 'prompts', request.params?.cursor, pageSize),
  );
  server.setRequestHandler(ListResourcesRequestSchema, async (request) =>
    page(await catalog.listResources(listFilter(policy, 'resources')), 'resources', request.params?.cursor, pageSize),
  );
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async (request) =>
    page(await catalog.listResourceTemplates(), 'resourceTemplates', request.params?.cursor, pageSize),
  );

  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const spec = await catalog.currentSpec();
    if (spec?.toolSearch) {
      const args = request.params.arguments ?? {};
      if (request.params.name === 'find_tools') {
        if (typeof args.query !== 'string') throw new McpError(ErrorCode.InvalidParams, 'find_tools: "query" must be a string');
        const limit = typeof args.limit === 'number' && Number.isInteger(args.limit) ? Math.min(Math.max(args.limit, 1), 50) : 10;
        const found = (await catalog.findTools(args.query, limit, visibleTools())).map((t) => ({
          name: t.name,
          description: t.description,
          inputSchema: t.inputSchema,
          ...(t.annotations ? { annotations: t.annotations } : {}),
        }));
        return { content: [{ type: 'text', text: JSON.stringify({ tools: found }) }], structuredContent: { tools: found } };
      }
      if (request.params.name === 'call_tool') {
        if (typeof args.name !== 'string') throw new McpError(ErrorCode.InvalidParams, 'call_tool: "name" must be a string');
        const inner = args.arguments;
        if (inner !== undefined && (typeof inner !== 'object' || inner === null || Array.isArray(inner))) {
          throw new McpError(ErrorCode.InvalidParams, 'call_tool: "arguments" must be an object');
        }
        return callTool(args.name, { ...(request.params._meta ? { _meta: request.params._meta } : {}), arguments: inner ?? {} }, extra);
      }
      throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name} (this endpoint serves find_tools and call_tool)`);
    }
    return callTool(request.params.name, request.params, extra);
  });

  server.setRequestHandler(GetPromptRequestSchema, async (request, extra) => {
    const target = await catalog.resolvePrompt(request.params.name);
    enforce('prompts/get', { kind: 'prompt', server: target.server, name: target.name }, extra);
    return forward(target.server, 'prompts/get', { ...request.params, name: target.name }, extra);
  });

  server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
    const owner = await catalog.ownerOfUri(request.params.uri);
    if (!owner) throw new McpError(-32002, `Resource not found: ${request.params.uri}`, { uri: request.params.uri });
    enforce('resources/read', { kind: 'resource', server: owner, uri: request.params.uri }, extra);
    return forward(owner, 'resources/read', request.params, extra);
  });

  // Subscriptions go to the server that serves the URI; its updates come back to this session only while subscribed.
  server.setRequestHandler(SubscribeRequestSchema, async (request, extra) => {
    const owner = await catalog.ownerOfUri(request.params.uri);
    if (!owner) throw new McpError(-32002, `Resource not found: ${request.params.uri}`, { uri: request.params.uri });
    const result = await forward(owner, 'resources/subscribe', request.params, extra);
    subscriptions.set(request.params.uri, owner);
    return result;
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (request, extra) => {
    const owner = subscriptions.get(request.params.uri) ?? (await catalog.ownerOfUri(request.params.uri));
    subscriptions.delete(request.params.uri);
    if (!owner) return {};
    return forward(owner, 'resources/unsubscribe', request.params, extra);
  });

  // The level goes to every server this endpoint draws from that logs; a server without logging is left alone.
  server.setRequestHandler(SetLevelRequestSchema, async (request, extra) => {
    const servers = await catalog.servers();
    const outcomes = await Promise.allSettled(
      servers.map(async (name) => {
        const instanceId = gateway.route(session(), name);
        if (!gateway.connectionOf(instanceId)?.hasCapability('logging')) return;
        await forward(name, 'logging/setLevel', request.params, extra);
      }),
    );
    const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [`${servers[i]}: ${(o.reason as Error).message}`] : []));
    if (failed.length > 0 && failed.length === servers.length) throw new McpError(ErrorCode.InternalError, `logging/setLevel failed on ${failed.join('; ')}`);
    return {};
  });

  server.setRequestHandler(CompleteRequestSchema, async (request, extra) => {
    const ref = request.params.ref;
    if (ref.type === 'ref/prompt') {
      const target = await catalog.resolvePrompt(ref.name);
      return forward(target.server, 'completion/complete', { ...request.params, ref: { ...ref, name: target.name } }, extra);
    }
    const owner = await catalog.ownerOfTemplate(ref.uri);
    if (!owner) throw new McpError(ErrorCode.InvalidParams, `Unknown resource template: ${ref.uri}`);
    return forward(owner, 'completion/complete', request.params, extra);
  });

  // Log messages and resource updates of the replicas this session is bound to.
  const stopListening = gateway.onUpstreamNotification((n) => {
    if (gateway.router.boundTo(session(), n.server) !== n.instanceId) return;
    if (n.method === 'notifications/message') {
      void server.notification({ method: n.method, params: n.params }).catch(() => undefined);
    } else if (n.method === 'notifications/resources/updated' && subscriptions.get(String(n.params?.uri)) === n.server) {
      void server.notification({ method: n.method, params: n.params }).catch(() => undefined);
    }
  });

  return { server, close: stopListening };
}

/** Whether the upstream item behind an exposed name is one `visible` lets the session see. */
function routeVisible(routes: Map<string, QualifiedName>, name: string, visible: ListFilter): boolean {
  const route = routes.get(name);
  return route !== undefined && visible(route.server, route.name);
}
