/**
 * The probe loop activity in the Temporal SDK's activity environment (real heartbeats
 * and cancellation), in front of a scripted gateway, on a clock 1000 times faster than
 * real time.
 */
import assert from 'node:assert/strict';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  createProbeActivities,
  ProbeLoops,
  type ProbeActivities,
  type ProbeLoopHeartbeat,
  type ProbeLoopInput,
  type ProbeLoopResult,
  type ProbeNodeState,
} from '../../activities/probe';
import type { McpRequest, ProxyExecutor } from '../../src/contracts/routing';
import { scaledClock } from '../workflows/fixtures/fakes';

/** A gateway that answers each probe as `answer` says for the probe's number (1-based). */
function gateway(answer: (n: number) => 'ok' | 'fail' | 'hang') {
  const requests: McpRequest[] = [];
  const proxy: ProxyExecutor = {
    execute: async (_id, request) => {
      requests.push(request);
      const how = answer(requests.length);
      if (how === 'fail') throw new Error('upstream connection closed (ECONNRESET)');
      if (how === 'hang') return new Promise(() => undefined);
      return { tools: [] };
    },
  };
  return { proxy, requests };
}

const loopInput = (extra: Partial<ProbeLoopInput> = {}): ProbeLoopInput => ({
  instanceId: 'mcp-instance:t-probe-loop:0',
  kind: 'liveness',
  timeoutSeconds: 1,
  intervalSeconds: 10,
  failureThreshold: 3,
  state: { health: 'healthy', consecutiveFailures: 0 },
  waitFirst: false,
  maxSeconds: 3_600,
  ...extra,
});

/** probeLoop in the SDK's activity environment, recording its heartbeats. */
function environment(activities: ProbeActivities) {
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 20_000 }, { logger: quietLogger });
  const heartbeats: ProbeLoopHeartbeat[] = [];
  env.on('heartbeat', (details: ProbeLoopHeartbeat) => heartbeats.push(details));
  const run = (input: ProbeLoopInput): Promise<ProbeLoopResult> => env.run((i: ProbeLoopInput) => activities.probeLoop(i), input);
  return { heartbeats, run, cancel: () => env.cancel() };
}

