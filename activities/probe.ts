/**
 * The probe activities: MCP requests through the gateway's proxy, the path
 * production traffic takes, so a probe fails exactly when a user's call would.
 * They run on the node task queue (the gateway lives next to the containers) and
 * return failures as data: no Temporal retry hides a failure.
 *
 * probeLoop is the probe of a running instance: it probes every intervalSeconds,
 * applies the health rules of workflows/health.ts itself, heartbeats, and returns
 * only when health changes or after maxSeconds, so a healthy instance costs its
 * probe workflow a few history events an hour whatever the interval. probe (one
 * request per activity) stays for probe workflow runs that began before probeLoop.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { CancelledFailure, Context } from '@temporalio/activity';
import { parseInstanceId } from '../src/contracts/instance';
import type { ProxyExecutor } from '../src/contracts/routing';
import type { RepairOutcome } from '../src/docker/reattach';
import { secondsSince, type McpdMetrics } from '../src/metrics/registry';
import { PROBE_HEARTBEAT_SHARE, nextHealth, type HealthState } from '../workflows/health';
import type { ProbeInput, ProbeResult } from './types';

export type { ProbeInput, ProbeResult } from './types';

/** What the node knows about its gateway's view of instances (all optional: a bare proxy probes as before). */
export interface ProbeNodeState {
  /** Resolves once the node has re-attached its running instances after a start. */
  reattached?: () => Promise<void>;
  /** Whether the gateway has an upstream for the instance. */
  knows?: (instanceId: string) => boolean;
  /** Makes the gateway and the instance workflow agree again, giving the server's handshake that long; returns what it did (src/docker/reattach.ts). */
  repair?: (instanceId: string, handshakeTimeoutMs: number) => Promise<RepairOutcome>;
}

/** How much longer than the probe's timeout a repair may take on mcpd's side before the probe gives up on it. */
const REPAIR_SLACK_SECONDS = 10;

/** Time as the probe activities see it: tests pass a faster clock to run hours of probes in seconds. */
export interface ProbeClock {
  now(): number;
  /** Resolves after ms; rejects once `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const realClock: ProbeClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, { signal }),
};

export interface ProbeLoopInput extends ProbeInput {
  intervalSeconds: number;
  failureThreshold: number;
  /** Health as the workflow knows it; the loop reports only changes from it. */
  state: HealthState;
  /** Wait one interval before the first probe (the loop before this one ended with a probe). */
  waitFirst: boolean;
  /** Return after this long without a health change. */
  maxSeconds: number;
}

export interface ProbeLoopResult {
  state: HealthState;
  /** True when the last probe changed health: the workflow signals the instance. */
  changed: boolean;
  /** The last counted probe's reason (null on success). */
  reason: string | null;
  probes: number;
}

/** What each heartbeat carries: a loop lost with its worker still counts from where it was. */
export interface ProbeLoopHeartbeat {
  state: HealthState;
}

export const MAX_REASON_LENGTH = 200;

/** Why the node ended a loop because the instance's container is being stopped here (stopContainer). */
class StoppedOnNode extends Error {}

/**
 * The probe loops running on this node, by instance. A loop hears of its cancellation only
 * with a heartbeat's reply, minutes apart, so the node ends its probing itself: when the
 * instance's container is stopped here (stopContainer), or when a newer loop of the same
 * instance begins (a new probe child, or one that continued as new).
 */
export class ProbeLoops {
  private readonly running = new Map<string, AbortController>();

  /** A loop of `instanceId` begins; any older one of it ends. */
  begin(instanceId: string): AbortController {
    this.running.get(instanceId)?.abort(new Error('a newer probe loop of this instance began'));
    const loop = new AbortController();
    this.running.set(instanceId, loop);
    return loop;
  }

  end(instanceId: string, loop: AbortController): void {
    if (this.running.get(instanceId) === loop) this.running.delete(instanceId);
  }

  /** Ends the probing of the instance's loop, if one runs here (see probeLoop for when its activity ends). */
  stop(instanceId: string, reason: string): void {
    this.running.get(instanceId)?.abort(new StoppedOnNode(reason));
    this.running.delete(instanceId);
  }
}

