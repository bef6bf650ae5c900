/**
 * The server's reconciliation as pure decisions: which instance ordinals to stop
 * and start, which to roll onto a new spec next, when a rollout halts, and the
 * view the API shows. serverWorkflow (server.ts) is the shell that runs the
 * children, signals, polls and timers these decide; everything here is
 * deterministic and unit-tested on its own.
 */
import type { InstanceView } from '../src/contracts/instance';
import type { CarriedServerState, ServerInstanceRecord, ServerView, ServerWorkflowInput } from '../src/contracts/messages';
import type { McpServerSpec } from '../src/contracts/spec';

/** How long a rolled instance may take to run healthy on the new spec before the rollout halts. */
export const READY_TIMEOUT_SECONDS = 600;
export const POLL_MIN_SECONDS = 1;
export const POLL_MAX_SECONDS = 10;

export interface ServerState {
  name: string;
  spec: McpServerSpec;
  /** Whether the instances should run (start) or not (stop). */
  running: boolean;
  deleting: boolean;
  /** Bumped by every spec change other than replicas. */
  specVersion: number;
  /** A rollout that timed out stays halted for this spec version until a new spec arrives. */
  haltedVersion: number | null;
  rolloutError: string | null;
  /** The instances this server started or adopted, by ordinal. */
  instances: Map<number, ServerInstanceRecord>;
  /** Bumped by every accepted change of the desired state; the reconciler has converged up to `converged`. */
  requested: number;
  converged: number;
  /** `start` also re-starts instance workflows that ended behind the server's back. */
  repairRequested: boolean;
}

export function initialServerState(input: ServerWorkflowInput): ServerState {
  return {
    name: input.spec.name,
    spec: input.spec,
    running: input.running,
    deleting: false,
    specVersion: input.carried?.specVersion ?? 1,
    haltedVersion: input.carried?.haltedVersion ?? null,
    rolloutError: input.carried?.rolloutError ?? null,
    instances: new Map((input.carried?.instances ?? []).map((r) => [r.ordinal, { ...r }])),
    // A fresh server has its first reconciliation pending; a continued one has converged already.
    requested: input.carried ? 0 : 1,
    converged: 0,
    repairRequested: false,
  };
}

export function carriedState(s: ServerState): CarriedServerState {
  return { specVersion: s.specVersion, instances: [...s.instances.values()], haltedVersion: s.haltedVersion, rolloutError: s.rolloutError };
}

/** A change of the desired state that an update asks for. */
export type DesiredChange =
  { kind: 'apply'; spec: McpServerSpec } | { kind: 'start' } | { kind: 'stop' } | { kind: 'scale'; replicas: number } | { kind: 'delete' };

/** The desired state after `change` (the reconciler then converges on it); the instances are untouched. */
export function withDesiredChange(s: ServerState, change: DesiredChange): ServerState {
  switch (change.kind) {
    case 'apply':
      // Replicas alone never restart instances: only a change of anything else starts a new rollout.
      if (sameSpecIgnoringReplicas(s.spec, change.spec)) return { ...s, spec: change.spec };
      return { ...s, spec: change.spec, specVersion: s.specVersion + 1, haltedVersion: null, rolloutError: null };
    case 'start':
      return { ...s, running: true, repairRequested: true };
    case 'stop':
      return { ...s, running: false };
    case 'scale':
      return { ...s, spec: { ...s.spec, replicas: change.replicas } };
    case 'delete':
      return { ...s, deleting: true };
  }
}

export function wantedOrdinals(s: ServerState): number[] {
  return s.running && !s.deleting ? range(s.spec.replicas) : [];
}

export function hasPendingChange(s: ServerState): boolean {
  return s.requested > s.converged;
}

/** The instances running or about to run (the reconciler may not have started them yet). */
export function currentOrdinals(s: ServerState): number[] {
  return [...new Set([...s.instances.keys(), ...wantedOrdinals(s)])].sort((a, b) => a - b);
}

