/**
 * instanceWorkflow: the durable lifecycle of one replica of an MCP server.
 *
 *   STARTING -> resolve env (pinned secret refs) -> start container -> attach upstream
 *   RUNNING  -> probe child; wait for stop / restart / spec change / container exit / liveness failure
 *   ERROR    -> durable timer (fast, then slow), cut short by forceRetry; then the same instance again
 *   STOPPING -> stop and remove the container -> STOPPED (the workflow ends)
 *
 * The decisions live in instanceMachine.ts (pure, unit-tested); this file is the
 * shell that runs the activities, timers and the probe child they call for.
 * Everything the operator sees (status query, search attributes, current details)
 * is built from the machine's state; none of it can hold a secret value because
 * values never enter the workflow: activities pass pinned references.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  TimeoutFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { ControlActivities } from '../activities/control';
import type { NodeActivities } from '../activities/node';
import type { NodeRegistryActivities } from '../activities/nodes';
import type { PackageActivities } from '../activities/packages';
import type { PackageImageRef, ProbeResult, ResolvedEnvEntry } from '../activities/types';
import type { McpServerSpec } from '../src/contracts/spec';
import { describePlacement } from '../src/contracts/node';
import { AWAIT_STARTED_MAX_SECONDS, TASK_QUEUE, nodeTaskQueue, probeWorkflowId, type InstanceView } from '../src/contracts/instance';
import { mcpHealthKey, mcpInstanceStatusKey, mcpNodeKey, mcpServerKey } from '../src/contracts/searchAttributes';
import {
  awaitStartedUpdate,
  containerExitedSignal,
  forceRetrySignal,
  healthChangedSignal,
  nodeNotReadySignal,
  restartSignal,
  specChangedSignal,
  statusQuery,
  stopSignal,
  type InstanceWorkflowInput,
  type NodeLost,
  type ProbeWorkflowInput,
} from '../src/contracts/messages';
import * as machine from './instanceMachine';
import type { Inbox, InstanceState, Phase } from './instanceMachine';
import { placeInstance } from './placement';
import { probeInputOf, probeWorkflow } from './probe';
import { probeSettings } from './health';
import { decidePatchesAtRunStart } from './patches';

/** Continue-as-new once a run's history passes this many events (or when Temporal suggests it). */
export const DEFAULT_HISTORY_LIMIT = 2_000;

/** Knobs an operator rarely touches and tests do: carried across continue-as-new unchanged. */
export interface InstanceWorkflowTuning {
  historyLimit?: number;
  /** false runs without the probe child (tests that are not about probes). */
  probes?: boolean;
}

export type InstanceWorkflowArgs = InstanceWorkflowInput & { tuning?: InstanceWorkflowTuning };

const control = proxyActivities<ControlActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '30 seconds',
  // An unreachable OpenBao gets a few quick tries; a missing secret is non-retryable and lands in our own backoff.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
});

/**
 * resolveEnv as a local activity (on this worker, recorded as a marker in the same
 * workflow task): pinning secret versions is short and idempotent, and a round trip
 * through the task queue was a tenth of the start time. Same timeout and retries.
 */
const localControl = proxyLocalActivities<ControlActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
});

/** Histories recorded before McpHealth read unknown outside RUNNING (see publish). */
const SEARCH_HEALTH_PATCH = 'search-health-unknown-unless-running';

/** Histories recorded before a spec could name a package instead of an image. */
const PACKAGE_IMAGES_PATCH = 'package-images';

/** Histories recorded before a probe child was cancelled by workflow id as well as by its run (see stopProbe). */
const PROBE_CANCEL_CURRENT_RUN_PATCH = 'probe-cancel-current-run';

/** Histories recorded before it ran resolveEnv as a remote activity and attached the gateway in a separate attachUpstream. */
const FAST_START_PATCH = 'fast-start';

/** Histories recorded before startContainer probed once after the handshake became healthy through the probe child's first loop. */
const PROBE_AT_START_PATCH = 'probe-at-start';

/** Histories recorded before it skipped the readiness call for a health change the gateway's readiness does not follow. */
const READY_ON_CHANGE_PATCH = 'set-ready-only-on-change';

