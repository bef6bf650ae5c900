#!/usr/bin/env node
/**
 * `npm run soak [-- --minutes N] [-- --in-flight N]`: gateway traffic against a real
 * mcpd for N minutes (default 30) while upstream containers are killed (`docker kill`)
 * and restarted (`docker restart`) at random. Not part of `npm test`.
 *
 * Like `npm run bench`, it builds, prepares the toolchain, Docker engine and images,
 * and starts a throwaway stack (in-memory Temporal dev server, dev-mode OpenBao) on free
 * loopback ports, then mcpd on a free port with its own data dir. It applies one
 * server, `soak-<hex>` (the gitea-like image, 2 STDIO replicas, 2 s retry delay,
 * readiness probe every 5 s), and drives tools/call of `echo` through
 * /mcp/servers/<name> and /mcp with N calls in flight (default 8), each session
 * re-initialized when the gateway forgets it. At the end it prints calls, errors by
 * kind and p50/p99/max latency, and removes what it made.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { ROOT, buildProject, embedded, prepareInfrastructure, say } from './lib/bootstrap.mjs';

const P = 'soak';
const log = (msg) => say(P, `${new Date().toISOString().slice(11, 19)} ${msg}`);
const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CALL_TIMEOUT_MS = 15_000;
const PROTOCOL_VERSION = '2025-06-18';

function options() {
  const { values } = parseArgs({
    options: { minutes: { type: 'string', default: '30' }, 'in-flight': { type: 'string', default: '8' } },
    strict: true,
  });
  const minutes = Number(values.minutes);
  const inFlight = Number(values['in-flight']);
  if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, got "${values.minutes}"`);
  if (!Number.isInteger(inFlight) || inFlight < 1 || inFlight > 256)
    throw new Error(`--in-flight must be an integer from 1 to 256, got "${values['in-flight']}"`);
  return { minutes, inFlight };
}

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Counts and latencies, overall and since the last progress line. */
class Tally {
  calls = 0;
  ok = 0;
  errors = new Map();
  latencies = [];
  windowLatencies = [];
  windowCalls = 0;
  windowErrors = 0;
  success(ms) {
    this.calls++;
    this.ok++;
    this.windowCalls++;
    this.latencies.push(ms);
    this.windowLatencies.push(ms);
  }
  failure(kind) {
    this.calls++;
    this.windowCalls++;
    this.windowErrors++;
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }
  takeWindow() {
    const sorted = this.windowLatencies.sort((a, b) => a - b);
    const window = { calls: this.windowCalls, errors: this.windowErrors, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
    this.windowLatencies = [];
    this.windowCalls = 0;
    this.windowErrors = 0;
    return window;
  }
}

/** One MCP client session over raw Streamable HTTP, as lean as the gateway bench's. */
class Session {
  constructor(url, token) {
    this.url = url;
    this.token = token;
    this.id = null;
    this.nextId = 1;
  }

