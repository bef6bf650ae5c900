/**
 * Start latency of a STDIO server: the time from `POST /api/v1/servers/:name/start?wait=true`
 * to its answer that the instance is RUNNING (secret resolved from OpenBao, container
 * created and started, gateway attached and MCP-initialized), beside the baseline
 * measured in the same run: a plain `docker run -i` of the same image to its MCP
 * `initialize` reply. The two alternate (baseline, mcpd, baseline, …) so a change in
 * what else the machine does lands on both alike; medians of BENCH_START_RUNS (9).
 * Needs the stack `npm run bench` starts.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { LABELS } from '../src/contracts/labels';
import { removeContainers, startMcpd, testEnv, waitFor } from '../tests/support/stack';
import { callApi } from '../tests/support/clients';
import { medianSteps, startSteps, type Step } from './startBreakdown';

const IMAGE = 'mcpd/gitea-like:dev';
const RUNS = Number(process.env.BENCH_START_RUNS ?? 9);

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
});

/** `docker run -i` to the first stdout line that answers initialize (the time returned); resolves once the container is gone. */
function plainDockerRun(token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(
      'docker',
      ['run', '-i', '--rm', '--init', '--network', 'none', '--label', `${LABELS.server}=t-bench-plain`, '-e', `GITEA_TOKEN=${token}`, IMAGE],
      {
        stdio: ['pipe', 'pipe', 'ignore'],
      },
    );
    let buffered = '';
    let replied = 0;
    // Resolved once `docker run --rm` has exited, its container removed: the next start must not share the engine with that removal.
    child.once('exit', () => (replied ? resolve(replied) : reject(new Error('docker run exited before its initialize reply'))));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      if (buffered.includes('"id":1') && !replied) {
        replied = Number(process.hrtime.bigint() - started) / 1e6;
        child.stdin.end();
        child.kill('SIGTERM');
      }
    });
    child.once('error', reject);
    child.stdin.write(`${INITIALIZE}\n`);
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  const token = randomBytes(20).toString('hex');
  const server = `t-bench-start-${randomBytes(2).toString('hex')}`;
  const mcpd = await startMcpd({ env: { MCPD_SEED_EXAMPLES: 'false', MCPD_LOG_LEVEL: 'warn' } });
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await callApi(mcpd, method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
    return res.json as unknown;
  };
  const connection = await Connection.connect({ address: testEnv().temporalAddress });
  const temporal = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
  const instanceId = `mcp-instance:${server}:0`;
  const status = async () => ((await api('GET', `/api/v1/instances/${encodeURIComponent(`mcp-instance:${server}:0`)}`)) as { status: string }).status;

  try {
    const plain: number[] = [];
    await plainDockerRun(token); // warm the page cache; not counted

    await api('PUT', `/api/v1/secrets/${server}`, { data: { token } });
    await api('PUT', `/api/v1/servers/${server}`, {
      name: server,
      image: IMAGE,
      env: [{ name: 'GITEA_TOKEN', secretRef: { name: server, key: 'token' } }],
    });
    const viaMcpd: number[] = [];
    const breakdowns: Step[][] = [];
    for (let i = 0; i < RUNS; i++) {
      plain.push(await plainDockerRun(token));
      const startedAt = Date.now();
      const started = process.hrtime.bigint();
      // ?wait answers once the instance runs (an update, no polling); what `mcpctl start --wait` does.
      const { views } = (await api('POST', `/api/v1/servers/${server}/start?wait=true&timeout=60`)) as { views: { status: string; error: string | null }[] };
      if (views[0]?.status !== 'RUNNING') throw new Error(`start did not reach RUNNING: ${JSON.stringify(views)}`);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      viaMcpd.push(ms);
      // The history of the run that just started: read before stopping, the stop adds nothing the breakdown needs.
      const history = await temporal.workflow.getHandle(instanceId).fetchHistory();
      breakdowns.push(startSteps(history.events ?? [], startedAt, startedAt + ms));
      await api('POST', `/api/v1/servers/${server}/stop`);
      await waitFor(async () => (await status()) === 'STOPPED', { timeoutMs: 60_000, intervalMs: 50, what: 'STOPPED' });
    }

    const row = (label: string, values: number[]) =>
      `| ${label.padEnd(56)} | ${median(values).toFixed(0).padStart(10)} | ${Math.min(...values)
        .toFixed(0)
        .padStart(8)} | ${Math.max(...values)
        .toFixed(0)
        .padStart(8)} |`;
    console.log(`\nStart latency of a STDIO server (${IMAGE}), ${RUNS} runs, ms`);
    console.log(`| ${'path'.padEnd(56)} | ${'median'.padStart(10)} | ${'min'.padStart(8)} | ${'max'.padStart(8)} |`);
    console.log(`|${'-'.repeat(58)}|${'-'.repeat(12)}|${'-'.repeat(10)}|${'-'.repeat(10)}|`);
    console.log(row('baseline: docker run -i -> initialize reply', plain));
    console.log(row('mcpd: POST start?wait -> instance RUNNING (MCP-initialized)', viaMcpd));
    console.log(`ratio of the medians: ${(median(viaMcpd) / median(plain)).toFixed(2)}x (goal: at most 1.5x)`);

    console.log(`\nWhere mcpd's start time goes (from the instance workflow's history), median per step, ms`);
    console.log(`| ${'step'.padEnd(56)} | ${'median'.padStart(10)} |`);
    console.log(`|${'-'.repeat(58)}|${'-'.repeat(12)}|`);
    for (const step of medianSteps(breakdowns)) console.log(`| ${step.label.padEnd(56)} | ${step.ms.toFixed(0).padStart(10)} |`);
  } finally {
    await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
    await api('DELETE', `/api/v1/secrets/${server}`).catch(() => undefined);
    await mcpd.stop();
    await connection.close();
    await removeContainers({ label: `${LABELS.server}=${server}` });
    await removeContainers({ label: `${LABELS.server}=t-bench-plain` });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`lifecycle bench: ${err.message}\n`);
  process.exit(1);
});