/** Histories recorded before a final stop left the probe child to the parent-close policy cancelled it and waited for its end. */
const FINAL_STOP_PATCH = 'final-stop-leaves-probe-to-parent-close';

/** Histories recorded before a probe whose id an earlier run's probe still held was tried again. */
const PROBE_START_WAITS_PATCH = 'probe-start-waits-for-earlier-run';
/** How often (a second apart) a probe start tries while an earlier run's probe still holds its id. */
const PROBE_START_TRIES = 30;

/** Histories recorded before an env without secrets skipped resolveEnv ran it for every attempt. */
const PLAIN_ENV_PATCH = 'env-without-secrets-skips-resolve-env';

/** Histories recorded before instances placed themselves ran every attempt on the node of their input. */
export const PLACEMENT_PATCH = 'placement';

/** Histories recorded before this decided each of its patches where it checks it (see workflows/patches.ts). */
const PATCHES_AT_RUN_START = 'instance-patches-at-run-start';
/** Every patch instanceWorkflow checks; a new one belongs here too. */
const INSTANCE_PATCHES = [
  SEARCH_HEALTH_PATCH,
  PLACEMENT_PATCH,
  FAST_START_PATCH,
  PROBE_AT_START_PATCH,
  PACKAGE_IMAGES_PATCH,
  READY_ON_CHANGE_PATCH,
  FINAL_STOP_PATCH,
  PROBE_START_WAITS_PATCH,
  PROBE_CANCEL_CURRENT_RUN_PATCH,
  PLAIN_ENV_PATCH,
] as const;

/** Nodes are listed on this worker, like resolveEnv: a short read of visibility, recorded as a marker. */
const localNodes = proxyLocalActivities<NodeRegistryActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
});

/** An instance with no node to start on checks again after this long, doubling up to NODE_WAIT_MAX_MS. */
const NODE_WAIT_MIN_MS = 2_000;
const NODE_WAIT_MAX_MS = 15_000;

function nodeActivities(node: string) {
  const taskQueue = nodeTaskQueue(node);
  return {
    slow: proxyActivities<NodeActivities>({
      taskQueue,
      startToCloseTimeout: '2 minutes',
      // Node activities heartbeat: a node worker that dies mid-start is noticed in seconds and the start is retried.
      heartbeatTimeout: '10 seconds',
      // Bounded so a node whose worker is gone becomes a failed attempt instead of a hang.
      scheduleToCloseTimeout: '5 minutes',
      // Placed on a node whose worker died within its lease (still listed Ready): no worker takes the
      // start, and the next attempt places the instance again instead of waiting out the 5 minutes.
      // A live node takes a start at once (its worker has room for thousands), so this never waits on load.
      scheduleToStartTimeout: '20 seconds',
      retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
    }),
    quick: proxyActivities<NodeActivities>({
      taskQueue,
      startToCloseTimeout: '30 seconds',
      heartbeatTimeout: '10 seconds',
      scheduleToCloseTimeout: '2 minutes',
      retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 5 },
    }),
    // Installing a package and building its image can take minutes on a cold npm/pip cache; heartbeats carry the progress.
    packages: proxyActivities<PackageActivities>({
      taskQueue,
      startToCloseTimeout: '10 minutes',
      heartbeatTimeout: '10 seconds',
      scheduleToCloseTimeout: '20 minutes',
      // Registry hiccups get a few tries; a package or version that does not exist is non-retryable and lands in our backoff.
      retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
    }),
  };
}

export async function instanceWorkflow(input: InstanceWorkflowArgs): Promise<InstanceView> {
  decidePatchesAtRunStart(PATCHES_AT_RUN_START, INSTANCE_PATCHES);
  const run = new InstanceRun(input);
  let phase = run.begin();
  for (;;) {
    if (run.inbox.stopRequested && phase !== 'stop') phase = 'stop';
    switch (phase) {
      case 'attempt':
        phase = await run.attempt();
        break;
      case 'running':
        phase = await run.running();
        break;
      case 'waitRetry':
        phase = await run.waitRetry();
        break;
      case 'stop':
        return run.stop();
      case 'continueAsNew':
        return continueAsNew<typeof instanceWorkflow>({ ...input, spec: run.spec, carried: machine.toCarried(run.s, run.inbox) });
    }
  }
}

