/**
 * `npm run bench -- telemetry`: what metrics and tracing cost the gateway. Three gateway
 * processes (bench/gatewayServer.ts, the production path through createMcpd) in front of
 * one gitea-like container: (a) MCPD_METRICS=false, (b) metrics on (the default), (c)
 * metrics and tracing, sampled at 10 % (OTEL_TRACES_SAMPLER=parentbased_traceidratio,
 * OTEL_TRACES_SAMPLER_ARG=0.1), exporting over OTLP/HTTP to a receiver in this process;
 * (d) metrics on with the audit trail off (MCPD_AUDIT=false; it is on in the others).
 * A lean client drives tools/call at 16 in flight, the three in alternating rounds so a
 * drift of the shared machine lands on all alike; the report gives the median calls/s
 * and gateway CPU µs per call of each, and the costs against issue 12's goals (metrics at
 * most 5 %, tracing at most 10 %).
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setMaxListeners } from 'node:events';
import type { UpstreamTarget } from '../src/contracts/routing';
import { startContainer } from '../tests/gateway/containers';
import { freePort, removeContainers } from '../tests/support/stack';
import { LABELS } from '../src/contracts/labels';
import { cpuMicros, leanHttpCaller, type CallTool } from './leanClient';

const SERVER = 't-bench-telemetry';
const IN_FLIGHT = 16;
const ROUNDS = Number(process.env.BENCH_TELEMETRY_ROUNDS ?? 11);
const ROUND_MS = Number(process.env.BENCH_TELEMETRY_ROUND_MS ?? 2000);
const WARMUP_CALLS = 500;

setMaxListeners(0);

interface Variant {
  label: string;
  env: NodeJS.ProcessEnv;
  child?: ChildProcess;
  call?: CallTool;
  close?: () => void;
  rps: number[];
  micros: number[];
}

/** An OTLP/HTTP receiver that accepts trace exports and counts them. */
async function startReceiver(): Promise<{ url: string; exports: () => number; close(): void }> {
  let exports = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/v1/traces') exports++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports: () => exports,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

async function startGateway(variant: Variant, target: UpstreamTarget): Promise<void> {
  const port = await freePort();
  const child = fork(path.join(__dirname, 'gatewayServer.js'), [JSON.stringify(target), String(port)], {
    stdio: 'inherit',
    env: { ...process.env, ...variant.env },
  });
  variant.child = child;
  const token = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { ready?: number; token?: string; error?: string }) => (m.ready && m.token ? resolve(m.token) : reject(new Error(m.error))));
    child.once('exit', (code) => reject(new Error(`gateway process (${variant.label}) exited with ${code}`)));
  });
  const lean = await leanHttpCaller(`http://127.0.0.1:${port}/mcp/servers/${SERVER}`, token);
  variant.call = (name, message) => lean.call(name, message);
  variant.close = () => lean.close();
}

/** IN_FLIGHT callers for ROUND_MS: calls/s and the gateway's CPU µs per call. */
async function round(variant: Variant): Promise<void> {
  let calls = 0;
  let n = 0;
  const deadline = Date.now() + ROUND_MS;
  const cpuBefore = cpuMicros(variant.child!.pid!);
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (Date.now() < deadline) {
        const message = `m${n++}`;
        const reply = await variant.call!('echo', message);
        if (!reply.content[0].text.endsWith(message)) throw new Error(`${variant.label}: crossed reply ${reply.content[0].text} for ${message}`);
        calls++;
      }
    }),
  );
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  variant.rps.push((calls / elapsedMs) * 1000);
  variant.micros.push((cpuMicros(variant.child!.pid!) - cpuBefore) / calls);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  const receiver = await startReceiver();
  const variants: Variant[] = [
    { label: '(a) metrics off', env: { MCPD_METRICS: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: '' }, rps: [], micros: [] },
    { label: '(b) metrics on', env: { MCPD_METRICS: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: '' }, rps: [], micros: [] },

    {
      label: '(c) metrics and tracing at 10 %',
      env: {
        MCPD_METRICS: 'true',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.1',
      },
      rps: [],
      micros: [],
    },
    // The audit trail is on by default, in (a) to (c); (d) is (b) without it.
    { label: '(d) metrics on, audit trail off', env: { MCPD_METRICS: 'true', MCPD_AUDIT: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: '' }, rps: [], micros: [] },
  ];
  try {
    const target = await startContainer({ server: SERVER, image: 'mcpd/gitea-like:dev' });
    for (const variant of variants) await startGateway(variant, target);
    for (const variant of variants) for (let i = 0; i < WARMUP_CALLS; i++) await variant.call!('echo', `warm ${i}`);
    for (let r = 0; r < ROUNDS; r++) for (const variant of variants) await round(variant);

    const [off, metrics, traced, unaudited] = variants.map((v) => ({ rps: median(v.rps), micros: median(v.micros) }));
    const cost = (base: { rps: number; micros: number }, other: { rps: number; micros: number }) => ({
      throughput: (1 - other.rps / base.rps) * 100,
      cpu: (other.micros / base.micros - 1) * 100,
    });
    const metricsCost = cost(off, metrics);
    const tracingCost = cost(metrics, traced);
    const auditCost = cost(unaudited, metrics);
    const list = (values: number[]) => values.map((v) => v.toFixed(0)).join(', ');
    console.log(
      [
        '',
        `Telemetry cost on the gateway: tools/call through /mcp/servers/<name>, lean client, ${IN_FLIGHT} in flight, ${ROUNDS} alternating rounds of ${ROUND_MS} ms`,
        '| gateway | calls/s per round | median calls/s | gateway CPU µs per call (median) |',
        '|---|---|---|---|',
        ...variants.map((v) => `| ${v.label} | ${list(v.rps)} | ${median(v.rps).toFixed(0)} | ${median(v.micros).toFixed(0)} |`),
        `metrics: ${metricsCost.throughput.toFixed(1)} % fewer calls/s, ${metricsCost.cpu.toFixed(1)} % more gateway CPU per call (goal at most 5 %: ${metricsCost.throughput <= 5 ? 'met' : 'NOT met'})`,
        `tracing at 10 %, on top of metrics: ${tracingCost.throughput.toFixed(1)} % fewer calls/s, ${tracingCost.cpu.toFixed(1)} % more gateway CPU per call (goal at most 10 %: ${tracingCost.throughput <= 10 ? 'met' : 'NOT met'}); ${receiver.exports()} OTLP exports received`,
        `audit trail (a record per call, buffered JSON lines): ${auditCost.throughput.toFixed(1)} % fewer calls/s, ${auditCost.cpu.toFixed(1)} % more gateway CPU per call than without it`,
        '',
      ].join('\n'),
    );
  } finally {
    for (const variant of variants) {
      variant.close?.();
      variant.child?.disconnect();
    }
    receiver.close();
    await removeContainers({ label: `${LABELS.server}=${SERVER}` });
  }
}

main().catch((err: Error) => {
  console.error(`telemetry bench failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
