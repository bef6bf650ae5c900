/**
 * Per-tool Cedar policies against a real mcpd process and real server containers
 * (gitea-like, and the MCP project's everything server for resources and prompts),
 * driven as a team would: an admin applies Policy documents with `mcpctl apply -f`; MCP
 * SDK clients with scoped tokens of different roles and groups then see only the tools,
 * resources and prompts they may use (lists filtered on /mcp, /mcp/servers/<name> and
 * virtual servers), get a
 * JSON-RPC error saying "denied by policy" for a call they may not make (and an audit
 * record with decision denied), and everything is allowed again once the policies are
 * deleted. A policy that does not parse or does not fit mcpd's schema is refused with
 * the file's line, and nothing of the file is applied.
 *
 * Policies are cluster-wide (one policy set per Temporal namespace): this suite removes
 * every policy it applied, also when it fails.
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
import { POLICY_DENIED_CODE, type PolicyView } from '../../src/contracts/policy';
import { removeContainers, startMcpd, waitForValue, type McpdProcess } from '../support/stack';
import { callApi, connectMcp, runMcpctl } from '../support/clients';

describe('Cedar policies on a real mcpd', function () {
  this.timeout(180_000);

  const suffix = randomBytes(3).toString('hex');
  const server = `t-pol-${suffix}`;
  const policyNames = [`t-pol-dev-${suffix}`, `t-pol-echo-${suffix}`, `t-pol-ev-${suffix}`];
  // A server with resources and prompts (the MCP project's everything server), and a virtual server over it.
  const everything = `t-pol-ev-${suffix}`;
  const virtualEverything = `t-pol-vev-${suffix}`;
  // Virtual servers over the test server: its tools by their own names, and behind tool search.
  const virtualPlain = `t-pol-v-${suffix}`;
  const virtualSearch = `t-pol-vs-${suffix}`;
  let mcpd: McpdProcess;
  let cwd: string;
  const tokens: Record<string, string> = {};
  const api = (method: string, urlPath: string, body?: unknown) => callApi(mcpd, method, urlPath, body);
  const mcpctl = (args: string[]) => runMcpctl(mcpd, args, { cwd });

  const connect = (urlPath: string, token: string): Promise<Client> => connectMcp(mcpd, urlPath, token, 'policy-test');

  async function toolNames(client: Client): Promise<string[]> {
    return (await client.listTools()).tools.map((t) => t.name).sort();
  }

  function file(name: string, text: string): string {
    const full = path.join(cwd, name);
    fs.writeFileSync(full, text);
    return full;
  }

  const policyFile = () =>
    file(
      'policies.yaml',
      [
        'kind: Policy',
        `name: ${policyNames[0]}`,
        'description: the dev group may do anything with the test server',
        'policy: |',
        `  permit(principal in Mcpd::Group::"dev", action, resource in Mcpd::Server::"${server}");`,
        '---',
        'kind: Policy',
        `name: ${policyNames[1]}`,
        'policy: |',
        '  // every client may see and call echo, and nobody may call hang',
        '  permit(principal in Mcpd::Role::"client", action in [Mcpd::Action::"tools/list", Mcpd::Action::"tools/call"], resource)',
        '  when { resource.name == "echo" };',
        `  forbid(principal, action == Mcpd::Action::"tools/call", resource == Mcpd::Tool::"${server}/hang");`,
        '',
      ].join('\n'),
    );

  async function deleteOurPolicies(): Promise<void> {
    for (const name of policyNames) await api('DELETE', `/api/v1/policies/${name}`).catch(() => undefined);
  }

  before(async () => {
    mcpd = await startMcpd();
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-policy-'));
    for (const [name, extra] of [
      ['dev', ['--groups', 'dev,qa']],
      ['plain', []],
    ] as const) {
      const created = await mcpctl(['create', 'token', `t-pol-${name}`, '--role', 'client', ...extra]);
      assert.equal(created.code, 0, created.stderr);
      tokens[name] = created.stdout.trim();
    }
    for (const spec of [
      { name: server, image: 'mcpd/gitea-like:dev', healthCheck: { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: 30, timeoutSeconds: 10 } },
      { name: everything, image: 'mcpd/server-everything:dev' },
    ]) {
      const applied = await api('PUT', `/api/v1/servers/${spec.name}`, spec);
      assert.ok([200, 201].includes(applied.status), applied.text);
      assert.equal((await api('POST', `/api/v1/servers/${spec.name}/start`)).status, 200);
    }
    for (const name of [server, everything]) {
      await waitForValue(
        async () => (await api('GET', `/api/v1/instances?server=${name}`)).json.items as InstanceView[],
        (items) => items.length === 1 && items[0].status === 'RUNNING' && items[0].health === 'healthy',
        { timeoutMs: 90_000, what: `${name} RUNNING and healthy`, describe: (items) => JSON.stringify(items.map((v) => [v.status, v.health])) },
      );
    }
    for (const [name, toolSearch, over] of [
      [virtualPlain, false, server],
      [virtualSearch, true, server],
      [virtualEverything, false, everything],
    ] as const) {
      const virtual = await api('PUT', `/api/v1/virtualservers/${name}`, { name, naming: 'none', toolSearch, servers: [{ name: over }] });
      assert.equal(virtual.status, 201, virtual.text);
    }
  });

  after(async () => {
    if (mcpd) {
      await deleteOurPolicies();
      for (const name of [virtualPlain, virtualSearch, virtualEverything]) await api('DELETE', `/api/v1/virtualservers/${name}`).catch(() => undefined);
      for (const name of [server, everything]) await api('DELETE', `/api/v1/servers/${name}`).catch(() => undefined);
      await mcpd.stop();
    }
    if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
    for (const name of [server, everything]) await removeContainers({ label: `${LABELS.server}=${name}` });
  });

  it('without policies, every tool is listed and callable (as before policies existed)', async () => {
    const client = await connect(`/mcp/servers/${server}`, tokens.plain);
    try {
      assert.ok((await toolNames(client)).includes('get_me'));
      const result = (await client.callTool({ name: 'get_me', arguments: {} })) as { isError?: boolean };
      assert.equal(result.isError, true, 'reaches the server (which answers isError without a token)');
    } finally {
      await client.close();
    }
  });

  it('mcpctl apply -f applies Policy documents; get policies lists them', async () => {
    const applied = await mcpctl(['apply', '-f', policyFile()]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.equal(applied.stdout.trim(), `policy/${policyNames[0]} created\npolicy/${policyNames[1]} created`);
    const again = await mcpctl(['apply', '-f', policyFile()]);
    assert.equal(again.stdout.trim(), `policy/${policyNames[0]} unchanged\npolicy/${policyNames[1]} unchanged`);

    const table = await mcpctl(['get', 'policies']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NAME\s+STATEMENTS\s+AGE\s+DESCRIPTION/);
    assert.match(table.stdout, new RegExp(`${policyNames[0]}\\s+1\\s+\\S+\\s+the dev group may do anything`));
    assert.match(table.stdout, new RegExp(`${policyNames[1]}\\s+2\\s`));
    const one = await mcpctl(['get', 'policy', policyNames[1], '-o', 'json']);
    assert.equal(one.code, 0, one.stderr);
    assert.match((JSON.parse(one.stdout) as PolicyView).policy, /forbid\(principal, action == Mcpd::Action::"tools\/call"/);
  });

  it('tools/list shows each principal only what it may see, on /mcp/servers/<name> and /mcp', async () => {
    const plain = await connect(`/mcp/servers/${server}`, tokens.plain);
    const dev = await connect(`/mcp/servers/${server}`, tokens.dev);
    const plainAggregate = await connect('/mcp', tokens.plain);
    try {
      assert.deepEqual(await toolNames(plain), ['echo']);
      const devTools = await toolNames(dev);
      assert.ok(devTools.includes('get_me') && devTools.includes('hang') && devTools.includes('echo'), devTools.join(', '));
      assert.deepEqual(
        (await toolNames(plainAggregate)).filter((n) => n.startsWith(`${server}__`)),
        [`${server}__echo`],
      );
    } finally {
      await Promise.all([plain.close(), dev.close(), plainAggregate.close()]);
    }
  });

  it('a denied tools/call is a JSON-RPC error saying so, and an audit record with decision denied', async () => {
    const plain = await connect(`/mcp/servers/${server}`, tokens.plain);
    const plainAggregate = await connect('/mcp', tokens.plain);
    const dev = await connect(`/mcp/servers/${server}`, tokens.dev);
    try {
      const echoed = (await plain.callTool({ name: 'echo', arguments: { message: 'hi' } })) as { content: { text: string }[] };
      assert.match(echoed.content[0].text, /hi/);
      await assert.rejects(plain.callTool({ name: 'get_me', arguments: {} }), (err: Error & { code?: number }) => {
        assert.equal(err.code, POLICY_DENIED_CODE);
        assert.match(
          err.message,
          new RegExp(`denied by policy: "t-pol-plain" may not tools/call Mcpd::Tool::"${server}/get_me" \\(policy \\(no permit matched\\)\\)`),
        );
        return true;
      });
      await assert.rejects(plainAggregate.callTool({ name: `${server}__get_me`, arguments: {} }), /denied by policy/);
      // forbid wins over the dev group's permit, and answers at once (hang would never answer).
      await assert.rejects(
        dev.callTool({ name: 'hang', arguments: {} }),
        new RegExp(`denied by policy: "t-pol-dev" may not tools/call .*policy ${policyNames[1]}#2`),
      );
      const allowed = (await dev.callTool({ name: 'get_me', arguments: {} })) as { isError?: boolean };
      assert.equal(allowed.isError, true, 'the dev group reaches get_me');
    } finally {
      await Promise.all([plain.close(), plainAggregate.close(), dev.close()]);
    }

    const records = (await api('GET', `/api/v1/audit?server=${server}&since=5m`)).json.items as AuditRecord[];
    const denied = records.filter((r) => r.decision === 'denied' && r.method === 'tools/call');
    assert.deepEqual(
      denied.map((r) => [r.principal?.name, r.target, r.outcome, r.code]).sort(),
      [
        ['t-pol-dev', 'hang', 'error', POLICY_DENIED_CODE],
        ['t-pol-plain', 'get_me', 'error', POLICY_DENIED_CODE],
        ['t-pol-plain', 'get_me', 'error', POLICY_DENIED_CODE],
      ].sort(),
      JSON.stringify(denied),
    );
    assert.ok(denied.every((r) => r.decidedBy.startsWith('policy')));
    const allowedEcho = records.find((r) => r.principal?.name === 't-pol-plain' && r.target === 'echo' && r.method === 'tools/call');
    assert.equal(allowedEcho?.decidedBy, `policy ${policyNames[1]}#1`);
  });

  it('virtual servers are held to the same policies: their lists, tool search and calls', async () => {
    const plain = await connect(`/mcp/virtual/${virtualPlain}`, tokens.plain);
    const dev = await connect(`/mcp/virtual/${virtualPlain}`, tokens.dev);
    const search = await connect(`/mcp/virtual/${virtualSearch}`, tokens.plain);
    try {
      assert.deepEqual(await toolNames(plain), ['echo']);
      assert.ok((await toolNames(dev)).includes('get_me'));
      await assert.rejects(plain.callTool({ name: 'get_me', arguments: {} }), /denied by policy/);
      const found = await search.callTool({ name: 'find_tools', arguments: { query: 'get me echo hang', limit: 50 } });
      assert.deepEqual(
        (found.structuredContent as { tools: { name: string }[] }).tools.map((t) => t.name),
        ['echo'],
        'tool search finds only what the principal may see',
      );
      await assert.rejects(search.callTool({ name: 'call_tool', arguments: { name: 'get_me', arguments: {} } }), /denied by policy/);
    } finally {
      await Promise.all([plain.close(), dev.close(), search.close()]);
    }
  });

  it('resource and prompt lists hold only what the principal may read or get, on every kind of endpoint', async () => {
    const applied = await api('PUT', `/api/v1/policies/${policyNames[2]}`, {
      name: policyNames[2],
      policy: [
        `permit(principal in Mcpd::Group::"dev", action, resource in Mcpd::Server::"${everything}");`,
        `permit(principal in Mcpd::Role::"client", action == Mcpd::Action::"prompts/get", resource == Mcpd::Prompt::"${everything}/simple-prompt");`,
      ].join('\n'),
    });
    assert.equal(applied.status, 201, applied.text);
    const dev = await connect(`/mcp/servers/${everything}`, tokens.dev);
    const plain = await connect(`/mcp/servers/${everything}`, tokens.plain);
    const plainAggregate = await connect('/mcp', tokens.plain);
    const plainVirtual = await connect(`/mcp/virtual/${virtualEverything}`, tokens.plain);
    const promptNames = async (client: Client) => (await client.listPrompts()).prompts.map((p) => p.name).sort();
    const resourceUris = async (client: Client) => (await client.listResources()).resources.map((r) => r.uri);
    try {
      const devPrompts = await promptNames(dev);
      assert.ok(devPrompts.includes('simple-prompt') && devPrompts.length > 1, devPrompts.join(', '));
      const devResources = await resourceUris(dev);
      assert.ok(devResources.length > 0, "the dev group sees the server's resources");

      assert.deepEqual(await promptNames(plain), ['simple-prompt']);
      assert.deepEqual(await resourceUris(plain), []);
      await assert.rejects(plain.readResource({ uri: devResources[0] }), /denied by policy/, 'what is not listed is not readable either');
      assert.deepEqual(
        (await promptNames(plainAggregate)).filter((n) => n.startsWith(`${everything}__`)),
        [`${everything}__simple-prompt`],
      );
      assert.deepEqual(
        (await resourceUris(plainAggregate)).filter((uri) => devResources.includes(uri)),
        [],
      );
      assert.deepEqual(await promptNames(plainVirtual), ['simple-prompt']);
      assert.deepEqual(await resourceUris(plainVirtual), []);
    } finally {
      await Promise.all([dev.close(), plain.close(), plainAggregate.close(), plainVirtual.close()]);
    }
  });

  it('refuses a policy that does not parse or does not fit, naming the line, and applies nothing of the file', async () => {
    const before = (await api('GET', '/api/v1/policies')).json.items as PolicyView[];
    const otherServer = `t-pol-x-${suffix}`;
    const broken = file(
      'broken.yaml',
      [
        `name: ${otherServer}`,
        'image: mcpd/gitea-like:dev',
        '---',
        'kind: Policy',
        `name: ${policyNames[0]}`,
        'policy: |',
        '  permit(principal, action, resource);',
        '  permit(principal, actoin, resource);',
        '',
      ].join('\n'),
    );
    const refused = await mcpctl(['apply', '-f', broken]);
    assert.equal(refused.code, 2, refused.stdout);
    assert.match(
      refused.stderr,
      /broken\.yaml \(document 2\): invalid policy at line 8 \(line 2, column 19 of the policy\): .*invalid variable in the policy scope: actoin/,
    );

    const typo = file(
      'typo.yaml',
      ['kind: Policy', `name: ${policyNames[0]}`, 'policy: |', '  permit(principal, action, resource)', '  when { resource.nmae == "echo" };', ''].join('\n'),
    );
    const refusedTypo = await mcpctl(['apply', '-f', typo]);
    assert.equal(refusedTypo.code, 2);
    assert.match(refusedTypo.stderr, /invalid policy at line 5 .*attribute `nmae` .* not found/);

    const direct = await api('PUT', `/api/v1/policies/${policyNames[0]}`, { name: policyNames[0], policy: 'permit(principal, action, resource' });
    assert.equal(direct.status, 400);
    assert.match(String(direct.json.error), /^invalid policy "t-pol-dev-\w+": line 1, column \d+: /);
    assert.deepEqual(
      (direct.json.details as { field: string; line: number }[]).map((d) => [d.field, d.line]),
      [['policy', 1]],
    );

    assert.deepEqual((await api('GET', '/api/v1/policies')).json.items, before, 'the policies are unchanged');
    assert.equal((await api('GET', `/api/v1/servers/${otherServer}`)).status, 404, 'the server of the same file was not applied');

    const viewer = await mcpctl(['create', 'token', 't-pol-viewer', '--role', 'operator']);
    const operator = await callApi({ url: mcpd.url, token: viewer.stdout.trim() }, 'DELETE', `/api/v1/policies/${policyNames[0]}`);
    assert.equal(operator.status, 403, 'only admins change policies');
    assert.match(operator.text, /only the admin role may change policies/);
  });

  it('mcpctl delete policy: with no policy left, everything is allowed again', async () => {
    for (const name of policyNames) {
      const deleted = await mcpctl(['delete', 'policy', name]);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.equal(deleted.stdout.trim(), `policy/${name} deleted`);
    }
    const missing = await mcpctl(['delete', 'policy', policyNames[0]]);
    assert.equal(missing.code, 3);
    const plain = await connect(`/mcp/servers/${server}`, tokens.plain);
    try {
      assert.ok((await toolNames(plain)).includes('get_me'));
      const result = (await plain.callTool({ name: 'get_me', arguments: {} })) as { isError?: boolean };
      assert.equal(result.isError, true);
    } finally {
      await plain.close();
    }
  });
});
