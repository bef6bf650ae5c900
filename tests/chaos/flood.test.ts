/**
 * An upstream floods stdout, the channel of its JSON-RPC: tens of MiB of non-JSON lines,
 * then one line longer than mcpd's cap (MCPD_STDIO_MAX_LINE_BYTES, 1 MiB here so the test
 * floods little). mcpd must not buffer without bound, must keep serving the other server
 * through the gateway meanwhile, must treat the over-long line as a protocol error of that
 * upstream (its call in flight fails at once) and must let the flooding server's probes
 * decide its health: unhealthy while its stdout is unusable, healthy again after.
 */
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { callApi } from '../support/clients';
import { startMcpd, waitFor, type McpdProcess } from '../support/stack';
import {
  applyServer,
  assertNoSecret,
  assertOneCurrentContainer,
  callThroughGateway,
  CHAOS_TOOLS_ENV,
  echoThroughGateway,
  gatewaySession,
  instanceView,
  residentMiB,
  runningAndHealthy,
  settle,
  stopServersAndMcpd,
  waitForInstance,
  type ChaosServer,
} from './support';

const docker = new Docker();
const MAX_LINE_BYTES = 1024 * 1024;
const RETRY = { fastDelaySeconds: 2, fastAttempts: 5, slowDelaySeconds: 300, stableSeconds: 60 };

/**
 * A client of `server` calling echo every 50 ms in one session until `until` settles;
 * returns each call's latency and any failures.
 */
