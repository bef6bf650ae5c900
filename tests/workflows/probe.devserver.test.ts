/**
 * probeWorkflow on the real Temporal dev server (npm test's stack, a namespace of its
 * own), with the real probe loop activity in front of a scripted proxy (the
 * ProxyExecutor seam), under a stand-in parent that records the healthChanged signals
 * it receives; and a real instanceWorkflow with its probe.
 *
 * The probe activities run on a clock 1000 times faster than real time (a 10 s interval
 * passes in 10 ms, the probe loop's hour in 3.6 s), so hours of probing take seconds.
 * Workflow time is real time: the dev server, unlike the time-skipping server, does not
 * skip it, and it runs continue-as-new and cancellation races as production does.
 */
import assert from 'node:assert/strict';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { createControlActivities } from '../../activities/control';
import { createProbeActivities, ProbeLoops } from '../../activities/probe';
import { TASK_QUEUE, instanceId, nodeTaskQueue, probeWorkflowId, type InstanceView } from '../../src/contracts/instance';
import { probeLoopLostSignal, statusQuery, stopSignal } from '../../src/contracts/messages';
import { mcpHealthKey, mcpInstanceStatusKey } from '../../src/contracts/searchAttributes';
import type { McpRequest, ProxyExecutor } from '../../src/contracts/routing';
import type { InstanceWorkflowArgs } from '../../workflows/instance';
import { waitFor, waitForValue } from '../support/stack';
import { DevServerNamespace, recordHistory } from './fixtures/env';
import { FakeNode, MemorySecretStore, readyNodes, scaledClock, spec } from './fixtures/fakes';
import type { ProbeParentInput, ProbeParentResult } from './fixtures/probe-parent';

type Behaviour = 'ok' | 'rpcError' | 'isError' | 'connection' | 'hang';

/** A proxy that answers each call with the next scripted behaviour, then repeats the last one. */
class ScriptedProxy implements ProxyExecutor {
  readonly requests: McpRequest[] = [];
  constructor(private readonly script: Behaviour[]) {}

  async execute(_instanceId: string, request: McpRequest): Promise<Record<string, unknown>> {
    this.requests.push(request);
    const behaviour = this.script.length > 1 ? this.script.shift()! : this.script[0];
    switch (behaviour) {
      case 'ok':
        return request.method === 'tools/list'
          ? { tools: [{ name: 'echo', inputSchema: { type: 'object' } }] }
          : { content: [{ type: 'text', text: 'hello' }] };
      case 'isError':
        return { content: [{ type: 'text', text: 'token is required' }], isError: true };
      case 'rpcError':
        throw new Error('MCP error -32601: Method not found');
      case 'connection':
        throw new Error('upstream connection closed (ECONNRESET)');
      case 'hang':
        // Ignores the deadline it was given: the activity's own timer must end the probe.
        return new Promise(() => undefined);
    }
  }
}

const NAMESPACE = 'mcpd-probe-tests';
const NODE = 't-wf-probe-node';
/** The node of the real instance test: FakeNode's containers and its real probe activities. */
const INSTANCE_NODE = 't-wf-probe-instance-node';
const { EventType } = temporal.api.enums.v1;

/** The event types of a workflow's history, in order. */
async function eventTypes(handle: Pick<WorkflowHandle, 'fetchHistory'>): Promise<temporal.api.enums.v1.EventType[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).map((e) => e.eventType ?? EventType.EVENT_TYPE_UNSPECIFIED);
}

/** The position of every completed probe loop activity in a history. */
/** The probe child of an instance's current attempt (its generation is in the last AttemptStarted event). */
function probeOf(client: Client, view: InstanceView): WorkflowHandle {
  const generation = Number(/generation (\d+)/.exec([...view.events].reverse().find((e) => e.type === 'AttemptStarted')?.message ?? '')?.[1]);
  return client.workflow.getHandle(probeWorkflowId(view.id, generation));
}

const loopEnds = (types: temporal.api.enums.v1.EventType[]) => types.flatMap((type, i) => (type === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED ? [i] : []));

