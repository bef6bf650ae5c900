/**
 * probeWorkflow: a child of each instance workflow run. Every intervalSeconds it
 * sends one MCP request through the gateway's proxy (liveness: tools/list;
 * readiness: tools/call of healthCheck.tool), counts consecutive failures and
 * signals its parent only when health changes, so both histories stay small.
 * It continues as new every MAX_PROBES_PER_RUN probes, carrying health.
 */
import { ActivityFailure, continueAsNew, getExternalWorkflowHandle, log, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { ProbeActivities, ProbeInput, ProbeResult } from '../activities/probe';
import { nodeTaskQueue } from '../src/contracts/instance';
import { PROBE_DEFAULTS } from '../src/contracts/spec';
import { INITIAL_HEALTH, nextHealth, type HealthState } from './health';
import { healthChangedSignal, type HealthTransition, type ProbeWorkflowInput } from '../src/contracts/messages';

/** Probes per run before continue-as-new: a 10 s probe stays well under history limits. */
export const MAX_PROBES_PER_RUN = 500;
/** How long the probe may wait for a node worker to pick it up before it counts as failed. */
const SCHEDULE_SLACK_SECONDS = 30;

export async function probeWorkflow(input: ProbeWorkflowInput): Promise<void> {
  const check = input.healthCheck;
  const intervalSeconds = check?.intervalSeconds ?? input.intervalSeconds ?? PROBE_DEFAULTS.intervalSeconds;
  const timeoutSeconds = check?.timeoutSeconds ?? input.timeoutSeconds ?? PROBE_DEFAULTS.timeoutSeconds;
  const failureThreshold = check?.failureThreshold ?? input.failureThreshold ?? PROBE_DEFAULTS.failureThreshold;
  const liveness = !check;

  const { probe } = proxyActivities<ProbeActivities>({
    taskQueue: nodeTaskQueue(input.node),
    // The activity enforces timeoutSeconds itself; this only catches a lost worker.
    startToCloseTimeout: `${timeoutSeconds + 5} s`,
    scheduleToCloseTimeout: `${timeoutSeconds + 5 + SCHEDULE_SLACK_SECONDS} s`,
    retry: { maximumAttempts: 1 },
  });
  const probeInput: ProbeInput = check
    ? { instanceId: input.instanceId, kind: 'readiness', tool: check.tool, arguments: check.arguments, timeoutSeconds }
    : { instanceId: input.instanceId, kind: 'liveness', timeoutSeconds };

  const parent = workflowInfo().parent;
  const parentHandle = parent ? getExternalWorkflowHandle(parent.workflowId, parent.runId) : undefined;

  let state: HealthState = input.carried ? { health: input.carried.health, consecutiveFailures: input.carried.consecutiveFailures } : INITIAL_HEALTH;
  let probesInRun = input.carried?.probesInRun ?? 0;

  for (;;) {
    // A probe in flight finishes before a cancellation (the instance stopping
    // or restarting) ends this workflow: no activity is left orphaned, and the
    // wait is bounded by timeoutSeconds.
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
    if (step.transition && parentHandle) {
      const transition: HealthTransition = { health: step.health, reason: outcome.reason, liveness, consecutiveFailures: step.consecutiveFailures };
      try {
        await parentHandle.signal(healthChangedSignal, transition);
      } catch (err) {
        // The parent run is gone (stopped or continued as new): nobody to report to.
        log.info('probe parent gone; ending probe', { instanceId: input.instanceId, error: String(err) });
        return;
      }
    }
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