export function createProbeActivities({
  proxy,
  node = {},
  clock = realClock,
  loops = new ProbeLoops(),
  metrics,
}: {
  proxy: ProxyExecutor;
  /** Counts probe results and their latency (none: nothing is recorded). */
  metrics?: McpdMetrics;
  node?: ProbeNodeState;
  clock?: ProbeClock;
  /** Shared with the node activities, whose stopContainer ends the instance's loop. */
  loops?: ProbeLoops;
}) {
  const probeOnce = (input: ProbeInput, cancel: AbortSignal) => measuredProbe(metrics, input, () => runProbe(proxy, node, clock, input, cancel));
  return {
    /** One probe (probe workflow runs that began before probeLoop). */
    async probe(input: ProbeInput): Promise<ProbeResult> {
      return probeOnce(input, new AbortController().signal);
    },

    async probeLoop(input: ProbeLoopInput): Promise<ProbeLoopResult> {
      const context = Context.current();
      const local = loops.begin(input.instanceId);
      const cancel = AbortSignal.any([context.cancellationSignal, local.signal]);
      let state: HealthState = { health: input.state.health, consecutiveFailures: input.state.consecutiveFailures };
      const heartbeat = () => context.heartbeat({ state } satisfies ProbeLoopHeartbeat);
      // Heartbeats in real time whatever the clock, also while a probe or a repair runs, as
      // seldom as the timeout allows: each is a write in Temporal (workflows/health.ts). None
      // at the start: the loop's state is its input's until a probe changes it.
      const tickMs = Math.max(1_000, (context.info.heartbeatTimeoutMs ?? 60_000) * PROBE_HEARTBEAT_SHARE);
      const ticker = setInterval(heartbeat, tickMs);
      const startedAt = clock.now();
      let probes = 0;
      try {
        if (input.waitFirst) await clock.sleep(input.intervalSeconds * 1000, cancel);
        for (;;) {
          const outcome = await probeOnce(input, cancel);
          probes++;
          if (outcome.counts === false) {
            context.log.info('probe result not counted', { instanceId: input.instanceId, reason: outcome.reason });
          } else {
            const step = nextHealth(state, outcome, input.failureThreshold);
            state = { health: step.health, consecutiveFailures: step.consecutiveFailures };
            heartbeat();
            if (step.transition) return { state, changed: true, reason: outcome.reason, probes };
          }
          if (clock.now() - startedAt >= input.maxSeconds * 1000) return { state, changed: false, reason: null, probes };
          await clock.sleep(input.intervalSeconds * 1000, cancel);
        }
      } catch (err) {
        // Cancelled (the instance stopped or restarted, or the probe workflow ended): report it as such.
        if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
        // Ended on the node: its workflow has moved on (a cancellation on its way) or is gone.
        if (local.signal.aborted) {
          const reason = local.signal.reason as Error;
          // The container is being stopped because the instance stops or replaces it, and its probe workflow is
          // cancelled first or closed with the instance: it waits for no verdict. An answer now would be one more
          // workflow task of the probe and a health signal to its instance per stop (a fleet's delete felt both),
          // so the loop stays, probing nothing, until the next heartbeat's reply brings that end.
          if (reason instanceof StoppedOnNode) {
            // Real time, like the heartbeats that bring the cancellation; bounded in case none comes.
            await realClock.sleep(2 * (context.info.heartbeatTimeoutMs ?? 60_000), context.cancellationSignal).catch(() => undefined);
          }
          if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
          throw new CancelledFailure(reason.message);
        }
        throw err;
      } finally {
        clearInterval(ticker);
        loops.end(input.instanceId, local);
      }
    },
  };
}

export type ProbeActivities = ReturnType<typeof createProbeActivities>;

/** One probe of an instance the caller has just attached (no node state to wait for), as the probe loop sends it. */
export function probeAttached(proxy: ProxyExecutor, input: ProbeInput, metrics?: McpdMetrics): Promise<ProbeResult> {
  return measuredProbe(metrics, input, () => runProbe(proxy, {}, realClock, input, new AbortController().signal));
}

/** A probe, counted by result; a cancelled one (it rejects) is not a result. */
async function measuredProbe(metrics: McpdMetrics | undefined, input: ProbeInput, probe: () => Promise<ProbeResult>): Promise<ProbeResult> {
  if (!metrics) return probe();
  const startedAt = performance.now();
  const result = await probe();
  const server = parseInstanceId(input.instanceId)?.server ?? 'unknown';
  metrics.probed(server, input.kind, result.counts === false ? 'not_counted' : result.ok ? 'pass' : 'fail', secondsSince(startedAt));
  return result;
}

/** One MCP request through the proxy, bounded by timeoutSeconds; rejects only when `cancel` aborts. */
async function runProbe(proxy: ProxyExecutor, node: ProbeNodeState, clock: ProbeClock, input: ProbeInput, cancel: AbortSignal): Promise<ProbeResult> {
  if (input.kind === 'readiness' && !input.tool) {
    return { ok: false, reason: 'readiness probe has no tool to call' };
  }
  const notCounted = await checkNodeState(node, clock, input, cancel);
  if (notCounted) return notCounted;
  const request =
    input.kind === 'readiness' ? { method: 'tools/call', params: { name: input.tool as string, arguments: input.arguments ?? {} } } : { method: 'tools/list' };
  const timeoutMs = Math.max(1, input.timeoutSeconds) * 1000;
  // Tells the proxy to stop once the probe no longer waits; a proxy that ignores it cannot stall the probe.
  const call = new AbortController();
  try {
    const result = await raceProbeClock(clock, timeoutMs, cancel, proxy.execute(input.instanceId, request, { timeoutMs, signal: call.signal }), () => {
      throw new Error(`timeout after ${input.timeoutSeconds} s`);
    });
    return judgeResult(input.kind, result);
  } catch (err) {
    if (cancel.aborted) throw cancel.reason;
    return { ok: false, reason: cleanReason(err instanceof Error ? err.message : String(err)) };
  } finally {
    call.abort(new Error('the probe no longer waits'));
  }
}

