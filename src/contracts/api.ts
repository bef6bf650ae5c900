/**
 * The REST API's contract: what every request may carry (path parameters, query
 * strings, bodies) and what every response holds, as zod schemas. The API
 * validates requests with these schemas and generates its OpenAPI document from
 * them (src/api/openapi.ts), so the document and the checks cannot drift.
 * Clients that only need the types import them with `import type` and load no zod.
 */
import { z } from 'zod';
import { AWAIT_STARTED_MAX_SECONDS, DEFAULT_START_WAIT_SECONDS, type HealthStatus, type InstanceStatus, type InstanceView } from './instance';
import type { ServerView } from './messages';
import { NODE_NAME_PATTERN, type NodeView } from './node';
import { labelKeySchema, labelValueSchema, nodeNameSchema } from './nodeSchemas';
import { mcpServerSpecSchema, replicasSchema, secretNameSchema, serverNameSchema, SERVER_NAME_PATTERN } from './spec';

/** True only when A and B are the same type; used below so a schema cannot drift from the interface it describes. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
function sameShape<_T extends true>(): void {}

// ---- vocabularies ----------------------------------------------------------------

export const INSTANCE_STATUSES = ['PENDING', 'STARTING', 'RUNNING', 'ERROR', 'STOPPING', 'STOPPED'] as const satisfies readonly InstanceStatus[];
export const HEALTH_STATUSES = ['unknown', 'healthy', 'degraded', 'unhealthy'] as const satisfies readonly HealthStatus[];
sameShape<Same<(typeof INSTANCE_STATUSES)[number], InstanceStatus>>();
sameShape<Same<(typeof HEALTH_STATUSES)[number], HealthStatus>>();

// ---- path parameters ------------------------------------------------------------------

const INSTANCE_ID_PATTERN = /^mcp-instance:([a-z0-9-]+):(\d+)$/;
const SHORT_INSTANCE_ID_PATTERN = /^([a-z0-9-]+):(\d+)$/;

/**
 * An instance id in a URL: the full id (`mcp-instance:gitea:0`) or the short
 * form people type (`gitea:0`); parsed to the full id.
 */
export const instanceIdSchema = z
  .string()
  .transform((raw, ctx) => {
    if (INSTANCE_ID_PATTERN.test(raw)) return raw;
    const short = SHORT_INSTANCE_ID_PATTERN.exec(raw);
    if (short) return `mcp-instance:${short[1]}:${Number(short[2])}`;
    ctx.addIssue({ code: 'custom', message: 'must be an instance id: mcp-instance:<server>:<ordinal> or <server>:<ordinal>' });
    return z.NEVER;
  })
  .meta({ description: 'Instance id, `mcp-instance:<server>:<ordinal>` (URL-encoded) or the short form `<server>:<ordinal>`.' });

export const serverPathSchema = z.object({ name: serverNameSchema });
export const secretPathSchema = z.object({ name: secretNameSchema });
export const instancePathSchema = z.object({ id: instanceIdSchema });
export const nodePathSchema = z.object({ name: nodeNameSchema });

// ---- query strings -------------------------------------------------------------

/**
 * One query-string value. express hands a repeated parameter over as an array,
 * which is refused; an empty value counts as absent.
 */
const queryValue = z
  .string({ error: (issue) => (Array.isArray(issue.input) ? 'must be given once' : 'must be a string') })
  .optional()
  .transform((v) => (v === '' ? undefined : v));

/** A query flag: present as "true", "1" or empty (`?follow`) means on. */
function queryFlag(description: string) {
  return z
    .string({ error: 'must be given once' })
    .optional()
    .transform((v) => v === 'true' || v === '1' || v === '')
    .meta({ description, override: { type: 'boolean' } });
}

