/**
 * DNS-rebinding protection against a real mcpd process: a browser page of a foreign
 * site (Origin not on MCPD_ALLOWED_ORIGINS, or a rebound Host name) gets 403 naming
 * what was refused on /mcp, /mcp/servers/<name> and /api, token or not; loopback and
 * allowed origins, clients that send no Origin, and the gateway link between mcpd
 * processes work as before.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import { ensureGatewaySecret, GatewayKeys } from '../../src/gateway/linkKeys';
import { removeContainers, startMcpd, waitForValue, type McpdProcess } from '../support/stack';
import { callApi } from '../support/clients';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  json: any;
}

/** node:http rather than fetch, so the test decides the Host header as a rebound browser would send it. */
function request(url: string, options: { method: string; headers: Record<string, string>; body?: unknown }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = http.request(
      url,
      { method: options.method, headers: { ...options.headers, ...(body ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => {
          let json: any;
          // A JSON body, or an SSE stream whose data line holds the JSON-RPC reply.
          const data = /^data: (.*)$/m.exec(text)?.[1] ?? text;
          try {
            json = JSON.parse(data);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'origin-test', version: '1' } },
};

describe('DNS-rebinding protection on a real mcpd', function () {
  this.timeout(120_000);

  const server = `t-origin-${randomBytes(3).toString('hex')}`;
  const ALLOWED = 'https://app.example.com';
  let mcpd: McpdProcess;
  const api = (method: string, path: string, body?: unknown) => callApi(mcpd, method, path, body);
  const initialize = (path: string, headers: Record<string, string>) =>
    request(`${mcpd.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mcpd.token}`, accept: 'application/json, text/event-stream', ...headers },
      body: INITIALIZE,
    });

  before(async () => {
    mcpd = await startMcpd({ env: { MCPD_ALLOWED_ORIGINS: ALLOWED } });
    const applied = await api('PUT', `/api/v1/servers/${server}`, {
      name: server,
      image: 'mcpd/tiny:dev',
      healthCheck: { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: 5, timeoutSeconds: 5 },
    });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await api('POST', `/api/v1/servers/${server}/start`)).status, 200);
    await waitForValue(
      async () => (await api('GET', `/api/v1/instances?server=${server}`)).json.items as InstanceView[],
      (items) => items.length === 1 && items[0].status === 'RUNNING' && items[0].health === 'healthy',
      { timeoutMs: 60_000, what: `${server} RUNNING and healthy`, describe: (items) => JSON.stringify(items.map((v) => [v.status, v.health, v.error])) },
    );
  });

  after(async () => {
    if (mcpd) {
      await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
      await mcpd.stop();
    }
    await removeContainers({ label: `${LABELS.server}=${server}` });
  });

  for (const path of ['/mcp', '/mcp/servers/<name>']) {
    it(`${path}: a foreign Origin gets 403 naming it, even with the token; nothing starts a session`, async () => {
      const reply = await initialize(path.replace('<name>', server), { origin: 'http://evil.example.com' });
      assert.equal(reply.status, 403);
      assert.equal(reply.headers['mcp-session-id'], undefined);
      assert.equal(reply.json.jsonrpc, '2.0');
      assert.equal(reply.json.error.message, 'Forbidden: origin "http://evil.example.com" is not allowed');
      assert.equal(reply.json.error.data.origin, 'http://evil.example.com');
    });

    it(`${path}: loopback and allowed origins, and clients without Origin, are served`, async () => {
      for (const origin of [ALLOWED, 'http://localhost:6274', 'http://127.0.0.1:5173']) {
        const reply = await initialize(path.replace('<name>', server), { origin });
        assert.equal(reply.status, 200, `${origin}: ${JSON.stringify(reply.json)}`);
        assert.ok(reply.headers['mcp-session-id'], origin);
        assert.ok(reply.json.result.serverInfo, origin);
      }
      const client = new Client({ name: 'origin-test', version: '1' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${mcpd.url}${path.replace('<name>', server)}`), {
          requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } },
        }),
      );
      try {
        const tool = path === '/mcp' ? `${server}__echo` : 'echo';
        const reply = (await client.callTool({ name: tool, arguments: { message: 'no origin' } })) as { content: { text: string }[] };
        assert.equal(reply.content[0].text, 'no origin');
      } finally {
        await client.close();
      }
    });

    it(`${path}: a rebound Host name gets 403 while mcpd listens on loopback`, async () => {
      const reply = await initialize(path.replace('<name>', server), { host: `evil.example.com:${new URL(mcpd.url).port}` });
      assert.equal(reply.status, 403);
      assert.match(reply.json.error.message, /^Forbidden: host "evil\.example\.com:\d+" is not allowed$/);
    });
  }

  it('/api: 403 naming the origin or host, before the token is looked at; allowed origins are served', async () => {
    const get = (headers: Record<string, string>) => request(`${mcpd.url}/api/v1/servers`, { method: 'GET', headers });
    const withToken = { authorization: `Bearer ${mcpd.token}` };
    const foreign = await get({ ...withToken, origin: 'http://evil.example.com' });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.json.error, 'origin "http://evil.example.com" is not allowed');
    assert.match(foreign.json.details.hint, /MCPD_ALLOWED_ORIGINS/);
    assert.equal((await get({ origin: 'http://evil.example.com' })).status, 403, 'without the token too');
    const rebound = await get({ ...withToken, host: 'evil.example.com' });
    assert.equal(rebound.status, 403);
    assert.equal(rebound.json.error, 'host "evil.example.com" is not allowed');
    const allowed = await get({ ...withToken, origin: ALLOWED });
    assert.equal(allowed.status, 200);
    assert.ok(allowed.json.items.some((s: { name: string }) => s.name === server));
    assert.equal((await get({ ...withToken, origin: 'http://localhost:3000' })).status, 200);
    assert.equal((await request(`${mcpd.url}/api/v1/openapi.json`, { method: 'GET', headers: { origin: 'http://evil.example.com' } })).status, 403);
  });

  it('the gateway link between mcpd processes (no Origin, its own token) keeps working', async () => {
    const keys = new GatewayKeys(ensureGatewaySecret(mcpd.dataDir));
    const listing = await request(`${mcpd.url}/mcp-link/v1/instances`, { method: 'GET', headers: { authorization: `Bearer ${keys.linkToken}` } });
    assert.equal(listing.status, 200);
    assert.ok(listing.json.instances.some((i: { server: string; ready: boolean }) => i.server === server && i.ready));
  });
});