  headers() {
    const h = { authorization: `Bearer ${this.token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
    if (this.id) Object.assign(h, { 'mcp-session-id': this.id, 'mcp-protocol-version': PROTOCOL_VERSION });
    return h;
  }

  async post(message) {
    const res = await fetch(this.url, { method: 'POST', headers: this.headers(), body: JSON.stringify(message), signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
    const text = await res.text();
    return { res, text };
  }

  async open() {
    this.id = null;
    const { res, text } = await this.post({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'mcpd-soak', version: '1' } },
    });
    if (res.status !== 200) throw Object.assign(new Error(`initialize: HTTP ${res.status} ${text.slice(0, 200)}`), { kind: `initialize HTTP ${res.status}` });
    this.id = res.headers.get('mcp-session-id');
    await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  /** tools/call; resolves with the error kind, or null on success. */
  async call(tool, message) {
    const id = this.nextId++;
    const { res, text } = await this.post({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { message } } });
    if (res.status === 404) this.id = null; // session forgotten (e.g. mcpd restarted): initialize again
    if (res.status !== 200) return `HTTP ${res.status}: ${errorMessage(text)}`;
    const reply = parse(text, res.headers.get('content-type') ?? '').find((m) => m?.id === id);
    if (!reply) return 'no reply for the request id';
    if (reply.error) return `JSON-RPC ${reply.error.code}: ${reply.error.message}`;
    if (reply.result?.isError) return `tool error: ${reply.result.content?.map((c) => c.text).join(' ')}`;
    if (reply.result?.content?.[0]?.text?.includes(message) !== true) return 'echo returned something else';
    return null;
  }
}

function parse(text, contentType) {
  if (contentType.includes('text/event-stream')) {
    return text
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => JSON.parse(line.slice(5)));
  }
  const parsed = text ? JSON.parse(text) : [];
  return Array.isArray(parsed) ? parsed : [parsed];
}

function errorMessage(text) {
  try {
    const body = JSON.parse(text);
    return String(body.error?.message ?? body.error ?? text).slice(0, 120);
  } catch {
    return text.slice(0, 120);
  }
}

/** Error messages vary in ids and numbers; the kind keeps what they say. */
function kindOf(message) {
  return message
    .replace(/mcp-instance:[^\s"]+/g, 'mcp-instance:<id>')
    .replace(/[0-9a-f]{12,}/g, '<hex>')
    .replace(/\d+(\.\d+)?\s?ms/g, '<n> ms');
}

async function main() {
  const { minutes, inFlight } = options();
  buildProject(P);
  const { freePort } = embedded().process;
  const { tools } = await prepareInfrastructure(P, path.resolve(process.env.MCPD_DATA_DIR ?? path.join(ROOT, '.data')));
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-soak-'));
  const stack = await embedded().stack.startStack(
    { dataDir, temporal: { port: await freePort(), uiPort: null, persistent: false }, openbao: { port: await freePort(), persistent: false }, env: {} },
    tools,
    (msg) => say(P, msg),
  );
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const mcpdDataDir = path.join(dataDir, 'mcpd');
  const server = `soak-${randomBytes(3).toString('hex')}`;
  const mcpdLog = path.join(dataDir, 'mcpd.log');
  const mcpd = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'main.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      BAO_ADDR: stack.baoAddress,
      BAO_TOKEN: stack.baoToken,
      MCPD_DATA_DIR: mcpdDataDir,
      MCPD_HOST: '127.0.0.1',
      MCPD_PORT: String(port),
      MCPD_NODE: `soak-${process.pid}`,
      MCPD_SEED_EXAMPLES: 'false',
    },
    stdio: ['ignore', fs.openSync(mcpdLog, 'a'), fs.openSync(mcpdLog, 'a')],
  });
  let mcpdExit = null;
  mcpd.once('exit', (code, signal) => (mcpdExit = code ?? signal));

  let token = '';
  const apiCall = async (method, urlPath, body) => {
    const res = await fetch(`${api}/api/v1${urlPath}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${urlPath}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const instances = async () => (await apiCall('GET', `/instances?server=${server}`)).items;

  const cleanup = async () => {
    try {
      if (token) await apiCall('DELETE', `/servers/${server}`).catch(() => undefined);
    } finally {
      if (mcpdExit === null) {
        mcpd.kill('SIGTERM');
        await new Promise((r) => (mcpdExit !== null ? r() : mcpd.once('exit', r)));
      }
      const left = await run('docker', ['ps', '-aq', '--filter', `label=io.mcpd.server=${server}`]).catch(() => ({ stdout: '' }));
      const ids = left.stdout.split('\n').filter(Boolean);
      if (ids.length) await run('docker', ['rm', '-f', ...ids]).catch(() => undefined);
      await stack.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  };
  let stopRequested = false;
  process.on('SIGINT', () => {
    log('interrupted: finishing up');
    stopRequested = true;
  });

  try {
    const readyBy = Date.now() + 120_000;
    for (;;) {
      if (mcpdExit !== null) throw new Error(`mcpd exited (${mcpdExit}) before it was ready; its log: ${mcpdLog}`);
      const ok = await fetch(`${api}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      if (Date.now() > readyBy) throw new Error(`mcpd did not answer ${api}/readyz within 120 s`);
      await sleep(300);
    }
    token = fs.readFileSync(path.join(mcpdDataDir, 'api-token'), 'utf8').trim();
    await apiCall('PUT', `/servers/${server}`, {
      name: server,
      image: 'mcpd/gitea-like:dev',
      transport: 'stdio',
      replicas: 2,
      env: [{ name: 'GITEA_TOKEN', value: '0123456789abcdef0123456789abcdef01234567' }],
      healthCheck: { tool: 'get_me', intervalSeconds: 5, timeoutSeconds: 5, failureThreshold: 2 },
      retry: { fastDelaySeconds: 2, fastAttempts: 1000 },
    });
    await apiCall('POST', `/servers/${server}/start`);
    const healthyBy = Date.now() + 120_000;
    while (!(await instances()).every((i) => i.status === 'RUNNING' && i.health === 'healthy') || (await instances()).length !== 2) {
      if (Date.now() > healthyBy) throw new Error(`${server} did not become healthy within 120 s: ${JSON.stringify(await instances())}`);
      await sleep(500);
    }
    log(`mcpd ${api} (pid ${mcpd.pid}, log ${mcpdLog}); ${server}: 2 replicas healthy. Soaking for ${minutes} min with ${inFlight} calls in flight.`);

    const tally = new Tally();
    const chaos = { kills: 0, restarts: 0, failed: 0 };
    const endAt = Date.now() + minutes * 60_000;
    const running = () => !stopRequested && Date.now() < endAt && mcpdExit === null;

    const worker = async (n) => {
      // Half the workers use the server's own endpoint, half the aggregate.
      const aggregate = n % 2 === 1;
      const session = new Session(`${api}${aggregate ? '/mcp' : `/mcp/servers/${server}`}`, token);
      const tool = aggregate ? `${server}__echo` : 'echo';
      let seq = 0;
      while (running()) {
        const started = performance.now();
        try {
          if (!session.id) await session.open();
          const failure = await session.call(tool, `w${n}-${seq++}`);
          if (failure === null) tally.success(performance.now() - started);
          else {
            tally.failure(kindOf(failure));
            await sleep(100); // an error is not a reason to spin
          }
        } catch (err) {
          const kind =
            err.kind ?? (err.name === 'TimeoutError' ? `no answer within ${CALL_TIMEOUT_MS / 1000} s` : `network: ${err.cause?.code ?? err.message}`);
          tally.failure(kindOf(kind));
          session.id = null;
          await sleep(100);
        }
      }
    };

    const monkey = async () => {
      while (running()) {
        // A kill or restart every 5-25 s.
        const waitUntil = Date.now() + 5_000 + Math.random() * 20_000;
        while (running() && Date.now() < waitUntil) await sleep(250);
        if (!running()) return;
        const { stdout } = await run('docker', ['ps', '-q', '--filter', `label=io.mcpd.server=${server}`]).catch(() => ({ stdout: '' }));
        const ids = stdout.split('\n').filter(Boolean);
        if (ids.length === 0) continue;
        const victim = ids[Math.floor(Math.random() * ids.length)];
        // Two kills, then a restart: both kinds in every run, at random moments and replicas.
        const action = (chaos.kills + chaos.restarts + chaos.failed) % 3 === 2 ? 'restart' : 'kill';
        try {
          await run('docker', action === 'kill' ? ['kill', victim] : ['restart', '--time', '2', victim]);
          chaos[action === 'kill' ? 'kills' : 'restarts']++;
          log(`chaos: docker ${action} ${victim.slice(0, 12)}`);
        } catch (err) {
          chaos.failed++;
          log(`chaos: docker ${action} ${victim.slice(0, 12)} failed: ${err.message.split('\n')[0]}`);
        }
      }
    };

    const progress = setInterval(() => {
      const w = tally.takeWindow();
      log(`last 60 s: ${w.calls} calls, ${w.errors} errors, p50 ${w.p50?.toFixed(1)} ms, p99 ${w.p99?.toFixed(1)} ms; total ${tally.calls} calls`);
    }, 60_000);
    const startedAt = Date.now();
    await Promise.all([...Array.from({ length: inFlight }, (_, n) => worker(n)), monkey()]);
    clearInterval(progress);
    const seconds = (Date.now() - startedAt) / 1000;

    const final = await instances().catch(() => []);
    const sorted = tally.latencies.sort((a, b) => a - b);
    const errors = [...tally.errors.entries()].sort((a, b) => b[1] - a[1]);
    const lines = [
      '',
      `soak: ${seconds.toFixed(0)} s, ${inFlight} calls in flight, server ${server} (2 replicas)`,
      `  calls        ${tally.calls} (${(tally.calls / seconds).toFixed(0)}/s), ok ${tally.ok}, errors ${tally.calls - tally.ok} (${((100 * (tally.calls - tally.ok)) / Math.max(1, tally.calls)).toFixed(2)}%)`,
      `  latency      p50 ${percentile(sorted, 50)?.toFixed(1)} ms, p99 ${percentile(sorted, 99)?.toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms (successful calls)`,
      `  chaos        ${chaos.kills} docker kill, ${chaos.restarts} docker restart${chaos.failed ? `, ${chaos.failed} failed` : ''}`,
      `  errors by kind${errors.length ? '' : '  none'}`,
      ...errors.map(([kind, count]) => `    ${String(count).padStart(7)}  ${kind}`),
      `  instances at the end: ${final.map((i) => `${i.id} ${i.status} ${i.health} (attempts ${i.attemptCount})`).join('; ') || 'unknown'}`,
      mcpdExit !== null ? `  mcpd EXITED during the soak (${mcpdExit}); its log: ${mcpdLog}` : '  mcpd ran throughout',
      '',
    ];
    console.log(lines.join('\n'));
    return mcpdExit === null ? 0 : 1;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`[${P}] ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  },
);