/** `?server=&status=&health=&node=&all=` of GET /instances; status and health in any case. */
export const instanceFiltersSchema = z.object({
  server: queryValue
    .refine((v) => v === undefined || SERVER_NAME_PATTERN.test(v), { error: 'must be a server name' })
    .meta({ description: 'Only instances of this server', pattern: SERVER_NAME_PATTERN.source }),
  status: queryValue
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const upper = v.toUpperCase() as InstanceStatus;
      if (INSTANCE_STATUSES.includes(upper)) return upper;
      ctx.addIssue({ code: 'custom', message: `must be one of ${INSTANCE_STATUSES.join(', ')}` });
      return z.NEVER;
    })
    .meta({ enum: [...INSTANCE_STATUSES], description: 'Only instances in this status (any case)' }),
  health: queryValue
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const lower = v.toLowerCase() as HealthStatus;
      if (HEALTH_STATUSES.includes(lower)) return lower;
      ctx.addIssue({ code: 'custom', message: `must be one of ${HEALTH_STATUSES.join(', ')}` });
      return z.NEVER;
    })
    .meta({ enum: [...HEALTH_STATUSES], description: 'Only instances with this health (any case)' }),
  node: queryValue
    .refine((v) => v === undefined || NODE_NAME_PATTERN.test(v), { error: 'must be a node name' })
    .meta({ description: 'Only instances placed on this node', pattern: NODE_NAME_PATTERN.source }),
  all: queryValue
    .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1'))
    .meta({ description: 'Include ended instances', override: { type: 'boolean' } }),
});
export type InstanceFilters = { [K in keyof z.output<typeof instanceFiltersSchema>]?: Exclude<z.output<typeof instanceFiltersSchema>[K], undefined> };

export const DEFAULT_LOG_TAIL = 200;

/** `?tail=&follow=&timestamps=` of GET /instances/:id/logs. */
export const logQuerySchema = z.object({
  tail: z
    .string({ error: 'must be a non-negative integer or "all"' })
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return DEFAULT_LOG_TAIL;
      if (v === 'all') return undefined;
      if (/^\d+$/.test(v)) return Number(v);
      ctx.addIssue({ code: 'custom', message: 'must be a non-negative integer or "all"' });
      return z.NEVER;
    })
    .meta({
      description: 'Lines from the end, or "all"',
      override: ({ jsonSchema }) => {
        delete jsonSchema.type;
        Object.assign(jsonSchema, { oneOf: [{ type: 'integer', minimum: 0 }, { const: 'all' }], default: DEFAULT_LOG_TAIL });
      },
    }),
  follow: queryFlag('Stream until the client disconnects'),
  timestamps: queryFlag('Prefix each line with its time'),
});
export type LogOptions = z.output<typeof logQuerySchema>;

/** `?wait=&timeout=` of POST /servers/:name/start. */
export const startQuerySchema = z.object({
  wait: queryFlag('Answer once every instance has started (RUNNING) or failed to, instead of at once'),
  timeout: z
    .string({ error: 'must be given once' })
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return DEFAULT_START_WAIT_SECONDS;
      const n = Number(v);
      if (/^\d+$/.test(v) && n >= 1 && n <= AWAIT_STARTED_MAX_SECONDS) return n;
      ctx.addIssue({ code: 'custom', message: `must be whole seconds from 1 to ${AWAIT_STARTED_MAX_SECONDS}` });
      return z.NEVER;
    })
    .meta({
      description: 'With wait: the longest wait in seconds',
      override: { type: 'integer', minimum: 1, maximum: AWAIT_STARTED_MAX_SECONDS, default: DEFAULT_START_WAIT_SECONDS },
    }),
});

// ---- request bodies ------------------------------------------------------------------

export const scaleRequestSchema = z.object({ replicas: replicasSchema }).meta({ id: 'ScaleRequest' });

const SECRET_KEY_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
/** `{ "data": { "key": "value" } }`; values are write-only and never echoed in an error. */
export const secretBodySchema = z
  .strictObject({
    data: z
      .record(z.string().regex(SECRET_KEY_PATTERN, 'key must be 1-128 letters, digits, ".", "_" or "-"'), z.string({ error: 'must be a string' }), {
        error: 'must be an object of string values',
      })
      .refine((data) => Object.keys(data).length > 0, { error: 'must not be empty' }),
  })
  .meta({ id: 'SecretWrite' });

