/**
 * A small MCP server that fails the way gitea-mcp-server fails: `tools/list` works
 * with any token, but `get_me` answers with an MCP tool error when GITEA_TOKEN is
 * empty or malformed. mcpd's tests use it to prove that health probes see real
 * tool failures, that secrets reach containers, and that cancellation, progress and
 * unanswered requests pass through the gateway.
 *
 * stdio by default; `--transport http --port N` serves Streamable HTTP on
 * 127.0.0.1:N/mcp (stateful sessions).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const TOKEN_PATTERN = /^[0-9a-f]{40}$/i;

function toolError(text: string) {
  return { isError: true, content: [{ type: 'text' as const, text }] };
}

export function buildServer(env: NodeJS.ProcessEnv = process.env): McpServer {
  const server = new McpServer({ name: 'gitea-like', version: '1.0.0' });

  server.registerTool('get_me', { description: 'Get the user that owns the configured GITEA_TOKEN.' }, async () => {
    const token = env.GITEA_TOKEN ?? '';
    if (token === '') return toolError('token is required');
    if (!TOKEN_PATTERN.test(token)) return toolError('invalid token');
    const user = { id: 1, login: 'mcpd-test', full_name: 'mcpd test user', email: 'mcpd-test@example.invalid' };
    return { content: [{ type: 'text' as const, text: JSON.stringify(user) }] };
  });

  server.registerTool('echo', { description: 'Answer with the given message.', inputSchema: { message: z.string() } }, async ({ message }) => ({
    content: [{ type: 'text' as const, text: message }],
  }));

  server.registerTool(
    'sleep',
    {
      description: 'Wait ms milliseconds, reporting progress every 100 ms when asked; stops early when cancelled.',
      inputSchema: { ms: z.number().int().min(0).max(3_600_000) },
    },
    async ({ ms }, extra) => {
      const progressToken = extra._meta?.progressToken;
      const started = Date.now();
      while (Date.now() - started < ms) {
        if (extra.signal.aborted) return toolError('cancelled');
        await new Promise((resolve) => setTimeout(resolve, Math.min(100, ms - (Date.now() - started))));
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress: Math.min(Date.now() - started, ms), total: ms },
          });
        }
      }
      return { content: [{ type: 'text' as const, text: `slept ${ms} ms` }] };
    },
  );

  server.registerTool(
    'hang',
    { description: 'Never answers (until cancelled); for timeout tests.' },
    (extra) =>
      new Promise<CallToolResult>((resolve) => {
        extra.signal.addEventListener('abort', () => resolve(toolError('cancelled')));
      }),
  );

  if (env.GITEA_LIKE_CHAOS_TOOLS === '1') registerChaosTools(server);
  return server;
}

/** Memory the allocate tool holds on to, so the container's usage only grows. */
const held: Buffer[] = [];

/**
 * Tools that misbehave on purpose, for mcpd's chaos tests; only with GITEA_LIKE_CHAOS_TOOLS=1,
 * so every other test sees the four tools above (and no resources).
 */
