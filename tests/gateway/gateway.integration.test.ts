/**
 * The gateway against real containers (server-everything and the gitea-like
 * server, created as the lifecycle creates them) with the SDK's Client over
 * Streamable HTTP on /mcp and /mcp/servers/<name>.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import express from 'express';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ToolListChangedNotificationSchema, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { Gateway } from '../../src/gateway/gateway';
import { mountGateway, type GatewayHttp } from '../../src/gateway/http';
import type { UpstreamTarget } from '../../src/contracts/routing';
import { docker, removeContainers, runtime, startContainer } from './containers';

const PREFIX = 't-gw-';
const PORT = 21001;
const TOKEN = '0123456789abcdef0123456789abcdef01234567';

type Text = { content: { type: string; text: string }[]; isError?: boolean };
const textOf = (result: unknown) => (result as Text).content.map((c) => c.text).join('');

describe('gateway (integration, real containers)', function () {
  this.timeout(120_000);
  let gateway: Gateway;
  let http: GatewayHttp;
  let listener: HttpServer;
  let everything: UpstreamTarget;
  let gitea: UpstreamTarget;
  const clients: Client[] = [];

  async function connect(path: string, capabilities: ClientCapabilities = {}): Promise<Client> {
    const client = new Client({ name: 'gateway-test', version: '1.0.0' }, { capabilities });
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${PORT}${path}`)));
    clients.push(client);
    return client;
  }

  before(async () => {
    await removeContainers(PREFIX);
    [everything, gitea] = await Promise.all([
      startContainer({ server: 't-gw-ev', image: 'mcpd/server-everything:dev' }),
      startContainer({ server: 't-gw-gitea', image: 'mcpd/gitea-like:dev', env: { GITEA_TOKEN: TOKEN } }),
    ]);
    gateway = new Gateway({ runtime, discovery: { timeoutMs: 1500, negativeTtlMs: 60_000 } });
    await Promise.all([gateway.attach(everything), gateway.attach(gitea)]);
    const app = express();
    http = mountGateway(app, gateway);
    await new Promise<void>((resolve, reject) => {
      listener = app.listen(PORT, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve()));
    });
    assert.equal((listener.address() as AddressInfo).port, PORT);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  });

  after(async () => {
    await http?.close();
    await gateway?.close();
    await new Promise((resolve) => listener?.close(resolve));
    await removeContainers(PREFIX);
  });

  describe('/mcp (aggregate)', () => {
    it('lists the tools of every ready server as <server>__<tool> and calls them', async () => {
      const client = await connect('/mcp');
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      for (const name of ['t-gw-gitea__echo', 't-gw-gitea__get_me', 't-gw-ev__echo', 't-gw-ev__trigger-sampling-request']) {
        assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
      }
      assert.ok(names.every((n) => n.length <= 64));
      assert.equal(textOf(await client.callTool({ name: 't-gw-gitea__echo', arguments: { message: 'hello' } })), 'hello');
      assert.equal(textOf(await client.callTool({ name: 't-gw-ev__echo', arguments: { message: 'hi' } })), 'Echo: hi');
      const me = await client.callTool({ name: 't-gw-gitea__get_me', arguments: {} });
      assert.equal(me.isError, undefined);
      assert.match(textOf(me), /mcpd-test/);
    });

    it('reads resources (listed and from a template) and gets prompts', async () => {
      const client = await connect('/mcp');
      const { resources } = await client.listResources();
      assert.ok(resources.length > 0, 'server-everything lists resources');
      const read = await client.readResource({ uri: resources[0].uri });
      assert.equal(read.contents[0].uri, resources[0].uri);
      const { resourceTemplates } = await client.listResourceTemplates();
      assert.ok(resourceTemplates.some((t) => t.uriTemplate === 'demo://resource/dynamic/text/{resourceId}'));
      const dynamic = await client.readResource({ uri: 'demo://resource/dynamic/text/3' });
      assert.equal(dynamic.contents[0].uri, 'demo://resource/dynamic/text/3');
      const { prompts } = await client.listPrompts();
      assert.ok(prompts.some((p) => p.name === 't-gw-ev__simple-prompt'));
      const prompt = await client.getPrompt({ name: 't-gw-ev__simple-prompt' });
      assert.ok(prompt.messages.length > 0);
    });

    it('relays progress notifications of a long call', async () => {
      const client = await connect('/mcp');
      const progress: number[] = [];
      const result = await client.callTool({ name: 't-gw-ev__trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      assert.match(textOf(result), /completed/);
      assert.deepEqual(progress, [1, 2, 3]);
    });

    it('relays a sampling request of the upstream to the client and its answer back', async () => {
      const client = await connect('/mcp', { sampling: {} });
      client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
        model: 'test-model',
        role: 'assistant',
        content: { type: 'text', text: `answer to ${(request.params.messages[0].content as { text: string }).text}` },
      }));
      const result = await client.callTool({ name: 't-gw-ev__trigger-sampling-request', arguments: { prompt: 'ping?' } });
      assert.match(textOf(result), /answer to .*ping\?/);
      assert.match(textOf(result), /test-model/);
    });

    it('answers bad input with the error the spec prescribes and keeps serving', async () => {
      const url = `http://127.0.0.1:${PORT}/mcp`;
      const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
      const malformed = await fetch(url, { method: 'POST', headers, body: '{"jsonrpc": "2.0", "id": 1, "method": ' });
      assert.equal(malformed.status, 400);
      assert.equal(((await malformed.json()) as { error: { code: number } }).error.code, -32700);

      const unknownSession = await fetch(url, {
        method: 'POST',
        headers: { ...headers, 'mcp-session-id': 'no-such-session' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      assert.equal(unknownSession.status, 404);
      assert.equal(((await unknownSession.json()) as { error: { code: number } }).error.code, -32001);

      const noSession = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
      assert.equal(noSession.status, 400);

      const oversized = await fetch(url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { pad: 'x'.repeat(5 * 1024 * 1024) } }),
      });
      assert.equal(oversized.status, 413);

      const client = await connect('/mcp');
      await assert.rejects(
        client.callTool({ name: 't-gw-gitea__no_such_tool', arguments: {} }),
        (e: { code?: number }) => e.code === -32602 || e.code === -32601,
      );
      await assert.rejects(client.callTool({ name: 'nosuchserver__echo', arguments: {} }), (e: { code?: number; message: string }) => {
        assert.equal(e.code, -32602);
        assert.match(e.message, /Unknown tool: nosuchserver__echo/);
        return true;
      });
      assert.equal(textOf(await client.callTool({ name: 't-gw-gitea__echo', arguments: { message: 'still here' } })), 'still here');
    });
  });

  describe('/mcp/servers/<name> (one server, transparent)', () => {
    it('lists and calls the tools of that server under their own names', async () => {
      const client = await connect('/mcp/servers/t-gw-gitea');
      assert.equal(client.getServerVersion()?.name, 'gitea-like');
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['echo', 'get_me', 'hang', 'sleep']);
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: 'direct' } })), 'direct');
    });

    it('passes cancellation through: the upstream receives notifications/cancelled and stops', async () => {
      const client = await connect('/mcp/servers/t-gw-gitea');
      const connection = gateway.connectionOf(gitea.instanceId)!;
      const wire: { direction: string; message: Record<string, unknown> }[] = [];
      connection.onTrace = (direction, message) => wire.push({ direction, message });
      try {
        const controller = new AbortController();
        let progressSeen!: () => void;
        const firstProgress = new Promise<void>((resolve) => (progressSeen = resolve));
        const call = client.callTool({ name: 'sleep', arguments: { ms: 20_000 } }, undefined, {
          signal: controller.signal,
          onprogress: () => progressSeen(),
        });
        await firstProgress;
        controller.abort('user pressed stop');
        await assert.rejects(call);
        const sent = wire.find((w) => w.direction === 'out' && w.message.method === 'tools/call');
        assert.ok(sent, 'the call went upstream');
        const upstreamId = sent.message.id;
        await new Promise((resolve) => setTimeout(resolve, 300));
        const cancelled = wire.find((w) => w.direction === 'out' && w.message.method === 'notifications/cancelled');
        assert.ok(cancelled, 'notifications/cancelled went upstream');
        assert.equal((cancelled.message.params as { requestId: unknown }).requestId, upstreamId, 'with the remapped id');
        // The upstream stops its work: its progress for that call ends.
        const before = wire.filter((w) => w.message.method === 'notifications/progress').length;
        await new Promise((resolve) => setTimeout(resolve, 500));
        const after = wire.filter((w) => w.message.method === 'notifications/progress').length;
        assert.equal(after, before, 'no progress after the upstream got the cancellation');
      } finally {
        connection.onTrace = undefined;
      }
    });

    it('passes progress, sampling and resource reads through for server-everything', async () => {
      const client = await connect('/mcp/servers/t-gw-ev', { sampling: {} });
      client.setRequestHandler(CreateMessageRequestSchema, async () => ({
        model: 'passthrough-model',
        role: 'assistant',
        content: { type: 'text', text: 'sampled' },
      }));
      const sampled = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'x' } });
      assert.match(textOf(sampled), /passthrough-model/);
      const progress: number[] = [];
      await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.4, steps: 2 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      assert.deepEqual(progress, [1, 2]);
      const read = await client.readResource({ uri: 'demo://resource/dynamic/text/1' });
      assert.equal(read.contents[0].uri, 'demo://resource/dynamic/text/1');
      const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'completable-prompt' }, argument: { name: 'department', value: 'E' } });
      assert.ok(Array.isArray(completion.completion.values));
    });

    it('multiplexes several client sessions over one STDIO upstream without crossing replies', async () => {
      const sessions = await Promise.all([0, 1, 2, 3, 4].map(() => connect('/mcp/servers/t-gw-gitea')));
      const aggregate = await connect('/mcp');
      const calls: Promise<void>[] = [];
      for (let round = 0; round < 20; round++) {
        sessions.forEach((client, s) => {
          const message = `session ${s} call ${round}`;
          calls.push(client.callTool({ name: 'echo', arguments: { message } }).then((r) => assert.equal(textOf(r), message)));
        });
        const message = `aggregate call ${round}`;
        calls.push(aggregate.callTool({ name: 't-gw-gitea__echo', arguments: { message } }).then((r) => assert.equal(textOf(r), message)));
      }
      await Promise.all(calls);
    });

    it('answers an unknown server with a clear 404', async () => {
      const response = await fetch(`http://127.0.0.1:${PORT}/mcp/servers/t-gw-nope`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
        }),
      });
      assert.equal(response.status, 404);
      assert.match(((await response.json()) as { error: { message: string } }).error.message, /t-gw-nope.*not running/);
    });
  });

  describe('execute (the probe path)', () => {
    it('resolves with the tool result, isError included, and rejects clearly', async () => {
      const ok = await gateway.execute(gitea.instanceId, { method: 'tools/call', params: { name: 'get_me', arguments: {} } }, { timeoutMs: 5000 });
      assert.match(textOf(ok), /mcpd-test/);
      await assert.rejects(
        gateway.execute('mcp-instance:t-gw-unknown:0', { method: 'tools/list' }, { timeoutMs: 1000 }),
        /unknown instance mcp-instance:t-gw-unknown:0/,
      );
      await assert.rejects(
        gateway.execute(gitea.instanceId, { method: 'tools/call', params: { name: 'hang', arguments: {} } }, { timeoutMs: 1000 }),
        /timeout after 1 s/,
      );
      await assert.rejects(gateway.execute(gitea.instanceId, { method: 'no/such/method' }, { timeoutMs: 5000 }), /JSON-RPC error -32601/);
      const controller = new AbortController();
      const aborted = gateway.execute(
        gitea.instanceId,
        { method: 'tools/call', params: { name: 'hang', arguments: {} } },
        { timeoutMs: 10_000, signal: controller.signal },
      );
      controller.abort();
      await assert.rejects(aborted, /cancelled/);
    });

    it('keeps probing an unready instance while clients no longer see it', async () => {
      const client = await connect('/mcp');
      const changed = new Promise<void>((resolve) => client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()));
      // A notification reaches a client once its GET stream is open; a first round trip gives it time to open.
      assert.ok((await client.listTools()).tools.some((t) => t.name === 't-gw-gitea__echo'));
      gateway.setReady(gitea.instanceId, false);
      try {
        await changed;
        const names = (await client.listTools()).tools.map((t) => t.name);
        assert.ok(!names.some((n) => n.startsWith('t-gw-gitea__')), 'unready tools leave the list');
        await assert.rejects(client.callTool({ name: 't-gw-gitea__echo', arguments: { message: 'x' } }), /no ready instance/);
        const probe = await gateway.execute(
          gitea.instanceId,
          { method: 'tools/call', params: { name: 'echo', arguments: { message: 'probe' } } },
          { timeoutMs: 5000 },
        );
        assert.equal(textOf(probe), 'probe');
      } finally {
        gateway.setReady(gitea.instanceId, true);
      }
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('t-gw-gitea__echo'), 'ready again, back in the list');
    });
  });

  describe('failures', () => {
    it('a dead (frozen) upstream costs its timeout once and never stalls the others', async () => {
      const frozen = await startContainer({ server: 't-gw-frozen', image: 'mcpd/gitea-like:dev' });
      await gateway.attach(frozen);
      const wire: string[] = [];
      gateway.connectionOf(frozen.instanceId)!.onTrace = (direction, message) => {
        if (direction === 'out' && typeof message.method === 'string') wire.push(message.method);
      };
      await docker.getContainer(frozen.containerId).pause();
      try {
        const client = await connect('/mcp');
        const first = (await client.listTools()).tools.map((t) => t.name);
        assert.ok(first.includes('t-gw-gitea__echo') && first.includes('t-gw-ev__echo'), 'the others answer');
        assert.ok(!first.some((n) => n.startsWith('t-gw-frozen__')), 'the frozen server is left out');
        const second = (await client.listTools()).tools.map((t) => t.name);
        assert.deepEqual(second, first);
        assert.equal(wire.filter((m) => m === 'tools/list').length, 1, 'the second list did not ask the frozen upstream again');
      } finally {
        await docker
          .getContainer(frozen.containerId)
          .unpause()
          .catch(() => undefined);
        await gateway.detach(frozen.instanceId, 'test over');
        await docker.getContainer(frozen.containerId).remove({ force: true });
      }
    });

    it('a container killed mid-call fails the call promptly and clearly; its tools leave and come back', async () => {
      const victim = await startContainer({ server: 't-gw-victim', image: 'mcpd/gitea-like:dev' });
      await gateway.attach(victim);
      const client = await connect('/mcp');
      assert.ok((await client.listTools()).tools.some((t) => t.name === 't-gw-victim__hang'));
      let listChanged = 0;
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => void listChanged++);
      const call = client.callTool({ name: 't-gw-victim__hang', arguments: {} });
      call.catch(() => undefined);
      const perClient = await connect('/mcp/servers/t-gw-victim');
      const call2 = perClient.callTool({ name: 'sleep', arguments: { ms: 60_000 } });
      call2.catch(() => undefined);
      const probe = gateway.execute(victim.instanceId, { method: 'tools/call', params: { name: 'hang', arguments: {} } }, { timeoutMs: 60_000 });
      probe.catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await docker.getContainer(victim.containerId).kill();
      await assert.rejects(call, /instance mcp-instance:t-gw-victim:0.*(exited|stopped|ended)/);
      await assert.rejects(call2, /instance mcp-instance:t-gw-victim:0.*(exited|stopped|ended)/);
      await assert.rejects(probe, /instance mcp-instance:t-gw-victim:0.*(exited|stopped|ended)/);
      const during = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(!during.some((n) => n.startsWith('t-gw-victim__')), 'its tools left the list');
      assert.ok(listChanged >= 1, 'the client was told the list changed');
      await assert.rejects(
        gateway.execute(victim.instanceId, { method: 'tools/list' }, { timeoutMs: 1000 }),
        /instance mcp-instance:t-gw-victim:0 is not connected/,
      );
      // The lifecycle restarts it and attaches again.
      await docker.getContainer(victim.containerId).start();
      await gateway.attach(victim);
      const after = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(after.includes('t-gw-victim__echo'), 'its tools are back');
      await gateway.detach(victim.instanceId, 'test over');
      await docker.getContainer(victim.containerId).remove({ force: true });
    });

    it('re-attaches to a running, already initialized STDIO server after an mcpd restart', async () => {
      const second = new Gateway({ runtime });
      // The first gateway lets go of the stream, as a dying mcpd would.
      await gateway.detach(gitea.instanceId, 'mcpd restarting');
      try {
        await second.attach(gitea);
        const result = await second.execute(
          gitea.instanceId,
          { method: 'tools/call', params: { name: 'echo', arguments: { message: 'again' } } },
          { timeoutMs: 5000 },
        );
        assert.equal(textOf(result), 'again');
      } finally {
        await second.close();
        await gateway.attach(gitea);
      }
      const result = await gateway.execute(
        gitea.instanceId,
        { method: 'tools/call', params: { name: 'echo', arguments: { message: 'back' } } },
        { timeoutMs: 5000 },
      );
      assert.equal(textOf(result), 'back');
    });
  });

  describe('HTTP upstreams (host network, loopback port)', () => {
    it('serves a Streamable HTTP server in a container', async () => {
      const target = await startContainer({
        server: 't-gw-web',
        image: 'mcpd/gitea-like:dev',
        transport: 'http',
        cmd: ['--transport', 'http', '--port', '21050'],
        port: 21050,
        env: { GITEA_TOKEN: TOKEN },
      });
      try {
        await gateway.attach(target);
        const client = await connect('/mcp/servers/t-gw-web');
        assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { message: 'over http' } })), 'over http');
        const progress: number[] = [];
        await client.callTool({ name: 'sleep', arguments: { ms: 300 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
        assert.ok(progress.length >= 2);
        const aggregate = await connect('/mcp');
        assert.match(textOf(await aggregate.callTool({ name: 't-gw-web__get_me', arguments: {} })), /mcpd-test/);
        const killed = aggregate.callTool({ name: 't-gw-web__hang', arguments: {} });
        await new Promise((resolve) => setTimeout(resolve, 200));
        await docker.getContainer(target.containerId).kill();
        await assert.rejects(killed, /instance mcp-instance:t-gw-web:0 stopped/);
      } finally {
        await gateway.detach(target.instanceId, 'test over');
        await docker
          .getContainer(target.containerId)
          .remove({ force: true })
          .catch(() => undefined);
      }
    });

    it('serves an SSE server in a container', async () => {
      const target = await startContainer({
        server: 't-gw-sse',
        image: 'mcpd/server-everything:dev',
        transport: 'sse',
        cmd: ['sse'],
        env: { PORT: '21051' },
        port: 21051,
        path: '/sse',
      });
      try {
        await gateway.attach(target);
        const client = await connect('/mcp');
        assert.equal(textOf(await client.callTool({ name: 't-gw-sse__echo', arguments: { message: 'sse' } })), 'Echo: sse');
      } finally {
        await gateway.detach(target.instanceId, 'test over');
        await docker
          .getContainer(target.containerId)
          .remove({ force: true })
          .catch(() => undefined);
      }
    });
  });
});
