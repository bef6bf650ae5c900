/**
 * serverWorkflow: one per McpServer. It holds the spec and reconciles the
 * instance workflows (children with deterministic ids) towards it.
 *
 * Concurrency: update handlers only change the desired state (synchronously, so
 * they cannot interleave) and then wait for the single reconciler loop below to
 * converge on it. The reconciler is the only code that starts, stops or rolls
 * instances, so concurrent apply/scale/stop/delete are applied one after the
 * other and a newer request interrupts a rollout at the next safe point.
 * The decisions live in serverMachine.ts (pure, unit-tested); this file runs them.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { NodeActivities } from '../activities/node';
import type { NodeRegistryActivities } from '../activities/nodes';
import type { ServerActivities } from '../activities/server';
import type { McpServerSpec } from '../src/contracts/spec';
import { instanceId, nodeTaskQueue, TASK_QUEUE, type InstanceView } from '../src/contracts/instance';
import { mcpHealthKey, mcpInstanceStatusKey, mcpNodeKey, mcpServerKey } from '../src/contracts/searchAttributes';
import {
  applySpecUpdate,
  deleteServerUpdate,
  scaleServerUpdate,
  serverQuery,
  specChangedSignal,
  startServerUpdate,
  stopServerUpdate,
  stopSignal,
  type ServerView,
  type ServerWorkflowInput,
} from '../src/contracts/messages';
import { instanceWorkflow, PLACEMENT_PATCH } from './instance';
import { placeAll } from './placement';
import { decidePatchesAtRunStart } from './patches';
import { specValidators } from './specValidation';
import * as machine from './serverMachine';
import type { DesiredChange, ServerState } from './serverMachine';

export { READY_TIMEOUT_SECONDS, sameSpecIgnoringReplicas } from './serverMachine';
/** How long a stopping instance may take to end before the server gives up waiting for it. */
export const STOP_TIMEOUT_SECONDS = 300;
/** Continue as new past this many events even if the server does not suggest it yet. */
const MAX_HISTORY_EVENTS = 10_000;

const { instanceStatus, instanceRunning } = proxyActivities<ServerActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '15 s',
  retry: { maximumAttempts: 3, initialInterval: '1 s' },
});

/** Stopping a batch: signals, then a wait bounded by STOP_TIMEOUT_SECONDS, heartbeating all along. */
const { stopInstances: stopAndAwaitInstances } = proxyActivities<ServerActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: `${STOP_TIMEOUT_SECONDS + 60} s`,
  heartbeatTimeout: '30 s',
  retry: { maximumAttempts: 3, initialInterval: '1 s' },
});

/** Where the instances of a batch stop run (visibility's McpNode). */
const { instanceNodes } = proxyActivities<ServerActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '30 s',
  retry: { maximumAttempts: 3, initialInterval: '1 s' },
});

/** The containers of a batch stop, removed by their node: bounded like a start, and given up soon on a node whose worker is gone. */
function nodeBatchStop(node: string) {
  return proxyActivities<NodeActivities>({
    taskQueue: nodeTaskQueue(node),
    startToCloseTimeout: `${STOP_TIMEOUT_SECONDS} s`,
    heartbeatTimeout: '30 s',
    scheduleToStartTimeout: '20 s',
    retry: { maximumAttempts: 2, initialInterval: '1 s' },
  }).stopContainers;
}

/**
 * Starting a batch: bounded concurrency against Temporal, heartbeating after each start.
 * Retried until Temporal takes the starts, as the child starts it replaced were.
 */
const { startInstances: startInstanceWorkflows } = proxyActivities<ServerActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 s',
  retry: { initialInterval: '1 s', maximumInterval: '30 s' },
});

/** Histories recorded before a batch of instances was started by one activity started each as a child workflow. */
const START_BATCH_PATCH = 'start-instances-in-one-activity';

