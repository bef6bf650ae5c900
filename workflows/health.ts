/**
 * The probe's health state machine, Kubernetes-style: one success makes an
 * instance healthy; failures below the threshold make it degraded; reaching the
 * threshold makes it unhealthy. Pure, so the probe workflow stays deterministic,
 * the probe loop activity on the node applies the same rules, and the rules are
 * unit-tested on their own.
 */
import type { HealthStatus } from '../src/contracts/instance';
import type { ProbeWorkflowInput } from '../src/contracts/messages';
import { PROBE_DEFAULTS } from '../src/contracts/instance';

export interface HealthState {
  health: HealthStatus;
  consecutiveFailures: number;
}

export interface ProbeOutcome {
  ok: boolean;
  reason: string | null;
}

export interface HealthStep extends HealthState {
  /** Present only when health changed: the probe signals its parent exactly then. */
  transition?: { from: HealthStatus; to: HealthStatus };
}

export const INITIAL_HEALTH: HealthState = { health: 'unknown', consecutiveFailures: 0 };

export function nextHealth(prev: HealthState, outcome: ProbeOutcome, failureThreshold: number): HealthStep {
  const threshold = Math.max(1, Math.floor(failureThreshold));
  const consecutiveFailures = outcome.ok ? 0 : prev.consecutiveFailures + 1;
  const health: HealthStatus = outcome.ok ? 'healthy' : consecutiveFailures >= threshold ? 'unhealthy' : 'degraded';
  const step: HealthStep = { health, consecutiveFailures };
  if (health !== prev.health) step.transition = { from: prev.health, to: health };
  return step;
}

export interface ProbeSettings {
  intervalSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
  /** No healthCheck: the liveness probe (tools/list), whose failure restarts the instance. */
  liveness: boolean;
}

/** A readiness healthCheck's settings, else the liveness settings of the input, else PROBE_DEFAULTS. */
export function probeSettings(input: ProbeWorkflowInput): ProbeSettings {
  const check = input.healthCheck;
  return {
    intervalSeconds: check?.intervalSeconds ?? input.intervalSeconds ?? PROBE_DEFAULTS.intervalSeconds,
    timeoutSeconds: check?.timeoutSeconds ?? input.timeoutSeconds ?? PROBE_DEFAULTS.timeoutSeconds,
    failureThreshold: check?.failureThreshold ?? input.failureThreshold ?? PROBE_DEFAULTS.failureThreshold,
    liveness: !check,
  };
}

/** How long a probe loop activity runs without a transition before it returns, so a run's history grows by a few events an hour. */
export const PROBE_LOOP_SECONDS = 3_600;

/**
 * The probe loop's heartbeat timeout: eight probe intervals, at least 1 and at most 5 minutes.
 * A heartbeat is a write in Temporal (no history event): with 500 instances heartbeating
 * every 48 s the dev server spent 5 % of a core on them, so the loop heartbeats at
 * PROBE_HEARTBEAT_SHARE of this. What a heartbeat used to be needed for comes sooner another
 * way: a node worker that restarts tells its instances' probes at once (probeLoopLost), a
 * node that stays down is NotReady after its 20 s lease and its instances move, and a loop
 * whose container is stopped on the node stops probing there at once. Only a worker that dies and
 * never returns while no other node fits is noticed this late (the lost loop counts as one
 * failed probe and a new loop starts).
 */
export function probeHeartbeatTimeoutSeconds(intervalSeconds: number): number {
  return Math.min(300, Math.max(60, 8 * intervalSeconds));
}

/** The share of the heartbeat timeout between two heartbeats of a probe loop: room for a late one. */
export const PROBE_HEARTBEAT_SHARE = 0.7;
