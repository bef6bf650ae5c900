/**
 * The probe activity: one MCP request through the gateway's proxy, the path
 * production traffic takes, so a probe fails exactly when a user's call would.
 * It runs on the node task queue (the gateway lives next to the containers) and
 * returns failures as data: no Temporal retry hides a failure, and the history
 * stays small.
 */
import type { ProxyExecutor } from '../src/contracts/routing';

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
}

export const MAX_REASON_LENGTH = 200;

export function createProbeActivities({ proxy }: { proxy: ProxyExecutor }) {
  return {
    async probe(input: ProbeInput): Promise<ProbeResult> {
      if (input.kind === 'readiness' && !input.tool) {
        return { ok: false, reason: 'readiness probe has no tool to call' };
      }
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