/** One run of an instance workflow: the machine's state, the signals not yet acted on, and the commands they lead to. */
class InstanceRun {
  readonly id = workflowInfo().workflowId;
  spec: McpServerSpec;
  s: InstanceState;
  inbox: Inbox = machine.emptyInbox();
  private readonly historyLimit: number;
  private readonly probes: boolean;
  private probe: { scope: CancellationScope; done: Promise<unknown>; workflowId: string } | null = null;
  private published = '';
  private nodeWaitMs = 0;
  /** This attempt's start probe passed: the probe child waits an interval before its first probe. */
  private probedAtStart = false;
  /** The container the node removed before the stop signal said so (a server's batch stop); null: stop removes its own. */
  private containerRemovedForStop: string | null = null;

  /** The node this instance runs on: where it placed itself, else where the server placed it; null before it has one. */
  private get nodeName(): string | null {
    return this.s.node ?? this.input.node ?? null;
  }

  /** The activities of the instance's node (proxies only: building them schedules nothing). */
  private get node(): ReturnType<typeof nodeActivities> {
    return nodeActivities(this.nodeName ?? '');
  }

  constructor(private readonly input: InstanceWorkflowArgs) {
    this.spec = input.spec;
    if (input.carried) ({ state: this.s, inbox: this.inbox } = machine.fromCarried(input.carried));
    else this.s = machine.INITIAL_INSTANCE_STATE;
    this.historyLimit = input.tuning?.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    this.probes = input.tuning?.probes !== false;
    this.registerHandlers();
  }

