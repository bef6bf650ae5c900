/**
 * Pure shaping of audit records: what a request names (tool, resource URI, prompt),
 * how its reply ended, which server an API path is about. No I/O, so it is unit tested
 * and cheap on the gateway's hot path.
 */
import type { AuditOutcome } from '../contracts/audit';

/** Longest error message kept in a record: enough to tell what failed, not a dump of an upstream's output. */
export const MAX_ERROR_CHARS = 300;

type Params = Record<string, unknown> | undefined;

function stringOr(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** The tool name, resource URI or prompt name a client request names; null for methods that name none. Never an argument value. */
export function mcpTarget(method: string, params: Params): string | null {
  switch (method) {
    case 'tools/call':
    case 'prompts/get':
      return stringOr(params?.name);
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return stringOr(params?.uri);
    case 'completion/complete': {
      const ref = params?.ref as { name?: unknown; uri?: unknown } | undefined;
      return stringOr(ref?.name) ?? stringOr(ref?.uri);
    }
    default:
      return null;
  }
}

export interface ReplyOutcome {
  outcome: AuditOutcome;
  code?: number;
  error?: string;
}

export function shortError(message: string): string {
  const oneLine = message.replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_ERROR_CHARS ? `${oneLine.slice(0, MAX_ERROR_CHARS - 1)}…` : oneLine;
}

/** How a JSON-RPC reply ended: a JSON-RPC error (with its code), a tool result with isError, or ok. */
export function replyOutcome(reply: { result?: unknown; error?: unknown }): ReplyOutcome {
  if (reply.error !== undefined) {
    const error = reply.error as { code?: unknown; message?: unknown };
    return {
      outcome: 'error',
      ...(typeof error.code === 'number' ? { code: error.code } : {}),
      ...(typeof error.message === 'string' ? { error: shortError(error.message) } : {}),
    };
  }
  const result = reply.result as { isError?: unknown } | undefined;
  return { outcome: result?.isError === true ? 'isError' : 'ok' };
}

/** The server an API path below /api/v1 is about (/servers/<name>…), or null. */
export function apiServerOf(path: string): string | null {
  const m = /^\/servers\/([^/]+)/.exec(path);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

/** The server of an instance id (mcp-instance:<server>:<ordinal>), or null. */
export function serverOfInstance(instanceId: string): string | null {
  const m = /^mcp-instance:([a-z0-9-]+):\d+$/.exec(instanceId);
  return m ? m[1] : null;
}

/** Milliseconds with a tenth of a millisecond kept (latencies of a fast proxy hop are below 1 ms). */
export function roundedMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}
