/**
 * serverWorkflow on the real dev server (in a namespace of its own) with the real
 * instanceWorkflow and probeWorkflow (workflows/index.ts, as the worker bundles
 * them), the real instanceStatus control activity, and an in-memory Docker node
 * behind the node activities (start/stop/attach, and the real probe loop on a fast
 * clock). Not the time-skipping server: it skips past the probe loop's heartbeat
 * timeouts, which are kept in real time.
 */
import assert from 'node:assert/strict';
import { Client, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { createProbeActivities } from '../../activities/probe';
import { createServerActivities } from '../../activities/server';
import type {
  AttachUpstreamInput,
  ResolvedEnvEntry,
  StartContainerInput,
  StartContainerResult,
  StopContainerInput,
  StopContainersInput,
} from '../../activities/types';
import { REPLICAS, type EnvEntry, type McpServerSpec, type McpServerSpecInput } from '../../src/contracts/spec';
import { instanceId, nodeTaskQueue, serverWorkflowId, TASK_QUEUE } from '../../src/contracts/instance';
import { mcpNodeKey, SEARCH_ATTRIBUTES } from '../../src/contracts/searchAttributes';
import { instanceListQuery } from '../../src/contracts/visibility';
import {
  applySpecUpdate,
  deleteServerUpdate,
  scaleServerUpdate,
  serverQuery,
  startServerUpdate,
  stopServerUpdate,
  type ServerView,
  type ServerWorkflowInput,
} from '../../src/contracts/messages';
import { DevServerNamespace, recordHistory } from './fixtures/env';
import { waitFor } from '../support/stack';
import { readyNodes, scaledClock, spec } from './fixtures/fakes';
import type { McpRequest } from '../../src/contracts/routing';

const NODE = 'wf-server-node';
const NAMESPACE = 'mcpd-server-tests';
/** A rolled instance gets this long to run healthy (600 s in production) before the rollout halts. */
const READY_TIMEOUT_SECONDS = 3;

/** A Docker node in memory; `log` keeps the order in which things happened to containers. */
class FakeNode {
  readonly containers = new Map<string, { id: string; spec: McpServerSpec; running: boolean }>();
  readonly log: string[] = [];
  private readonly healthyContainers = new Set<string>();

  activities() {
    return {
      startContainer: async (input: StartContainerInput): Promise<StartContainerResult> => {
        const id = `c-${input.instanceId}-${input.generation}`;
        this.containers.set(input.instanceId, { id, spec: input.spec, running: true });
        this.log.push(`start ${input.instanceId} ${input.spec.args.join(' ')}`);
        return { containerId: id, reused: false };
      },
      stopContainer: async (input: StopContainerInput): Promise<string | null> => {
        const container = this.containers.get(input.instanceId);
        if (!container) return null;
        container.running = false;
        if (input.remove) this.containers.delete(input.instanceId);
        this.log.push(`stop ${input.instanceId} (${input.reason})`);
        return container.id;
      },
      stopContainers: async (input: StopContainersInput): Promise<Record<string, string>> => {
        const removed: Record<string, string> = {};
        for (const instanceId of input.instanceIds) {
          const container = this.containers.get(instanceId);
          if (!container) continue;
          this.containers.delete(instanceId);
          this.log.push(`stop ${instanceId} (${input.reason}, by the node's batch)`);
          removed[instanceId] = container.id;
        }
        return removed;
      },
      attachUpstream: async (input: AttachUpstreamInput) => ({
        instanceId: input.instanceId,
        server: input.spec.name,
        transport: input.spec.transport,
        containerId: input.containerId,
      }),
      setReady: async () => undefined,
      inspectContainer: async (id: string) => {
        const c = this.containers.get(id);
        return c ? { containerId: c.id, running: c.running, exitCode: null } : null;
      },
      // The real probe loop, on a clock 1000 times faster, in front of a gateway in memory.
      ...createProbeActivities({ proxy: { execute: (id, request) => this.answerProbe(id, request) }, clock: scaledClock(1_000) }),
    };
  }

  /** A container started with the argument "broken" answers every probe with an error. */
  private async answerProbe(id: string, request: McpRequest): Promise<Record<string, unknown>> {
    const container = this.containers.get(id);
    if (!container?.running) throw new Error('unknown instance');
    if (container.spec.args.includes('broken')) throw new Error('token is required');
    // Logged once per container: the first probe that finds it healthy.
    if (!this.healthyContainers.has(container.id)) {
      this.healthyContainers.add(container.id);
      this.log.push(`healthy ${id}`);
    }
    return request.method === 'tools/list' ? { tools: [] } : { content: [{ type: 'text', text: 'ok' }] };
  }
}

describe('serverWorkflow (dev server)', function () {
  this.timeout(90_000);
  let devServer: DevServerNamespace | undefined;
  let client: Client;
  let node: FakeNode;

  before(async () => {
    devServer = await DevServerNamespace.open(NAMESPACE);
    client = devServer.client;
    node = new FakeNode();
    await devServer.runWorkers([
      {
        taskQueue: TASK_QUEUE,
        workflowsPath: require.resolve('../../workflows/index'),
        activities: {
          ...createServerActivities({ client }),
          // These servers have no secrets: env resolves to its plain values.
          resolveEnv: async (entries: EnvEntry[]): Promise<ResolvedEnvEntry[]> => entries.map((e) => ({ name: e.name, value: e.value ?? '' })),
          ...readyNodes(NODE),
        },
      },
      { taskQueue: nodeTaskQueue(NODE), activities: node.activities() },
    ]);
  });
  after(() => devServer?.close());

  /** The containers of one server (the fake node is shared by the whole file). */
  const containersOf = (name: string) => [...node.containers.keys()].filter((id) => id.startsWith(`mcp-instance:${name}:`));

  async function startServer(s: McpServerSpec, running = false): Promise<WorkflowHandle> {
    const input: ServerWorkflowInput = { spec: s, node: NODE, running, tuning: { readyTimeoutSeconds: READY_TIMEOUT_SECONDS } };
    return client.workflow.start('serverWorkflow', { taskQueue: TASK_QUEUE, workflowId: serverWorkflowId(s.name), args: [input] });
  }

  /** Polls the server's view until it satisfies `ok`. */
  async function until(handle: WorkflowHandle, ok: (v: ServerView) => boolean, what: string, stepMs = 100): Promise<ServerView> {
    let last: ServerView | undefined;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      last = await handle.query(serverQuery);
      if (ok(last)) return last;
      await new Promise((r) => setTimeout(r, stepMs));
    }
    throw new Error(`timed out waiting for ${what}; last view: ${JSON.stringify(last)}; node log: ${JSON.stringify(node.log.slice(-30))}`);
  }

  async function instanceState(id: string): Promise<string> {
    try {
      return (await client.workflow.getHandle(id).describe()).status.name;
    } catch {
      return 'NOT_FOUND';
    }
  }

  /** The nodes visibility lists for the running instances of a server. */
  async function listedNodes(name: string): Promise<string[]> {
    const nodes: string[] = [];
    for await (const info of client.workflow.list({ query: instanceListQuery({ server: name }) })) {
      const listed = info.typedSearchAttributes.get(mcpNodeKey);
      if (listed !== undefined) nodes.push(listed);
    }
    return nodes;
  }

  async function deleteServer(handle: WorkflowHandle, name: string): Promise<string[]> {
    const removed = await handle.executeUpdate(deleteServerUpdate);
    await handle.result();
    await recordHistory(handle, `server-${name}`);
    return removed;
  }

  it('rejects an invalid spec with every field error and applies nothing', async () => {
    const name = 'wf-invalid';
    const handle = await startServer(spec(name, { args: ['v1'] }));
    const bad = { name, image: 'x', command: ['y'], transport: 'http', replicas: -1, env: [{ name: '1BAD', value: 'v' }] };
    await assert.rejects(handle.executeUpdate(applySpecUpdate, { args: [bad as unknown as McpServerSpecInput] }), (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
      const message = String(err.cause?.message);
      for (const field of ['image:', 'port:', 'replicas:', 'env.0.name:']) assert.ok(message.includes(field), `"${field}" missing from: ${message}`);
      return true;
    });
    await assert.rejects(handle.executeUpdate(applySpecUpdate, { args: [{ name: 'wf-other', image: 'x' }] }), (err: unknown) => {
      assert.match(String((err as WorkflowUpdateFailedError).cause?.message), /name: must be "wf-invalid"/);
      return true;
    });
    await assert.rejects(handle.executeUpdate(scaleServerUpdate, { args: [REPLICAS.max + 1] }), /Update failed|replicas/);
    const view = await handle.query(serverQuery);
    assert.deepEqual(view.spec.args, ['v1']);
    assert.equal(view.specVersion, 1);
    assert.equal(view.spec.replicas, 1);

    const applied = await handle.executeUpdate(applySpecUpdate, { args: [{ name, image: 'test/never-pulled:dev', args: ['v2'] }] });
    assert.deepEqual(applied.spec.args, ['v2']);
    assert.equal(applied.specVersion, 2);
    assert.deepEqual(await deleteServer(handle, 'invalid'), []);
  });

  it('start creates instances with deterministic ids; scale 1 -> 3 -> 1 stops the highest ordinals; delete removes everything', async () => {
    const name = 'wf-scale';
    const handle = await startServer(spec(name, { replicas: 1 }));
    const ids = await handle.executeUpdate(startServerUpdate);
    assert.deepEqual(ids, [instanceId(name, 0)]);
    const described = await client.workflow.getHandle(ids[0]).describe();
    assert.equal(described.status.name, 'RUNNING');
    assert.deepEqual(described.searchAttributes[SEARCH_ATTRIBUTES.server], [name]);

    const up = await handle.executeUpdate(scaleServerUpdate, { args: [3] });
    assert.deepEqual(
      up.instances,
      [0, 1, 2].map((o) => instanceId(name, o)),
    );
    for (const id of up.instances) assert.equal(await instanceState(id), 'RUNNING');
    assert.equal(up.specVersion, 1, 'scaling is not a spec change');

    // The node of each, as `mcpctl get instances` lists it: where the batch stop below sends the removal.
    await waitFor(async () => (await listedNodes(name)).length === 3, { what: 'the three instances listed with their node' });
    const down = await handle.executeUpdate(scaleServerUpdate, { args: [1] });
    assert.deepEqual(down.instances, [instanceId(name, 0)]);
    assert.equal(await instanceState(instanceId(name, 0)), 'RUNNING');
    assert.equal(await instanceState(instanceId(name, 1)), 'COMPLETED');
    assert.equal(await instanceState(instanceId(name, 2)), 'COMPLETED');
    assert.deepEqual(containersOf(name), [instanceId(name, 0)]);
    for (const ordinal of [1, 2]) {
      const id = instanceId(name, ordinal);
      // Their node removed both containers in one batch; each instance then ended in the task that took its stop.
      assert.ok(node.log.includes(`stop ${id} (instance stopped, by the node's batch)`), JSON.stringify(node.log.slice(-10)));
      const history = await client.workflow.getHandle(id).fetchHistory();
      const events = history.events ?? [];
      const stopAt = events.findIndex((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'stop');
      assert.ok(stopAt > 0, `${id} got its stop`);
      const after = events.slice(stopAt).map((e) => e.eventType);
      assert.equal(
        after.filter((t) => t === temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).length,
        0,
        `${id} scheduled no stop of its own`,
      );
      assert.equal(after.filter((t) => t === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED).length, 1, `${id} ended in one workflow task`);
    }
    await recordHistory(client.workflow.getHandle(instanceId(name, 1)), 'instance-stop-removed-by-node');

    // start again reconciles: nothing new, the same deterministic id.
    assert.deepEqual(await handle.executeUpdate(startServerUpdate), [instanceId(name, 0)]);

    assert.deepEqual(await deleteServer(handle, 'scale'), [instanceId(name, 0)]);
    assert.equal(await instanceState(instanceId(name, 0)), 'COMPLETED');
    assert.deepEqual(containersOf(name), [], 'delete removes every container');
  });

  it('rolls a spec change one instance at a time, in order, each healthy before the next', async () => {
    const name = 'wf-roll';
    const handle = await startServer(spec(name, { replicas: 3, args: ['v1'] }), true);
    await until(handle, (v) => v.instances.length === 3, 'three instances');
    const ids = [0, 1, 2].map((o) => instanceId(name, o));
    // Let every instance run healthy on v1 first.
    await until(handle, () => ids.every((id) => node.log.includes(`healthy ${id}`)), 'v1 healthy');

    const applied = await handle.executeUpdate(applySpecUpdate, { args: [{ name, image: 'test/never-pulled:dev', replicas: 3, args: ['v2'] }] });
    assert.equal(applied.specVersion, 2);
    const done = await until(handle, (v) => v.rollout === null, 'rollout done');
    assert.equal(done.specVersion, 2);

    const rollLog = node.log.slice(node.log.indexOf(`stop ${ids[0]} (spec changed)`));
    const at = (entry: string) => {
      const i = rollLog.indexOf(entry);
      assert.ok(i >= 0, `"${entry}" missing from ${JSON.stringify(rollLog)}`);
      return i;
    };
    for (let k = 0; k < 3; k++) {
      assert.ok(at(`stop ${ids[k]} (spec changed)`) < at(`start ${ids[k]} v2`));
      if (k > 0) {
        const previousHealthy = rollLog.indexOf(`healthy ${ids[k - 1]}`, at(`start ${ids[k - 1]} v2`));
        assert.ok(
          previousHealthy >= 0 && previousHealthy < at(`stop ${ids[k]} (spec changed)`),
          `${ids[k]} rolled before ${ids[k - 1]} was healthy: ${JSON.stringify(rollLog)}`,
        );
      }
    }
    for (const id of ids) assert.deepEqual(node.containers.get(id)?.spec.args, ['v2']);

    // Changing only replicas rolls nothing: the new replica starts on v2, the others keep their containers.
    const startsBefore = node.log.filter((e) => e.startsWith('start ')).length;
    const scaled = await handle.executeUpdate(applySpecUpdate, { args: [{ name, image: 'test/never-pulled:dev', replicas: 4, args: ['v2'] }] });
    assert.equal(scaled.specVersion, 2);
    assert.deepEqual(scaled.instances, [...ids, instanceId(name, 3)]);
    await until(handle, () => node.log.includes(`start ${instanceId(name, 3)} v2`), 'the fourth instance to start');
    assert.deepEqual(node.log.filter((e) => e.startsWith('start ')).slice(startsBefore), [`start ${instanceId(name, 3)} v2`]);
    await deleteServer(handle, 'roll');
  });

  it('halts a rollout whose instance never becomes healthy, and a fixed spec resumes it', async () => {
    const name = 'wf-halt';
    const handle = await startServer(spec(name, { replicas: 2, args: ['v1'] }), true);
    const ids = [0, 1].map((o) => instanceId(name, o));
    await until(handle, () => ids.every((id) => node.log.includes(`healthy ${id}`)), 'v1 healthy');

    await handle.executeUpdate(applySpecUpdate, { args: [{ name, image: 'test/never-pulled:dev', replicas: 2, args: ['broken'] }] });
    const halted = await until(handle, (v) => v.rollout?.inProgress === false, 'rollout halted');
    assert.deepEqual(halted.rollout, {
      inProgress: false,
      updated: 0,
      total: 2,
      error: `${ids[0]} was not running healthy on spec version 2 within ${READY_TIMEOUT_SECONDS} s; rollout halted (apply a fixed spec to resume)`,
    });
    assert.ok(!node.log.includes(`start ${ids[1]} broken`), 'the second instance must keep the old spec');
    assert.deepEqual(node.containers.get(ids[1])?.spec.args, ['v1']);

    await handle.executeUpdate(applySpecUpdate, { args: [{ name, image: 'test/never-pulled:dev', replicas: 2, args: ['v3'] }] });
    const done = await until(handle, (v) => v.rollout === null, 'rollout of the fix');
    assert.equal(done.specVersion, 3);
    for (const id of ids) assert.deepEqual(node.containers.get(id)?.spec.args, ['v3']);
    await deleteServer(handle, 'halt');
  });

  it('stop stops every instance and keeps the spec; start brings them back', async () => {
    const name = 'wf-stop';
    const handle = await startServer(spec(name, { replicas: 2 }), true);
    await until(handle, (v) => v.instances.length === 2, 'two instances');
    const stopped = await handle.executeUpdate(stopServerUpdate);
    assert.deepEqual(
      stopped,
      [0, 1].map((o) => instanceId(name, o)),
    );
    const view = await handle.query(serverQuery);
    assert.equal(view.running, false);
    assert.deepEqual(view.instances, []);
    assert.deepEqual(containersOf(name), []);
    const started = await handle.executeUpdate(startServerUpdate);
    assert.deepEqual(started, stopped);
    for (const id of started) assert.equal(await instanceState(id), 'RUNNING');
    await deleteServer(handle, 'stop');
  });
});