/** Histories recorded before a batch of instances was stopped by one activity signalled and polled each instance from the workflow. */
const STOP_BATCH_PATCH = 'stop-instances-in-one-activity';

/** Histories recorded before a batch stop had the nodes remove the containers before it signalled the instances. */
const REMOVE_BY_NODE_PATCH = 'stop-batch-removes-containers-by-node';

/** Histories recorded before this decided each of its patches where it checks it (see workflows/patches.ts). */
const PATCHES_AT_RUN_START = 'server-patches-at-run-start';
/** Every patch serverWorkflow checks; a new one belongs here too. */
const SERVER_PATCHES = [PLACEMENT_PATCH, START_BATCH_PATCH, STOP_BATCH_PATCH, REMOVE_BY_NODE_PATCH] as const;

const { listNodes } = proxyLocalActivities<NodeRegistryActivities>({
  startToCloseTimeout: '10 s',
  retry: { maximumAttempts: 3, initialInterval: '1 s' },
});

export async function serverWorkflow(input: ServerWorkflowInput): Promise<void> {
  decidePatchesAtRunStart(PATCHES_AT_RUN_START, SERVER_PATCHES);
  const server = new ServerRun(input);
  for (;;) {
    await condition(() => machine.nextReconcileStep(server.s, continueAsNewDue()) !== 'wait');
    const step = machine.nextReconcileStep(server.s, continueAsNewDue());
    if (step === 'scale') {
      if (await server.converge()) break;
      continue;
    }
    if (step === 'roll') {
      await server.rollOut();
      continue;
    }
    // Idle and the history is long: hand the state to a fresh run once no update is in flight.
    await condition(allHandlersFinished);
    if (machine.hasPendingChange(server.s)) continue;
    await continueAsNew<typeof serverWorkflow>({
      spec: server.s.spec,
      node: input.node,
      running: server.s.running,
      carried: machine.carriedState(server.s),
      tuning: input.tuning,
    });
  }
  // Deleted: let the delete update return before the workflow completes.
  await condition(allHandlersFinished);
}

function continueAsNewDue(): boolean {
  return workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY_EVENTS;
}

/** One run of a server workflow: the desired state the updates change and the reconciler that converges on it. */
class ServerRun {
  s: ServerState;

  private readyTimeoutSeconds(): number {
    return this.input.tuning?.readyTimeoutSeconds ?? machine.READY_TIMEOUT_SECONDS;
  }

  constructor(private readonly input: ServerWorkflowInput) {
    this.s = machine.initialServerState(input);
    this.registerHandlers();
  }

  private idOf = (ordinal: number): string => instanceId(this.s.name, ordinal);
  private view = (): ServerView => machine.serverView(this.s, this.idOf);
  private currentIds = (): string[] => machine.currentOrdinals(this.s).map(this.idOf);

  /** Applies a change of the desired state at once and waits until the reconciler has started/stopped instances for it. */
  private async change(change: DesiredChange): Promise<void> {
    this.s = machine.withDesiredChange(this.s, change);
    const ticket = ++this.s.requested;
    await condition(() => this.s.converged >= ticket);
  }

  private rejectWhileDeleting = (): void => {
    if (this.s.deleting) throw new Error(`server "${this.s.name}" is being deleted`);
  };