async function keepCalling(mcpd: McpdProcess, server: ChaosServer, until: Promise<unknown>): Promise<{ latencies: number[]; failures: string[] }> {
  let done = false;
  void until.finally(() => (done = true)).catch(() => undefined);
  const latencies: number[] = [];
  const failures: string[] = [];
  const session = await gatewaySession(mcpd, server);
  try {
    while (!done) {
      const call = await settle(session.call('echo', { message: 'still here' }, 5_000));
      latencies.push(call.ms);
      if (!call.ok) failures.push(call.error.message);
      else if (call.value.isError) failures.push(JSON.stringify(call.value.content));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await session.close();
  }
  return { latencies, failures };
}

/** Samples mcpd's resident memory every 100 ms until `until` settles; returns the highest. */
async function peakResidentMiB(pid: number, until: Promise<unknown>): Promise<number> {
  let done = false;
  void until.finally(() => (done = true)).catch(() => undefined);
  let peak = residentMiB(pid);
  while (!done) {
    peak = Math.max(peak, residentMiB(pid));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return peak;
}

describe('chaos: an upstream floods stdout', function () {
  this.timeout(180_000);
  let mcpd: McpdProcess;
  let flooder: ChaosServer;
  let bystander: ChaosServer;

  before(async () => {
    mcpd = await startMcpd({ env: { MCPD_STDIO_MAX_LINE_BYTES: String(MAX_LINE_BYTES) } });
    // Readiness every second, unhealthy after two failures: the probes' verdict shows within seconds.
    [flooder, bystander] = await Promise.all([
      applyServer(mcpd, 'flood', RETRY, {
        env: [CHAOS_TOOLS_ENV],
        healthCheck: { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: 1, timeoutSeconds: 2, failureThreshold: 2 },
      }),
      applyServer(mcpd, 'calm', RETRY),
    ]);
    await Promise.all([
      waitForInstance(mcpd, flooder, 'the flooder RUNNING and healthy', runningAndHealthy, 60_000),
      waitForInstance(mcpd, bystander, 'the bystander RUNNING and healthy', runningAndHealthy, 60_000),
    ]);
  });

  after(async () => {
    await stopServersAndMcpd(mcpd, [flooder, bystander]);
  });

  it('ignores 64 MiB of non-JSON lines with bounded memory, answers the call behind them, and keeps serving the other server', async () => {
    const before = await instanceView(mcpd, flooder);
    // A small flood first, so what the first one allocates once (code, pools) is in the baseline.
    const warmUp = await callThroughGateway(mcpd, flooder, 'flood', { mode: 'garbage', megabytes: 4 }, 30_000);
    assert.ok(!warmUp.isError, JSON.stringify(warmUp.content));
    const baseline = residentMiB(mcpd.pid);
    const flood = settle(callThroughGateway(mcpd, flooder, 'flood', { mode: 'garbage', megabytes: 64 }, 60_000));
    const [call, peak, others] = await Promise.all([flood, peakResidentMiB(mcpd.pid, flood), keepCalling(mcpd, bystander, flood)]);
    const slowest = Math.max(...others.latencies);
    console.log(
      `      flood call ${call.ok ? 'answered' : 'failed'} after ${call.ms} ms; mcpd RSS ${baseline.toFixed(0)} -> peak ${peak.toFixed(0)} MiB; ` +
        `${others.latencies.length} calls to the other server meanwhile, slowest ${slowest} ms`,
    );
    assert.ok(call.ok && !call.value.isError, `the call behind the garbage is answered: ${call.ok ? JSON.stringify(call.value) : call.error.message}`);
    assert.deepEqual(others.failures, [], 'every call to the other server succeeded');
    assert.ok(others.latencies.length >= 3, 'the other server was called during the flood');
    assert.ok(slowest < 2_000, `the other server answered within 2 s during the flood, slowest ${slowest} ms`);
    assert.ok(peak - baseline < 32, `mcpd's memory stayed bounded: +${(peak - baseline).toFixed(0)} MiB for a 64 MiB flood`);

    const after = await instanceView(mcpd, flooder);
    assert.ok(runningAndHealthy(after), `garbage alone is not a failure: ${after.status} ${after.health}`);
    assert.equal(after.containerId, before.containerId);
    const logs = await callApi(mcpd, 'GET', `/api/v1/instances/${encodeURIComponent(flooder.instance)}/logs?tail=5`);
    assert.equal(logs.status, 200, logs.text);
  });

  it('a line past the cap is a protocol error: the call fails at once, probes mark it unhealthy, then healthy again; memory stays bounded', async () => {
    const before = await waitForInstance(mcpd, flooder, 'the flooder RUNNING and healthy', runningAndHealthy, 30_000);
    const baseline = residentMiB(mcpd.pid);
    // 20 MiB without a newline at 2 MiB/s: about 10 s in which the server answers nothing, its
    // re-attach handshake included; two probes (1 s apart, 2 s timeout) fail well within it.
    const flood = settle(callThroughGateway(mcpd, flooder, 'flood', { mode: 'hugeLine', megabytes: 20, megabytesPerSecond: 2 }, 60_000));
    const unhealthy = waitForInstance(mcpd, flooder, 'the flooder unhealthy by its probes', (v) => v.health === 'unhealthy', 20_000);
    const [call, peak, others, marked] = await Promise.all([flood, peakResidentMiB(mcpd.pid, unhealthy), keepCalling(mcpd, bystander, unhealthy), unhealthy]);
    console.log(
      `      the call in flight failed after ${call.ms} ms: ${call.ok ? JSON.stringify(call.value) : call.error.message}; ` +
        `mcpd RSS ${baseline.toFixed(0)} -> peak ${peak.toFixed(0)} MiB; unhealthy: ${marked.healthReason}`,
    );
    assert.ok(!call.ok, 'the call in flight failed');
    assert.match(call.error.message, /line of more than 1 MiB to stdout: not JSON-RPC \(protocol error\)/);
    assert.ok(call.ms < 5_000, `it failed at once, not after a timeout: ${call.ms} ms`);
    assert.deepEqual(others.failures, [], 'every call to the other server succeeded');
    assert.ok(Math.max(...others.latencies) < 2_000, `the other server answered within 2 s: ${Math.max(...others.latencies)} ms`);
    assert.ok(peak - baseline < 32, `mcpd's memory stayed bounded: +${(peak - baseline).toFixed(0)} MiB`);
    assert.equal(marked.status, 'RUNNING', 'a readiness failure takes it out of rotation, it does not restart it');

    const healthy = await waitForInstance(mcpd, flooder, 'the flooder healthy again after the flood', runningAndHealthy, 30_000);
    assert.equal(healthy.containerId, before.containerId);
    assert.ok(healthy.events.some((e) => e.type === 'HealthChanged' && /readiness unhealthy/.test(e.message)));
    await waitFor(async () => (await echoThroughGateway(mcpd, flooder, 'after the flood')) === 'after the flood', {
      timeoutMs: 10_000,
      what: 'the flooder to answer through the gateway',
    });
    await assertOneCurrentContainer(docker, flooder, healthy);
    await assertOneCurrentContainer(docker, bystander, await instanceView(mcpd, bystander));
    assertNoSecret(flooder, { 'mcpd output': mcpd.output() });
    assertNoSecret(bystander, { 'mcpd output': mcpd.output() });
  });
});
