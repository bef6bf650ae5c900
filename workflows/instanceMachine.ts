/**
 * The instance lifecycle as pure transitions: state + what happened -> next state
 * and what the workflow must do next. instanceWorkflow (instance.ts) is the shell
 * that runs activities, timers and the probe child in the order these decide;
 * everything here is deterministic and unit-tested on its own.
 *
 *   attempt   -> STARTING: resolve env, start container, attach -> RUNNING, or a failed attempt
 *   running   -> wait for stop / container exit / health change / forceRetry / restart / spec change
 *   waitRetry -> ERROR: a durable timer (fast, then slow) that forceRetry, restart or a new spec cut short
 *   stop      -> STOPPING -> STOPPED (the workflow ends)
 */
import { MAX_EVENTS, type HealthStatus, type InstanceView } from '../src/contracts/instance';
import type { CarriedInstanceState, ContainerExit, HealthTransition, PendingInstanceSignals } from '../src/contracts/messages';
import type { EnvEntry, RetryPolicy } from '../src/contracts/spec';
import { retryDelaySeconds } from './backoff';

export type InstanceState = CarriedInstanceState;
export type Phase = 'attempt' | 'running' | 'waitRetry' | 'stop' | 'continueAsNew';

export type Inbox = PendingInstanceSignals;

export function emptyInbox(): Inbox {
  return { stopRequested: false, restartRequested: false, pendingSpec: null, lastExit: null, healthChanges: [] };
}

/**
 * Splits what continue-as-new carried into the state and the signals the previous run
 * received but had not acted on yet (the next run acts on them instead of losing them).
 */
export function fromCarried(carried: CarriedInstanceState): { state: InstanceState; inbox: Inbox } {
  const { pending, ...state } = carried;
  const inbox = pending ? { ...pending, healthChanges: [...pending.healthChanges] } : emptyInbox();
  return { state: { ...state, events: [...state.events] }, inbox };
}

/** What continue-as-new hands to the next run: the state and the signals not yet acted on. */
export function toCarried(s: InstanceState, inbox: Inbox): CarriedInstanceState {
  return { ...s, events: [...s.events], pending: { ...inbox, healthChanges: [...inbox.healthChanges] } };
}

