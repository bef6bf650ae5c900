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
  ResultSchema,
  type ServerNotification,
  type ServerRequest as SdkServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { UriTemplate } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import type { Gateway, ListKind } from './gateway';
import { NameTable } from './names';
import type { CallHooks, Params, Result } from './upstream';
import type { SessionAudit } from './requestAudit';
import type { SessionPolicy } from './sessionPolicy';
import { POLICY_DENIED_CODE, type PolicyAction } from '../contracts/policy';
import type { PolicyResource } from '../policy/entities';
import { mcpTarget } from '../audit/record';

type Extra = RequestHandlerExtra<SdkServerRequest, ServerNotification>;

/** Names and URIs seen in the latest lists, shared by all /mcp sessions. */
export class AggregateCatalog {
  readonly tools = new NameTable();
  readonly prompts = new NameTable();
  private readonly resourceOwners = new Map<string, string>();
  private readonly templateOwners = new Map<string, { server: string; template: UriTemplate }>();

  constructor(private readonly gateway: Gateway) {}

  /** Every item of one kind across ready servers; a failing server is left out, never waited on twice. */
  async collect(kind: ListKind): Promise<{ server: string; items: Record<string, unknown>[] }[]> {
    const servers = this.gateway.readyServers();
    const settled = await Promise.allSettled(servers.map((server) => this.gateway.list(server, kind)));
    const out: { server: string; items: Record<string, unknown>[] }[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') out.push({ server: servers[i], items: s.value as Record<string, unknown>[] });
    });
    return out;
  }

  /** Every ready server's tools; `visible` (the session's policy) leaves out the ones it may not see. */
  async listTools(visible?: (server: string, tool: string) => boolean): Promise<Result> {
    const tools: Record<string, unknown>[] = [];
    for (const { server, items } of await this.collect('tools')) {
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

  /** False only when the server's tool list is known and lacks the tool. */
  async mayHaveTool(server: string, name: string): Promise<boolean> {
    const tools = await this.gateway.list(server, 'tools').catch(() => undefined);
    return tools === undefined || (tools as { name?: unknown }[]).some((t) => t.name === name);
  }

  async listPrompts(): Promise<Result> {
    const prompts: Record<string, unknown>[] = [];
    for (const { server, items } of await this.collect('prompts')) {
      const names = this.prompts.setServer(
        server,
        items.map((p) => String(p.name)),
      );
      items.forEach((prompt, i) => prompts.push({ ...prompt, name: names[i] }));
    }
    return { prompts };
  }

  async listResources(): Promise<Result> {
    const resources: Record<string, unknown>[] = [];
    for (const { server, items } of await this.collect('resources')) {
      for (const r of items) {
        if (!this.resourceOwners.has(String(r.uri)) || this.resourceOwners.get(String(r.uri)) === server) {
          this.resourceOwners.set(String(r.uri), server);
          resources.push(r);
        }
      }
    }
    return { resources };
  }

  async listResourceTemplates(): Promise<Result> {
    const resourceTemplates: Record<string, unknown>[] = [];
    for (const { server, items } of await this.collect('resourceTemplates')) {
      for (const t of items) {
        this.rememberTemplate(server, String(t.uriTemplate));
        resourceTemplates.push(t);
      }
    }
    return { resourceTemplates };
  }

  /** Which server serves a URI: a listed resource, else the first matching template. */
  async ownerOfUri(uri: string): Promise<string | undefined> {
    const ready = new Set(this.gateway.readyServers());
    const owner = this.resourceOwners.get(uri);
    if (owner && ready.has(owner)) return owner;
    await Promise.all([this.listResources(), this.listResourceTemplates()]);
    const listed = this.resourceOwners.get(uri);
    if (listed && ready.has(listed)) return listed;
    for (const { server, template } of this.templateOwners.values()) {
      if (ready.has(server) && template.match(uri)) return server;
    }
    return undefined;
  }

  async ownerOfTemplate(uriTemplate: string): Promise<string | undefined> {
    if (!this.templateOwners.has(uriTemplate)) await this.listResourceTemplates();
    return this.templateOwners.get(uriTemplate)?.server;
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

export function createAggregateServer(
  gateway: Gateway,
  catalog: AggregateCatalog,
  session: () => string,
  audit?: SessionAudit,
  policy?: SessionPolicy,
): Server {
  const server = new Server(
    { name: 'mcpd', version: '0.1.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { listChanged: true },
        prompts: { listChanged: true },
        completions: {},
      },
      instructions: 'mcpd gateway: the tools, resources and prompts of every ready MCP server, named <server>__<name>.',
    },
  );

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
    const result = await gateway.call(instanceId, { method, params }, { timeoutMs: gateway.callTimeoutMs, signal: extra.signal, hooks });
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

  server.setRequestHandler(ListToolsRequestSchema, async (_request, extra) => {
    if (!policy?.enforcing) return catalog.listTools();
    const listed = await catalog.listTools((server, name) => policy.visible('tools/list', { kind: 'tool', server, name }));
    const note = audit?.note(extra.requestId);
    if (note) note.decidedBy = `policy: ${(listed.tools as unknown[]).length} tools visible`;
    return listed;
  });
  server.setRequestHandler(ListPromptsRequestSchema, () => catalog.listPrompts());
  server.setRequestHandler(ListResourcesRequestSchema, () => catalog.listResources());
  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => catalog.listResourceTemplates());

  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const target = catalog.tools.resolve(request.params.name);
    if (!target) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    if (!gateway.knowsServer(target.server) || !(await catalog.mayHaveTool(target.server, target.name))) {
      throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    }
    enforce('tools/call', { kind: 'tool', server: target.server, name: target.name }, extra);
    return forward(target.server, 'tools/call', { ...request.params, name: target.name }, extra);
  });

  server.setRequestHandler(GetPromptRequestSchema, async (request, extra) => {
    const target = catalog.prompts.resolve(request.params.name);
    if (!target || !gateway.knowsServer(target.server)) {
      throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${request.params.name}`);
    }
    enforce('prompts/get', { kind: 'prompt', server: target.server, name: target.name }, extra);
    return forward(target.server, 'prompts/get', { ...request.params, name: target.name }, extra);
  });

  server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
    const owner = await catalog.ownerOfUri(request.params.uri);
    if (!owner) throw new McpError(-32002, `Resource not found: ${request.params.uri}`, { uri: request.params.uri });
    enforce('resources/read', { kind: 'resource', server: owner, uri: request.params.uri }, extra);
    return forward(owner, 'resources/read', request.params, extra);
  });

  server.setRequestHandler(CompleteRequestSchema, async (request, extra) => {
    const ref = request.params.ref;
    if (ref.type === 'ref/prompt') {
      const target = catalog.prompts.resolve(ref.name);
      if (!target) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${ref.name}`);
      return forward(target.server, 'completion/complete', { ...request.params, ref: { ...ref, name: target.name } }, extra);
    }
    const owner = await catalog.ownerOfTemplate(ref.uri);
    if (!owner) throw new McpError(ErrorCode.InvalidParams, `Unknown resource template: ${ref.uri}`);
    return forward(owner, 'completion/complete', request.params, extra);
  });

  return server;
}