/** A result that does not count when the gateway cannot yet (or no longer) know the instance; undefined to probe. */
async function checkNodeState(node: ProbeNodeState, clock: ProbeClock, input: ProbeInput, cancel: AbortSignal): Promise<ProbeResult | undefined> {
  if (node.reattached) {
    const reattached = node.reattached().then(() => true);
    if (!(await raceProbeClock(clock, Math.max(1, input.timeoutSeconds) * 1000, cancel, reattached, () => false))) {
      return { ok: false, reason: 'the node is still re-attaching its instances after a start', counts: false };
    }
  }
  if (!node.knows || node.knows(input.instanceId)) return undefined;
  let repaired: string;
  try {
    const outcome = await boundedRepair(node, clock, input, cancel);
    // Attached again: the probe now judges the server. Not counting it would let an upstream
    // whose connection breaks between every two probes stay healthy forever.
    if (outcome.kind === 'reattached') return undefined;
    // Its container runs and the server does not finish the handshake in time: the server's failure, as a probe's timeout is.
    if (outcome.kind === 'attachFailed') return { ok: false, reason: cleanReason(`the gateway lost the instance and ${outcome.message}`) };
    repaired = outcome.message;
  } catch (err) {
    if (cancel.aborted) throw cancel.reason;
    repaired = `repair failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  return { ok: false, reason: cleanReason(`the gateway did not know the instance: ${repaired}`), counts: false };
}

/**
 * The node's repair: the server's handshake gets as long as a probe. The rest of it
 * (asking the instance workflow, inspecting the container) is mcpd's side: when that
 * does not finish within REPAIR_SLACK_SECONDS more, the probe gives up without a verdict.
 */
async function boundedRepair(node: ProbeNodeState, clock: ProbeClock, input: ProbeInput, cancel: AbortSignal): Promise<RepairOutcome> {
  if (!node.repair) return { kind: 'nothing', message: 'no repair available' };
  const timeoutSeconds = Math.max(1, input.timeoutSeconds);
  const repairing = node.repair(input.instanceId, timeoutSeconds * 1000);
  // It may go on after the probe gives up; its failure then has no one to tell.
  repairing.catch(() => undefined);
  const giveUpSeconds = timeoutSeconds + REPAIR_SLACK_SECONDS;
  return raceProbeClock(clock, giveUpSeconds * 1000, cancel, repairing, (): RepairOutcome => ({
    kind: 'nothing',
    message: `the repair did not finish within ${giveUpSeconds} s`,
  }));
}

/**
 * `work`'s outcome, or `onTimeout()`'s once `ms` pass first on the probe's clock.
 * Rejects with the reason of `cancel` as soon as it aborts, whatever `work` does.
 */
function raceProbeClock<T>(clock: ProbeClock, ms: number, cancel: AbortSignal, work: Promise<T>, onTimeout: () => T): Promise<T> {
  const timer = new AbortController();
  const onCancel = () => timer.abort();
  cancel.addEventListener('abort', onCancel, { once: true });
  if (cancel.aborted) timer.abort();
  const timedOut = clock.sleep(ms, timer.signal).then(onTimeout, (): never => {
    throw cancel.reason instanceof Error ? cancel.reason : new Error('probe cancelled');
  });
  return Promise.race([work, timedOut]).finally(() => {
    timer.abort();
    cancel.removeEventListener('abort', onCancel);
  });
}

function judgeResult(kind: ProbeInput['kind'], result: Record<string, unknown>): ProbeResult {
  if (kind === 'liveness') {
    return Array.isArray(result?.tools) ? { ok: true, reason: null } : { ok: false, reason: 'tools/list returned no tools array' };
  }
  if (result?.isError === true) {
    return { ok: false, reason: cleanReason(contentText(result.content) || 'tool call returned isError without a message') };
  }
  return { ok: true, reason: null };
}

function contentText(content: unknown): string {
  if (!Array.isArray(content)) return '';
  return (content as { type?: unknown; text?: unknown }[])
    .filter((c): c is { type: 'text'; text: string } => !!c && c.type === 'text' && typeof c.text === 'string')
    .map((c) => c.text)
    .join(' ')
    .trim();
}

/**
 * Reasons come from the upstream and end up in Temporal history, search
 * attributes' neighbours and the API. We never know the secret values here, so
 * as a safety net we blank long opaque tokens (what keys and tokens look like)
 * and keep the reason short.
 */
export function cleanReason(text: string): string {
  const redacted = text
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[A-Za-z0-9_+=-]{20,}/g, (token) => (/[0-9]/.test(token) && /[A-Za-z]/.test(token) ? '[redacted]' : token));
  return redacted.length > MAX_REASON_LENGTH ? `${redacted.slice(0, MAX_REASON_LENGTH - 3)}...` : redacted || 'probe failed';
}