// ---- scoped tokens ----------------------------------------------------------------

/**
 * What a scoped token may do. viewer: read the API. operator: read and change servers,
 * instances and secrets, and use the gateway. admin: everything, tokens included (the
 * first-start token in <dataDir>/api-token is admin). client: the gateway only.
 */
export const TOKEN_ROLES = ['viewer', 'operator', 'admin', 'client'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];
/** The longest a scoped token may live: ten years. */
export const TOKEN_MAX_SECONDS = 10 * 365 * 86_400;

export const tokenNameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/, 'must be 1-64 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit');
export const tokenPathSchema = z.object({ name: tokenNameSchema });

export const createTokenBodySchema = z
  .strictObject({
    name: tokenNameSchema,
    role: z.enum(TOKEN_ROLES, { error: `must be one of ${TOKEN_ROLES.join(', ')}` }),
    expiresInSeconds: z
      .int({ error: `must be a whole number of seconds from 1 to ${TOKEN_MAX_SECONDS}` })
      .min(1, { error: `must be a whole number of seconds from 1 to ${TOKEN_MAX_SECONDS}` })
      .max(TOKEN_MAX_SECONDS, { error: `must be a whole number of seconds from 1 to ${TOKEN_MAX_SECONDS}` })
      .optional(),
    /** Only these servers through the gateway (/mcp/servers/<name>; the /mcp aggregate is refused). */
    servers: z
      .array(serverNameSchema)
      .min(1, { error: 'must name at least one server (leave it out for all)' })
      .max(100)
      .refine((names) => new Set(names).size === names.length, { error: 'lists a server twice' })
      .optional(),
    /** Groups the token's principal belongs to, for policies (Mcpd::Group::"<name>"). */
    groups: z
      .array(
        z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, 'a group is 1-128 letters, digits, ".", "_", ":", "@" or "-", starting with a letter or digit'),
      )
      .max(50, { error: 'at most 50 groups' })
      .refine((names) => new Set(names).size === names.length, { error: 'lists a group twice' })
      .optional(),
  })
  .meta({ id: 'TokenCreate' });

/** A scoped token as listed: never its value, never its hash. */
export interface TokenView {
  name: string;
  role: TokenRole;
  createdAt: string;
  /** null: never expires. */
  expiresAt: string | null;
  /** The servers it may reach through the gateway; null: every server. */
  servers: string[] | null;
  /** Its groups, for policies (absent: none). */
  groups?: string[];
}

// ---- responses ------------------------------------------------------------------

/** ISO-8601 times as the workflows write them (not re-validated: the API only relays them). */
const isoTime = z.string().meta({ format: 'date-time' });
const nullableTime = isoTime.nullable();

export const instanceEventSchema = z.object({ at: isoTime, type: z.string(), message: z.string() }).meta({ id: 'InstanceEvent' });

export const instanceViewSchema = z
  .object({
    id: z.string(),
    server: z.string(),
    ordinal: z.int(),
    status: z.enum(INSTANCE_STATUSES),
    health: z.enum(HEALTH_STATUSES),
    containerId: z.string().nullable(),
    attemptCount: z.int(),
    lastAttemptAt: nullableTime,
    nextRetryAt: nullableTime,
    error: z.string().nullable(),
    healthReason: z.string().nullable(),
    runningSince: nullableTime,
    events: z.array(instanceEventSchema).max(50),
    node: z.string().optional().meta({ description: 'The Docker node that runs it; absent while no node fits its placement.' }),
    progress: z.string().optional().meta({ description: 'While STARTING: what the node is doing right now.' }),
  })
  .meta({ id: 'Instance' });
sameShape<Same<z.output<typeof instanceViewSchema>, InstanceView>>();

