/**
 * OpenTelemetry traces of an mcpd made by the production composition root (createMcpd,
 * in-process so the test reads its spans from the SDK's in-memory exporter) on npm test's
 * Temporal, OpenBao and Docker: a client's trace (W3C traceparent) continues through an API
 * call, the server and instance workflows and their activities down to Docker's create
 * call; a client's MCP call through the gateway continues to an HTTP upstream, which
 * receives the trace in its own traceparent; log lines inside a trace carry its id.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import { z } from 'zod';
import { stackSettings } from '../api/stack';
import { LABELS } from '../../src/contracts/labels';
import { traceIds } from '../../src/logger';
import { linkInstanceUrl } from '../../src/gateway/http';
import { ensureGatewaySecret, GatewayKeys } from '../../src/gateway/linkKeys';
import { createMcpd, type Mcpd } from '../../src/mcpd';
import { removeContainers, waitFor } from '../support/stack';

describe('tracing: one trace from a client through mcpd', function () {
  this.timeout(180_000);

  const node = `t-trace-${randomBytes(3).toString('hex')}`;
  const server = `t-trace-${randomBytes(3).toString('hex')}`;
  const exporter = new InMemorySpanExporter();
  const logLines: Record<string, unknown>[] = [];
  let dataDir: string;
  let mcpd: Mcpd;
  const upstreams: http.Server[] = [];

  const traceparent = (traceId: string, flags = '01') => `00-${traceId}-${randomBytes(8).toString('hex')}-${flags}`;
  const api = async (method: string, urlPath: string, traceId: string, body?: unknown) => {
    const res = await fetch(`${mcpd.url}${urlPath}`, {
      method,
      headers: { authorization: `Bearer ${mcpd.token}`, 'content-type': 'application/json', traceparent: traceparent(traceId) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  };
  const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  /** The names from a span up to the root of its trace. */
  const ancestry = (span: ReadableSpan, spans: ReadableSpan[]) => {
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const names = [span.name];
    for (let parent = byId.get(span.parentSpanId ?? ''); parent; parent = byId.get(parent.parentSpanId ?? '')) names.push(parent.name);
    return names;
  };

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-trace-'));
    const settings = stackSettings(node, dataDir);
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    // The logger createMcpd would make, writing to this test: its trace ids come from the same mixin.
    const logger = pino({ level: 'info', base: { service: 'mcpd' }, mixin: traceIds }, sink);
    mcpd = await createMcpd({ ...settings, apiPort: 0 }, { owner: node, logger, seedExamples: false, traceExporter: exporter });
    await waitFor(async () => (await fetch(`${mcpd.url}/readyz`)).status === 200, { timeoutMs: 60_000, what: 'mcpd ready' });
  });

  after(async () => {
    if (mcpd) {
      await api('DELETE', `/api/v1/servers/${server}`, randomBytes(16).toString('hex')).catch(() => undefined);
      await mcpd.close();
    }
    for (const upstream of upstreams) {
      upstream.closeAllConnections();
      upstream.close();
    }
    await removeContainers({ label: `${LABELS.owner}=${node}` });
    await removeContainers({ label: `${LABELS.server}=${server}` });
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('an apply and start continue the client trace through the server and instance workflows and activities to docker create', async () => {
    const traceId = randomBytes(16).toString('hex');
    const applied = await api('PUT', `/api/v1/servers/${server}`, traceId, { name: server, image: 'mcpd/tiny:dev', replicas: 1 });
    assert.ok([200, 201].includes(applied.status), applied.text);
    const started = await api('POST', `/api/v1/servers/${server}/start?wait=true&timeout=60`, traceId);
    assert.equal(started.status, 200, started.text);

    const startSpans = await waitFor(
      () => {
        const found = spansOf(traceId);
        return found.some((s) => s.name === 'docker create') && found.some((s) => s.name === 'RunActivity:startContainer') ? found : undefined;
      },
      { timeoutMs: 30_000, what: 'the spans of the trace down to docker create' },
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}; spans of the trace: ${spansOf(traceId)
          .map((s) => s.name)
          .join(', ')}`,
      );
    });
    const names = new Set(startSpans.map((s) => s.name));
    for (const expected of [
      'PUT /api/v1',
      'UpdateWithStartWorkflow:apply',
      'HandleUpdate:apply',
      'POST /api/v1',
      'StartWorkflowUpdate:start',
      'HandleUpdate:start',
      'StartActivity:startInstances',
      'RunActivity:startInstances',
      'StartWorkflow:instanceWorkflow',
      'StartActivity:startContainer',
      'RunActivity:startContainer',
      'docker create',
      'docker start',
    ]) {
      assert.ok(names.has(expected), `${expected} is in the trace: ${[...names].sort().join(', ')}`);
    }
    // This server's env has no secret to pin: its instance goes straight to the node's start.
    assert.ok(!names.has('RunActivity:resolveEnv'), 'no resolveEnv for an env without secrets');
    const create = startSpans.find((s) => s.name === 'docker create')!;
    assert.equal(create.attributes['mcpd.container.name'], `mcpd-${server}-0`);

    // A workflow run's span ends with the run: once the server is deleted, the server's and the
    // instance's runs join the chain, and docker create hangs, parent by parent, from the apply
    // that started the server workflow (whose loop starts the instances the start asked for).
    assert.equal((await api('DELETE', `/api/v1/servers/${server}`, randomBytes(16).toString('hex'))).status, 200);
    const spans = await waitFor(
      () => {
        const found = spansOf(traceId);
        return found.some((s) => s.name === 'RunWorkflow:instanceWorkflow') && found.some((s) => s.name === 'RunWorkflow:serverWorkflow') ? found : undefined;
      },
      { timeoutMs: 60_000, what: 'the instance workflow run ending in the trace' },
    );
    const chain = ancestry(create, spans);
    assert.deepEqual(chain, [
      'docker create',
      'RunActivity:startContainer',
      'StartActivity:startContainer',
      'RunWorkflow:instanceWorkflow',
      'StartWorkflow:instanceWorkflow',
      'RunActivity:startInstances',
      'StartActivity:startInstances',
      'RunWorkflow:serverWorkflow',
      'UpdateWithStartWorkflow:apply',
      'PUT /api/v1',
    ]);

    // A log line written while the activity ran names the trace.
    const attached = logLines.find((l) => l.msg === 'gateway: attached' && typeof l.instanceId === 'string' && l.instanceId.includes(server));
    assert.equal(attached?.trace_id, traceId, JSON.stringify(attached));
  });

  /** An HTTP MCP server in this process, attached to the gateway, that records the traceparent of every request it gets. */
  async function attachTracingUpstream(httpServer: string): Promise<{ instanceId: string; received: string[] }> {
    const received: string[] = [];
    const mcp = new McpServer({ name: 'trace-upstream', version: '1' });
    mcp.registerTool('echo', { inputSchema: { message: z.string() } }, ({ message }) => ({ content: [{ type: 'text', text: message }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomBytes(8).toString('hex') });
    await mcp.connect(transport);
    const listening = http.createServer((req, res) => {
      if (typeof req.headers.traceparent === 'string') received.push(req.headers.traceparent);
      void transport.handleRequest(req, res);
    });
    upstreams.push(listening);
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    const instanceId = `mcp-instance:${httpServer}:0`;
    await mcpd.gateway!.attach({
      instanceId,
      server: httpServer,
      transport: 'http',
      containerId: 'in-process-upstream',
      port: (listening.address() as AddressInfo).port,
      path: '/mcp',
    });
    return { instanceId, received };
  }

  /** Calls echo on /mcp/servers/<server> in a client trace (flags 01: sampled). */
  async function echoInTrace(server: string, traceId: string, flags = '01'): Promise<void> {
    const client = new Client({ name: 'trace-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}/mcp/servers/${server}`), {
        requestInit: { headers: { authorization: `Bearer ${mcpd.token}`, traceparent: traceparent(traceId, flags) } },
      }),
    );
    try {
      const reply = (await client.callTool({ name: 'echo', arguments: { message: 'traced' } })) as { content: { text: string }[] };
      assert.equal(reply.content[0].text, 'traced');
    } finally {
      await client.close();
    }
  }

  it("a client's tools/call continues through the gateway to an HTTP upstream, which receives the trace", async () => {
    const httpServer = `${server}-http`;
    const { instanceId, received } = await attachTracingUpstream(httpServer);
    const traceId = randomBytes(16).toString('hex');
    try {
      await echoInTrace(httpServer, traceId);
    } finally {
      await mcpd.gateway!.detach(instanceId, 'test done');
    }

    const spans = await waitFor(() => {
      const found = spansOf(traceId);
      return found.some((s) => s.name === 'mcp tools/call') ? found : undefined;
    });
    const call = spans.find((s) => s.name === 'mcp tools/call')!;
    assert.deepEqual(ancestry(call, spans), ['mcp tools/call', 'POST /mcp']);
    assert.equal(call.attributes['mcpd.server'], httpServer);
    assert.equal(call.attributes['mcpd.call.outcome'], 'ok');
    // The upstream's traceparent: the same trace, with the gateway's call span as the parent.
    const forwarded = received.filter((t) => t.split('-')[1] === traceId);
    assert.ok(forwarded.length >= 1, `the upstream saw the trace: ${received.join(', ')}`);
    assert.ok(
      forwarded.some((t) => t.split('-')[2] === call.spanContext().spanId),
      `one of ${forwarded.join(', ')} names ${call.spanContext().spanId}`,
    );
  });

  it('a call a front gateway forwards over the gateway link continues on the node, and on to the upstream', async () => {
    // This process is both: the node that runs the upstream, and a front that reaches it over its own link endpoint.
    const nodeServer = `${server}-node`;
    const frontServer = `${server}-front`;
    const { instanceId, received } = await attachTracingUpstream(nodeServer);
    const linkToken = new GatewayKeys(ensureGatewaySecret(dataDir)).linkToken;
    const frontInstance = `mcp-instance:${frontServer}:0`;
    await mcpd.gateway!.attachRemote(
      { instanceId: frontInstance, server: frontServer, transport: 'http', containerId: 'in-process-upstream' },
      { node, url: linkInstanceUrl(mcpd.url, instanceId), authorization: `Bearer ${linkToken}` },
      true,
    );
    const traceId = randomBytes(16).toString('hex');
    try {
      await echoInTrace(frontServer, traceId);
    } finally {
      await mcpd.gateway!.detach(frontInstance, 'test done');
      await mcpd.gateway!.detach(instanceId, 'test done');
    }

    const spans = await waitFor(() => {
      const found = spansOf(traceId).filter((s) => s.name === 'mcp tools/call');
      return found.length === 2 ? spansOf(traceId) : undefined;
    });
    const onNode = spans.find((s) => s.name === 'mcp tools/call' && s.attributes['mcpd.call.origin'] === 'link')!;
    assert.deepEqual(ancestry(onNode, spans), ['mcp tools/call', 'POST /mcp-link', 'mcp tools/call', 'POST /mcp']);
    assert.equal(onNode.attributes['mcpd.server'], nodeServer);
    const onFront = spans.find((s) => s.name === 'mcp tools/call' && s.attributes['mcpd.call.origin'] === 'client')!;
    assert.equal(onFront.attributes['mcpd.server'], frontServer);
    assert.ok(
      received.some((t) => t.split('-')[1] === traceId && t.split('-')[2] === onNode.spanContext().spanId),
      `the upstream's traceparent names the node's call span: ${received.join(', ')}`,
    );
  });

  it('a trace the client did not sample records no span, and the HTTP upstream is told it is not sampled', async () => {
    const httpServer = `${server}-unsampled`;
    const { instanceId, received } = await attachTracingUpstream(httpServer);
    const traceId = randomBytes(16).toString('hex');
    try {
      await echoInTrace(httpServer, traceId, '00');
    } finally {
      await mcpd.gateway!.detach(instanceId, 'test done');
    }
    const forwarded = received.filter((t) => t.split('-')[1] === traceId);
    assert.ok(forwarded.length >= 1, `the upstream saw the trace: ${received.join(', ')}`);
    assert.ok(
      forwarded.every((t) => t.endsWith('-00')),
      `every traceparent it got says not sampled: ${forwarded.join(', ')}`,
    );
    assert.deepEqual(spansOf(traceId), [], 'no span of the trace was recorded');
  });
});
