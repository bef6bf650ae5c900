/**
 * Scoped tokens against a real mcpd process, driven as a user drives them: an admin
 * creates them with mcpctl (the value printed once), lists them without values,
 * revokes them; each role may do exactly what it says on the API and the gateway;
 * an expired or revoked token is refused at once; bad input changes nothing. Token
 * values are never printed by this test.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startMcpd, type McpdProcess } from '../support/stack';
import { callApi, runMcpctl } from '../support/clients';

describe('scoped tokens on a real mcpd', function () {
  this.timeout(120_000);

  let mcpd: McpdProcess;
  let cwd: string;
  const tokens: Record<string, string> = {};
  const as = (role: string) => ({ url: mcpd.url, token: tokens[role] });
  const mcpctl = (args: string[], env?: NodeJS.ProcessEnv) => runMcpctl(mcpd, args, { cwd, env });

  async function gatewayStatus(token: string): Promise<number> {
    const res = await fetch(`${mcpd.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      }),
    });
    await res.arrayBuffer();
    return res.status;
  }

  before(async () => {
    mcpd = await startMcpd();
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-tokens-'));
    for (const role of ['viewer', 'operator', 'client', 'admin']) {
      const created = await mcpctl(['create', 'token', `t-${role}`, '--role', role]);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stderr, new RegExp(`^token/t-${role} created \\(role ${role}, servers all, expires never\\)`));
      tokens[role] = created.stdout.trim();
      assert.match(tokens[role], /^mcpd_[A-Za-z0-9_-]{43}$/, 'stdout holds the token and nothing else');
    }
  });

  after(async () => {
    await mcpd?.stop();
    if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
  });

  it('lists tokens with names, roles and expiry, never values or hashes; only their hashes are on disk', async () => {
    const listed = await mcpctl(['get', 'tokens', '-o', 'json']);
    assert.equal(listed.code, 0, listed.stderr);
    const items = (JSON.parse(listed.stdout) as { items: Record<string, unknown>[] }).items;
    assert.deepEqual(
      items.map((t) => [t.name, t.role, t.expiresAt]),
      [
        ['t-admin', 'admin', null],
        ['t-client', 'client', null],
        ['t-operator', 'operator', null],
        ['t-viewer', 'viewer', null],
      ],
    );
    assert.deepEqual(Object.keys(items[0]).sort(), ['createdAt', 'expiresAt', 'name', 'role', 'servers']);
    const onDisk = fs.readFileSync(path.join(mcpd.dataDir, 'tokens.json'), 'utf8');
    for (const value of Object.values(tokens)) {
      assert.ok(!listed.stdout.includes(value), 'a token value was listed');
      assert.ok(!onDisk.includes(value), 'a token value is stored in clear');
    }
    assert.equal(fs.statSync(path.join(mcpd.dataDir, 'tokens.json')).mode & 0o777, 0o600);
  });

  it('each role may do what it says, on the API and the gateway', async () => {
    const spec = { name: 't-tok-srv', image: 'mcpd/tiny:dev' };
    // viewer: reads only, no gateway
    assert.equal((await callApi(as('viewer'), 'GET', '/api/v1/servers')).status, 200);
    const viewerWrite = await callApi(as('viewer'), 'PUT', '/api/v1/servers/t-tok-srv', spec);
    assert.equal(viewerWrite.status, 403);
    assert.equal(viewerWrite.json.error, 'token "t-viewer" (role viewer) may not use PUT /api/v1/servers/t-tok-srv');
    assert.equal((await callApi(as('viewer'), 'GET', '/api/v1/servers/t-tok-srv')).status, 404, 'and the refused write changed nothing');
    assert.equal(await gatewayStatus(tokens.viewer), 403);
    // operator: reads and writes servers and secrets, uses the gateway, not tokens
    assert.equal((await callApi(as('operator'), 'PUT', '/api/v1/servers/t-tok-srv', spec)).status, 201);
    assert.equal((await callApi(as('operator'), 'DELETE', '/api/v1/servers/t-tok-srv')).status, 200);
    assert.equal(await gatewayStatus(tokens.operator), 200);
    assert.equal((await callApi(as('operator'), 'GET', '/api/v1/tokens')).status, 403);
    assert.equal((await callApi(as('operator'), 'POST', '/api/v1/tokens', { name: 'x', role: 'admin' })).status, 403);
    // client: the gateway only
    assert.equal(await gatewayStatus(tokens.client), 200);
    const clientApi = await callApi(as('client'), 'GET', '/api/v1/servers');
    assert.equal(clientApi.status, 403);
    assert.equal(clientApi.json.details.reason, 'the client role may use the gateway (/mcp) only, not the API');
    const client = new Client({ name: 'tokens-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${tokens.client}` } } }),
    );
    assert.ok(Array.isArray((await client.listTools()).tools));
    await client.close();
    // admin (scoped) and the first-start token: everything
    assert.equal((await callApi(as('admin'), 'GET', '/api/v1/tokens')).status, 200);
    assert.equal((await callApi(mcpd, 'GET', '/api/v1/tokens')).status, 200);
    // mcpctl with a viewer token: a refused write is exit 4 with one line
    const refused = await mcpctl(['delete', 'secret', 'whatever'], { MCPD_TOKEN: tokens.viewer, MCPD_DATA_DIR: '/nonexistent' });
    assert.equal(refused.code, 4);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /role viewer/);
  });

  it('--servers limits the gateway to those servers: others and the /mcp aggregate are refused', async () => {
    const created = await mcpctl(['create', 'token', 't-one', '--role', 'client', '--servers', 't-only-this,t-and-this']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /servers t-only-this,t-and-this/);
    const one = created.stdout.trim();
    const initialize = async (urlPath: string) => {
      const res = await fetch(`${mcpd.url}${urlPath}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${one}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
        }),
      });
      return { status: res.status, text: await res.text() };
    };
    // Allowed, so it reaches the gateway, which says the server is not running (no server of that name here).
    const allowed = await initialize('/mcp/servers/t-only-this');
    assert.equal(allowed.status, 404);
    assert.match(allowed.text, /MCP server \\"t-only-this\\" is not running/);
    const other = await initialize('/mcp/servers/t-another');
    assert.equal(other.status, 403);
    assert.match(JSON.parse(other.text).error, /token "t-one" \(role client\) may not use \/mcp\/servers\/t-another/);
    const aggregate = await initialize('/mcp');
    assert.equal(aggregate.status, 403);
    assert.match(JSON.parse(aggregate.text).details.reason, /limited to the servers t-only-this, t-and-this: connect to \/mcp\/servers\/<name>/);
    const listed = await mcpctl(['get', 'token', 't-one']);
    assert.match(listed.stdout, /t-one\s+client\s+t-only-this,t-and-this/);
    const bad = await mcpctl(['create', 'token', 't-bad', '--role', 'client', '--servers', 'Not_A_Server']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /servers\.0: must be 1-40 lowercase letters/);
  });

  it('an MCP session belongs to the token that opened it: another token holder who learns its id gets 404', async () => {
    const headers = (token: string, session?: string) => ({
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-06-18',
      ...(session ? { 'mcp-session-id': session } : {}),
    });
    const opened = await fetch(`${mcpd.url}/mcp`, {
      method: 'POST',
      headers: headers(tokens.client),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      }),
    });
    await opened.arrayBuffer();
    assert.equal(opened.status, 200);
    const session = opened.headers.get('mcp-session-id')!;
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
    const stolen = await fetch(`${mcpd.url}/mcp`, { method: 'POST', headers: headers(tokens.operator, session), body: list });
    assert.equal(stolen.status, 404);
    assert.match(await stolen.text(), /Session not found/);
    const own = await fetch(`${mcpd.url}/mcp`, { method: 'POST', headers: headers(tokens.client, session), body: list });
    assert.equal(own.status, 200);
    assert.match(await own.text(), /"tools"/);
  });

  it('a revoked token is refused at once, on the API and the gateway', async () => {
    const created = await mcpctl(['create', 'token', 't-gone', '--role', 'operator']);
    assert.equal(created.code, 0, created.stderr);
    const gone = { url: mcpd.url, token: created.stdout.trim() };
    assert.equal((await callApi(gone, 'GET', '/api/v1/servers')).status, 200);
    const deleted = await mcpctl(['delete', 'token', 't-gone']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout.trim(), 'token/t-gone deleted');
    const after = await callApi(gone, 'GET', '/api/v1/servers');
    assert.equal(after.status, 403);
    assert.equal(after.json.error, 'invalid bearer token');
    assert.equal(await gatewayStatus(gone.token), 403);
  });

  it('an expired token is refused', async () => {
    const created = await callApi(mcpd, 'POST', '/api/v1/tokens', { name: 't-short', role: 'viewer', expiresInSeconds: 1 });
    assert.equal(created.status, 201);
    assert.ok(Date.parse(created.json.expiresAt) - Date.parse(created.json.createdAt) === 1000);
    const short = { url: mcpd.url, token: created.json.token as string };
    assert.equal((await callApi(short, 'GET', '/api/v1/servers')).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const expired = await callApi(short, 'GET', '/api/v1/servers');
    assert.equal(expired.status, 403);
    assert.equal(expired.json.error, 'expired bearer token');
  });

  it('bad input is a clear 4xx or exit code and changes nothing', async () => {
    const before = (await callApi(mcpd, 'GET', '/api/v1/tokens')).json.items;
    const cases: [unknown, number, RegExp][] = [
      [{ name: 'x', role: 'root' }, 400, /role: must be one of viewer, operator, admin, client/],
      [{ name: 'Bad Name', role: 'viewer' }, 400, /name: must be 1-64 lowercase letters/],
      [{ name: 'x', role: 'viewer', expiresInSeconds: 0 }, 400, /expiresInSeconds: must be a whole number of seconds/],
      [{ name: 'x', role: 'viewer', servers: [] }, 400, /servers: must name at least one server/],
      [{ name: 'x', role: 'viewer', scopes: ['all'] }, 400, /scopes: unknown field "scopes"/],
      [{ name: 't-viewer', role: 'admin' }, 409, /token "t-viewer" already exists/],
    ];
    for (const [body, status, message] of cases) {
      const res = await callApi(mcpd, 'POST', '/api/v1/tokens', body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.match(res.json.error, message);
    }
    assert.equal((await callApi(mcpd, 'DELETE', '/api/v1/tokens/nope')).status, 404);
    assert.deepEqual((await callApi(mcpd, 'GET', '/api/v1/tokens')).json.items, before);

    const badRole = await mcpctl(['create', 'token', 'x', '--role', 'root']);
    assert.equal(badRole.code, 2);
    assert.equal(badRole.stderr, 'error: --role must be one of viewer, operator, admin, client, got "root"\n');
    const noRole = await mcpctl(['create', 'token', 'x']);
    assert.equal(noRole.code, 2);
    assert.match(noRole.stderr, /^error: create token needs --role/);
    const badExpiry = await mcpctl(['create', 'token', 'x', '--role', 'viewer', '--expires', 'soon']);
    assert.equal(badExpiry.code, 2);
    assert.equal(badExpiry.stderr, 'error: --expires must be a duration like 90s, 15m, 12h or 30d, got "soon"\n');
    const missing = await mcpctl(['delete', 'token', 'nope']);
    assert.equal(missing.code, 3);
    assert.deepEqual((await callApi(mcpd, 'GET', '/api/v1/tokens')).json.items, before);
  });
});
