/**
 * probeWorkflow: a child of each instance workflow run. It probes through the
 * gateway's proxy (liveness: tools/list; readiness: tools/call of
 * healthCheck.tool), counts consecutive failures and signals its parent only
 * when health changes.
 *
 * The probing itself runs on the node, in the probeLoop activity: it probes every
 * intervalSeconds, heartbeats, and returns only on a health change or after an
 * hour, so while nothing changes a run grows by six history events an hour,
 * whatever the interval. A node worker that starts again signals probeLoopLost and
 * a new loop starts at once; a loop lost with a worker that never returns (heartbeat
 * timeout) counts as one failed probe and a new loop starts after an interval. The run
 * continues as new once its history passes a small limit, carrying health.
 *
 * Runs that began before the probe loop (no 'probe-loop-activity' marker in their
 * history) replay their one-activity-per-probe loop and switch to the probe loop
 * at their next probe.
 */
import {
  ActivityFailure,
  CancellationScope,
  TimeoutFailure,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
  type ExternalWorkflowHandle,
} from '@temporalio/workflow';
import type { ProbeActivities, ProbeInput, ProbeLoopHeartbeat, ProbeLoopResult, ProbeResult } from '../activities/probe';
import { nodeTaskQueue } from '../src/contracts/instance';
import { INITIAL_HEALTH, PROBE_LOOP_SECONDS, nextHealth, probeHeartbeatTimeoutSeconds, probeSettings, type HealthState, type ProbeSettings } from './health';
import { healthChangedSignal, probeLoopLostSignal, type HealthTransition, type ProbeWorkflowInput } from '../src/contracts/messages';

/** Probes per run before continue-as-new, on the one-activity-per-probe path of older runs. */
export const MAX_PROBES_PER_RUN = 500;
/** Events per run before continue-as-new on the probe loop path: about two weeks of a healthy instance. */
export const PROBE_HISTORY_LIMIT = 2_000;
/** How long a probe may wait for a node worker to pick it up before it counts as failed. */
const SCHEDULE_SLACK_SECONDS = 30;
/** The patch that moved the probing into the probeLoop activity. */
export const PROBE_LOOP_PATCH = 'probe-loop-activity';

export async function probeWorkflow(input: ProbeWorkflowInput): Promise<void> {
  const settings = probeSettings(input);
  const parent = workflowInfo().parent;
  const parentHandle = parent ? getExternalWorkflowHandle(parent.workflowId, parent.runId) : undefined;
  const state: HealthState = input.carried ? { health: input.carried.health, consecutiveFailures: input.carried.consecutiveFailures } : INITIAL_HEALTH;
  return probeEachInterval(input, settings, state, parentHandle);
}

/** The probe loop on the node: a few history events per hour and per health change. */
async function probeInLoops(
  input: ProbeWorkflowInput,
  settings: ProbeSettings,
  initial: HealthState,
  parentHandle: ExternalWorkflowHandle | undefined,
  waitFirst: boolean,
): Promise<void> {
  const { intervalSeconds, timeoutSeconds, failureThreshold } = settings;
  const loopSeconds = input.tuning?.loopSeconds ?? PROBE_LOOP_SECONDS;
  const { probeLoop } = proxyActivities<ProbeActivities>({
    taskQueue: nodeTaskQueue(input.node),
    heartbeatTimeout: `${probeHeartbeatTimeoutSeconds(intervalSeconds)} s`,
    scheduleToStartTimeout: `${SCHEDULE_SLACK_SECONDS} s`,
    // A loop may finish its last round (re-attach wait, probe, repair) after loopSeconds; this only catches one that never returns.
    startToCloseTimeout: `${loopSeconds + intervalSeconds + 2 * timeoutSeconds + 120} s`,
    // A lost loop is a failed probe, as it always was: the workflow counts it and starts the next loop.
    retry: { maximumAttempts: 1 },
  });
  const historyLimit = input.tuning?.historyLimit ?? PROBE_HISTORY_LIMIT;
  // The node worker restarted: the loop it ran is gone. Cancel our wait for it and start another.
  let loop: CancellationScope | null = null;
  let loopLost: boolean;
  setHandler(probeLoopLostSignal, () => {
    loopLost = true;
    loop?.cancel();
  });
  let state = initial;
  for (;;) {
    let result: ProbeLoopResult;
    let lost = false;
    loopLost = false;
    loop = new CancellationScope();
    try {
      const request = { ...probeInputOf(input, settings), intervalSeconds, failureThreshold, state, waitFirst, maxSeconds: loopSeconds };
      result = await loop.run(() => probeLoop(request));
    } catch (err) {
      if (isCancellation(err) && loopLost && !CancellationScope.current().consideredCancelled) {
        // Not a verdict on the server: probe again at once, as a loop that was never lost would have.
        waitFirst = false;
        continue;
      }
      if (isCancellation(err)) throw err;
      result = lostLoop(err, state, failureThreshold);
      lost = true;
    } finally {
      loop = null;
    }
    state = result.state;
    if (result.changed && !(await reportTransition(input, settings, parentHandle, state, result.reason))) return;
    waitFirst = true;
    if (lost) {
      // Give a missing node worker an interval to come back before the next loop is scheduled.
      await sleep(`${intervalSeconds} s`);
      waitFirst = false;
    }
    const current = workflowInfo();
    if (current.historyLength > historyLimit || current.continueAsNewSuggested) {
      // A cancellation that arrived with the loop's result must end the chain, not vanish into a new run.
      if (CancellationScope.current().consideredCancelled) await CancellationScope.current().cancelRequested;
      await continueAsNew<typeof probeWorkflow>({ ...input, carried: { ...state, nextProbeAfterInterval: waitFirst } });
    }
  }
}

