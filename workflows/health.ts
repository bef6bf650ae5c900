/**
 * The probe's health state machine, Kubernetes-style: one success makes an
 * instance healthy; failures below the threshold make it degraded; reaching the
 * threshold makes it unhealthy. Pure, so the probe workflow stays deterministic,
 * the probe loop activity on the node applies the same rules, and the rules are
 * unit-tested on their own.
 */
import type { HealthStatus } from '../src/contracts/instance';
import type { ProbeWorkflowInput } from '../src/contracts/messages';
import { PROBE_DEFAULTS } from '../src/contracts/spec';

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
 * The probe loop's heartbeat timeout: two probe intervals, at least 10 s and at most 2 minutes.
 * A node worker that dies is noticed after that long (the lost loop counts as one failed
 * probe and a new loop starts). Temporal's SDK sends heartbeats at most every 0.8 of this
 * (and at least every 60 s), and cancellation reaches the activity with a heartbeat's reply,
 * so this also bounds how long a cancelled loop keeps probing. Longer would be cheaper for
 * Temporal (a heartbeat is a write but no history event) and slower to notice both.
 */
export function probeHeartbeatTimeoutSeconds(intervalSeconds: number): number {
  return Math.min(120, Math.max(10, 2 * intervalSeconds));
}
