/**
 * A real mcpd process with OTEL_EXPORTER_OTLP_ENDPOINT set exports its spans over
 * OTLP/HTTP: an OTLP receiver in the test (it parses the export requests the exporter
 * sends to <endpoint>/v1/traces) finds the server span of an API call, in the client's
 * trace, with mcpd's resource attributes; without the variable nothing is sent.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startMcpd, waitFor, type McpdProcess } from '../support/stack';

interface ExportedSpan {
  traceId: string;
  name: string;
  resource: Record<string, unknown>;
}

/** The spans of an OTLP/HTTP JSON export request (ExportTraceServiceRequest). */
function spansOfExport(body: unknown): ExportedSpan[] {
  type Attribute = { key: string; value: Record<string, unknown> };
  const request = body as { resourceSpans?: { resource?: { attributes?: Attribute[] }; scopeSpans?: { spans?: { traceId: string; name: string }[] }[] }[] };
  return (request.resourceSpans ?? []).flatMap((rs) => {
    const resource = Object.fromEntries((rs.resource?.attributes ?? []).map((a) => [a.key, Object.values(a.value)[0]]));
    return (rs.scopeSpans ?? []).flatMap((ss) => (ss.spans ?? []).map((s) => ({ traceId: s.traceId, name: s.name, resource })));
  });
}

describe('tracing: export over OTLP/HTTP', function () {
  this.timeout(120_000);

  const received: ExportedSpan[] = [];
  const requests: { url?: string; contentType?: string }[] = [];
  let receiver: http.Server;
  let endpoint: string;
  let mcpd: McpdProcess | undefined;

  before(async () => {
    receiver = http.createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (text += c));
      req.on('end', () => {
        requests.push({ url: req.url, contentType: req.headers['content-type'] });
        if (req.url === '/v1/traces') received.push(...spansOfExport(JSON.parse(text)));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });

  after(async () => {
    await mcpd?.stop();
    receiver.closeAllConnections();
    receiver.close();
  });

  it("sends an API call's server span, in the client's trace, to <endpoint>/v1/traces", async () => {
    mcpd = await startMcpd({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
    const traceId = randomBytes(16).toString('hex');
    const res = await fetch(`${mcpd.url}/api/v1/servers`, {
      headers: { authorization: `Bearer ${mcpd.token}`, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    // The batch processor exports every few seconds.
    const span = await waitFor(() => received.find((s) => s.traceId === traceId && s.name === 'GET /api/v1'), {
      timeoutMs: 30_000,
      what: `the span of GET /api/v1 in trace ${traceId} at the receiver`,
    });
    assert.equal(span.resource['service.name'], 'mcpd');
    assert.equal(span.resource['mcpd.node'], mcpd.node);
    assert.ok(requests.every((r) => r.url === '/v1/traces' && r.contentType?.startsWith('application/json')));
    // Health checks and scrapes are not traced.
    assert.equal((await fetch(`${mcpd.url}/readyz`)).status, 200);
    assert.ok(!received.some((s) => s.name.includes('readyz')));
  });

  it('sends nothing without OTEL_EXPORTER_OTLP_ENDPOINT', async () => {
    await mcpd?.stop();
    const before = requests.length;
    mcpd = await startMcpd({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: '' } });
    const res = await fetch(`${mcpd.url}/api/v1/servers`, {
      headers: { authorization: `Bearer ${mcpd.token}`, traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01` },
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    assert.equal(requests.length, before);
  });
});
