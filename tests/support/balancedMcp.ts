/**
 * An MCP SDK client in front of several mcpd front processes, like a load balancer:
 * each request goes to whichever front `target()` names at that moment, with that
 * front's bearer token. Tests use it to move one session between fronts.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export interface Front {
  url: string;
  token: string;
}

export async function connectBalanced(endpoint: string, target: () => Front): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const balanced: typeof fetch = (input, init) => {
    const front = target();
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${front.token}`);
    return fetch(`${front.url}${url.pathname}${url.search}`, { ...init, headers });
  };
  const transport = new StreamableHTTPClientTransport(new URL(`${target().url}${endpoint}`), { fetch: balanced });
  const client = new Client({ name: 'mcpd-balanced-test', version: '1' });
  await client.connect(transport);
  return { client, transport };
}

type Text = { content: { type: string; text?: string }[]; isError?: boolean };

/** The text of a tool call's result; rejects when the call fails or the tool reports an error. */
export async function callText(client: Client, name: string, args: Record<string, unknown>): Promise<string> {
  const result = (await client.callTool({ name, arguments: args })) as Text;
  const text = result.content.map((c) => c.text ?? '').join('');
  if (result.isError) throw new Error(`${name} reported an error: ${text}`);
  return text;
}
