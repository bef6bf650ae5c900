/**
 * Virtual servers on a real mcpd with real MCP server containers and SDK clients:
 * applied with `mcpctl apply -f` (a YAML file holding a server and a VirtualServer),
 * listed with `mcpctl get virtualservers`, served at /mcp/virtual/<name> with the
 * spec's filters, overrides and naming; a clash under naming "none" refused at apply
 * time naming both tools; the tool list following a server's stop with
 * notifications/tools/list_changed; tool search; scoped tokens; delete.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import { removeContainers, startMcpd, waitFor, waitForValue, type McpdProcess } from '../support/stack';
import { callApi, runMcpctl } from '../support/clients';

type ToolReply = { content: { type: string; text: string }[]; isError?: boolean; structuredContent?: { tools: { name: string }[] } };

describe('virtual servers', function () {
  this.timeout(240_000);

  const suffix = randomBytes(3).toString('hex');
  const tiny = `t-vs-tiny-${suffix}`;
  const gitea = `t-vs-gitea-${suffix}`;
  const curated = `t-vs-cur-${suffix}`;
  const search = `t-vs-search-${suffix}`;
  let mcpd: McpdProcess;
  let work: string;
  const api = (method: string, urlPath: string, body?: unknown) => callApi(mcpd, method, urlPath, body);
  const mcpctl = (args: string[]) => runMcpctl(mcpd, args, { cwd: work });
  const connect = async (urlPath: string, token = mcpd.token) => {
    const client = new Client({ name: 'virtual-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}${urlPath}`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    return client;
  };
  const running = (server: string) =>
    waitForValue(
      async () => (await api('GET', `/api/v1/instances?server=${server}`)).json.items as InstanceView[],
      (items) => items.length === 1 && items[0].status === 'RUNNING',
      { timeoutMs: 90_000, what: `${server} RUNNING`, describe: (items) => JSON.stringify(items.map((v) => [v.status, v.error])) },
    );
  /** Waits until the gateway serves the server's tools (attached and listed). */
  const served = (server: string, tool: string) =>
    waitFor(
      async () => {
        const client = await connect(`/mcp/servers/${server}`).catch(() => undefined);
        if (!client) return false;
        try {
          return (await client.listTools()).tools.some((t) => t.name === tool);
        } finally {
          await client.close();
        }
      },
      { timeoutMs: 60_000, what: `${server} serving ${tool}` },
    );

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-vs-'));
    mcpd = await startMcpd();
  });

  after(async () => {
    if (mcpd) {
      for (const name of [curated, search]) await api('DELETE', `/api/v1/virtualservers/${name}`).catch(() => undefined);
      for (const name of [tiny, gitea]) await api('DELETE', `/api/v1/servers/${name}`).catch(() => undefined);
      await mcpd.stop();
    }
    for (const name of [tiny, gitea]) await removeContainers({ label: `${LABELS.server}=${name}` });
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('mcpctl applies servers and a VirtualServer from one file and lists it', async () => {
    const file = path.join(work, 'fleet.yaml');
    fs.writeFileSync(
      file,
      [
        `kind: VirtualServer`,
        `name: ${curated}`,
        `servers:`,
        `  - name: ${gitea}`,
        `    tools:`,
        `      allow: ["get_*", "echo", "text"]`,
        `      deny: ["text"]`,
        `      overrides:`,
        `        get_me:`,
        `          name: whoami`,
        `          description: Who the Gitea token belongs to`,
        `          annotations: { readOnlyHint: true }`,
        `  - name: ${tiny}`,
        `---`,
        `name: ${tiny}`,
        `image: mcpd/tiny:dev`,
        `---`,
        `name: ${gitea}`,
        `image: mcpd/gitea-like:dev`,
        `env: [{ name: GITEA_TOKEN, value: "${'a'.repeat(40)}" }]`,
        ``,
      ].join('\n'),
    );
    const applied = await mcpctl(['apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, new RegExp(`server/${tiny} created`));
    assert.match(applied.stdout, new RegExp(`virtualserver/${curated} created`));
    const again = await mcpctl(['apply', '-f', file]);
    assert.match(again.stdout, new RegExp(`virtualserver/${curated} unchanged`));

    const listed = await mcpctl(['get', 'virtualservers']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /NAME\s+SERVERS\s+NAMING\s+TOOL-SEARCH\s+ENDPOINT/);
    assert.match(listed.stdout, new RegExp(`${curated}\\s+${gitea},${tiny}\\s+prefix\\s+no\\s+/mcp/virtual/${curated}`));
    const one = await api('GET', `/api/v1/virtualservers/${curated}`);
    assert.equal(one.status, 200);
    assert.equal(one.json.endpoint, `/mcp/virtual/${curated}`);
    assert.equal(one.json.spec.naming, 'prefix');

    const bad = path.join(work, 'bad.yaml');
    fs.writeFileSync(bad, `kind: VirtualServer\nname: ${curated}\nservers: []\nnaming: camel\n`);
    const refused = await mcpctl(['apply', '-f', bad]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /invalid virtual server spec: servers: must name at least one server; naming: /);
  });

  it('serves the filtered, overridden, prefixed tools at /mcp/virtual/<name> and routes calls to their servers', async () => {
    await Promise.all([running(tiny), running(gitea)]);
    await Promise.all([served(tiny, 'echo'), served(gitea, 'get_me')]);
    const client = await connect(`/mcp/virtual/${curated}`);
    try {
      const tools = (await client.listTools()).tools;
      assert.deepEqual(tools.map((t) => t.name).sort(), [`${gitea}__echo`, `${tiny}__echo`, 'whoami'].sort());
      const whoami = tools.find((t) => t.name === 'whoami')!;
      assert.equal(whoami.description, 'Who the Gitea token belongs to');
      assert.equal(whoami.annotations?.readOnlyHint, true);

      const me = (await client.callTool({ name: 'whoami', arguments: {} })) as ToolReply;
      assert.notEqual(me.isError, true, JSON.stringify(me));
      assert.match(me.content[0].text, /mcpd-test/);
      const echoed = (await client.callTool({ name: `${tiny}__echo`, arguments: { message: 'via virtual' } })) as ToolReply;
      assert.equal(echoed.content[0].text, 'via virtual');
      // Filtered out, or not in the spec at all: unknown here, though the servers have them.
      await assert.rejects(client.callTool({ name: `${gitea}__text`, arguments: {} }), /Unknown tool/);
      await assert.rejects(client.callTool({ name: `${gitea}__get_me`, arguments: {} }), /Unknown tool/);
    } finally {
      await client.close();
    }
    const missing = await fetch(`${mcpd.url}/mcp/virtual/t-vs-none-${suffix}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mcpd.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: { message: string } }).error.message, /^virtual server "t-vs-none-.*" not found$/);
  });

  it('refuses naming none when two tools would have one name, naming both; an override settles it', async () => {
    const spec = { kind: 'VirtualServer', name: curated, naming: 'none', servers: [{ name: gitea, tools: { allow: ['echo', 'get_me'] } }, { name: tiny }] };
    const refused = await api('PUT', `/api/v1/virtualservers/${curated}`, spec);
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.json.error, new RegExp(`tool name "echo" is served by ${gitea}/echo and ${tiny}/echo`));

    spec.servers[1] = { name: tiny, tools: { overrides: { echo: { name: 'tiny_echo' } } } } as never;
    const applied = await api('PUT', `/api/v1/virtualservers/${curated}`, spec);
    assert.equal(applied.status, 200, applied.text);
    assert.equal(applied.json.outcome, 'configured');
    const client = await connect(`/mcp/virtual/${curated}`);
    try {
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['echo', 'get_me', 'tiny_echo']);
      const reply = (await client.callTool({ name: 'tiny_echo', arguments: { message: 'renamed' } })) as ToolReply;
      assert.equal(reply.content[0].text, 'renamed');
    } finally {
      await client.close();
    }
  });

  it('follows its servers: a stopped server’s tools leave the list, with notifications/tools/list_changed', async () => {
    const client = await connect(`/mcp/virtual/${curated}`);
    try {
      assert.equal((await client.listTools()).tools.length, 3);
      let changes = 0;
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => void changes++);
      assert.equal((await api('POST', `/api/v1/servers/${tiny}/stop`)).status, 200);
      await waitFor(() => changes > 0, { timeoutMs: 60_000, what: 'notifications/tools/list_changed' });
      await waitForValue(
        async () => (await client.listTools()).tools.map((t) => t.name).sort(),
        (names) => names.join() === 'echo,get_me',
        { timeoutMs: 30_000, what: `only ${gitea}'s tools`, describe: (names) => names.join() },
      );
    } finally {
      await client.close();
    }
  });

  it('with toolSearch exposes find_tools and call_tool only, ranked by name and description', async () => {
    const applied = await api('PUT', `/api/v1/virtualservers/${search}`, { kind: 'VirtualServer', name: search, toolSearch: true, servers: [{ name: gitea }] });
    assert.equal(applied.status, 201, applied.text);
    const client = await connect(`/mcp/virtual/${search}`);
    try {
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['call_tool', 'find_tools']);
      const found = (await client.callTool({ name: 'find_tools', arguments: { query: 'which user owns the token', limit: 3 } })) as ToolReply;
      const names = found.structuredContent!.tools.map((t) => t.name);
      assert.equal(names[0], `${gitea}__get_me`, JSON.stringify(names));
      assert.ok(names.length <= 3);
      const called = (await client.callTool({
        name: 'call_tool',
        arguments: { name: `${gitea}__echo`, arguments: { message: 'found and called' } },
      })) as ToolReply;
      assert.equal(called.content[0].text, 'found and called');
      await assert.rejects(client.callTool({ name: `${gitea}__echo`, arguments: { message: 'direct' } }), /serves find_tools and call_tool/);
    } finally {
      await client.close();
    }
  });

  it('lets a token limited to some servers use only virtual servers drawing from those', async () => {
    const created = await api('POST', '/api/v1/tokens', { name: `t-vs-${suffix}`, role: 'client', servers: [gitea] });
    assert.equal(created.status, 201, created.text);
    const token = created.json.token as string;
    const ok = await connect(`/mcp/virtual/${search}`, token);
    await ok.close();
    // curated also draws from tiny
    await assert.rejects(connect(`/mcp/virtual/${curated}`, token), /403|may not use \/mcp\/virtual/);
    await api('DELETE', `/api/v1/tokens/t-vs-${suffix}`);
  });

  it('mcpctl deletes a virtual server; its endpoint is gone', async () => {
    const deleted = await mcpctl(['delete', 'virtualserver', search]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stdout, new RegExp(`virtualserver/${search} deleted`));
    assert.equal((await api('GET', `/api/v1/virtualservers/${search}`)).status, 404);
    await assert.rejects(connect(`/mcp/virtual/${search}`), /404|not found/);
    const listed = await mcpctl(['get', 'virtualservers', '-o', 'json']);
    assert.ok(!listed.stdout.includes(search));
  });
});
