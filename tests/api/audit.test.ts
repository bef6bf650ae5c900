/**
 * The audit trail against a real mcpd process and a real gitea-like server container,
 * driven with the MCP SDK's client and scoped tokens as a team would: every tools/call,
 * tools/list, … through /mcp and /mcp/servers/<name> and every API change is a record
 * naming who, which server and replica, what, how it ended and how long it took; no
 * argument value and no secret value is ever in it; GET /api/v1/audit and `mcpctl
 * audit` filter by principal, server and time; files rotate by size and the query reads
 * across them. Secret values are never printed by this test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import type { AuditRecord } from '../../src/contracts/audit';
import { removeContainers, startMcpd, waitForValue, type McpdProcess } from '../support/stack';
import { callApi, connectMcp, runMcpctl } from '../support/clients';
import { CHAOS_TOOLS_ENV } from '../chaos/support';

describe('audit trail on a real mcpd', function () {
  this.timeout(180_000);

  const server = `t-audit-${randomBytes(3).toString('hex')}`;
  const instance = `mcp-instance:${server}:0`;
  const secret = `audit-secret-${randomBytes(12).toString('hex')}`;
  const argument = `argument-value-${randomBytes(6).toString('hex')}`;
  let mcpd: McpdProcess;
  let cwd: string;
  const tokens: Record<string, string> = {};
  const api = (method: string, urlPath: string, body?: unknown) => callApi(mcpd, method, urlPath, body);
  const mcpctl = (args: string[]) => runMcpctl(mcpd, args, { cwd });

  const connect = (urlPath: string, token: string): Promise<Client> => connectMcp(mcpd, urlPath, token, 'audit-test');

  async function audit(query: string, token = mcpd.token): Promise<AuditRecord[]> {
    const res = await callApi({ url: mcpd.url, token }, 'GET', `/api/v1/audit${query}`);
    assert.equal(res.status, 200, res.text);
    return res.json.items as AuditRecord[];
  }

  /** Everything in the audit folder, for checks that no value ever reached the disk. */
  function auditFiles(): { name: string; text: string }[] {
    const dir = path.join(mcpd.dataDir, 'audit');
    return fs.readdirSync(dir).map((name) => ({ name, text: fs.readFileSync(path.join(dir, name), 'utf8') }));
  }

  before(async () => {
    // Small files, so the test sees rotation: about a dozen records a file, three rotated files kept.
    mcpd = await startMcpd({ env: { MCPD_AUDIT_MAX_BYTES: '4096', MCPD_AUDIT_KEEP_FILES: '3' } });
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-audit-'));
    for (const role of ['viewer', 'operator', 'client']) {
      const created = await mcpctl(['create', 'token', `t-audit-${role}`, '--role', role]);
      assert.equal(created.code, 0, created.stderr);
      tokens[role] = created.stdout.trim();
    }
    assert.equal((await api('PUT', `/api/v1/secrets/${server}`, { data: { token: secret } })).status, 200);
    const applied = await api('PUT', `/api/v1/servers/${server}`, {
      name: server,
      image: 'mcpd/gitea-like:dev',
      env: [CHAOS_TOOLS_ENV, { name: 'LEAKY', secretRef: { name: server, key: 'token' } }],
      healthCheck: { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: 30, timeoutSeconds: 10 },
    });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await api('POST', `/api/v1/servers/${server}/start`)).status, 200);
    await waitForValue(
      async () => (await api('GET', `/api/v1/instances?server=${server}`)).json.items as InstanceView[],
      (items) => items.length === 1 && items[0].status === 'RUNNING' && items[0].health === 'healthy',
      { timeoutMs: 90_000, what: `${server} RUNNING and healthy`, describe: (items) => JSON.stringify(items.map((v) => [v.status, v.health])) },
    );
  });

  after(async () => {
    if (mcpd) {
      await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
      await api('DELETE', `/api/v1/secrets/${server}`).catch(() => undefined);
      await mcpd.stop();
    }
    if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
    await removeContainers({ label: `${LABELS.server}=${server}` });
  });

  it('records each MCP request on /mcp/servers/<name> and /mcp: principal, server, replica, tool, outcome, latency; never argument values', async () => {
    const direct = await connect(`/mcp/servers/${server}`, tokens.client);
    const aggregate = await connect('/mcp', tokens.client);
    try {
      await direct.listTools();
      const echoed = (await direct.callTool({ name: 'echo', arguments: { message: argument } })) as { content: { text: string }[] };
      assert.ok(echoed.content[0].text.includes(argument));
      const failed = (await direct.callTool({ name: 'get_me', arguments: {} })) as { isError?: boolean };
      assert.equal(failed.isError, true, 'get_me without a GITEA_TOKEN answers isError');
      await aggregate.listTools();
      await aggregate.callTool({ name: `${server}__echo`, arguments: { message: argument } });
      await assert.rejects(aggregate.callTool({ name: `${server}__no_such_tool`, arguments: {} }), /Unknown tool/);
    } finally {
      await direct.close();
      await aggregate.close();
    }

    const records = await audit(`?principal=t-audit-client&since=5m`);
    const calls = records.filter((r) => r.method === 'tools/call').reverse(); // oldest first
    assert.deepEqual(
      calls.map((r) => [r.server, r.target, r.outcome]),
      [
        [server, 'echo', 'ok'],
        [server, 'get_me', 'isError'],
        [server, 'echo', 'ok'], // through /mcp: the upstream's own name, not server__echo
        [null, `${server}__no_such_tool`, 'error'], // refused by the gateway before any server was chosen
      ],
      JSON.stringify(calls),
    );
    for (const r of calls) {
      assert.equal(r.kind, 'mcp');
      assert.equal(r.principal?.name, 't-audit-client');
      assert.deepEqual(r.principal, { name: 't-audit-client', source: 'scoped-token' });
      assert.equal(r.decision, 'allowed');
      assert.equal(r.decidedBy, 'role client');
      assert.ok(r.latencyMs >= 0 && r.latencyMs < 30_000, `latency ${r.latencyMs}`);
      assert.equal(r.redactions, 0);
      assert.ok(!Number.isNaN(Date.parse(r.time)));
    }
    assert.equal(calls[0].instance, instance, 'the replica that answered');
    assert.equal(calls[3].code, -32602, 'an error carries its JSON-RPC code');
    assert.match(String(calls[3].error), /Unknown tool/);
    const lists = records.filter((r) => r.method === 'tools/list');
    assert.equal(lists.length, 2, 'one tools/list per endpoint');
    assert.ok(lists.some((r) => r.server === server) && lists.some((r) => r.server === null), 'the /mcp list is about no one server');
    assert.ok(
      !records.some((r) => r.method === 'initialize' || r.method.startsWith('notifications/')),
      'handshakes and notifications are not requests about anything',
    );
    for (const file of auditFiles()) assert.ok(!file.text.includes(argument), `${file.name} holds an argument value`);
  });

  it('counts the secret values redacted from a reply, and never holds the value', async () => {
    const client = await connect(`/mcp/servers/${server}`, tokens.operator);
    try {
      await client.callTool({ name: 'env', arguments: { name: 'LEAKY', format: 'raw' } });
    } finally {
      await client.close();
    }
    const [record] = await audit(`?principal=t-audit-operator&server=${server}&limit=1`);
    assert.equal(record.target, 'env');
    assert.equal(record.redactions, 1, JSON.stringify(record));
    for (const file of auditFiles()) assert.ok(!file.text.includes(secret), `${file.name} holds the secret value`);
  });

  it('records API changes (allowed and refused) without bodies; GET /audit is for admin and operator', async () => {
    const scaled = await api('POST', `/api/v1/servers/${server}/scale`, { replicas: 1 });
    assert.equal(scaled.status, 200, scaled.text);
    const refused = await callApi({ url: mcpd.url, token: tokens.viewer }, 'POST', `/api/v1/servers/${server}/scale`, { replicas: 3 });
    assert.equal(refused.status, 403);
    const records = (await audit(`?server=${server}&since=5m`)).filter((r) => r.kind === 'api');
    const scale = records.filter((r) => r.method === `POST /api/v1/servers/${server}/scale`);
    assert.equal(scale.length, 2, JSON.stringify(records));
    const [denied, allowed] = scale; // newest first
    assert.deepEqual([allowed.principal, allowed.decision, allowed.outcome], [{ name: 'admin', source: 'admin-token' }, 'allowed', 'ok']);
    assert.deepEqual([denied.decision, denied.decidedBy, denied.outcome, denied.code], ['denied', 'role', 'error', 403]);
    assert.ok(
      records.some((r) => r.method === `PUT /api/v1/servers/${server}` && r.outcome === 'ok'),
      'the apply is recorded',
    );
    const secretWrite = (await audit('?since=5m')).find((r) => r.method === `PUT /api/v1/secrets/${server}`);
    assert.ok(secretWrite, 'the secret write is recorded');
    for (const file of auditFiles()) assert.ok(!file.text.includes(secret), `${file.name} holds the secret value written through the API`);

    assert.equal((await callApi({ url: mcpd.url, token: tokens.operator }, 'GET', '/api/v1/audit?limit=1')).status, 200);
    const viewer = await callApi({ url: mcpd.url, token: tokens.viewer }, 'GET', '/api/v1/audit');
    assert.equal(viewer.status, 403);
    assert.match(viewer.text, /viewer role may not read the audit trail/);
    const client = await callApi({ url: mcpd.url, token: tokens.client }, 'GET', '/api/v1/audit');
    assert.equal(client.status, 403);
  });

  it('refuses bad filters with a 400 naming the field', async () => {
    for (const [query, field] of [
      ['?since=yesterday', 'since'],
      ['?limit=0', 'limit'],
      ['?server=Not_A_Server', 'server'],
    ]) {
      const res = await api('GET', `/api/v1/audit${query}`);
      assert.equal(res.status, 400, `${query}: ${res.text}`);
      assert.match(String(res.json.error), new RegExp(field), res.text);
    }
  });

  it('mcpctl audit: a table, -o json, and the filters [server], --principal, --since', async () => {
    const table = await mcpctl(['audit', server, '--principal', 't-audit-client', '--since', '10m']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0], /^TIME\s+PRINCIPAL\s+SERVER\s+METHOD\s+TARGET\s+DECISION\s+OUTCOME\s+LATENCY$/);
    assert.ok(
      lines.slice(1).every((l) => l.includes('t-audit-client') && l.includes(server)),
      table.stdout,
    );
    assert.ok(
      lines.some((l) => /tools\/call\s+get_me\s+allowed\s+isError/.test(l)),
      table.stdout,
    );

    const since = new Date(Date.now() - 10 * 60_000).toISOString();
    const json = await mcpctl(['audit', '--principal', 't-audit-client', '--since', since, '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const items = (JSON.parse(json.stdout) as { items: AuditRecord[] }).items;
    assert.ok(items.length >= 6 && items.every((r) => r.principal?.name === 't-audit-client'), json.stdout);

    const future = await mcpctl(['audit', '--since', new Date(Date.now() + 3_600_000).toISOString()]);
    assert.equal(future.code, 0);
    assert.match(future.stderr, /No audit records found/);

    const bad = await mcpctl(['audit', '--since', 'last tuesday']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since must be a duration like 90s, 10m, 12h or 7d, or an RFC 3339 time/);
  });

  it('rotates the file by size, keeps the configured number, and queries across them', async () => {
    const client = await connect(`/mcp/servers/${server}`, tokens.client);
    try {
      for (let i = 0; i < 60; i++) await client.callTool({ name: 'echo', arguments: { message: `m${i}` } });
    } finally {
      await client.close();
    }
    const records = await audit(`?principal=t-audit-client&limit=40`);
    assert.equal(records.length, 40);
    const files = auditFiles().map((f) => f.name);
    const own = files.filter((f) => f.startsWith(`${mcpd.node}-`));
    assert.ok(
      own.some((f) => f.endsWith('.jsonl.1')),
      `rotated files exist: ${files.join(', ')}`,
    );
    assert.ok(own.length <= 4, `at most the current file and 3 rotated ones: ${files.join(', ')}`);
    const times = records.map((r) => Date.parse(r.time));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
      'newest first across files',
    );
  });
});