  private registerHandlers(): void {
    setHandler(serverQuery, this.view);
    setHandler(
      applySpecUpdate,
      async (specInput) => {
        await this.change({ kind: 'apply', spec: parseSpec(specInput) });
        return this.view();
      },
      {
        validator: (specInput) => {
          this.rejectWhileDeleting();
          const next = parseSpec(specInput);
          if (next.name !== this.s.name) throw new Error(`name: must be "${this.s.name}" (this server's name), got "${next.name}"`);
        },
      },
    );
    setHandler(
      startServerUpdate,
      async () => {
        await this.change({ kind: 'start' });
        return machine.wantedOrdinals(this.s).map(this.idOf);
      },
      { validator: this.rejectWhileDeleting },
    );
    setHandler(
      stopServerUpdate,
      async () => {
        const stopped = this.currentIds();
        await this.change({ kind: 'stop' });
        return stopped;
      },
      { validator: this.rejectWhileDeleting },
    );
    setHandler(
      scaleServerUpdate,
      async (replicas) => {
        await this.change({ kind: 'scale', replicas });
        return this.view();
      },
      {
        validator: (replicas: number) => {
          this.rejectWhileDeleting();
          parseSpec({ ...this.s.spec, replicas });
        },
      },
    );
    setHandler(deleteServerUpdate, async () => {
      const stopped = this.currentIds();
      await this.change({ kind: 'delete' });
      return stopped;
    });
  }

  /** Starts and stops instances for the pending changes; true when the server is deleted and empty. */
  async converge(): Promise<boolean> {
    const ticket = this.s.requested;
    const wanted = machine.wantedOrdinals(this.s);
    const extra = machine.ordinalsToStop(this.s, wanted);
    if (extra.length) await this.stopInstances(extra);
    const repair = this.s.repairRequested;
    this.s.repairRequested = false;
    const missing = machine.ordinalsToStart(this.s, wanted, repair);
    if (missing.length) await this.startInstances(missing);
    this.s.converged = ticket;
    return this.s.deleting && this.s.instances.size === 0;
  }

  /**
   * The node of each new replica: spread over the Ready nodes that fit the placement
   * (workflows/placement.ts); null where none fits, and that instance places itself.
   * Histories from before placement started every instance on the server's own node.
   */
  private async placeNew(ordinals: number[]): Promise<{ nodes: Map<number, string | null>; placed: boolean }> {
    if (!patched(PLACEMENT_PATCH)) return { nodes: new Map(ordinals.map((o) => [o, this.input.node])), placed: false };
    try {
      return { nodes: placeAll(await listNodes(), this.s.spec.placement, ordinals), placed: true };
    } catch (err) {
      log.warn('listing the nodes failed; the instances place themselves', { server: this.s.name, error: String(err) });
      return { nodes: new Map(ordinals.map((o) => [o, null])), placed: true };
    }
  }

  private async startInstances(ordinals: number[]): Promise<void> {
    const { name, spec, specVersion } = this.s;
    const { nodes, placed } = await this.placeNew(ordinals);
    // The line the Web UI's workflow list shows; live status is in the instance's current details.
    const summary = (ordinal: number) => `MCP server ${name}, replica ${ordinal} (${spec.image ?? spec.packageName ?? spec.command?.join(' ')})`;
    if (patched(START_BATCH_PATCH)) {
      const outcomes = await startInstanceWorkflows(
        ordinals.map((ordinal) => {
          const node = nodes.get(ordinal) ?? null;
          return { workflowId: this.idOf(ordinal), input: { server: name, ordinal, spec, ...(node !== null ? { node } : {}) }, summary: summary(ordinal) };
        }),
      );
      for (const [i, ordinal] of ordinals.entries()) {
        // Already running: adopt it. Without a record we cannot know its spec and take it as current rather than restarting it blindly.
        if (outcomes[i] === 'started' || !this.s.instances.has(ordinal)) this.s.instances.set(ordinal, machine.startedRecord(ordinal, specVersion));
      }
      return;
    }
    await Promise.all(
      ordinals.map(async (ordinal) => {
        const record = machine.startedRecord(ordinal, specVersion);
        const node = nodes.get(ordinal) ?? null;
        try {
          await startChild(instanceWorkflow, {
            workflowId: this.idOf(ordinal),
            taskQueue: TASK_QUEUE,
            // Instances outlive this run: the server continues as new while they keep running.
            parentClosePolicy: ParentClosePolicy.ABANDON,
            args: [{ server: name, ordinal, spec, ...(node !== null ? { node } : {}) }],
            staticSummary: summary(ordinal),
            typedSearchAttributes: [
              { key: mcpServerKey, value: name },
              { key: mcpInstanceStatusKey, value: 'PENDING' },
              { key: mcpHealthKey, value: 'unknown' },
              // Placement counts a node's instances by McpNode from the start.
              ...(placed && node !== null ? [{ key: mcpNodeKey, value: node }] : []),
            ],
          });
          this.s.instances.set(ordinal, record);
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          // Already running (a repair, or a server workflow recreated while its
          // instances lived on): adopt it. Without a record we cannot know its
          // spec and take it as current rather than restarting it blindly.
          if (!this.s.instances.has(ordinal)) this.s.instances.set(ordinal, record);
        }
      }),
    );
  }

