/**
 * The probe's health state machine, Kubernetes-style: one success makes an
 * instance healthy; failures below the threshold make it degraded; reaching the
 * threshold makes it unhealthy. Pure, so the probe workflow stays deterministic
 * and the rules are unit-tested on their own.
 */
import type { HealthStatus } from '../src/contracts/instance';

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