/** Instances that are not wanted, highest ordinal first (scale down from the top; delete and stop take all). */
export function ordinalsToStop(s: ServerState, wanted: number[]): number[] {
  return [...s.instances.keys()].filter((o) => !wanted.includes(o)).sort((a, b) => b - a);
}

/** Wanted instances not yet started; with `repair`, all of them (a start re-starts workflows that ended). */
export function ordinalsToStart(s: ServerState, wanted: number[], repair: boolean): number[] {
  return wanted.filter((o) => repair || !s.instances.has(o));
}

/** What a freshly started (or adopted) instance is on. */
export function startedRecord(ordinal: number, specVersion: number): ServerInstanceRecord {
  return { ordinal, signalledVersion: specVersion, readyVersion: specVersion, containerBefore: null };
}

/** Whether some wanted instance still runs an older spec and the rollout is not halted. */
export function rolloutPending(s: ServerState): boolean {
  return s.haltedVersion !== s.specVersion && wantedOrdinals(s).some((o) => (s.instances.get(o)?.readyVersion ?? s.specVersion) < s.specVersion);
}

/** The record of `ordinal` when it has to roll onto the current spec. */
export function needsRoll(s: ServerState, ordinal: number): ServerInstanceRecord | null {
  const record = s.instances.get(ordinal);
  return record && record.readyVersion < s.specVersion ? record : null;
}

/** A roll waits no longer when the rollout halted for this spec or a newer change waits. */
export function rollStopsHere(s: ServerState): boolean {
  return s.haltedVersion === s.specVersion || hasPendingChange(s);
}

/** The container an instance runs before it is told about a new spec, so the new one can be recognised. */
export function containerBefore(view: InstanceView | null | undefined): string | null {
  return view && view.status === 'RUNNING' ? view.containerId : null;
}

/** A rolled instance is done when it runs healthy in a container other than the one before. */
export function rolledOnto(view: InstanceView | null | undefined, before: string | null): boolean {
  return !!view && view.status === 'RUNNING' && view.health === 'healthy' && !!view.containerId && view.containerId !== before;
}

export function rolloutHaltedError(instanceId: string, specVersion: number, readyTimeoutSeconds = READY_TIMEOUT_SECONDS): string {
  return `${instanceId} was not running healthy on spec version ${specVersion} within ${readyTimeoutSeconds} s; rollout halted (apply a fixed spec to resume)`;
}

/** Polls back off from POLL_MIN_SECONDS, doubling up to POLL_MAX_SECONDS. */
export function nextPollDelaySeconds(delaySeconds: number): number {
  return Math.min(delaySeconds * 2, POLL_MAX_SECONDS);
}

/** What the reconciler does next: converge on a change, roll an instance, hand over to a new run, or wait. */
export function nextReconcileStep(s: ServerState, continueAsNewDue: boolean): 'scale' | 'roll' | 'continueAsNew' | 'wait' {
  if (hasPendingChange(s)) return 'scale';
  if (rolloutPending(s)) return 'roll';
  return continueAsNewDue ? 'continueAsNew' : 'wait';
}

export function serverView(s: ServerState, idOf: (ordinal: number) => string): ServerView {
  const wanted = wantedOrdinals(s);
  const updated = wanted.filter((o) => (s.instances.get(o)?.readyVersion ?? 0) >= s.specVersion).length;
  const outdated = updated < wanted.length;
  const haltedNow = s.haltedVersion === s.specVersion;
  return {
    name: s.name,
    spec: s.spec,
    running: s.running,
    instances: wanted.map(idOf),
    specVersion: s.specVersion,
    rollout:
      outdated || (s.rolloutError && haltedNow)
        ? { inProgress: outdated && !haltedNow, updated, total: wanted.length, error: haltedNow ? s.rolloutError : null }
        : null,
  };
}

/** Replicas alone never restart instances: only a change of anything else rolls them. */
export function sameSpecIgnoringReplicas(a: McpServerSpec, b: McpServerSpec): boolean {
  return canonicalJson({ ...a, replicas: 0 }) === canonicalJson({ ...b, replicas: 0 });
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