  private async stopInstances(ordinals: number[]): Promise<void> {
    if (patched(STOP_BATCH_PATCH)) {
      const instanceIds = ordinals.map(this.idOf);
      const removed = patched(REMOVE_BY_NODE_PATCH) ? await this.removeContainersByNode(instanceIds) : {};
      let late: string[] = [];
      try {
        late = await stopAndAwaitInstances({ server: this.s.name, instanceIds, timeoutSeconds: STOP_TIMEOUT_SECONDS, removed });
      } catch (err) {
        log.warn('stopping instances failed', { server: this.s.name, error: String(err) });
      }
      if (late.length) log.warn('instances did not stop in time', { instanceIds: late, timeoutSeconds: STOP_TIMEOUT_SECONDS });
      for (const ordinal of ordinals) this.s.instances.delete(ordinal);
      return;
    }
    await Promise.all(
      ordinals.map(async (ordinal) => {
        try {
          await getExternalWorkflowHandle(this.idOf(ordinal)).signal(stopSignal);
        } catch (err) {
          // Not running any more: nothing to stop.
          log.info('instance already gone', { instanceId: this.idOf(ordinal), error: String(err) });
        }
      }),
    );
    await Promise.all(
      ordinals.map(async (ordinal) => {
        if (!(await waitUntilEnded(this.idOf(ordinal), STOP_TIMEOUT_SECONDS))) {
          log.warn('instance did not stop in time', { instanceId: this.idOf(ordinal), timeoutSeconds: STOP_TIMEOUT_SECONDS });
        }
        this.s.instances.delete(ordinal);
      }),
    );
  }

  /**
   * Has each node stop and remove the containers of its instances in this batch, in one activity
   * per node: their stops then end each instance in one workflow task. A node that cannot (its
   * worker is gone, visibility lags) leaves its instances to stop their containers themselves.
   */
  private async removeContainersByNode(instanceIds: string[]): Promise<Record<string, string>> {
    let nodes: Record<string, string>;
    try {
      nodes = await instanceNodes({ server: this.s.name, instanceIds });
    } catch (err) {
      log.warn('listing the nodes of stopping instances failed; each stops its own container', { server: this.s.name, error: String(err) });
      return {};
    }
    const byNode = new Map<string, string[]>();
    for (const [id, node] of Object.entries(nodes)) byNode.set(node, [...(byNode.get(node) ?? []), id]);
    const removed = await Promise.all(
      [...byNode].map(([node, ids]) =>
        nodeBatchStop(node)({ instanceIds: ids, reason: 'instance stopped' }).catch((err) => {
          log.warn('a node did not remove the containers of stopping instances; each stops its own', { server: this.s.name, node, error: String(err) });
          return {};
        }),
      ),
    );
    return Object.assign({}, ...removed) as Record<string, string>;
  }

  /** Rolls outdated instances one at a time in ordinal order; returns early when a newer change waits. */
  async rollOut(): Promise<void> {
    for (const ordinal of machine.wantedOrdinals(this.s)) {
      if (!machine.needsRoll(this.s, ordinal)) continue;
      if (machine.rollStopsHere(this.s)) return;
      if (!(await this.rollOne(ordinal))) return;
    }
  }