export const INITIAL_INSTANCE_STATE: InstanceState = {
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

/** The event line of a prepared package image: which image, which exact version, how it was had. */
export function packageImageLine(prepared: {
  image: string;
  package: string;
  version: string;
  how: 'built' | 'joined' | 'cached';
  elapsedMs: number;
  executable: string;
  lockHash: string;
}): string {
  const seconds = Math.round(prepared.elapsedMs / 1000);
  const how = prepared.how === 'built' ? `built in ${seconds} s` : prepared.how === 'joined' ? `built once for two starts, waited ${seconds} s` : 'cached';
  return `image ${prepared.image} for ${prepared.package}@${prepared.version} (${how}), runs ${prepared.executable}, lock sha256:${prepared.lockHash.slice(0, 12)}`;
}

/** Appends one event line, keeping the last MAX_EVENTS. */
export function withEvent(s: InstanceState, at: string, type: string, message: string): InstanceState {
  const events = [...s.events, { at, type, message }];
  return { ...s, events: events.length > MAX_EVENTS ? events.slice(events.length - MAX_EVENTS) : events };
}

/** Where a run carrying `s` from continue-as-new picks up. */
export function resumePhase(s: InstanceState): Phase {
  return s.status === 'RUNNING' && s.containerId ? 'running' : s.status === 'ERROR' ? 'waitRetry' : 'attempt';
}

export function resumed(s: InstanceState, at: string): InstanceState {
  return withEvent(s, at, 'ContinuedAsNew', `continued as new in status ${s.status}`);
}

/** A new attempt forgets everything about the previous container; earlier requests are served by it. */
export function beginAttempt(s: InstanceState, at: string): InstanceState {
  const next: InstanceState = {
    ...s,
    retryRequested: false,
    retryReason: null,
    attemptCount: s.attemptCount + 1,
    generation: s.generation + 1,
    lastAttemptAt: at,
    nextRetryAt: null,
    containerId: null,
    runningSince: null,
    health: 'unknown',
    healthReason: null,
    status: 'STARTING',
  };
  return withEvent(next, at, 'AttemptStarted', `attempt ${next.attemptCount} (generation ${next.generation})`);
}

export function inboxForAttempt(inbox: Inbox): Inbox {
  return { ...inbox, restartRequested: false, healthChanges: [] };
}

export function containerStarted(s: InstanceState, started: { containerId: string; reused: boolean; port?: number }, at: string): InstanceState {
  const how = started.reused ? 'found running from a retried start' : 'started';
  const port = started.port ? ` on port ${started.port}` : '';
  return withEvent({ ...s, containerId: started.containerId }, at, 'ContainerStarted', `container ${started.containerId.slice(0, 12)} ${how}${port}`);
}

/** Whether a start has an outcome a caller waiting for it can act on: anything but a start still under way. */
export function startSettled(s: InstanceState): boolean {
  if (s.status === 'STARTING') return false;
  // PENDING with an error is waiting for a node that fits; without one it has not begun.
  return s.status !== 'PENDING' || s.error !== null;
}

export function nowRunning(s: InstanceState, at: string): InstanceState {
  return withEvent({ ...s, error: null, runningSince: at, status: 'RUNNING' }, at, 'Running', `container ${s.containerId?.slice(0, 12)} is running`);
}

/** The error shows at once, while the failed container is still being stopped. */
export function failing(s: InstanceState, reason: string): InstanceState {
  return { ...s, error: reason, runningSince: null };
}

/**
 * After the failed container is stopped: ERROR, with the next attempt due after the backoff
 * delay, or at once when the failure came from outside the server (`external`: the engine
 * restarted, the container was removed while mcpd was down), which is not the server's fault.
 */
export function attemptFailed(s: InstanceState, reason: string, nowMs: number, retry: RetryPolicy, external = false): InstanceState {
  const delaySeconds = external ? 0 : retryDelaySeconds(s.attemptCount, retry);
  const next: InstanceState = { ...s, nextRetryAt: new Date(nowMs + delaySeconds * 1000).toISOString(), status: 'ERROR' };
  const then = external ? "not the server's fault: next attempt now" : `next attempt in ${delaySeconds}s`;
  return withEvent(next, new Date(nowMs).toISOString(), 'AttemptFailed', `attempt ${s.attemptCount} failed: ${reason}; ${then}`);
}

/**
 * No node to start on (none Ready fits the placement): PENDING, the reason as the error, the next
 * check as nextRetryAt. No attempt is counted. A forceRetry that led here is served by this check.
 * The event is recorded when the reason changes, not at every check.
 */
export function waitingForNode(s: InstanceState, reason: string, nextCheckAt: string, at: string): InstanceState {
  const next: InstanceState = {
    ...s,
    status: 'PENDING',
    error: reason,
    nextRetryAt: nextCheckAt,
    retryRequested: false,
    retryReason: null,
    containerId: null,
    runningSince: null,
    health: 'unknown',
    healthReason: null,
  };
  return s.status === 'PENDING' && s.error === reason ? next : withEvent(next, at, 'NoNode', reason);
}

/** A forceRetry as the handler records it: a reason given by mcpd's node is kept for the event line. */
export function withRetryRequest(s: InstanceState, reason: string | undefined): InstanceState {
  return { ...s, retryRequested: true, retryReason: reason ?? s.retryReason ?? null };
}

/** The exit of the current container; a late exit of an older one is none. */
export function currentExit(s: InstanceState, inbox: Inbox): ContainerExit | null {
  const exit = inbox.lastExit;
  return exit !== null && s.containerId !== null && exit.containerId === s.containerId ? exit : null;
}

/** Whether a RUNNING instance has something to act on. */
export function runningHasWork(s: InstanceState, inbox: Inbox, continueAsNewDue: boolean): boolean {
  return (
    inbox.stopRequested ||
    inbox.restartRequested ||
    s.retryRequested ||
    inbox.pendingSpec !== null ||
    currentExit(s, inbox) !== null ||
    inbox.healthChanges.length > 0 ||
    (inbox.nodeLost ?? null) !== null ||
    continueAsNewDue
  );
}

/**
 * How long until a RUNNING instance has run stably long enough to reset its
 * backoff (Kubernetes resets CrashLoopBackOff the same way); undefined when
 * there is nothing to reset.
 */
export function msUntilStable(s: InstanceState, stableSeconds: number, nowMs: number): number | undefined {
  if (s.attemptCount <= 0) return undefined;
  const stableAt = s.runningSince ? Date.parse(s.runningSince) + stableSeconds * 1000 : Infinity;
  return Math.max(1, stableAt - nowMs);
}

export function backoffReset(s: InstanceState, stableSeconds: number, at: string): InstanceState {
  const message = `running for ${stableSeconds}s without a failure: attempt count ${s.attemptCount} reset to 0`;
  return { ...withEvent(s, at, 'BackoffReset', message), attemptCount: 0 };
}

/**
 * The probe startContainer ran right after the handshake: a pass makes the instance healthy
 * at once (what the probe loop's first pass would have reported a few workflow tasks later);
 * a failure changes nothing, since the probe loop probes again at once and counts.
 */
export function probedAtStart(s: InstanceState, probe: { ok: boolean }, liveness: boolean, at: string): InstanceState {
  if (!probe.ok) return s;
  return withEvent({ ...s, health: 'healthy', healthReason: null }, at, 'HealthChanged', `${liveness ? 'liveness' : 'readiness'} healthy (probed at start)`);
}

/**
 * Whether the gateway's readiness of the instance changes. The gateway attaches an instance
 * ready and takes it out only while unhealthy (a node re-attaching does the same), so its
 * readiness is `health !== 'unhealthy'` and only a move into or out of unhealthy changes it.
 */
export function readinessChanges(previous: HealthStatus, ready: boolean): boolean {
  return (previous !== 'unhealthy') !== ready;
}

/** What a health transition means for a RUNNING instance: a liveness failure fails it, anything else sets readiness. */
export type HealthCommand = { kind: 'fail'; reason: string } | { kind: 'setReady'; ready: boolean };

export function healthChanged(s: InstanceState, change: HealthTransition, at: string): { state: InstanceState; command: HealthCommand } {
  const what = `${change.liveness ? 'liveness' : 'readiness'} ${change.health}${change.reason ? `: ${change.reason}` : ''}`;
  const state = withEvent({ ...s, health: change.health, healthReason: change.reason }, at, 'HealthChanged', what);
  if (change.liveness && change.health === 'unhealthy')
    return { state, command: { kind: 'fail', reason: `liveness probe failed: ${change.reason ?? 'unknown reason'}` } };
  return { state, command: { kind: 'setReady', ready: change.health !== 'unhealthy' } };
}

/**
 * forceRetry while RUNNING: an operator who fixed a secret retries an unhealthy
 * instance, which takes a fresh container with freshly resolved env; a healthy
 * one is left alone.
 */
export function forceRetryWhileRunning(s: InstanceState, at: string): { state: InstanceState; restart: boolean } {
  const state = { ...s, retryRequested: false, retryReason: null };
  if (s.health === 'healthy')
    return { state: withEvent(state, at, 'ForceRetry', 'forceRetry ignored: the instance is running and healthy (use restart to replace it)'), restart: false };
  return { state, restart: true };
}

/** Why the running container must be replaced, if it must; a spec change wins over restart over forceRetry. */
export function replacementReason(s: InstanceState, inbox: Inbox, retryRestart: boolean): string | null {
  if (inbox.pendingSpec !== null) return 'spec changed';
  if (inbox.restartRequested) return 'restart requested';
  if (retryRestart) return `forceRetry of a ${s.health} instance`;
  return null;
}

/** Records the replacement; a new spec deserves a fresh schedule, so its first failure waits the fast delay. */
export function replacing(s: InstanceState, why: string, newSpec: boolean, at: string): InstanceState {
  const state = newSpec ? { ...s, attemptCount: 0 } : s;
  return withEvent(state, at, why === 'spec changed' ? 'SpecChanged' : 'Restart', `${why}: replacing container ${s.containerId?.slice(0, 12)}`);
}

/** The container is gone (stopped and removed). */
export function containerRemoved(s: InstanceState): InstanceState {
  return { ...s, containerId: null, runningSince: null };
}

/** Whether an ERROR instance's wait ends early. */
export function retryWaitEnds(s: InstanceState, inbox: Inbox, continueAsNewDue: boolean): boolean {
  return s.retryRequested || inbox.stopRequested || inbox.restartRequested || inbox.pendingSpec !== null || continueAsNewDue;
}

/**
 * The end of an ERROR instance's wait: `woke` is false when the timer ran out
 * (or there was no wait). Returns the next phase, the event to record, and
 * whether the pending spec is adopted.
 */
export function afterRetryWait(s: InstanceState, inbox: Inbox, woke: boolean, at: string): { state: InstanceState; next: Phase; adoptSpec: boolean } {
  if (woke && inbox.stopRequested) return { state: s, next: 'stop', adoptSpec: false };
  let state = s;
  if (woke && s.retryRequested) state = withEvent(state, at, 'ForceRetry', `${s.retryReason ?? 'forceRetry received'}: retrying now`);
  else if (woke && inbox.restartRequested) state = withEvent(state, at, 'Restart', 'restart requested: retrying now');
  // Woken by none of the above and no new spec: the history is long.
  else if (woke && inbox.pendingSpec === null) return { state, next: 'continueAsNew', adoptSpec: false };
  if (inbox.stopRequested) return { state, next: 'stop', adoptSpec: false };
  if (inbox.pendingSpec !== null) {
    return { state: withEvent({ ...state, attemptCount: 0 }, at, 'SpecChanged', 'spec changed: starting a fresh attempt'), next: 'attempt', adoptSpec: true };
  }
  return { state, next: 'attempt', adoptSpec: false };
}

export function stopping(s: InstanceState, at: string): InstanceState {
  return withEvent({ ...s, status: 'STOPPING' }, at, 'Stopping', 'stop requested');
}

export function stopped(s: InstanceState, at: string): InstanceState {
  return withEvent({ ...s, nextRetryAt: null, health: 'unknown', healthReason: null, status: 'STOPPED' }, at, 'Stopped', 'container stopped and removed');
}

/** The operator's view. Health is a verdict on a running container, so it reads unknown in any other status. */
export function instanceView(id: string, server: string, ordinal: number, s: InstanceState, node?: string): InstanceView {
  const running = s.status === 'RUNNING';
  return {
    id,
    server,
    ordinal,
    ...(node !== undefined ? { node } : {}),
    status: s.status,
    health: running ? s.health : 'unknown',
    containerId: s.containerId,
    attemptCount: s.attemptCount,
    lastAttemptAt: s.lastAttemptAt,
    nextRetryAt: s.nextRetryAt,
    error: s.error,
    healthReason: running ? s.healthReason : null,
    runningSince: s.runningSince,
    events: [...s.events],
  };
}

/** The one line the Web UI shows as the workflow's current details. */
export function detailsLine(server: string, ordinal: number, s: InstanceState): string {
  const parts = [`${s.status}`, `health ${s.health}`, `attempt ${s.attemptCount}`];
  if (s.containerId) parts.push(`container ${s.containerId.slice(0, 12)}`);
  if (s.status === 'ERROR' && s.nextRetryAt) parts.push(`next retry ${s.nextRetryAt}`);
  if (s.error) parts.push(s.error);
  return `${server}#${ordinal}: ${parts.join(' · ')}`;
}

/**
 * What the McpHealth search attribute carries. Like the view, health is a verdict on a
 * running container, so it reads unknown whenever the instance is not RUNNING: a filter
 * on McpHealth=healthy must not find an instance in ERROR. `legacy` is what workflows
 * started before this rule published (the last verdict in every status), kept for replay.
 */
export function searchHealth(s: InstanceState, legacy = false): InstanceState['health'] {
  return legacy || s.status === 'RUNNING' ? s.health : 'unknown';
}

/** Search attributes are upserted only when what they carry (status, health) changed. */
export function searchAttributesKey(s: InstanceState, legacy = false): string {
  return `${s.status}|${searchHealth(s, legacy)}`;
}

/** A plain env entry (a value, no secretRef) as the container gets it. */
export function plainEnvEntry(entry: EnvEntry): { name: string; value: string } {
  return { name: entry.name, value: entry.value ?? '' };
}

/** The env of a spec that refers to no secret, as resolveEnv would return it; null when some entry has a secretRef to pin. */
export function envWithoutSecrets(env: EnvEntry[]): { name: string; value: string }[] | null {
  return env.every((entry) => entry.secretRef === undefined) ? env.map(plainEnvEntry) : null;
}
