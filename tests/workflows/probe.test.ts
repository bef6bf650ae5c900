/**
 * probeWorkflow on the time-skipping server, with the real probe activity in
 * front of a scripted proxy (the ProxyExecutor seam), under a stand-in parent
 * that records the healthChanged signals it receives.
 */
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createProbeActivities } from '../../activities/probe';
import { nodeTaskQueue, TASK_QUEUE } from '../../src/contracts/instance';
import type { McpRequest, ProxyExecutor } from '../../src/contracts/routing';
import { MAX_PROBES_PER_RUN } from '../../workflows/probe';
import type { ProbeParentInput, ProbeParentResult } from './fixtures/probe-parent';
import { createTimeSkippingEnv, recordHistory } from './fixtures/env';

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

const NODE = 'wf-probe-node';

describe('probeWorkflow', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let workers: Worker[] = [];
  let running: Promise<void>[] = [];
  /** The proxy each test scripts, by instance id; the node worker's activity goes through it. */
  const proxies = new Map<string, ScriptedProxy>();
  const dispatcher: ProxyExecutor = {
    execute: (instanceId, request) => {
      const proxy = proxies.get(instanceId);
      if (!proxy) return Promise.reject(new Error(`unknown instance ${instanceId}`));
      return proxy.execute(instanceId, request);
    },
  };
  let runId = 0;

  // Workers live for the whole file, and the stand-in parent cancels its probe
  // before it ends: a probe activity left outstanding keeps the time-skipping
  // server's clock locked (running in real time) for the tests after it.
  before(async () => {
    env = await createTimeSkippingEnv();
    workers = [
      await Worker.create({ connection: env.nativeConnection, taskQueue: TASK_QUEUE, workflowsPath: require.resolve('./fixtures/probe-parent') }),
      await Worker.create({ connection: env.nativeConnection, taskQueue: nodeTaskQueue(NODE), activities: createProbeActivities({ proxy: dispatcher }) }),
    ];
    running = workers.map((w) => w.run());
  });
  after(async () => {
    workers.forEach((w) => w.shutdown());
    await Promise.all(running);
    await env?.teardown();
  });

  /** Runs the stand-in parent with the real probe child and the scripted proxy behind the real activity. */
  async function runProbe(
    name: string,
    proxy: ScriptedProxy,
    input: Omit<ProbeParentInput['probe'], 'instanceId' | 'node'>,
    expectTransitions: number,
    settleSeconds = 300,
  ) {
    const instanceId = `mcp-instance:wf-probe-${++runId}:0`;
    proxies.set(instanceId, proxy);
    const handle = await env.client.workflow.start('probeParentWorkflow', {
      taskQueue: TASK_QUEUE,
      workflowId: `wf-probe-parent-${runId}`,
      args: [{ probe: { instanceId, node: NODE, ...input }, expectTransitions, settleSeconds } satisfies ProbeParentInput],
    });
    const result = (await handle.result()) as ProbeParentResult;
    await recordHistory(env.client.workflow.getHandle(result.probeWorkflowId, result.probeFirstRunId), `probe-${name}`);
    return { result, instanceId };
  }

  it('readiness: signals healthy, degraded and unhealthy only on transitions, for every failure kind', async () => {
    const proxy = new ScriptedProxy(['ok', 'isError', 'ok', 'connection', 'rpcError', 'hang', 'rpcError']);
    const { result } = await runProbe(
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
    // The probe kept running after the last transition (300 s at a 10 s interval) without signalling again.
    assert.ok(proxy.requests.length >= 30, `expected the probe to keep probing, saw ${proxy.requests.length} requests`);
    assert.deepEqual(proxy.requests[0], { method: 'tools/call', params: { name: 'get_me', arguments: { verbose: true } } });
  });

  it('liveness: a JSON-RPC error to tools/list at threshold 1 is unhealthy and marked as liveness', async () => {
    const proxy = new ScriptedProxy(['rpcError']);
    const { result } = await runProbe('liveness-rpc-error', proxy, { intervalSeconds: 10, timeoutSeconds: 2, failureThreshold: 1 }, 1, 60);
    assert.deepEqual(result.transitions, [{ health: 'unhealthy', reason: 'MCP error -32601: Method not found', liveness: true, consecutiveFailures: 1 }]);
    assert.ok(proxy.requests.every((r) => r.method === 'tools/list'));
  });

  it('liveness defaults: degraded below 3 failures, healthy again after a success', async () => {
    const proxy = new ScriptedProxy(['connection', 'connection', 'ok']);
    const { result } = await runProbe('liveness-defaults', proxy, {}, 2, 180);
    assert.deepEqual(
      result.transitions.map((t) => [t.health, t.consecutiveFailures]),
      [
        ['degraded', 1],
        ['healthy', 0],
      ],
    );
  });

  it('continues as new keeping health: no spurious signal, and the next change is still reported', async () => {
    // Start two probes before the run limit, already unhealthy; keep failing past continue-as-new, then recover.
    const proxy = new ScriptedProxy(['rpcError', 'rpcError', 'rpcError', 'rpcError', 'ok']);
    const { result } = await runProbe(
      'continue-as-new',
      proxy,
      {
        intervalSeconds: 10,
        timeoutSeconds: 2,
        failureThreshold: 3,
        carried: { health: 'unhealthy', consecutiveFailures: 3, probesInRun: MAX_PROBES_PER_RUN - 2 },
      },
      1,
      60,
    );
    assert.deepEqual(result.transitions, [{ health: 'healthy', reason: null, liveness: true, consecutiveFailures: 0 }]);
    const latest = await env.client.workflow.getHandle(result.probeWorkflowId).describe();
    assert.notEqual(latest.runId, result.probeFirstRunId, 'the probe should have continued as new');
  });
});
