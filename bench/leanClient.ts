/**
 * What the gateway benchmarks share (bench/gateway.bench.ts, bench/telemetry.bench.ts): a
 * lean MCP client over node:http and the CPU time of a process from /proc.
 */
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';

export type CallTool = (name: string, message: string) => Promise<{ content: { text: string }[] }>;

/**
 * A lean JSON-RPC client (node:http with keep-alive), so the numbers show the cost of
 * the proxy rather than that of the SDK's HTTP client.
 */
export async function leanHttpCaller(url: string, token: string): Promise<{ call: CallTool; close(): void }> {
  // Idle sockets close after 4 s, before the server's keep-alive timeout (5 s) closes them: a call
  // sent on a socket the server is closing fails with "socket hang up" (seen between bench rounds).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32, timeout: 4_000 });
  let sessionId: string | undefined;
  let nextId = 1;
  const post = (body: unknown) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
      };
      if (sessionId) Object.assign(headers, { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' });
      const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  type Reply = { result?: { content: { text: string }[] }; error?: { message: string } };
  const parse = (r: { headers: http.IncomingHttpHeaders; text: string }) => {
    const json = String(r.headers['content-type']).startsWith('text/event-stream')
      ? r.text
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => JSON.parse(l.slice(6)) as Reply)
          .find((m) => 'result' in m || 'error' in m)
      : (JSON.parse(r.text) as Reply);
    if (!json?.result) throw new Error(json?.error?.message ?? 'no JSON-RPC reply');
    return json.result;
  };
  const init = await post({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'mcpd-bench', version: '1' } },
  });
  sessionId = String(init.headers['mcp-session-id']);
  parse(init);
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return {
    call: async (name, message) => parse(await post({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name, arguments: { message } } })),
    close: () => agent.destroy(),
  };
}

/**
 * CPU time of a process so far, in µs: the sum over its threads of the run time
 * the scheduler accounted (/proc/<pid>/task/<tid>/schedstat, ns), finer than the
 * 10 ms ticks of /proc/<pid>/stat. Linux only; 0 when the process is gone.
 */
export function cpuMicros(pid: number): number {
  let total = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    return 0;
  }
  return total;
}
