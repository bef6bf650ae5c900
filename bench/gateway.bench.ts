/**
 * `npm run bench`: tools/call of an echo tool, p50/p99 latency and throughput at 1
 * and 16 calls in flight, for (a) a direct attach to the container (the baseline,
 * measured in the same run), (b) /mcp/servers/<name>, (c) /mcp. The same SDK Client
 * drives all three; only its transport differs. Starts its own container and
 * gateway process on loopback and removes them at the end.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { LABELS } from '../src/contracts/labels';
import { cpuMicros, leanHttpCaller, type CallTool } from './leanClient';
import { callApi } from '../tests/support/clients';
import { freePort, removeContainers, startMcpd, waitFor, type McpdProcess } from '../tests/support/stack';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import Dockerode from 'dockerode';
import { startContainer } from '../tests/gateway/containers';
import { DockerRuntime } from '../src/docker/runtime';
import { DockerAttachTransport } from '../src/gateway/dockerAttachTransport';
import { UpstreamConnection } from '../src/gateway/upstream';
import { containerName, instanceId } from '../src/contracts/instance';
import type { UpstreamTarget } from '../src/contracts/routing';

const SERVER = process.env.BENCH_SERVER ?? 't-gw-bench';
const PORT = Number(process.env.BENCH_PORT ?? 21900);
const SEQUENTIAL_CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const CONCURRENT_MS = Number(process.env.BENCH_CONCURRENT_MS ?? 3000);
const WARMUP_CALLS = 300;
const IN_FLIGHT = 16;
/** The paired full-vs-isolated comparison: rounds per side and the length of each. */
const PAIRED_ROUNDS = Number(process.env.BENCH_PAIRED_ROUNDS ?? 5);
const PAIRED_ROUND_MS = Number(process.env.BENCH_PAIRED_ROUND_MS ?? 2000);
/** Extra node flags for the gateway process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const GATEWAY_NODE_ARGS = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** BENCH_CLIENTS=lean measures only the lean client (quicker runs while profiling). */
const WITH_SDK_CLIENT = process.env.BENCH_CLIENTS !== 'lean';

const docker = new Dockerode();
const runtime = new DockerRuntime();
// The SDK's StreamableHTTPClientTransport adds an abort listener per fetch to one
// long-lived signal; at thousands of calls node warns on every call. Not ours to fix here.
setMaxListeners(0);

interface Row {
  path: string;
  /** CPU µs per call at 16 in flight, by process (client, gateway, dockerd, shim, container). */
  cpu: Record<string, number>;
  p50: number;
  p99: number;
  rps1: number;
  p50at16: number;
  rps16: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The SDK's Client: what an application built on the SDK sees. */
const sdkCaller =
  (client: Client): CallTool =>
  async (name, message) =>
    (await client.callTool({ name, arguments: { message } })) as { content: { text: string }[] };

async function leanAttachCaller(containerId: string): Promise<{ call: CallTool; close(): Promise<void> }> {
  const connection = new UpstreamConnection('bench', new DockerAttachTransport(runtime, containerId));
  await connection.open(10_000);
  return {
    call: async (name, message) =>
      (await connection.request('tools/call', { name, arguments: { message } }, { timeoutMs: 10_000 })) as { content: { text: string }[] },
    close: () => connection.close('done'),
  };
}

function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function pidOf(command: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === command) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

/** The processes whose CPU time a call costs: which pids make up each. */
type ProcessGroups = Record<string, number[]>;

async function processGroups(containerId: string, gatewayPid?: number): Promise<ProcessGroups> {
  const top = (await docker
    .getContainer(containerId)
    .top({ ps_args: '-o pid' })
    .catch(() => ({ Processes: [] }))) as { Processes: string[][] };
  const containerPids = top.Processes.map((p) => Number(p[0])).filter((pid) => pid > 0);
  const initPid = (await docker.getContainer(containerId).inspect()).State.Pid;
  const shim = parentPid(initPid);
  const dockerd = pidOf('dockerd');
  return {
    client: [process.pid],
    ...(gatewayPid ? { gateway: [gatewayPid] } : {}),
    ...(dockerd ? { dockerd: [dockerd] } : {}),
    ...(shim ? { shim: [shim] } : {}),
    container: containerPids,
  };
}

function cpuSnapshot(groups: ProcessGroups): Record<string, number> {
  return Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, pids.reduce((sum, pid) => sum + cpuMicros(pid), 0)]));
}