describe('probeLoop activity', function () {
  this.timeout(30_000);

  it('probes every interval, heartbeats the count of failures, and returns on the probe that changes health', async () => {
    const { proxy, requests } = gateway((n) => (n <= 5 ? 'ok' : 'fail'));
    const { run, heartbeats } = environment(createProbeActivities({ proxy, clock: scaledClock(1_000) }));
    const started = Date.now();
    const result = await run(loopInput());
    assert.deepEqual(result, {
      state: { health: 'degraded', consecutiveFailures: 1 },
      changed: true,
      reason: 'upstream connection closed (ECONNRESET)',
      probes: 6,
    });
    assert.ok(Date.now() - started >= 50, 'five intervals of 10 s (10 ms each on this clock) between the six probes');
    assert.ok(requests.every((r) => r.method === 'tools/list'));
    assert.deepEqual(heartbeats.at(-1), { state: { health: 'degraded', consecutiveFailures: 1 } });
  });

  it('counts failures below the threshold without returning, and a success resets them', async () => {
    const { proxy } = gateway((n) => (n % 3 === 0 ? 'ok' : 'fail'));
    const { run, heartbeats } = environment(createProbeActivities({ proxy, clock: scaledClock(1_000) }));
    const result = await run(loopInput({ state: { health: 'degraded', consecutiveFailures: 1 }, failureThreshold: 5, maxSeconds: 100 }));
    // fail (2), fail (3), ok -> healthy: the one change.
    assert.deepEqual(result, { state: { health: 'healthy', consecutiveFailures: 0 }, changed: true, reason: null, probes: 3 });
    // After every counted probe; none at the start, whose state is the input's.
    assert.deepEqual(
      heartbeats.map((h) => h.state.consecutiveFailures),
      [2, 3, 0],
    );
  });

  it('returns unchanged after maxSeconds while health stays the same', async () => {
    const { proxy, requests } = gateway(() => 'ok');
    const { run } = environment(createProbeActivities({ proxy, clock: scaledClock(1_000) }));
    const result = await run(loopInput({ maxSeconds: 600, waitFirst: true }));
    assert.equal(result.changed, false);
    assert.deepEqual(result.state, { health: 'healthy', consecutiveFailures: 0 });
    // 600 s at a 10 s interval, after waiting one interval first: at most 60 probes (fewer as timers overrun on a busy machine).
    assert.ok(result.probes >= 30 && result.probes <= 60, `probes: ${result.probes}`);
    assert.equal(requests.length, result.probes);
  });

  it('a probe past timeoutSeconds fails with the timeout, even when the gateway ignores its deadline', async () => {
    const { proxy } = gateway(() => 'hang');
    const { run } = environment(createProbeActivities({ proxy, clock: scaledClock(1_000) }));
    const result = await run(loopInput({ failureThreshold: 1 }));
    assert.deepEqual(result, { state: { health: 'unhealthy', consecutiveFailures: 1 }, changed: true, reason: 'timeout after 1 s', probes: 1 });
  });

  it('probes the node is not ready to judge do not count: health stays as it was', async () => {
    const { proxy, requests } = gateway(() => 'ok');
    const node: ProbeNodeState = { reattached: () => new Promise(() => undefined) };
    const { run } = environment(createProbeActivities({ proxy, node, clock: scaledClock(1_000) }));
    const result = await run(loopInput({ state: { health: 'unhealthy', consecutiveFailures: 4 }, maxSeconds: 60 }));
    assert.deepEqual(result.state, { health: 'unhealthy', consecutiveFailures: 4 });
    assert.equal(result.changed, false);
    assert.equal(requests.length, 0, 'nothing reached the gateway before the node re-attached');
  });

  it('an instance the gateway had lost is attached again and then probed: that probe counts, whatever it finds', async () => {
    const { proxy, requests } = gateway(() => 'fail');
    const repairs: string[] = [];
    // The upstream's connection breaks between every two probes (a server that keeps corrupting its stdout).
    const node: ProbeNodeState = {
      knows: () => false,
      repair: async (instanceId) => (repairs.push(instanceId), { kind: 'reattached', message: 'container re-attached to the gateway' }),
    };
    const { run } = environment(createProbeActivities({ proxy, node, clock: scaledClock(1_000) }));
    const result = await run(loopInput({ state: { health: 'degraded', consecutiveFailures: 1 }, failureThreshold: 2 }));
    assert.deepEqual(result.state, { health: 'unhealthy', consecutiveFailures: 2 });
    assert.equal(result.changed, true);
    assert.equal(requests.length, 1, 'the repair was followed by a probe, and it counted');
    assert.equal(repairs.length, 1);
  });

  it('a repair that finds nothing to attach (the container is gone: the instance is told) does not count', async () => {
    const { proxy, requests } = gateway(() => 'ok');
    const node: ProbeNodeState = { knows: () => false, repair: async () => ({ kind: 'exitSignalled', message: 'container gone' }) };
    const { run } = environment(createProbeActivities({ proxy, node, clock: scaledClock(1_000) }));
    const result = await run(loopInput({ state: { health: 'healthy', consecutiveFailures: 0 }, maxSeconds: 60 }));
    assert.deepEqual(result.state, { health: 'healthy', consecutiveFailures: 0 });
    assert.equal(requests.length, 0);
  });

  it('a lost instance whose server fails the handshake, or does not finish it in time, fails the probe, and that counts', async () => {
    for (const message of [
      'cannot attach to instance x: MCP handshake failed: connection closed',
      'its server did not complete the MCP handshake within 1 s',
    ]) {
      const { proxy, requests } = gateway(() => 'ok');
      const handshakeTimeouts: number[] = [];
      const node: ProbeNodeState = {
        knows: () => false,
        repair: async (_id, handshakeTimeoutMs) => (handshakeTimeouts.push(handshakeTimeoutMs), { kind: 'attachFailed', message }),
      };
      const { run } = environment(createProbeActivities({ proxy, node, clock: scaledClock(1_000) }));
      const result = await run(loopInput({ state: { health: 'degraded', consecutiveFailures: 1 }, failureThreshold: 2 }));
      assert.deepEqual(result.state, { health: 'unhealthy', consecutiveFailures: 2 });
      assert.equal(result.reason, `the gateway lost the instance and ${message}`);
      assert.deepEqual(handshakeTimeouts, [1_000], "the handshake got the probe's timeout");
      assert.equal(requests.length, 0, 'nothing was sent to a server that is not attached');
    }
  });

  it("a repair stuck on mcpd's side (the workflow or the engine does not answer) ends without a verdict", async () => {
    const { proxy, requests } = gateway(() => 'ok');
    const node: ProbeNodeState = { knows: () => false, repair: () => new Promise<never>(() => undefined) };
    const { run } = environment(createProbeActivities({ proxy, node, clock: scaledClock(1_000) }));
    const result = await run(loopInput({ state: { health: 'healthy', consecutiveFailures: 0 }, maxSeconds: 60 }));
    assert.deepEqual(result.state, { health: 'healthy', consecutiveFailures: 0 });
    assert.equal(result.changed, false);
    assert.equal(requests.length, 0);
  });

  for (const when of ['between probes', 'during a probe'] as const) {
    it(`ends promptly when cancelled ${when}`, async () => {
      const { proxy, requests } = gateway(() => (when === 'during a probe' ? 'hang' : 'ok'));
      // Real time here: an interval of 10 s and a probe timeout of 30 s, both far longer than the test waits.
      const { run, cancel } = environment(createProbeActivities({ proxy }));
      const running = run(loopInput({ timeoutSeconds: 30 }));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const cancelledAt = Date.now();
      cancel();
      await assert.rejects(running, (err) => err instanceof CancelledFailure);
      assert.ok(Date.now() - cancelledAt < 1_000, 'the loop noticed the cancellation at once');
      assert.equal(requests.length, 1);
    });
  }

  it('ends at once when a newer loop of the instance begins; stops probing at once when the node stops its container, and ends with its cancellation', async () => {
    const { proxy, requests } = gateway(() => 'ok');
    const loops = new ProbeLoops();
    const activities = createProbeActivities({ proxy, loops });
    const first = environment(activities).run(loopInput());
    await new Promise((resolve) => setTimeout(resolve, 100));
    // A new probe child of the same instance (or one that continued as new) supersedes the old loop.
    const secondEnvironment = environment(activities);
    const second = secondEnvironment.run(loopInput({ intervalSeconds: 0.05 }));
    await assert.rejects(first, (err) => err instanceof CancelledFailure && /a newer probe loop of this instance began/.test(err.message));
    await new Promise((resolve) => setTimeout(resolve, 100));
    loops.stop('mcp-instance:t-probe-loop:0', 'its container is being stopped: spec changed');
    const probesWhenStopped = requests.length;
    let ended = false;
    void second.catch(() => undefined).finally(() => (ended = true));
    // Its workflow is being cancelled or closed: the loop reports nothing (no verdict, no workflow task) until that arrives.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(requests.length, probesWhenStopped, 'no probe after the node stopped the container');
    assert.equal(ended, false, 'the loop waits for its cancellation instead of answering its workflow');
    const cancelledAt = Date.now();
    secondEnvironment.cancel();
    await assert.rejects(second, (err) => err instanceof CancelledFailure);
    assert.ok(Date.now() - cancelledAt < 1_000, 'the cancellation ended the stopped loop at once');
    loops.stop('mcp-instance:t-probe-loop:0', 'again'); // nothing runs: nothing happens
  });
});

const quietLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
