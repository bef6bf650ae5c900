/**
 * instanceWorkflow: the durable lifecycle of one replica of an MCP server.
 *
 *   STARTING -> resolve env (pinned secret refs) -> start container -> attach upstream
 *   RUNNING  -> probe child; wait for stop / restart / spec change / container exit / liveness failure
 *   ERROR    -> durable timer (fast, then slow), cut short by forceRetry; then the same instance again
 *   STOPPING -> stop and remove the container -> STOPPED (the workflow ends)
 *
 * Everything the operator sees (status query, search attributes, current details)
 * is built from the state below; none of it can hold a secret value because
 * values never enter the workflow: activities pass pinned references.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowHandle,
  ParentClosePolicy,
  TimeoutFailure,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { ControlActivities } from '../activities/control';
import type { NodeActivities } from '../activities/node';
import type { PackageActivities } from '../activities/packages';
import type { PackageImageRef } from '../activities/types';
import type { McpServerSpec } from '../src/contracts/spec';
import { MAX_EVENTS, TASK_QUEUE, nodeTaskQueue, type InstanceStatus, type InstanceView } from '../src/contracts/instance';
import { mcpHealthKey, mcpInstanceStatusKey, mcpServerKey } from '../src/contracts/searchAttributes';
import { retryDelaySeconds } from './backoff';
import {
  containerExitedSignal,
  forceRetrySignal,
  healthChangedSignal,
  restartSignal,
  specChangedSignal,
  statusQuery,
  stopSignal,
  type CarriedInstanceState,
  type ContainerExit,
  type HealthTransition,
  type InstanceWorkflowInput,
  type ProbeWorkflowInput,
} from '../src/contracts/messages';


/** Continue-as-new once a run's history passes this many events (or when Temporal suggests it). */
export const DEFAULT_HISTORY_LIMIT = 2_000;
export const PROBE_WORKFLOW_TYPE = 'probeWorkflow';

/** Knobs an operator rarely touches and tests do: carried across continue-as-new unchanged. */
export interface InstanceWorkflowTuning {
  historyLimit?: number;
  /** Workflow type of the probe child; null runs without probes. */
  probeWorkflowType?: string | null;
}

export type InstanceWorkflowArgs = InstanceWorkflowInput & { tuning?: InstanceWorkflowTuning };

type Phase = 'attempt' | 'running' | 'waitRetry' | 'stop' | 'continueAsNew';

const control = proxyActivities<ControlActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '30 seconds',
  // An unreachable OpenBao gets a few quick tries; a missing secret is non-retryable and lands in our own backoff.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
});

