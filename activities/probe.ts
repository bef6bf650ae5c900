/**
 * The probe activity: one MCP request through the gateway's proxy, the path
 * production traffic takes, so a probe fails exactly when a user's call would.
 * It runs on the node task queue (the gateway lives next to the containers) and
 * returns failures as data: no Temporal retry hides a failure, and the history
 * stays small.
 */
import type { ProxyExecutor } from '../src/contracts/routing';

/** What the node knows about its gateway's view of instances (all optional: a bare proxy probes as before). */
export interface ProbeNodeState {
  /** Resolves once the node has re-attached its running instances after a start. */
  reattached?: () => Promise<void>;
  /** Whether the gateway has an upstream for the instance. */
  knows?: (instanceId: string) => boolean;
  /** Makes the gateway and the instance workflow agree again; returns what it did. */
  repair?: (instanceId: string) => Promise<{ message: string }>;
}

export interface ProbeInput {
  instanceId: string;
  /** liveness: tools/list; readiness: tools/call of `tool`. */
  kind: 'liveness' | 'readiness';
  tool?: string;
  arguments?: Record<string, unknown>;
  timeoutSeconds: number;
}

export interface ProbeResult {
  ok: boolean;
  /** Why the probe failed (null on success); upstream text, redacted and truncated. */
  reason: string | null;
  /**
   * false: not a verdict on the server's health, so it must not count. The node had not
   * re-attached its instances yet, or the gateway did not know an instance its workflow
   * calls RUNNING (a control-plane inconsistency, repaired here, not the server's failure).
   */
  counts?: false;
}

export const MAX_REASON_LENGTH = 200;

export function createProbeActivities({ proxy, node = {} }: { proxy: ProxyExecutor; node?: ProbeNodeState }) {
  return {
    async probe(input: ProbeInput): Promise<ProbeResult> {
      if (input.kind === 'readiness' && !input.tool) {
        return { ok: false, reason: 'readiness probe has no tool to call' };
      }
      const notCounted = await checkNodeState(node, input);
      if (notCounted) return notCounted;
      const request =
        input.kind === 'readiness'
          ? { method: 'tools/call', params: { name: input.tool as string, arguments: input.arguments ?? {} } }
          : { method: 'tools/list' };
      const timeoutMs = Math.max(1, input.timeoutSeconds) * 1000;
      const abort = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      // Our own hard deadline: a proxy that ignores timeoutMs cannot stall the probe.
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          abort.abort();
          reject(new Error(`timeout after ${input.timeoutSeconds} s`));
        }, timeoutMs);
      });
      try {
        const result = await Promise.race([proxy.execute(input.instanceId, request, { timeoutMs, signal: abort.signal }), deadline]);
        return judgeResult(input.kind, result);
      } catch (err) {
        return { ok: false, reason: cleanReason(err instanceof Error ? err.message : String(err)) };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export type ProbeActivities = ReturnType<typeof createProbeActivities>;

/** A result that does not count when the gateway cannot yet (or no longer) know the instance; undefined to probe. */
async function checkNodeState(node: ProbeNodeState, input: ProbeInput): Promise<ProbeResult | undefined> {
  if (node.reattached) {
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      node.reattached().then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(1, input.timeoutSeconds) * 1000))),
    ]).finally(() => clearTimeout(timer));
    if (!waited) return { ok: false, reason: 'the node is still re-attaching its instances after a start', counts: false };
  }
  if (!node.knows || node.knows(input.instanceId)) return undefined;
  let repaired: string;
  try {
    repaired = node.repair ? (await node.repair(input.instanceId)).message : 'no repair available';
  } catch (err) {
    repaired = `repair failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  return { ok: false, reason: cleanReason(`the gateway did not know the instance: ${repaired}`), counts: false };
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