/** A probe loop that never returned (no node worker, worker crash) is one failed probe, counted from its last heartbeat. */
function lostLoop(err: unknown, state: HealthState, failureThreshold: number): ProbeLoopResult {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : undefined;
  const heartbeat = cause instanceof TimeoutFailure ? (cause.lastHeartbeatDetails as ProbeLoopHeartbeat | undefined) : undefined;
  const from = heartbeat?.state ?? state;
  const reason = `probe did not complete: ${cause ? cause.message : String(err)}`.slice(0, 200);
  const step = nextHealth(from, { ok: false, reason }, failureThreshold);
  return { state: { health: step.health, consecutiveFailures: step.consecutiveFailures }, changed: step.health !== state.health, reason, probes: 0 };
}

/** Signals the parent; false when the parent run is gone (stopped or continued as new): nobody to report to. */
async function reportTransition(
  input: ProbeWorkflowInput,
  settings: ProbeSettings,
  parentHandle: ExternalWorkflowHandle | undefined,
  state: HealthState,
  reason: string | null,
): Promise<boolean> {
  if (!parentHandle) return true;
  const transition: HealthTransition = { health: state.health, reason, liveness: settings.liveness, consecutiveFailures: state.consecutiveFailures };
  try {
    await parentHandle.signal(healthChangedSignal, transition);
    return true;
  } catch (err) {
    log.info('probe parent gone; ending probe', { instanceId: input.instanceId, error: String(err) });
    return false;
  }
}

/** The request a probe of this input sends (the instance workflow asks for the same one at start). */
export function probeInputOf(input: ProbeWorkflowInput, settings: ProbeSettings = probeSettings(input)): ProbeInput {
  const check = input.healthCheck;
  return check
    ? { instanceId: input.instanceId, kind: 'readiness', tool: check.tool, arguments: check.arguments, timeoutSeconds: settings.timeoutSeconds }
    : { instanceId: input.instanceId, kind: 'liveness', timeoutSeconds: settings.timeoutSeconds };
}

/**
 * The path of runs that began before the probe loop: one probe activity and one timer
 * per interval. Kept so their histories replay; each switches to the probe loop at its
 * next probe, and every new run takes the probe loop from its start.
 */
async function probeEachInterval(
  input: ProbeWorkflowInput,
  settings: ProbeSettings,
  initial: HealthState,
  parentHandle: ExternalWorkflowHandle | undefined,
): Promise<void> {
  const { intervalSeconds, timeoutSeconds, failureThreshold } = settings;
  const { probe } = proxyActivities<ProbeActivities>({
    taskQueue: nodeTaskQueue(input.node),
    // The activity enforces timeoutSeconds itself; this only catches a lost worker.
    startToCloseTimeout: `${timeoutSeconds + 5} s`,
    scheduleToCloseTimeout: `${timeoutSeconds + 5 + SCHEDULE_SLACK_SECONDS} s`,
    retry: { maximumAttempts: 1 },
  });
  const probeInput = probeInputOf(input, settings);
  let state = initial;
  let probesInRun = input.carried?.probesInRun ?? 0;
  let waitFirst = input.carried?.nextProbeAfterInterval === true;

  for (;;) {
    if (patched(PROBE_LOOP_PATCH)) return probeInLoops(input, settings, state, parentHandle, waitFirst);
    waitFirst = false;
    const outcome = await runProbe(probe, probeInput);
    probesInRun++;
    if (outcome.counts === false) {
      // Not a verdict on the server (the node was re-attaching, or repaired an inconsistency): health stays as it is.
      log.info('probe result not counted', { instanceId: input.instanceId, reason: outcome.reason });
      await sleep(`${intervalSeconds} s`);
      continue;
    }
    const step = nextHealth(state, outcome, failureThreshold);
    state = { health: step.health, consecutiveFailures: step.consecutiveFailures };
    if (step.transition && !(await reportTransition(input, settings, parentHandle, state, outcome.reason))) return;
    if (probesInRun >= MAX_PROBES_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await sleep(`${intervalSeconds} s`);
      await continueAsNew<typeof probeWorkflow>({ ...input, carried: { ...state, probesInRun: 0 } });
    }
    await sleep(`${intervalSeconds} s`);
  }
}

async function runProbe(probe: ProbeActivities['probe'], input: ProbeInput): Promise<ProbeResult> {
  try {
    return await probe(input);
  } catch (err) {
    // The activity returns failures as data; landing here means it never ran or
    // never finished (no node worker, worker crash): that is a failed probe too.
    const cause = err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);
    return { ok: false, reason: `probe did not complete: ${cause}`.slice(0, 200) };
  }
}
