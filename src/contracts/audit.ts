/**
 * The audit trail's contract: one record per MCP request a client sends through the
 * gateway (/mcp, /mcp/servers/<name>) and per change made through the API (PUT, POST,
 * DELETE under /api/v1), and the query of GET /api/v1/audit. Argument values and request
 * bodies are never part of a record: a tool's arguments or a secret's data may hold
 * anything.
 */
import { z } from 'zod';
import { SERVER_NAME_PATTERN } from './spec';

export const AUDIT_DECISIONS = ['allowed', 'denied'] as const;
export type AuditDecision = (typeof AUDIT_DECISIONS)[number];
export const AUDIT_OUTCOMES = ['ok', 'error', 'isError', 'cancelled'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

export interface AuditRecord {
  /** When the request arrived (ISO-8601, UTC, milliseconds). */
  time: string;
  /** 'mcp' for a gateway request, 'api' for an API change. */
  kind: 'mcp' | 'api';
  /** Who asked; null when the request carried no valid credential. */
  principal: { name: string; source: string } | null;
  /** The MCP server it concerned, when one is known. */
  server: string | null;
  /** The replica that answered, when one did. */
  instance: string | null;
  /** The JSON-RPC method (tools/call, …) or the HTTP method and path (PUT /api/v1/servers/gitea). */
  method: string;
  /** The tool name, resource URI or prompt name the request named (as the upstream knows it). */
  target: string | null;
  decision: AuditDecision;
  /** What decided: "role operator", "policy <ids>", "no policy" (default allow), "authentication", … */
  decidedBy: string;
  /** ok; error (a JSON-RPC error or an HTTP status ≥ 400, see code); isError (a tool answered with isError: true); cancelled. */
  outcome: AuditOutcome;
  /** The JSON-RPC error code or the HTTP status of a failure. */
  code?: number;
  /** The error's message, shortened (never argument values; upstream messages are redacted of injected secrets). */
  error?: string;
  latencyMs: number;
  /** Secret values the gateway replaced in the reply (see src/gateway/redaction.ts). */
  redactions: number;
}

export const auditRecordSchema = z
  .object({
    time: z.string().meta({ format: 'date-time' }),
    kind: z.enum(['mcp', 'api']),
    principal: z.object({ name: z.string(), source: z.string() }).nullable(),
    server: z.string().nullable(),
    instance: z.string().nullable(),
    method: z.string(),
    target: z.string().nullable(),
    decision: z.enum(AUDIT_DECISIONS),
    decidedBy: z.string(),
    outcome: z.enum(AUDIT_OUTCOMES),
    code: z.int().optional(),
    error: z.string().optional(),
    latencyMs: z.number(),
    redactions: z.int(),
  })
  .meta({ id: 'AuditRecord' });

export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 10_000;

const DURATION_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * A point in time given as a duration back from `now` ("90s", "10m", "12h", "7d") or
 * as an RFC 3339 time ("2026-11-27T06:00:00Z"); undefined when it is neither.
 */
export function parseSince(raw: string, now: number = Date.now()): Date | undefined {
  const duration = /^(\d+)(s|m|h|d)$/.exec(raw.trim());
  if (duration) return new Date(now - Number(duration[1]) * DURATION_SECONDS[duration[2]] * 1000);
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$/.test(raw.trim())) return undefined;
  const at = new Date(raw.trim());
  return Number.isNaN(at.getTime()) ? undefined : at;
}

const queryValue = z
  .string({ error: (issue) => (Array.isArray(issue.input) ? 'must be given once' : 'must be a string') })
  .optional()
  .transform((v) => (v === '' ? undefined : v));

/** `?principal=&server=&since=&limit=` of GET /audit. */
export const auditQuerySchema = z.object({
  principal: queryValue
    .refine((v) => v === undefined || v.length <= 256, { error: 'must be at most 256 characters' })
    .meta({ description: 'Only records of this principal (its name)' }),
  server: queryValue
    .refine((v) => v === undefined || SERVER_NAME_PATTERN.test(v), { error: 'must be a server name' })
    .meta({ description: 'Only records about this server', pattern: SERVER_NAME_PATTERN.source }),
  since: queryValue
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const at = parseSince(v);
      if (at) return at;
      ctx.addIssue({ code: 'custom', message: 'must be a duration like 90s, 10m, 12h or 7d, or an RFC 3339 time like 2026-11-27T06:00:00Z' });
      return z.NEVER;
    })
    .meta({ description: 'Only records from this time on: a duration back from now (10m, 12h, 7d) or an RFC 3339 time', override: { type: 'string' } }),
  limit: queryValue
    .transform((v, ctx) => {
      if (v === undefined) return AUDIT_DEFAULT_LIMIT;
      const n = Number(v);
      if (/^\d+$/.test(v) && n >= 1 && n <= AUDIT_MAX_LIMIT) return n;
      ctx.addIssue({ code: 'custom', message: `must be a whole number from 1 to ${AUDIT_MAX_LIMIT}` });
      return z.NEVER;
    })
    .meta({
      description: 'Most records returned, newest first',
      override: { type: 'integer', minimum: 1, maximum: AUDIT_MAX_LIMIT, default: AUDIT_DEFAULT_LIMIT },
    }),
});
export type AuditQuery = z.output<typeof auditQuerySchema>;