  private registerHandlers(): void {
    setHandler(statusQuery, () => this.view());
    setHandler(
      awaitStartedUpdate,
      async (timeoutSeconds) => {
        await condition(() => machine.startSettled(this.s), timeoutSeconds * 1000);
        return this.view();
      },
      {
        validator: (timeoutSeconds) => {
          if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > AWAIT_STARTED_MAX_SECONDS)
            throw new Error(`timeoutSeconds: must be more than 0 and at most ${AWAIT_STARTED_MAX_SECONDS}, got ${timeoutSeconds}`);
        },
      },
    );
    setHandler(forceRetrySignal, (request) => {
      this.s = machine.withRetryRequest(this.s, request?.reason);
    });
    setHandler(stopSignal, (request) => {
      this.inbox.stopRequested = true;
      if (request?.containerRemoved !== undefined) this.containerRemovedForStop = request.containerRemoved;
    });
    setHandler(restartSignal, () => {
      this.inbox.restartRequested = true;
    });
    // Exits are matched against the current container when read: a late exit of an old container changes nothing.
    setHandler(containerExitedSignal, (exit) => {
      this.inbox.lastExit = exit;
    });
    setHandler(healthChangedSignal, (transition) => {
      if (this.s.status === 'RUNNING') this.inbox.healthChanges.push(transition);
    });
    setHandler(specChangedSignal, (newSpec) => {
      this.inbox.pendingSpec = newSpec;
    });
    // Only news about the instance's own node while it runs there counts: any other instance re-places itself at its next attempt.
    setHandler(nodeNotReadySignal, (lost) => {
      if (lost.node === this.nodeName && this.s.status === 'RUNNING') this.inbox.nodeLost = lost;
    });
  }

  /** The first phase of this run. */
  begin(): Phase {
    let phase: Phase = 'attempt';
    if (this.input.carried) {
      phase = machine.resumePhase(this.s);
      this.s = machine.resumed(this.s, now());
    }
    this.publish();
    return phase;
  }

  view(): InstanceView {
    return machine.instanceView(this.id, this.input.server, this.input.ordinal, this.s, this.nodeName ?? undefined);
  }

  private record(type: string, message: string): void {
    this.s = machine.withEvent(this.s, now(), type, message);
  }

  private publish(): void {
    // Histories recorded before McpHealth read unknown outside RUNNING replay with the old values (and upserts).
    const legacy = !patched(SEARCH_HEALTH_PATCH);
    const key = machine.searchAttributesKey(this.s, legacy);
    if (key !== this.published) {
      this.published = key;
      upsertSearchAttributes([
        { key: mcpServerKey, value: this.input.server },
        { key: mcpInstanceStatusKey, value: this.s.status },
        { key: mcpHealthKey, value: machine.searchHealth(this.s, legacy) },
      ]);
    }
    setCurrentDetails(machine.detailsLine(this.input.server, this.input.ordinal, this.s));
  }

  private continueAsNewDue(): boolean {
    const current = workflowInfo();
    return current.continueAsNewSuggested || current.historyLength > this.historyLimit;
  }

  async attempt(): Promise<Phase> {
    if (patched(PLACEMENT_PATCH)) {
      const noNode = await this.place();
      if (noNode !== null) return this.waitForNode(noNode);
    }
    this.inbox = machine.inboxForAttempt(this.inbox);
    this.s = machine.beginAttempt(this.s, now());
    this.publish();
    let startProbe: ProbeResult | undefined;
    try {
      const fastStart = patched(FAST_START_PATCH);
      const probeAtStart = fastStart && this.probes && patched(PROBE_AT_START_PATCH);
      const { env, pinned } = await this.envForAttempt(fastStart);
      if (this.inbox.stopRequested) return 'stop';
      const packageImage =
        this.spec.packageName && patched(PACKAGE_IMAGES_PATCH) ? await this.preparePackageImage(this.spec.packageName, this.spec.entrypoint) : undefined;
      if (this.inbox.stopRequested) return 'stop';
      const started = await this.node.slow.startContainer({
        instanceId: this.id,
        generation: this.s.generation,
        spec: this.spec,
        env,
        ...(packageImage ? { packageImage } : {}),
        ...(fastStart ? { attach: true } : {}),
        ...(pinned ? {} : { countsAttempt: true }),
        ...(probeAtStart ? { probe: probeInputOf(this.probeWorkflowInput()) } : {}),
      });
      this.s = machine.containerStarted(this.s, started, now());
      startProbe = started.probe;
      if (this.inbox.stopRequested) return 'stop';
      if (!fastStart) await this.node.quick.attachUpstream({ instanceId: this.id, spec: this.spec, containerId: started.containerId, port: started.port });
    } catch (err) {
      if (this.inbox.stopRequested) return 'stop';
      return this.fail(activityFailureReason(err, 'start', this.nodeName ?? '-'));
    }
    this.s = machine.nowRunning(this.s, now());
    this.probedAtStart = startProbe?.ok === true;
    if (startProbe) this.s = machine.probedAtStart(this.s, startProbe, probeSettings(this.probeWorkflowInput()).liveness, now());
    this.publish();
    return 'running';
  }

  /**
   * The attempt's env: pinned by resolveEnv (on this worker, with fast starts), or, with no
   * secret to pin, the spec's own values, with no activity: in a start of 300 at once, the
   * local activity that had nothing to look up held each first workflow task 1 s of its 2.5 s.
   */
  private async envForAttempt(fastStart: boolean): Promise<{ env: ResolvedEnvEntry[]; pinned: boolean }> {
    if (!fastStart) return { env: await control.resolveEnv(this.spec.env), pinned: true };
    const plain = patched(PLAIN_ENV_PATCH) ? machine.envWithoutSecrets(this.spec.env) : null;
    if (plain !== null) return { env: plain, pinned: false };
    return { env: await localControl.resolveEnv(this.spec.env), pinned: true };
  }

  /** The package's image, found or built on the node; the exact version it resolves to is pinned for later attempts of this spec. */
  private async preparePackageImage(packageName: string, entrypoint: string | undefined): Promise<PackageImageRef> {
    const pinned = this.s.pinnedPackage;
    const requested = pinned?.packageName === packageName ? pinned.exact : packageName;
    this.record('PreparingImage', `image of ${requested}: reusing or building it on node ${this.nodeName}`);
    const prepared = await this.node.packages.preparePackageImage({ packageName: requested, ...(entrypoint ? { entrypoint } : {}) });
    this.s = { ...this.s, pinnedPackage: { packageName, exact: `${prepared.package}@${prepared.version}` } };
    this.record('PackageImage', machine.packageImageLine(prepared));
    return { image: prepared.image, entrypoint: prepared.entrypoint };
  }

  private async fail(reason: string, external = false, options: { abandonContainer?: boolean } = {}): Promise<Phase> {
    this.s = machine.failing(this.s, reason);
    if (this.s.containerId && !options.abandonContainer) {
      // Detach from the gateway and make sure it is not running; the container stays for `docker logs` until the next attempt.
      try {
        await this.node.quick.stopContainer({ instanceId: this.id, reason, remove: false });
      } catch (err) {
        this.record('StopFailed', `could not stop the failed container: ${activityFailureReason(err, 'stopContainer', this.nodeName ?? '-')}`);
      }
    }
    this.s = machine.attemptFailed(this.s, reason, Date.now(), this.spec.retry, external);
    this.publish();
    return 'waitRetry';
  }

  async running(): Promise<Phase> {
    await this.startProbe();
    for (;;) {
      const untilStable = machine.msUntilStable(this.s, this.spec.retry.stableSeconds, Date.now());
      const hasWork = () => machine.runningHasWork(this.s, this.inbox, this.continueAsNewDue());
      // false only when the stable period passed without anything happening.
      const woke = untilStable === undefined ? (await condition(hasWork), true) : await condition(hasWork, untilStable);
      if (!woke) {
        this.s = machine.backoffReset(this.s, this.spec.retry.stableSeconds, now());
        this.publish();
        continue;
      }
      const next = await this.handleRunningWork();
      if (next) return next;
    }
  }

  /** Acts on what woke a RUNNING instance, in order of precedence; null to keep running. */
  private async handleRunningWork(): Promise<Phase | null> {
    if (this.inbox.stopRequested) {
      // stop() leaves the probe to the parent-close policy (see there).
      if (!patched(FINAL_STOP_PATCH)) await this.stopProbe();
      return 'stop';
    }
    const exit = machine.currentExit(this.s, this.inbox);
    if (exit) {
      await this.stopProbe();
      return this.fail(exit.reason, exit.external === true);
    }
    const lost = this.inbox.nodeLost ?? null;
    this.inbox.nodeLost = null;
    if (lost !== null && lost.node === this.nodeName && (await this.anotherNodeFits(lost))) {
      await this.stopProbe();
      // Not the server's fault, and its container cannot be stopped through a node that is gone: its node removes it when it returns.
      return this.fail(`node ${lost.node} is NotReady (${lost.reason})`, true, { abandonContainer: true });
    }
    // Only the changes that woke us: a steady stream of signals must not keep this run from its continue-as-new check.
    for (const change of this.inbox.healthChanges.splice(0)) {
      const previous = this.s.health;
      const { state, command } = machine.healthChanged(this.s, change, now());
      this.s = state;
      this.publish();
      if (command.kind === 'fail') {
        await this.stopProbe();
        return this.fail(command.reason);
      }
      if (!machine.readinessChanges(previous, command.ready) && patched(READY_ON_CHANGE_PATCH)) continue;
      try {
        await this.node.quick.setReady({ instanceId: this.id, ready: command.ready });
      } catch (err) {
        this.record('SetReadyFailed', activityFailureReason(err, 'setReady', this.nodeName ?? '-'));
      }
    }
    let retryRestart = false;
    if (this.s.retryRequested) {
      const { state, restart } = machine.forceRetryWhileRunning(this.s, now());
      this.s = state;
      retryRestart = restart;
    }
    const why = machine.replacementReason(this.s, this.inbox, retryRestart);
    if (why !== null) return this.replace(why);
    if (this.continueAsNewDue()) {
      await this.stopProbe();
      return 'continueAsNew';
    }
    return null;
  }

  private async replace(why: string): Promise<Phase> {
    const newSpec = this.inbox.pendingSpec;
    if (newSpec !== null) this.spec = newSpec;
    this.inbox = { ...this.inbox, pendingSpec: null, restartRequested: false };
    this.s = machine.replacing(this.s, why, newSpec !== null, now());
    await this.stopProbe();
    await this.stopCurrent(why, true);
    return 'attempt';
  }

  /**
   * Before an attempt: the node to start on. The first attempt takes the node the server
   * chose; later ones (and an instance the server could not place) check it against the
   * nodes (workflows/placement.ts) and move when it is no longer Ready or no longer fits.
   * Returns null with a node to start on, otherwise why there is none.
   */
  private async place(): Promise<string | null> {
    const current = this.nodeName;
    if (current !== null && this.s.generation === 0) return this.publishNode(current);
    let nodes;
    try {
      nodes = await localNodes.listNodes();
    } catch (err) {
      // Without the list, a placed instance stays where it is rather than stopping.
      if (current !== null) return this.publishNode(current);
      return `cannot list the nodes: ${activityFailureReason(err, 'listNodes', '-')}`;
    }
    const decision = placeInstance(nodes, this.spec.placement, current);
    if (decision.kind === 'none') return decision.reason;
    if (decision.kind === 'place') {
      this.s = { ...this.s, node: decision.node };
      if (decision.from === null) this.record('Placed', `placed on node ${decision.node}: ${decision.why}`);
      else this.record('Moved', `moved from node ${decision.from} to node ${decision.node}: ${decision.why}`);
    }
    return this.publishNode(decision.node);
  }

  /**
   * Whether an instance whose node went NotReady has somewhere else to go. When nothing else
   * fits it keeps its container: if the node returns, the instance is still there.
   */
  private async anotherNodeFits(lost: NodeLost): Promise<boolean> {
    const why = `node ${lost.node} is NotReady (${lost.reason})`;
    try {
      const decision = placeInstance(await localNodes.listNodes(), this.spec.placement, this.nodeName);
      if (decision.kind === 'place') return true;
      this.record('NodeNotReady', `${why}; no other Ready node fits placement ${describePlacement(this.spec.placement)}: staying`);
    } catch (err) {
      this.record('NodeNotReady', `${why}; staying, the nodes could not be listed: ${activityFailureReason(err, 'listNodes', '-')}`);
    }
    return false;
  }

  /** The McpNode search attribute names the instance's node (placement counts with it); null for place(). */
  private publishNode(node: string): null {
    this.nodeWaitMs = 0;
    if (workflowInfo().typedSearchAttributes.get(mcpNodeKey) !== node) upsertSearchAttributes([{ key: mcpNodeKey, value: node }]);
    return null;
  }

  /** No node fits: PENDING with the reason, checked again soon (sooner on forceRetry, a new spec, or stop). */
  private async waitForNode(reason: string): Promise<Phase> {
    this.nodeWaitMs = Math.min(Math.max(this.nodeWaitMs * 2, NODE_WAIT_MIN_MS), NODE_WAIT_MAX_MS);
    this.inbox = { ...this.inbox, restartRequested: false };
    this.s = machine.waitingForNode(this.s, reason, new Date(Date.now() + this.nodeWaitMs).toISOString(), now());
    this.publish();
    const woke = await condition(() => machine.retryWaitEnds(this.s, this.inbox, this.continueAsNewDue()), this.nodeWaitMs);
    return this.afterWait(woke);
  }

  /** The end of a wait (for a retry or for a node): the next phase, with a spec that arrived meanwhile adopted. */
  private afterWait(woke: boolean): Phase {
    const { state, next, adoptSpec } = machine.afterRetryWait(this.s, this.inbox, woke, now());
    this.s = state;
    if (adoptSpec && this.inbox.pendingSpec !== null) {
      this.spec = this.inbox.pendingSpec;
      this.inbox = { ...this.inbox, pendingSpec: null };
    }
    return next;
  }

  async waitRetry(): Promise<Phase> {
    const waitMs = this.s.nextRetryAt ? Date.parse(this.s.nextRetryAt) - Date.now() : 0;
    const woke = waitMs > 0 ? await condition(() => machine.retryWaitEnds(this.s, this.inbox, this.continueAsNewDue()), waitMs) : false;
    return this.afterWait(woke);
  }

  private async stopCurrent(reason: string, remove: boolean): Promise<void> {
    // Never placed: no node ever ran a container of this instance.
    if (this.nodeName === null) return;
    try {
      await this.node.quick.stopContainer({ instanceId: this.id, reason, remove });
    } catch (err) {
      this.record('StopFailed', `could not stop the container: ${activityFailureReason(err, 'stopContainer', this.nodeName ?? '-')}`);
    }
    this.s = machine.containerRemoved(this.s);
  }

  async stop(): Promise<InstanceView> {
    this.s = machine.stopping(this.s, now());
    this.publish();
    // This workflow ends with the stop: Temporal then terminates the probe child (its parent-close
    // policy), and stopContainer ends the probe loop on the node. Cancelling the child and waiting
    // for it cost two workflow tasks of each workflow per instance, which a fleet's delete felt.
    if (patched(FINAL_STOP_PATCH)) this.probe = null;
    else await this.stopProbe();
    // Removed by its node already (a batch stop): this workflow ends in the task that took the stop.
    if (this.s.containerId !== null && this.s.containerId === this.containerRemovedForStop) this.s = machine.containerRemoved(this.s);
    else await this.stopCurrent('instance stopped', true);
    this.s = machine.stopped(this.s, now());
    this.publish();
    return this.view();
  }

  private async startProbe(): Promise<void> {
    if (!this.probes) return;
    const probeInput: ProbeWorkflowInput = {
      ...this.probeWorkflowInput(),
      carried: { health: this.s.health, consecutiveFailures: 0, ...(this.probedAtStart ? { nextProbeAfterInterval: true } : {}) },
    };
    this.probedAtStart = false;
    for (let tries = 1; ; tries++) {
      const scope = new CancellationScope();
      try {
        const handle = await scope.run(() =>
          startChild(probeWorkflow, {
            workflowId: probeWorkflowId(this.id, this.s.generation),
            args: [probeInput],
            parentClosePolicy: ParentClosePolicy.TERMINATE,
            staticSummary: `health probe of ${this.id}`,
          }),
        );
        this.probe = { scope, done: handle.result().catch(() => undefined), workflowId: handle.workflowId };
        return;
      } catch (err) {
        const taken = err instanceof WorkflowExecutionAlreadyStartedError;
        // An earlier run of this instance that ended with a final stop left its probe to the
        // parent-close policy, which terminates it within moments of that run's end.
        if (taken && tries < PROBE_START_TRIES && patched(PROBE_START_WAITS_PATCH)) {
          await sleep('1 second');
          continue;
        }
        this.record('ProbeNotStarted', `probe child not started: ${taken ? 'a probe workflow with this id is still running' : (err as Error).message}`);
        return;
      }
    }
  }

  /** What the probe child probes: the spec's readiness healthCheck, else liveness. */
  private probeWorkflowInput(): ProbeWorkflowInput {
    return { instanceId: this.id, node: this.nodeName!, ...(this.spec.healthCheck ? { healthCheck: this.spec.healthCheck } : {}) };
  }

  private async stopProbe(): Promise<void> {
    if (!this.probe) return;
    const { scope, done, workflowId } = this.probe;
    this.probe = null;
    scope.cancel();
    // The child's cancellation names the run it started; a probe that continued as new runs on in a
    // later run that only a cancellation by workflow id reaches (without it this waited forever).
    if (patched(PROBE_CANCEL_CURRENT_RUN_PATCH))
      await getExternalWorkflowHandle(workflowId)
        .cancel()
        .catch(() => undefined);
    await done;
  }
}

function now(): string {
  return new Date().toISOString();
}

/** The reason an operator needs, from an activity failure: the activity's own message, or what timed out where. */
export function activityFailureReason(err: unknown, what: string, node: string): string {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof TimeoutFailure) return `${what} timed out: is the node worker for "${node}" running?`;
    if (cause instanceof ApplicationFailure) return cause.message;
    if (cause) return cause.message;
  }
  return err instanceof Error ? err.message : String(err);
}