export const serverResourceSchema = z
  .object({
    name: z.string(),
    spec: mcpServerSpecSchema,
    running: z.boolean(),
    instances: z.array(z.string()).meta({ description: 'Instance workflow ids the server wants.' }),
    specVersion: z.int(),
    rollout: z.object({ inProgress: z.boolean(), updated: z.int(), total: z.int(), error: z.string().nullable().optional() }).nullable(),
    createdAt: nullableTime,
    readyReplicas: z.int().meta({ description: 'Instances RUNNING and healthy.' }),
  })
  .meta({ id: 'Server' });
sameShape<Same<Omit<z.output<typeof serverResourceSchema>, 'createdAt' | 'readyReplicas'>, ServerView>>();

/** What the API returns for a server: the workflow's view plus what visibility knows. */
export interface ServerResource extends ServerView {
  createdAt: string | null;
  /** Instances that are RUNNING and healthy, as visibility last saw them. */
  readyReplicas: number;
}
sameShape<Same<z.output<typeof serverResourceSchema>, ServerResource>>();

export const nodeViewSchema = z
  .object({
    name: z.string(),
    status: z.enum(['Ready', 'NotReady']),
    reason: z.string().nullable().meta({ description: 'Why it is NotReady.' }),
    since: isoTime.meta({ description: 'When the status last changed.' }),
    registration: z
      .object({
        engineHost: z.string(),
        engineVersion: z.string().nullable(),
        labels: z.record(labelKeySchema, labelValueSchema),
        capacity: z.int(),
        worker: z.string(),
      })
      .nullable()
      .meta({ description: 'What the node reported when its worker last registered; null before it first did.' }),
    instances: z.int().meta({ description: 'Running instances placed on it.' }),
  })
  .meta({ id: 'Node' });
sameShape<Same<z.output<typeof nodeViewSchema>, NodeView>>();

export const APPLY_OUTCOMES = ['created', 'configured', 'unchanged'] as const;
export type ApplyOutcome = (typeof APPLY_OUTCOMES)[number];
export const appliedServerSchema = serverResourceSchema.extend({ outcome: z.enum(APPLY_OUTCOMES) }).meta({ id: 'AppliedServer' });

export const secretSummarySchema = z
  .object({ name: z.string(), keys: z.array(z.string()), version: z.int(), updatedAt: nullableTime })
  .meta({ id: 'SecretSummary', description: 'Names and keys only: values are never returned.' });

export const instanceIdsSchema = z.object({ name: z.string(), instances: z.array(z.string()) });
export const deletedServerSchema = instanceIdsSchema.extend({ deleted: z.literal(true) });
export const runningServerSchema = instanceIdsSchema.extend({ running: z.boolean() });
export const startedServerSchema = runningServerSchema.extend({
  views: z.array(instanceViewSchema).optional().meta({ description: "With ?wait: each instance's view once its start had an outcome, or when the wait ended" }),
});
export const signalledSchema = z.object({ id: z.string(), signal: z.enum(['forceRetry', 'restart']) });
export const deletedSecretSchema = z.object({ name: z.string(), deleted: z.literal(true) });
export const listOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item) });
export const instanceEventsSchema = z.object({ id: z.string(), items: z.array(instanceEventSchema) });

export const errorSchema = z
  .object({
    error: z.string(),
    details: z.unknown().optional().meta({ description: 'For validation errors: [{field, message}] naming every bad field.' }),
  })
  .meta({ id: 'Error' });

/** Who a request acts as, once its bearer token is accepted: what the gateway and the API decide and record by. */
export interface Principal {
  /** The token's name ("admin" for the first-start token); for an OAuth access token its name claim (sub by default). */
  name: string;
  role: TokenRole;
  /** The servers it may reach through the gateway; null: every server. */
  servers: string[] | null;
  /** Which kind of credential proved it. */
  source: 'admin-token' | 'scoped-token' | 'oidc';
  /** Groups it belongs to, for policies (an OAuth access token's groups claim; empty for mcpd's own tokens). */
  groups: string[];
}