  /** Rolls one instance onto the current spec and waits until it runs healthy; false when the rollout must stop here. */
  private async rollOne(ordinal: number): Promise<boolean> {
    const record = machine.needsRoll(this.s, ordinal)!;
    const target = this.s.specVersion;
    const id = this.idOf(ordinal);
    if (record.signalledVersion < target) {
      record.containerBefore = machine.containerBefore(await statusOrUnknown(id));
      try {
        await getExternalWorkflowHandle(id).signal(specChangedSignal, this.s.spec);
      } catch {
        // The instance workflow ended behind our back: the next pass starts it on the new spec.
        return this.forget(ordinal);
      }
      record.signalledVersion = target;
    }
    const outcome = await pollInstance(
      id,
      this.readyTimeoutSeconds(),
      (view) => machine.rolledOnto(view, record.containerBefore),
      () => machine.hasPendingChange(this.s) || this.s.specVersion !== target,
    );
    if (outcome === 'interrupted') return false;
    if (outcome === 'gone') return this.forget(ordinal);
    if (outcome === 'timeout') {
      this.s.haltedVersion = target;
      this.s.rolloutError = machine.rolloutHaltedError(id, target, this.readyTimeoutSeconds());
      log.warn('rollout halted', { server: this.s.name, instanceId: id, specVersion: target });
      return false;
    }
    record.readyVersion = target;
    return true;
  }

  /** An instance that ended behind the server's back is forgotten; the next pass starts it again. */
  private forget(ordinal: number): false {
    this.s.instances.delete(ordinal);
    this.s.requested++;
    return false;
  }
}

/**
 * Polls the instance's status with a durable, growing sleep until `done` holds
 * for it, it ends, the bound passes, or `interrupt` says a newer change waits.
 */
async function pollInstance(
  id: string,
  timeoutSeconds: number,
  done: (view: InstanceView | null) => boolean,
  interrupt: () => boolean,
): Promise<'done' | 'gone' | 'timeout' | 'interrupted'> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let delaySeconds = machine.POLL_MIN_SECONDS;
  for (;;) {
    const status = await statusOrUnknown(id);
    if (status !== undefined && done(status)) return 'done';
    if (status === null) return 'gone';
    const remaining = deadline - Date.now();
    if (remaining <= 0) return 'timeout';
    if (await condition(interrupt, Math.min(delaySeconds * 1000, remaining))) return 'interrupted';
    delaySeconds = machine.nextPollDelaySeconds(delaySeconds);
  }
}

/** Polls with a durable, growing sleep until the instance workflow has ended; false when the bound passed first. */
async function waitUntilEnded(id: string, timeoutSeconds: number): Promise<boolean> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let delaySeconds = machine.POLL_MIN_SECONDS;
  for (;;) {
    let running = true;
    try {
      running = await instanceRunning(id);
    } catch (err) {
      log.warn('instance lookup failed', { instanceId: id, error: String(err) });
    }
    if (!running) return true;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return false;
    await sleep(Math.min(delaySeconds * 1000, remaining));
    delaySeconds = machine.nextPollDelaySeconds(delaySeconds);
  }
}

/** The instance's view; null when its workflow is not running; undefined when the lookup itself failed. */
async function statusOrUnknown(id: string): Promise<InstanceView | null | undefined> {
  try {
    return await instanceStatus(id);
  } catch (err) {
    log.warn('instance status lookup failed', { instanceId: id, error: String(err) });
    return undefined;
  }
}

/** The validator and the handler agree: an invalid spec is rejected with every field error. */
function parseSpec(input: unknown): McpServerSpec {
  const { describeFieldErrors, validateSpec } = specValidators();
  const result = validateSpec(input);
  if (!result.ok) throw new Error(describeFieldErrors(result.errors));
  return result.spec;
}