describe('probeWorkflow on the Temporal dev server', function () {
  this.timeout(120_000);
  let devServer: DevServerNamespace | undefined;
  let client: Client;
  /** The proxy each test scripts, by instance id; the node worker's activity goes through it. */
  const proxies = new Map<string, ScriptedProxy>();
  const dispatcher: ProxyExecutor = {
    execute: (id, request) => {
      const proxy = proxies.get(id);
      if (!proxy) return Promise.reject(new Error(`unknown instance ${id}`));
      return proxy.execute(id, request);
    },
  };
  const instanceNode = new FakeNode(new MemorySecretStore());
  const probeLoops = new ProbeLoops();
  const runTag = Date.now().toString(36);
  let runId = 0;

  before(async () => {
    devServer = await DevServerNamespace.open(NAMESPACE);
    client = devServer.client;
    await devServer.runWorkers([
      {
        taskQueue: TASK_QUEUE,
        workflowsPath: require.resolve('./fixtures/probe-parent'),
        activities: { ...createControlActivities({ secrets: new MemorySecretStore() }), ...readyNodes(INSTANCE_NODE) },
      },
      { taskQueue: nodeTaskQueue(NODE), activities: createProbeActivities({ proxy: dispatcher, clock: scaledClock(1_000), loops: probeLoops }) },
      { taskQueue: nodeTaskQueue(INSTANCE_NODE), activities: instanceNode.activities() },
    ]);
  });
  after(() => devServer?.close());

  /** Runs the stand-in parent with the real probe child and the scripted proxy behind the real activity. */
  async function runProbe(
    name: string,
    proxy: ScriptedProxy,
    input: Omit<ProbeParentInput['probe'], 'instanceId' | 'node'>,
    expectTransitions: number,
    settleSeconds = 1,
  ) {
    const id = `mcp-instance:wf-probe-${runTag}-${++runId}:0`;
    proxies.set(id, proxy);
    const handle = await client.workflow.start('probeParentWorkflow', {
      taskQueue: TASK_QUEUE,
      workflowId: `wf-probe-parent-${runTag}-${runId}`,
      args: [{ probe: { instanceId: id, node: NODE, ...input }, expectTransitions, settleSeconds } satisfies ProbeParentInput],
    });
    const result = (await handle.result()) as ProbeParentResult;
    const probe = client.workflow.getHandle(result.probeWorkflowId, result.probeFirstRunId);
    await recordHistory(probe, `probe-loop-${name}`);
    return { result, probe, id };
  }

  it('readiness: signals healthy, degraded and unhealthy only on transitions, for every failure kind', async () => {
    const proxy = new ScriptedProxy(['ok', 'isError', 'ok', 'connection', 'rpcError', 'hang', 'rpcError']);
    const { result, probe } = await runProbe(
      'readiness-transitions',
      proxy,
      { healthCheck: { tool: 'get_me', arguments: { verbose: true }, intervalSeconds: 10, timeoutSeconds: 1, failureThreshold: 3 } },
      5,
    );
    assert.deepEqual(result.transitions, [
      { health: 'healthy', reason: null, liveness: false, consecutiveFailures: 0 },
      { health: 'degraded', reason: 'token is required', liveness: false, consecutiveFailures: 1 },
      { health: 'healthy', reason: null, liveness: false, consecutiveFailures: 0 },
      { health: 'degraded', reason: 'upstream connection closed (ECONNRESET)', liveness: false, consecutiveFailures: 1 },
      // The JSON-RPC error made it 2 (still degraded: no signal); the hang is the third failure.
      { health: 'unhealthy', reason: 'timeout after 1 s', liveness: false, consecutiveFailures: 3 },
    ]);
    // The probe kept running after the last transition (a second is 1000 s of probe time at a 10 s interval) without signalling again.
    assert.ok(proxy.requests.length >= 30, `expected the probe to keep probing, saw ${proxy.requests.length} requests`);
    assert.deepEqual(proxy.requests[0], { method: 'tools/call', params: { name: 'get_me', arguments: { verbose: true } } });
    // One probe loop activity per transition: the probes between them cost no history.
    const types = await eventTypes(probe);
    assert.equal(types.filter((t) => t === EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED).length, 5);
    assert.equal(loopEnds(types).length, 5);
  });

  it('liveness: a JSON-RPC error to tools/list at threshold 1 is unhealthy and marked as liveness', async () => {
    const proxy = new ScriptedProxy(['rpcError']);
    const { result } = await runProbe('liveness-rpc-error', proxy, { intervalSeconds: 10, timeoutSeconds: 2, failureThreshold: 1 }, 1);
    assert.deepEqual(result.transitions, [{ health: 'unhealthy', reason: 'MCP error -32601: Method not found', liveness: true, consecutiveFailures: 1 }]);
    assert.ok(proxy.requests.every((r) => r.method === 'tools/list'));
  });

  it('liveness defaults: degraded below 3 failures, healthy again after a success', async () => {
    const proxy = new ScriptedProxy(['connection', 'connection', 'ok']);
    const { result } = await runProbe('liveness-defaults', proxy, {}, 2);
    assert.deepEqual(
      result.transitions.map((t) => [t.health, t.consecutiveFailures]),
      [
        ['degraded', 1],
        ['healthy', 0],
      ],
    );
  });

  it('continues as new keeping health: no spurious signal, and the next change is still reported', async () => {
    // Carried unhealthy; failing through several short loops (60 s of probe time each) past continue-as-new, then recovering.
    const proxy = new ScriptedProxy([...Array<Behaviour>(60).fill('rpcError'), 'ok']);
    const { result } = await runProbe(
      'continue-as-new',
      proxy,
      {
        intervalSeconds: 10,
        timeoutSeconds: 2,
        failureThreshold: 3,
        carried: { health: 'unhealthy', consecutiveFailures: 3 },
        tuning: { loopSeconds: 60, historyLimit: 20 },
      },
      1,
    );
    assert.deepEqual(result.transitions, [{ health: 'healthy', reason: null, liveness: true, consecutiveFailures: 0 }]);
    const latest = await client.workflow.getHandle(result.probeWorkflowId).describe();
    assert.notEqual(latest.runId, result.probeFirstRunId, 'the probe should have continued as new');
  });

  it('costs six history events per probe loop hour while healthy, whatever the interval', async () => {
    // Both probes run side by side: three loops of an hour each (about 3.6 s apiece here).
    const runs = await Promise.all(
      [1, 60].map((intervalSeconds) =>
        runProbe(`steady-${intervalSeconds}s`, new ScriptedProxy(['ok']), { intervalSeconds, timeoutSeconds: 1, failureThreshold: 3 }, 1, 16).then((run) => ({
          intervalSeconds,
          ...run,
        })),
      ),
    );
    for (const { intervalSeconds, result, probe } of runs) {
      assert.equal(result.transitions.length, 1, `interval ${intervalSeconds} s: only the first probe's healthy transition`);
      const ends = loopEnds(await eventTypes(probe));
      assert.ok(ends.length >= 3, `interval ${intervalSeconds} s: expected at least three loops, saw ${ends.length}`);
      // From one loop's end to the next: its workflow task (3), the next loop scheduled, started and completed (3).
      const perLoop = ends.slice(1).map((end, i) => end - ends[i]);
      // The first gap holds the healthy transition's signal (2 more events); every quiet hour after it costs the same six.
      assert.deepEqual(
        perLoop.slice(1),
        Array<number>(perLoop.length - 1).fill(6),
        `interval ${intervalSeconds} s: events between loops ${perLoop.join(', ')}`,
      );
    }
  });

  it('a real instance: its probe costs a few events an hour while healthy, and healthy -> unhealthy -> healthy still reaches it', async () => {
    const server = `t-wf-probe-inst-${runTag}`;
    const args: InstanceWorkflowArgs = {
      server,
      ordinal: 0,
      node: INSTANCE_NODE,
      spec: spec(server, { healthCheck: { tool: 'get_me', intervalSeconds: 30, timeoutSeconds: 5, failureThreshold: 3 } }),
    };
    const handle = await client.workflow.start('instanceWorkflow', { taskQueue: TASK_QUEUE, workflowId: instanceId(server, 0), args: [args] });
    const view = () => handle.query(statusQuery);
    const describe = (v: InstanceView) => JSON.stringify({ status: v.status, health: v.health, events: v.events.slice(-6) });
    try {
      const healthy = await waitForValue(view, (v) => v.status === 'RUNNING' && v.health === 'healthy', { what: 'RUNNING and healthy', describe });
      // The start probed once after the handshake: healthy in the same step as RUNNING, no probe round trip.
      const runningAt = healthy.events.findIndex((e) => e.type === 'Running');
      assert.equal(healthy.events[runningAt + 1]?.message, 'readiness healthy (probed at start)');
      const probe = probeOf(client, healthy);

      // Two quiet hours of probing (120 probes each at 30 s): count what instance and probe add.
      // From the end of the first quiet loop on, when the instance has acted on the healthy transition (setReady).
      const firstLoops = loopEnds(await eventTypes(probe)).length;
      await waitFor(async () => loopEnds(await eventTypes(probe)).length > firstLoops, { timeoutMs: 20_000, what: 'a quiet probe loop' });
      const probeBefore = loopEnds(await eventTypes(probe));
      const instanceBefore = (await eventTypes(handle)).length;
      await waitFor(async () => loopEnds(await eventTypes(probe)).length >= probeBefore.length + 2, { timeoutMs: 20_000, what: 'two more probe loops' });
      const probeAfter = loopEnds(await eventTypes(probe));
      const instanceAfter = (await eventTypes(handle)).length;
      const hours = probeAfter.length - probeBefore.length;
      // Loop end to loop end: exactly what the probe's history gained in those hours.
      const probePerHour = (probeAfter[probeAfter.length - 1] - probeBefore[probeBefore.length - 1]) / hours;
      assert.equal(instanceAfter, instanceBefore, 'a healthy instance adds nothing to its history');
      assert.equal(probePerHour, 6, 'the probe: six events per quiet hour');
      assert.ok((instanceAfter - instanceBefore) / hours + probePerHour <= 10, 'at most 10 events per instance-hour, instance and probe together');
      assert.equal((await view()).health, 'healthy');

      instanceNode.failProbesOf.set(handle.workflowId, 'token is required');
      const unhealthy = await waitForValue(view, (v) => v.health === 'unhealthy', { what: 'unhealthy', describe });
      assert.equal(unhealthy.status, 'RUNNING', 'a failing readiness probe does not restart the container');
      assert.equal(unhealthy.healthReason, 'token is required');
      assert.equal(unhealthy.containerId, healthy.containerId);
      instanceNode.failProbesOf.delete(handle.workflowId);
      const recovered = await waitForValue(view, (v) => v.health === 'healthy', { what: 'healthy again', describe });
      assert.equal(recovered.containerId, healthy.containerId);
      const ready = instanceNode.readyCalls.filter((c) => c.instanceId === handle.workflowId).map((c) => c.ready);
      // The gateway attaches instances ready: only leaving and re-entering unhealthy changes its readiness.
      assert.deepEqual(ready, [false, true], 'out of routing while unhealthy, back in once healthy');
    } finally {
      await handle.signal(stopSignal);
      assert.equal(((await handle.result()) as InstanceView).status, 'STOPPED');
    }
    await recordHistory(handle, 'instance-probe-at-start-transitions');
  });

  it('a real instance: a failing liveness probe restarts it through the backoff', async () => {
    const server = `t-wf-probe-live-${runTag}`;
    // Liveness defaults: every 60 s, unhealthy after 3 failures (180 ms on the probe's clock).
    const args: InstanceWorkflowArgs = { server, ordinal: 0, node: INSTANCE_NODE, spec: spec(server) };
    const handle = await client.workflow.start('instanceWorkflow', { taskQueue: TASK_QUEUE, workflowId: instanceId(server, 0), args: [args] });
    const view = () => handle.query(statusQuery);
    const describe = (v: InstanceView) => JSON.stringify({ status: v.status, health: v.health, events: v.events.slice(-6) });
    try {
      const running = await waitForValue(view, (v) => v.status === 'RUNNING' && v.health === 'healthy', { what: 'RUNNING and healthy', describe });
      instanceNode.failProbesOf.set(handle.workflowId, 'timeout after 10 s');
      const failed = await waitForValue(view, (v) => v.status === 'ERROR', { what: 'ERROR after the liveness failure', describe });
      assert.equal(failed.error, 'liveness probe failed: timeout after 10 s');
      assert.equal(failed.health, 'unknown', 'health is a verdict on a running container: it reads unknown in ERROR');
      assert.equal(failed.attemptCount, 1);
      assert.ok(instanceNode.containers.get(handle.workflowId)?.running === false, 'the container was stopped');
      assert.notEqual(failed.nextRetryAt, null, 'the next attempt waits the backoff');
      assert.equal(running.attemptCount, 1);
      // The search attribute says the same, so a filter on McpHealth finds no ERROR instance as unhealthy or healthy.
      const attributes = await waitForValue(
        async () => (await handle.describe()).typedSearchAttributes,
        (a) => a.get(mcpInstanceStatusKey) === 'ERROR',
        { what: 'McpInstanceStatus ERROR' },
      );
      assert.equal(attributes.get(mcpHealthKey), 'unknown');
    } finally {
      instanceNode.failProbesOf.delete(handle.workflowId);
      await handle.signal(stopSignal);
      assert.equal(((await handle.result()) as InstanceView).status, 'STOPPED');
    }
    await recordHistory(handle, 'instance-probe-loop-liveness-failure');
  });

  it('a cancelled probe child: its loop stops probing on the node as soon as the container of the instance is stopped there', async () => {
    const proxy = new ScriptedProxy(['ok']);
    // Cancellation reaches a loop only with a heartbeat's reply, minutes apart; the instance workflow stops the container next.
    const { id } = await runProbe('cancelled', proxy, { intervalSeconds: 2, timeoutSeconds: 1, failureThreshold: 3 }, 1, 1);
    const stoppedAt = Date.now();
    probeLoops.stop(id, 'its container is being stopped');
    let seen = proxy.requests.length;
    await waitFor(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const now = proxy.requests.length;
        const quiet = now === seen;
        seen = now;
        return quiet;
      },
      { timeoutMs: 10_000, what: 'the probe loop to stop probing' },
    );
    const took = Date.now() - stoppedAt;
    assert.ok(took <= 2_000, `the loop kept probing ${took} ms after its container was stopped`);
  });

  it('a restarted node worker tells the probe its loop is gone: a new loop starts at once, health unchanged', async () => {
    const server = `t-wf-probe-lost-${runTag}`;
    const args: InstanceWorkflowArgs = { server, ordinal: 0, node: INSTANCE_NODE, spec: spec(server) };
    const handle = await client.workflow.start('instanceWorkflow', { taskQueue: TASK_QUEUE, workflowId: instanceId(server, 0), args: [args] });
    const view = () => handle.query(statusQuery);
    try {
      const healthy = await waitForValue(view, (v) => v.status === 'RUNNING' && v.health === 'healthy', { what: 'RUNNING and healthy' });
      const probe = probeOf(client, healthy);
      const scheduled = async () => (await eventTypes(probe)).filter((t) => t === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).length;
      await waitFor(async () => (await scheduled()) === 1, { what: 'the first probe loop' });
      const instanceEvents = (await eventTypes(handle)).length;
      await probe.signal(probeLoopLostSignal);
      await waitFor(async () => (await scheduled()) === 2, { timeoutMs: 10_000, what: 'a second probe loop right after the signal' });
      const types = await eventTypes(probe);
      assert.ok(types.includes(EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED), 'the lost loop was given up');
      assert.equal((await view()).health, 'healthy');
      assert.equal((await eventTypes(handle)).length, instanceEvents, 'no health change reached the instance');
    } finally {
      await handle.signal(stopSignal);
      assert.equal(((await handle.result()) as InstanceView).status, 'STOPPED');
    }
  });
  it('a stopped instance leaves no probe behind, and a start of the same instance right after gets its own probe', async () => {
    const server = `t-wf-probe-again-${runTag}`;
    const args: InstanceWorkflowArgs = { server, ordinal: 0, node: INSTANCE_NODE, spec: spec(server) };
    const startInstance = () => client.workflow.start('instanceWorkflow', { taskQueue: TASK_QUEUE, workflowId: instanceId(server, 0), args: [args] });
    const healthy = (v: InstanceView) => v.status === 'RUNNING' && v.health === 'healthy';
    const first = await startInstance();
    const firstView = await waitForValue(() => first.query(statusQuery), healthy, { what: 'the first run RUNNING and healthy' });
    const described = await probeOf(client, firstView).describe();
    assert.equal(described.status.name, 'RUNNING');
    // Pinned to its run: the next run's probe may have the same id.
    const firstProbe = client.workflow.getHandle(described.workflowId, described.runId);
    await first.signal(stopSignal);
    assert.equal(((await first.result()) as InstanceView).status, 'STOPPED');
    // At once, as `mcpctl stop` then `mcpctl start` would: the earlier probe may still hold the id.
    const second = await startInstance();
    try {
      const secondView = await waitForValue(() => second.query(statusQuery), healthy, { what: 'the second run RUNNING and healthy' });
      // The stop did not wait for the probe: Temporal ended it with its parent (parent-close policy TERMINATE).
      assert.equal((await firstProbe.describe()).status.name, 'TERMINATED');
      const secondProbe = probeOf(client, secondView);
      await waitFor(async () => (await secondProbe.describe()).status.name === 'RUNNING', { what: "the second run's probe running" });
      assert.ok(!secondView.events.some((e) => e.type === 'ProbeNotStarted'), JSON.stringify(secondView.events));
    } finally {
      await second.signal(stopSignal);
      assert.equal(((await second.result()) as InstanceView).status, 'STOPPED');
    }
    await recordHistory(first, 'instance-final-stop-probe-parent-close');
  });
});