export async function instanceWorkflow(input: InstanceWorkflowArgs): Promise<InstanceView> {
  const info = workflowInfo();
  const id = info.workflowId;
  const historyLimit = input.tuning?.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  const probeType = input.tuning?.probeWorkflowType === undefined ? PROBE_WORKFLOW_TYPE : input.tuning.probeWorkflowType;
  let spec: McpServerSpec = input.spec;

  const nodeQueue = nodeTaskQueue(input.node);
  const node = proxyActivities<NodeActivities>({
    taskQueue: nodeQueue,
    startToCloseTimeout: '2 minutes',
    // Node activities heartbeat: a node worker that dies mid-start is noticed in seconds and the start is retried.
    heartbeatTimeout: '10 seconds',
    // Bounded so a node whose worker is gone becomes a failed attempt instead of a hang.
    scheduleToCloseTimeout: '5 minutes',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
  });
  const nodeQuick = proxyActivities<NodeActivities>({
    taskQueue: nodeQueue,
    startToCloseTimeout: '30 seconds',
    heartbeatTimeout: '10 seconds',
    scheduleToCloseTimeout: '2 minutes',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 5 },
  });

  // Installing a package and building its image can take minutes on a cold npm/pip cache; heartbeats carry the progress.
  const packages = proxyActivities<PackageActivities>({
    taskQueue: nodeQueue,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '10 seconds',
    scheduleToCloseTimeout: '20 minutes',
    // Registry hiccups get a few tries; a package or version that does not exist is non-retryable and lands in our backoff.
    retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
  });
  /** The exact version the current packageName resolved to: restarts and retries of this spec run that same version. */
  let pinnedPackage: { packageName: string; exact: string } | null = null;
  const preparePackageImage = async (packageName: string, entrypoint: string | undefined): Promise<PackageImageRef> => {
    const requested = pinnedPackage?.packageName === packageName ? pinnedPackage.exact : packageName;
    event('PreparingImage', `image of ${requested}: reusing or building it on node ${input.node}`);
    const prepared = await packages.preparePackageImage({ packageName: requested, ...(entrypoint ? { entrypoint } : {}) });
    pinnedPackage = { packageName, exact: `${prepared.package}@${prepared.version}` };
    const seconds = Math.round(prepared.elapsedMs / 1000);
    const how = prepared.how === 'built' ? `built in ${seconds} s` : prepared.how === 'joined' ? `built once for two starts, waited ${seconds} s` : 'cached';
    event('PackageImage', `image ${prepared.image} for ${prepared.package}@${prepared.version} (${how}), runs ${prepared.executable}, lock sha256:${prepared.lockHash.slice(0, 12)}`);
    return { image: prepared.image, entrypoint: prepared.entrypoint };
  };

  const s: CarriedInstanceState = input.carried
    ? { ...input.carried, events: [...input.carried.events] }
    : {
        attemptCount: 0,
        lastAttemptAt: null,
        nextRetryAt: null,
        error: null,
        containerId: null,
        runningSince: null,
        generation: 0,
        events: [],
        status: 'PENDING',
        health: 'unknown',
        healthReason: null,
        retryRequested: false,
      };

  let stopRequested = false;
  let restartRequested = false;
  let pendingSpec: McpServerSpec | null = null;
  let lastExit: ContainerExit | null = null;
  const healthChanges: HealthTransition[] = [];

  const view = (): InstanceView => ({
    id,
    server: input.server,
    ordinal: input.ordinal,
    status: s.status,
    health: s.health,
    containerId: s.containerId,
    attemptCount: s.attemptCount,
    lastAttemptAt: s.lastAttemptAt,
    nextRetryAt: s.nextRetryAt,
    error: s.error,
    healthReason: s.healthReason,
    runningSince: s.runningSince,
    events: [...s.events],
  });

  setHandler(statusQuery, view);
  setHandler(forceRetrySignal, () => {
    s.retryRequested = true;
  });
  setHandler(stopSignal, () => {
    stopRequested = true;
  });
  setHandler(restartSignal, () => {
    restartRequested = true;
  });
  // Exits are matched against the current container when read: a late exit of an old container changes nothing.
  setHandler(containerExitedSignal, (exit) => {
    lastExit = exit;
  });
  setHandler(healthChangedSignal, (transition) => {
    if (s.status === 'RUNNING') healthChanges.push(transition);
  });
  setHandler(specChangedSignal, (newSpec) => {
    pendingSpec = newSpec;
  });

  const now = () => new Date().toISOString();
  const event = (type: string, message: string) => {
    s.events.push({ at: now(), type, message });
    if (s.events.length > MAX_EVENTS) s.events.splice(0, s.events.length - MAX_EVENTS);
  };

  let published = '';
  const publish = () => {
    const key = `${s.status}|${s.health}`;
    if (key !== published) {
      published = key;
      upsertSearchAttributes([
        { key: mcpServerKey, value: input.server },
        { key: mcpInstanceStatusKey, value: s.status },
        { key: mcpHealthKey, value: s.health },
      ]);
    }
    setCurrentDetails(detailsLine());
  };
  const setStatus = (status: InstanceStatus) => {
    s.status = status;
    publish();
  };
  const detailsLine = () => {
    const parts = [`${s.status}`, `health ${s.health}`, `attempt ${s.attemptCount}`];
    if (s.containerId) parts.push(`container ${s.containerId.slice(0, 12)}`);
    if (s.status === 'ERROR' && s.nextRetryAt) parts.push(`next retry ${s.nextRetryAt}`);
    if (s.error) parts.push(s.error);
    return `${input.server}#${input.ordinal}: ${parts.join(' · ')}`;
  };

  const shouldContinueAsNew = () => {
    const current = workflowInfo();
    return current.continueAsNewSuggested || current.historyLength > historyLimit;
  };
  const currentExit = () => (lastExit !== null && s.containerId !== null && lastExit.containerId === s.containerId ? lastExit : null);

  // ---- probe child ------------------------------------------------------------
  let probe: { scope: CancellationScope; done: Promise<unknown> } | null = null;
  const startProbe = async () => {
    if (!probeType) return;
    const probeInput: ProbeWorkflowInput = {
      instanceId: id,
      node: input.node,
      ...(spec.healthCheck ? { healthCheck: spec.healthCheck } : {}),
      carried: { health: s.health, consecutiveFailures: 0 },
    };
    const scope = new CancellationScope();
    try {
      const handle: ChildWorkflowHandle<any> = await scope.run(() =>
        startChild(probeType, {
          // One id per container generation: a new probe never collides with an old one that is still finishing.
          workflowId: `${id}/probe/${s.generation}`,
          args: [probeInput],
          parentClosePolicy: ParentClosePolicy.TERMINATE,
          staticSummary: `health probe of ${id}`,
        }),
      );
      probe = { scope, done: handle.result().catch(() => undefined) };
    } catch (err) {
      const reason = err instanceof WorkflowExecutionAlreadyStartedError ? 'a probe workflow with this id is still running' : (err as Error).message;
      event('ProbeNotStarted', `probe child not started: ${reason}`);
    }
  };
  const stopProbe = async () => {
    if (!probe) return;
    const { scope, done } = probe;
    probe = null;
    scope.cancel();
    await done;
  };

  // ---- phases ---------------------------------------------------------------
  const fail = async (reason: string): Promise<Phase> => {
    s.error = reason;
    s.runningSince = null;
    if (s.containerId) {
      // Detach from the gateway and make sure it is not running; the container stays for `docker logs` until the next attempt.
      try {
        await nodeQuick.stopContainer({ instanceId: id, reason, remove: false });
      } catch (err) {
        event('StopFailed', `could not stop the failed container: ${activityFailureReason(err, 'stopContainer', input.node)}`);
      }
    }
    const delaySeconds = retryDelaySeconds(s.attemptCount, spec.retry);
    s.nextRetryAt = new Date(Date.now() + delaySeconds * 1000).toISOString();
    event('AttemptFailed', `attempt ${s.attemptCount} failed: ${reason}; next attempt in ${delaySeconds}s`);
    setStatus('ERROR');
    return 'waitRetry';
  };

  const attempt = async (): Promise<Phase> => {
    s.retryRequested = false;
    restartRequested = false;
    healthChanges.length = 0;
    s.attemptCount += 1;
    s.generation += 1;
    s.lastAttemptAt = now();
    s.nextRetryAt = null;
    s.containerId = null;
    s.runningSince = null;
    s.health = 'unknown';
    s.healthReason = null;
    event('AttemptStarted', `attempt ${s.attemptCount} (generation ${s.generation})`);
    setStatus('STARTING');

    let port: number | undefined;
    try {
      const env = await control.resolveEnv(spec.env);
      if (stopRequested) return 'stop';
      const packageImage = spec.packageName && patched('package-images') ? await preparePackageImage(spec.packageName, spec.entrypoint) : undefined;
      if (stopRequested) return 'stop';
      const started = await node.startContainer({ instanceId: id, generation: s.generation, spec, env, ...(packageImage ? { packageImage } : {}) });
      s.containerId = started.containerId;
      port = started.port;
      event('ContainerStarted', `container ${started.containerId.slice(0, 12)} ${started.reused ? 'found running from a retried start' : 'started'}${port ? ` on port ${port}` : ''}`);
      if (stopRequested) return 'stop';
      await nodeQuick.attachUpstream({ instanceId: id, spec, containerId: started.containerId, port });
    } catch (err) {
      if (stopRequested) return 'stop';
      return fail(activityFailureReason(err, 'start', input.node));
    }
    s.error = null;
    s.runningSince = now();
    event('Running', `container ${s.containerId.slice(0, 12)} is running`);
    setStatus('RUNNING');
    return 'running';
  };

  const running = async (): Promise<Phase> => {
    let retryRestart = false;
    await startProbe();
    for (;;) {
      const stableAt = s.runningSince ? Date.parse(s.runningSince) + spec.retry.stableSeconds * 1000 : Infinity;
      const untilStable = s.attemptCount > 0 ? Math.max(1, stableAt - Date.now()) : undefined;
      const wakeUp = () =>
        stopRequested ||
        restartRequested ||
        s.retryRequested ||
        pendingSpec !== null ||
        currentExit() !== null ||
        healthChanges.length > 0 ||
        shouldContinueAsNew();
      // false only when the stable period passed without anything happening.
      const woke = untilStable === undefined ? (await condition(wakeUp), true) : await condition(wakeUp, untilStable);
      if (!woke) {
        event('BackoffReset', `running for ${spec.retry.stableSeconds}s without a failure: attempt count ${s.attemptCount} reset to 0`);
        s.attemptCount = 0;
        publish();
        continue;
      }
      if (stopRequested) {
        await stopProbe();
        return 'stop';
      }
      const exit = currentExit();
      if (exit) {
        await stopProbe();
        return fail(exit.reason);
      }
      while (healthChanges.length > 0) {
        const change = healthChanges.shift()!;
        s.health = change.health;
        s.healthReason = change.reason;
        event('HealthChanged', `${change.liveness ? 'liveness' : 'readiness'} ${change.health}${change.reason ? `: ${change.reason}` : ''}`);
        publish();
        if (change.liveness && change.health === 'unhealthy') {
          await stopProbe();
          return fail(`liveness probe failed: ${change.reason ?? 'unknown reason'}`);
        }
        try {
          await nodeQuick.setReady({ instanceId: id, ready: change.health !== 'unhealthy' });
        } catch (err) {
          event('SetReadyFailed', activityFailureReason(err, 'setReady', input.node));
        }
      }
      if (s.retryRequested) {
        s.retryRequested = false;
        // An operator who fixed a secret retries an unhealthy instance: that takes a fresh container with freshly resolved env.
        if (s.health === 'healthy') event('ForceRetry', 'forceRetry ignored: the instance is running and healthy (use restart to replace it)');
        else retryRestart = true;
      }
      if (pendingSpec !== null || restartRequested || retryRestart) {
        const why = pendingSpec !== null ? 'spec changed' : restartRequested ? 'restart requested' : `forceRetry of a ${s.health} instance`;
        retryRestart = false;
        if (pendingSpec !== null) {
          spec = pendingSpec;
          pendingSpec = null;
          // A new spec deserves a fresh schedule; its first failure waits the fast delay.
          s.attemptCount = 0;
        }
        restartRequested = false;
        event(why === 'spec changed' ? 'SpecChanged' : 'Restart', `${why}: replacing container ${s.containerId?.slice(0, 12)}`);
        await stopProbe();
        await stopCurrent(why, true);
        return 'attempt';
      }
      if (shouldContinueAsNew()) {
        await stopProbe();
        return 'continueAsNew';
      }
    }
  };

  const waitRetry = async (): Promise<Phase> => {
    const waitMs = s.nextRetryAt ? Date.parse(s.nextRetryAt) - Date.now() : 0;
    if (waitMs > 0) {
      const woke = await condition(() => s.retryRequested || stopRequested || restartRequested || pendingSpec !== null || shouldContinueAsNew(), waitMs);
      if (woke && stopRequested) return 'stop';
      if (woke && s.retryRequested) event('ForceRetry', 'forceRetry received: retrying now');
      else if (woke && restartRequested) event('Restart', 'restart requested: retrying now');
      else if (woke && pendingSpec === null) return 'continueAsNew';
    }
    if (stopRequested) return 'stop';
    if (pendingSpec !== null) {
      spec = pendingSpec;
      pendingSpec = null;
      s.attemptCount = 0;
      event('SpecChanged', 'spec changed: starting a fresh attempt');
    }
    return 'attempt';
  };

  const stopCurrent = async (reason: string, remove: boolean) => {
    try {
      await nodeQuick.stopContainer({ instanceId: id, reason, remove });
    } catch (err) {
      event('StopFailed', `could not stop the container: ${activityFailureReason(err, 'stopContainer', input.node)}`);
    }
    s.containerId = null;
    s.runningSince = null;
  };

  const stop = async (): Promise<InstanceView> => {
    setStatus('STOPPING');
    event('Stopping', 'stop requested');
    await stopProbe();
    await stopCurrent('instance stopped', true);
    s.nextRetryAt = null;
    s.health = 'unknown';
    s.healthReason = null;
    event('Stopped', 'container stopped and removed');
    setStatus('STOPPED');
    return view();
  };

  // ---- main loop --------------------------------------------------------------
  let phase: Phase;
  if (input.carried) {
    phase = s.status === 'RUNNING' && s.containerId ? 'running' : s.status === 'ERROR' ? 'waitRetry' : 'attempt';
    event('ContinuedAsNew', `continued as new in status ${s.status}`);
  } else {
    phase = 'attempt';
  }
  publish();

  for (;;) {
    if (stopRequested && phase !== 'stop') phase = 'stop';
    switch (phase) {
      case 'attempt':
        phase = await attempt();
        break;
      case 'running':
        phase = await running();
        break;
      case 'waitRetry':
        phase = await waitRetry();
        break;
      case 'stop':
        return stop();
      case 'continueAsNew':
        return continueAsNew<typeof instanceWorkflow>({ ...input, spec, carried: { ...s, events: [...s.events] } });
    }
  }
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