/** One echo call with a fresh message, checked against its reply (a crossed reply fails the bench). */
function checkedCall(label: string, callTool: CallTool, tool: string): () => Promise<void> {
  let n = 0;
  return async () => {
    const message = `m${n++}`;
    const result = await callTool(tool, message);
    if (!result.content[0].text.endsWith(message)) throw new Error(`${label}: crossed reply: ${result.content[0].text} for ${message}`);
  };
}

/** IN_FLIGHT callers for `durationMs`: sorted latencies, calls/s and CPU µs per call by process group. */
async function inFlight(call: () => Promise<void>, groups: ProcessGroups, durationMs: number) {
  const latencies: number[] = [];
  const deadline = Date.now() + durationMs;
  const cpuBefore = cpuSnapshot(groups);
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (Date.now() < deadline) {
        const t0 = process.hrtime.bigint();
        await call();
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const cpuAfter = cpuSnapshot(groups);
  latencies.sort((a, b) => a - b);
  return {
    latencies,
    rps: (latencies.length / elapsedMs) * 1000,
    cpu: Object.fromEntries(Object.keys(groups).map((name) => [name, (cpuAfter[name] - cpuBefore[name]) / latencies.length])),
  };
}

async function measure(label: string, callTool: CallTool, tool: string, groups: ProcessGroups): Promise<Row> {
  const call = checkedCall(label, callTool, tool);
  for (let i = 0; i < WARMUP_CALLS; i++) await call();

  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  for (let i = 0; i < SEQUENTIAL_CALLS; i++) {
    const t0 = process.hrtime.bigint();
    await call();
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const sequentialMs = Number(process.hrtime.bigint() - started) / 1e6;
  latencies.sort((a, b) => a - b);

  const concurrent = await inFlight(call, groups, CONCURRENT_MS);
  return {
    path: label,
    cpu: concurrent.cpu,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    rps1: (SEQUENTIAL_CALLS / sequentialMs) * 1000,
    p50at16: percentile(concurrent.latencies, 50),
    rps16: concurrent.rps,
  };
}

interface GatewayUnderTest {
  label: string;
  call: () => Promise<void>;
  groups: ProcessGroups;
}

interface PairedGap {
  rounds: number;
  isolated: { rps: number[]; gatewayMicros: number[] };
  full: { rps: number[]; gatewayMicros: number[] };
}

/**
 * The isolated gateway and the full process measured in alternation (isolated, full,
 * isolated, …) with both running, so a drift in what else the machine does lands on
 * both alike; one measurement after the other swung the gap by ±30 % between runs here.
 */
async function pairedGap(isolated: GatewayUnderTest, full: GatewayUnderTest): Promise<PairedGap> {
  const result: PairedGap = { rounds: PAIRED_ROUNDS, isolated: { rps: [], gatewayMicros: [] }, full: { rps: [], gatewayMicros: [] } };
  for (let round = 0; round < PAIRED_ROUNDS; round++) {
    for (const [side, target] of [
      ['isolated', isolated],
      ['full', full],
    ] as const) {
      const measured = await inFlight(target.call, target.groups, PAIRED_ROUND_MS);
      result[side].rps.push(measured.rps);
      result[side].gatewayMicros.push(measured.cpu.gateway ?? NaN);
    }
  }
  return result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function pairedGapReport(pathLabel: string, gap: PairedGap): string {
  const rps = { isolated: median(gap.isolated.rps), full: median(gap.full.rps) };
  const micros = { isolated: median(gap.isolated.gatewayMicros), full: median(gap.full.gatewayMicros) };
  const pct = (1 - rps.full / rps.isolated) * 100;
  const list = (values: number[]) => values.map((v) => v.toFixed(0)).join(', ');
  return [
    `Full mcpd against the isolated gateway, ${pathLabel}, lean client, ${IN_FLIGHT} in flight, ${gap.rounds} alternating rounds of ${PAIRED_ROUND_MS} ms`,
    `| gateway | calls/s per round | median calls/s | gateway CPU µs per call (median) |`,
    `|---|---|---|---|`,
    `| isolated (node:http gateway alone) | ${list(gap.isolated.rps)} | ${rps.isolated.toFixed(0)} | ${micros.isolated.toFixed(0)} |`,
    `| full mcpd (auth, info logs, probes, worker) | ${list(gap.full.rps)} | ${rps.full.toFixed(0)} | ${micros.full.toFixed(0)} |`,
    `gap of the medians: ${pct.toFixed(1)} % (goal under 10 %: ${pct < 10 ? 'met' : 'NOT met'}); gateway CPU per call: ${(((micros.full - micros.isolated) / micros.isolated) * 100).toFixed(1)} %`,
  ].join('\n');
}

async function connected(transport: Transport): Promise<Client> {
  const client = new Client({ name: 'mcpd-bench', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

async function removeOurContainer(): Promise<void> {
  await docker
    .getContainer(containerName(instanceId(SERVER, 0)))
    .remove({ force: true })
    .catch(() => undefined);
}

function startUpstream(): Promise<UpstreamTarget> {
  return startContainer({ server: SERVER, image: 'mcpd/gitea-like:dev' });
}

/** The gateway process and the bearer token it wants. */
function startGateway(target: UpstreamTarget): Promise<{ child: ChildProcess; token: string }> {
  const child = fork(path.join(__dirname, 'gatewayServer.js'), [JSON.stringify(target), String(PORT)], {
    stdio: 'inherit',
    execArgv: [...process.execArgv, ...GATEWAY_NODE_ARGS],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m: { ready?: number; token?: string; error?: string }) =>
      m.ready && m.token ? resolve({ child, token: m.token }) : reject(new Error(m.error)),
    );
    child.once('exit', (code) => reject(new Error(`gateway process exited with ${code}`)));
  });
}

const IMAGE = 'mcpd/gitea-like:dev';
/** Label on the containers the peer proxies start, so cleanup finds exactly ours. */
const PEER_LABEL = `${LABELS.server}=t-gw-bench-peer`;

/**
 * The full process as `npm start` runs it (every role, API auth, logging at its
 * default level, the Temporal worker in the process) with one instance of the same
 * image and a readiness probe every 5 s, so probes run during the measurement.
 */
async function startFullMcpd(): Promise<{ mcpd: McpdProcess; server: string; containerId: string }> {
  const server = 't-gw-bench-full';
  // BENCH_PROFILE_DIR=/tmp/prof CPU-profiles it under load (bench/cpuProfile.ts; node refuses --cpu-prof in NODE_OPTIONS).
  const profile = process.env.BENCH_PROFILE_DIR ? { NODE_OPTIONS: `--require ${path.join(__dirname, 'cpuProfile.js')}` } : {};
  const mcpd = await startMcpd({ env: { MCPD_LOG_LEVEL: process.env.MCPD_LOG_LEVEL ?? 'info', ...profile } });
  try {
    const res = await callApi(mcpd, 'PUT', `/api/v1/servers/${server}`, {
      name: server,
      image: IMAGE,
      healthCheck: { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: 5 },
    });
    if (res.status >= 300) throw new Error(`PUT server: ${res.status} ${res.text}`);
    const start = await callApi(mcpd, 'POST', `/api/v1/servers/${server}/start`);
    if (start.status >= 300) throw new Error(`POST start: ${start.status} ${start.text}`);
    const instance = encodeURIComponent(`mcp-instance:${server}:0`);
    await waitFor(async () => ((await callApi(mcpd, 'GET', `/api/v1/instances/${instance}`)).json as { status?: string } | undefined)?.status === 'RUNNING', {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: `${server} RUNNING`,
    });
    const [container] = await docker.listContainers({ filters: { label: [`${LABELS.server}=${server}`] } });
    return { mcpd, server, containerId: container.Id };
  } catch (error) {
    await mcpd.stop();
    throw error;
  }
}

/** A peer proxy (an npm package) with `docker run -i` of the same image under it, on a loopback port. */
interface Peer {
  child: ChildProcess;
  port: number;
  containerName: string;
}

async function startPeer(bin: string, args: (port: number, dockerRun: string[]) => string[]): Promise<Peer> {
  const port = await freePort();
  const name = `t-gw-bench-peer-${bin}`;
  await removeContainers({ name: `^/${name}$` });
  const dockerRun = ['docker', 'run', '-i', '--rm', '--init', '--network', 'none', '--name', name, '--label', PEER_LABEL, IMAGE];
  const child = spawn(path.join(__dirname, '..', '..', 'node_modules', '.bin', bin), args(port, dockerRun), { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        if (child.exitCode !== null) throw new Error(`${bin} exited with ${child.exitCode}`);
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      }),
    { timeoutMs: 30_000, intervalMs: 100, what: `${bin} listening on ${port}` },
  );
  return { child, port, containerName: name };
}

async function stopPeer(peer: Peer): Promise<void> {
  if (peer.child.exitCode === null && peer.child.signalCode === null) {
    const exited = new Promise((resolve) => peer.child.once('exit', resolve));
    peer.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (peer.child.exitCode === null && peer.child.signalCode === null) peer.child.kill('SIGKILL');
  }
  await removeContainers({ name: `^/${peer.containerName}$` });
}

async function peerGroups(peer: Peer): Promise<ProcessGroups> {
  const [container] = await waitFor(
    async () => {
      const list = await docker.listContainers({ filters: { name: [`^/${peer.containerName}$`] } });
      return list.length > 0 ? list : undefined;
    },
    { timeoutMs: 30_000, what: `${peer.containerName} running` },
  );
  return processGroups(container.Id, peer.child.pid);
}

function table(rows: Row[]): string {
  const base = rows[0];
  const header = ['path', 'p50 ms', 'p99 ms', 'calls/s @1', 'p50 ms @16', 'calls/s @16', 'p50 vs direct', 'calls/s @16 vs direct'];
  const lines = rows.map((r) => [
    r.path,
    r.p50.toFixed(3),
    r.p99.toFixed(3),
    r.rps1.toFixed(0),
    r.p50at16.toFixed(3),
    r.rps16.toFixed(0),
    r === base ? '-' : `${r.p50 - base.p50 >= 0 ? '+' : ''}${(r.p50 - base.p50).toFixed(3)} ms`,
    r === base ? '-' : `${((r.rps16 / base.rps16) * 100).toFixed(0)} %`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n');
}

/** Where the time of one call goes: with every process's share, the 16-in-flight ceiling is CPUs / total. */
function cpuTable(rows: Row[]): string {
  const names = ['client', 'gateway', 'dockerd', 'shim', 'container'];
  const header = ['path', ...names.map((n) => `${n} µs`), 'total µs', `ceiling calls/s (${os.cpus().length} CPUs)`];
  const lines = rows.map((r) => {
    const total = names.reduce((sum, n) => sum + (r.cpu[n] ?? 0), 0);
    return [r.path, ...names.map((n) => (r.cpu[n] === undefined ? '-' : r.cpu[n].toFixed(0))), total.toFixed(0), ((os.cpus().length * 1e6) / total).toFixed(0)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n');
}

async function main(): Promise<void> {
  const target = await startUpstream();
  let gateway: ChildProcess | undefined;
  let full: Awaited<ReturnType<typeof startFullMcpd>> | undefined;
  const peers: Peer[] = [];
  try {
    const lean: Row[] = [];
    const sdk: Row[] = [];
    // (a) The baseline: this process owns the attach stream itself.
    const directGroups = await processGroups(target.containerId);
    const leanDirect = await leanAttachCaller(target.containerId);
    lean.push(await measure('(a) direct attach', leanDirect.call, 'echo', directGroups));
    await leanDirect.close();
    if (WITH_SDK_CLIENT) {
      const direct = await connected(new DockerAttachTransport(runtime, target.containerId));
      sdk.push(await measure('(a) direct attach', sdkCaller(direct), 'echo', directGroups));
      await direct.close();
    }

    // (b), (c) The gateway, in its own process, owns the stream now.
    const started = await startGateway(target);
    gateway = started.child;
    const gatewayGroups = await processGroups(target.containerId, gateway.pid);
    const base = `http://127.0.0.1:${PORT}`;
    const paths: [string, string, string][] = [
      [`(b) /mcp/servers/${SERVER}`, `${base}/mcp/servers/${SERVER}`, 'echo'],
      ['(c) /mcp', `${base}/mcp`, `${SERVER}__echo`],
    ];
    for (const [label, url, tool] of paths) {
      const leanClient = await leanHttpCaller(url, started.token);
      lean.push(await measure(label, leanClient.call, tool, gatewayGroups));
      leanClient.close();
      if (WITH_SDK_CLIENT) {
        const client = await connected(
          new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${started.token}` } } }),
        );
        sdk.push(await measure(label, sdkCaller(client), tool, gatewayGroups));
        await client.close();
      }
    }

    // (d), (e) The full process, as `npm start` runs it.
    const sdkClient = (transport: Transport) => connected(transport);
    full = await startFullMcpd();
    const fullGroups = await processGroups(full.containerId, full.mcpd.pid);
    for (const [label, url, tool] of [
      [`(d) full mcpd /mcp/servers/<name>`, `${full.mcpd.url}/mcp/servers/${full.server}`, 'echo'],
      ['(e) full mcpd /mcp', `${full.mcpd.url}/mcp`, `${full.server}__echo`],
    ] as const) {
      const leanClient = await leanHttpCaller(url, full.mcpd.token);
      lean.push(await measure(label, leanClient.call, tool, fullGroups));
      leanClient.close();
      if (!WITH_SDK_CLIENT) continue;
      const client = await sdkClient(
        new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${full.mcpd.token}` } } }),
      );
      sdk.push(await measure(label, sdkCaller(client), tool, fullGroups));
      await client.close();
    }

    const paired: { path: string; gap: PairedGap }[] = [];
    for (const [pathLabel, isolatedUrl, isolatedTool, fullUrl, fullTool] of [
      ['/mcp/servers/<name>', `${base}/mcp/servers/${SERVER}`, 'echo', `${full.mcpd.url}/mcp/servers/${full.server}`, 'echo'],
      ['/mcp', `${base}/mcp`, `${SERVER}__echo`, `${full.mcpd.url}/mcp`, `${full.server}__echo`],
    ] as const) {
      const isolatedLean = await leanHttpCaller(isolatedUrl, started.token);
      const fullLean = await leanHttpCaller(fullUrl, full.mcpd.token);
      const gap = await pairedGap(
        { label: 'isolated', call: checkedCall('isolated', isolatedLean.call, isolatedTool), groups: gatewayGroups },
        { label: 'full', call: checkedCall('full', fullLean.call, fullTool), groups: fullGroups },
      );
      paired.push({ path: pathLabel, gap });
      isolatedLean.close();
      fullLean.close();
    }
    // Both are done; stop them so the peers do not compete with them for the 2 CPUs.
    gateway.disconnect();
    gateway = undefined;
    await full.mcpd.stop();
    full = undefined;

    // (f), (g) The proxies users would otherwise pick, each on the transport it is built for.
    if (WITH_SDK_CLIENT) {
      // supergateway's stdio mode serves SSE by default (its streamable HTTP output is stateless
      // unless --stateful, and stateless spawns the server anew per request).
      const supergateway = await startPeer('supergateway', (port, run) => ['--stdio', run.join(' '), '--port', String(port), '--logLevel', 'none']);
      peers.push(supergateway);
      {
        const client = await sdkClient(new SSEClientTransport(new URL(`http://127.0.0.1:${supergateway.port}/sse`)));
        sdk.push(await measure('(f) supergateway 4.0.0 (SSE)', sdkCaller(client), 'echo', await peerGroups(supergateway)));
        await client.close();
      }
      await stopPeer(supergateway);
      // mcp-proxy serves streamable HTTP (/mcp) and SSE; streamable HTTP is the current MCP transport.
      const mcpProxy = await startPeer('mcp-proxy', (port, run) => ['--host', '127.0.0.1', '--port', String(port), '--server', 'stream', '--', ...run]);
      peers.push(mcpProxy);
      {
        const client = await sdkClient(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${mcpProxy.port}/mcp`)));
        sdk.push(await measure('(g) mcp-proxy 6.7.19 (streamable HTTP)', sdkCaller(client), 'echo', await peerGroups(mcpProxy)));
        await client.close();
      }
      await stopPeer(mcpProxy);
    }

    console.log(
      `\ntools/call echo: ${SEQUENTIAL_CALLS} sequential calls, then ${IN_FLIGHT} in flight for ${CONCURRENT_MS} ms (node ${process.version}, ${os.cpus().length} CPUs)`,
    );
    const goal = (rows: Row[]) => {
      const [a, b, c, d, e] = rows;
      const latency = (r: Row) => (r.p50 - a.p50 <= 0.5 ? 'met' : 'NOT met');
      const throughput = (r: Row) => (r.rps16 >= a.rps16 / 2 ? 'met' : 'NOT met');
      // Issue 9: the full process within 10 % of the isolated gateway (calls/s at 16 in flight).
      const gap = (full: Row, isolated: Row) => {
        const pct = (1 - full.rps16 / isolated.rps16) * 100;
        return `${pct.toFixed(1)} % (${pct < 10 ? 'met' : 'NOT met'})`;
      };
      return [
        `goal p50 <= direct + 0.5 ms: (b) ${latency(b)}, (c) ${latency(c)}; goal calls/s @16 >= half of direct: (b) ${throughput(b)}, (c) ${throughput(c)}`,
        `full mcpd vs the isolated gateway, measured one after the other (calls/s @16; the paired rounds below decide the goal): (d) vs (b) ${gap(d, b)}, (e) vs (c) ${gap(e, c)}`,
      ].join('\n');
    };
    console.log('\nLean JSON-RPC client (node:http keep-alive / the attach stream): the cost of the proxy itself\n');
    console.log(table(lean));
    console.log(goal(lean));
    console.log(`\nCPU µs per call at ${IN_FLIGHT} in flight, by process (lean client); the machine has ${os.cpus().length} CPUs\n`);
    console.log(cpuTable(lean));
    for (const { path: pathLabel, gap } of paired) console.log(`\n${pairedGapReport(pathLabel, gap)}`);
    if (WITH_SDK_CLIENT) {
      console.log("\nThe SDK's Client (StreamableHTTPClientTransport over fetch / an attach transport): what an SDK application sees\n");
      console.log(table(sdk));
      console.log(goal(sdk));
      console.log(`\nCPU µs per call at ${IN_FLIGHT} in flight, by process (SDK client)\n`);
      console.log(cpuTable(sdk));
    }
  } finally {
    gateway?.disconnect();
    await full?.mcpd.stop();
    for (const peer of peers) await stopPeer(peer);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await removeOurContainer();
    await removeContainers({ label: `${LABELS.server}=t-gw-bench-full` });
    await removeContainers({ label: PEER_LABEL });
  }
}

main().catch(async (error) => {
  console.error(error);
  await removeOurContainer();
  process.exit(1);
});
