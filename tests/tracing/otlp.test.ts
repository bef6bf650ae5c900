/**
 * A real mcpd process with OTEL_EXPORTER_OTLP_ENDPOINT set exports its spans over
 * OTLP/HTTP to a real OpenTelemetry Collector (tests/tracing/collector, built by `npm
 * test`), as an operator would point it at theirs. The collector accepts them and
 * exports them on over OTLP/HTTP JSON to a receiver in the test, which finds the server
 * span of an API call, in the client's trace, with mcpd's resource attributes. Without
 * the variable nothing is sent.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, isPortOpen } from '../../src/embedded/process';
import { startMcpd, waitFor, type McpdProcess } from '../support/stack';

/** Runs the collector built by `npm test` (MCPD_OTELCOL): OTLP/HTTP in on `port`, OTLP/HTTP JSON out to `exportTo`. */
async function startCollector(port: number, exportTo: string, workDir: string): Promise<{ process: ChildProcess; log: () => string }> {
  const binary = process.env.MCPD_OTELCOL;
  if (!binary) throw new Error('MCPD_OTELCOL is unset: run these tests with `npm test`, which builds the OpenTelemetry Collector (tests/tracing/collector)');
  const config = path.join(workDir, 'collector.yaml');
  fs.writeFileSync(
    config,
    [
      'receivers:',
      '  otlp:',
      '    protocols:',
      '      http:',
      `        endpoint: 127.0.0.1:${port}`,
      'exporters:',
      '  otlphttp:',
      `    endpoint: ${exportTo}`,
      '    encoding: json',
      '    compression: none',
      'service:',
      '  telemetry:',
      '    metrics:',
      '      level: none',
      '  pipelines:',
      '    traces:',
      '      receivers: [otlp]',
      '      exporters: [otlphttp]',
      '',
    ].join('\n'),
  );
  const logFile = path.join(workDir, 'collector.log');
  const out = fs.openSync(logFile, 'w');
  const child = spawn(binary, ['--config', `file:${config}`], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const log = () => fs.readFileSync(logFile, 'utf8');
  await waitFor(async () => (child.exitCode !== null ? Promise.reject(new Error(`the collector exited: ${log()}`)) : isPortOpen('127.0.0.1', port)), {
    timeoutMs: 30_000,
    what: 'the OpenTelemetry Collector listening',
  });
  return { process: child, log };
}

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

describe('tracing: export over OTLP/HTTP through a real OpenTelemetry Collector', function () {
  this.timeout(120_000);

  const received: ExportedSpan[] = [];
  const requests: { url?: string; contentType?: string }[] = [];
  let receiver: http.Server;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let endpoint: string;
  let mcpd: McpdProcess | undefined;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-otelcol-'));

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
    const port = await freePort();
    collector = await startCollector(port, `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`, workDir);
    endpoint = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    await mcpd?.stop();
    if (collector?.process.exitCode === null) {
      const exited = new Promise((resolve) => collector.process.once('exit', resolve));
      collector.process.kill('SIGTERM');
      await exited;
    }
    receiver.closeAllConnections();
    receiver.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it("sends an API call's server span, in the client's trace, to the collector at <endpoint>/v1/traces", async () => {
    mcpd = await startMcpd({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
    const traceId = randomBytes(16).toString('hex');
    const res = await fetch(`${mcpd.url}/api/v1/servers`, {
      headers: { authorization: `Bearer ${mcpd.token}`, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    // mcpd's batch processor exports every few seconds; the collector passes each export on at once.
    const span = await waitFor(() => received.find((s) => s.traceId === traceId && s.name === 'GET /api/v1'), {
      timeoutMs: 30_000,
      what: `the span of GET /api/v1 in trace ${traceId} passed on by the collector`,
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