function registerChaosTools(server: McpServer): void {
  // The env tool sends logging notifications, which the SDK allows only with the capability declared.
  server.server.registerCapabilities({ logging: {} });
  // A buggy or hostile server that hands out its environment, secrets included: mcpd's gateway must redact them.
  server.registerTool(
    'env',
    {
      description:
        'Print the environment (or one variable): format "json" (JSON.stringify) or "raw" (NAME=value lines); via "result", ' +
        '"error" (an isError result), "notification" (notifications/message) or "progress" (the message of a progress notification).',
      inputSchema: {
        name: z.string().optional(),
        format: z.enum(['json', 'raw']).default('json'),
        via: z.enum(['result', 'error', 'notification', 'progress']).default('result'),
      },
    },
    async ({ name, format, via }, extra) => {
      const picked = name === undefined ? { ...process.env } : { [name]: process.env[name] };
      const text =
        format === 'json'
          ? JSON.stringify(picked)
          : Object.entries(picked)
              .map(([k, v]) => `${k}=${v}`)
              .join('\n');
      if (via === 'error') throw new Error(`cannot go on with ${text}`);
      if (via === 'notification') {
        await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', logger: 'env', data: text } });
        return { content: [{ type: 'text' as const, text: 'sent as a logging notification' }] };
      }
      if (via === 'progress') {
        const progressToken = extra._meta?.progressToken;
        if (progressToken === undefined) return toolError('via "progress" needs a progressToken in _meta');
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: 1, total: 1, message: text } });
        return { content: [{ type: 'text' as const, text: 'sent as a progress message' }] };
      }
      return { content: [{ type: 'text' as const, text }] };
    },
  );

  // A failing read is a JSON-RPC error whose message carries the variable's value.
  server.registerResource(
    'env-error',
    new ResourceTemplate('env-error://{name}', { list: undefined }),
    { description: 'Reading env-error://NAME fails with a JSON-RPC error that quotes the variable NAME.' },
    (_uri, { name }) => {
      throw new Error(`cannot read ${String(name)}: it is ${process.env[String(name)]}`);
    },
  );

  server.registerTool(
    'allocate',
    {
      description: 'Allocate and touch megabytes of memory in 1 MiB steps and keep it; answers only if the memory limit allows.',
      inputSchema: { megabytes: z.number().int().min(1).max(65_536) },
    },
    async ({ megabytes }) => {
      for (let i = 0; i < megabytes; i++) {
        // Buffer.alloc fills the memory, so every page is really used (not just reserved).
        held.push(Buffer.alloc(1024 * 1024, 1));
        // Let the cgroup's OOM killer act between steps rather than after one giant allocation.
        if (i % 16 === 15) await new Promise((resolve) => setImmediate(resolve));
      }
      return { content: [{ type: 'text' as const, text: `holding ${held.length} MiB` }] };
    },
  );

  server.registerTool(
    'flood',
    {
      description:
        'Write megabytes of non-JSON to stdout, the channel of JSON-RPC: "garbage" as many short lines, "hugeLine" as one line of that size ' +
        'printed without yielding, so the server answers nothing meanwhile (at most megabytesPerSecond, when given); then answer.',
      inputSchema: {
        mode: z.enum(['garbage', 'hugeLine']),
        megabytes: z.number().int().min(1).max(1024),
        megabytesPerSecond: z.number().int().min(1).max(1024).optional(),
      },
    },
    async ({ mode, megabytes, megabytesPerSecond }) => {
      const MiB = 1024 * 1024;
      const line = 'this is not JSON-RPC, a server printing to stdout by mistake ' + '#'.repeat(60) + '\n';
      const block = mode === 'garbage' ? line.repeat(Math.ceil(MiB / line.length)).slice(0, MiB) : 'x'.repeat(MiB);
      const started = Date.now();
      // Paced without yielding, like a server stuck printing one huge value: it answers nothing until the flood ends.
      const pause = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < megabytes; i++) {
        // Waiting for the pipe to drain keeps the server's own memory flat: the flood is in the pipe, not here.
        if (!process.stdout.write(block)) await new Promise((resolve) => process.stdout.once('drain', resolve));
        const due = megabytesPerSecond ? started + ((i + 1) * 1000) / megabytesPerSecond : 0;
        if (due > Date.now()) {
          if (mode === 'hugeLine') Atomics.wait(pause, 0, 0, due - Date.now());
          else await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
        }
      }
      // Ends the last line, so the answer that follows starts a line of its own.
      process.stdout.write('\n');
      return { content: [{ type: 'text' as const, text: `wrote ${megabytes} MiB of ${mode} to stdout` }] };
    },
  );
}

function parseArgs(argv: string[]): { transport: 'stdio' | 'http'; port: number } {
  let transport: 'stdio' | 'http' = 'stdio';
  let port = 8080;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--transport') {
      const value = argv[++i];
      if (value !== 'stdio' && value !== 'http') throw new Error(`--transport must be stdio or http, got ${value}`);
      transport = value;
    } else if (arg === '--port') {
      port = Number(argv[++i]);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port must be 1-65535, got ${argv[i]}`);
    } else {
      throw new Error(`unknown argument ${arg} (use --transport stdio|http --port N)`);
    }
  }
  return { transport, port };
}

async function serveHttp(port: number): Promise<void> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    if (!req.url?.startsWith('/mcp')) {
      res.writeHead(404).end();
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (!transport) {
      if (sessionId !== undefined) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
        return;
      }
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id: string) => {
          sessions.set(id, created);
        },
      });
      created.onclose = () => {
        if (created.sessionId) sessions.delete(created.sessionId);
      };
      await buildServer().connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res);
  };
  // node:http ignores the handler's promise, so a failure is answered here rather than left unhandled.
  const httpServer = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      console.error(`gitea-like: ${req.method} ${req.url} failed: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(port, '127.0.0.1', resolve));
  console.error(`gitea-like MCP server on http://127.0.0.1:${port}/mcp`);
}

async function main(): Promise<void> {
  const { transport, port } = parseArgs(process.argv.slice(2));
  if (transport === 'http') {
    await serveHttp(port);
  } else {
    await buildServer().connect(new StdioServerTransport());
    // stdout is the protocol; operators read this line with `mcpctl logs`.
    console.error('gitea-like MCP server on stdio');
  }
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
