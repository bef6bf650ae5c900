/**
 * Where mcpd finds its parts. Every address can come from the environment, so an
 * existing Temporal cluster, OpenBao or Docker engine wins over the embedded ones.
 * The environment is checked with one zod schema; a bad value stops mcpd with one
 * line naming the variable (values of token variables are never repeated).
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseAllowedOrigins } from './origins';
import { DEFAULT_NODE_CAPACITY, NODE_NAME_PATTERN, type NodeLabels } from '../contracts/node';
import { parseNodeLabels } from '../contracts/nodeSchemas';

export interface Settings {
  dataDir: string;
  temporalAddress: string;
  temporalNamespace: string;
  baoAddress: string;
  /** Token for OpenBao; when unset, read from <dataDir>/openbao/root-token. */
  baoToken: string | undefined;
  /** KV v2 mount and the path prefix under which mcpd keeps its secrets. */
  secretsMount: string;
  secretsPrefix: string;
  /** Unset means dockerode's default (DOCKER_HOST or the local socket). */
  dockerSocket: string | undefined;
  apiHost: string;
  apiPort: number;
  /** The name of this Docker node; its activities poll mcpd-node-<node>. */
  node: string;
  /** This node's labels (MCPD_NODE_LABELS=k=v,k=v), which a spec's placement.nodeSelector selects on. */
  nodeLabels: NodeLabels;
  /** Most instances placed on this node (MCPD_NODE_CAPACITY, default DEFAULT_NODE_CAPACITY). */
  nodeCapacity: number;
  /** Where this node's Docker engine answers, as the node reports it: the socket, DOCKER_HOST, or the default socket. */
  engineHost: string;
  roles: { api: boolean; gateway: boolean; worker: boolean };
  logLevel: string;
  /** Bases of the images built from npm / PyPI packages (default mcpd/node-base:20, mcpd/python-base:3). */
  packageBaseImages: { node: string | undefined; python: string | undefined };
  /** The longest line a STDIO server may write to stdout; a longer one is a protocol error of that server (default 16 MiB). */
  stdioMaxLineBytes: number | undefined;
  /** How many container creates and starts this node sends its Docker engine at once (MCPD_START_CONCURRENCY). */
  startConcurrency: number;
  /** Workflows the control worker keeps in memory between workflow tasks (MCPD_WORKFLOW_CACHE). */
  workflowCacheSize: number;
  /**
   * The secret gateways of one cluster share (MCPD_GATEWAY_SECRET): it authenticates the
   * link from front gateways to node gateways and signs session ids. Unset: <dataDir>/gateway-secret.
   */
  gatewaySecret: string | undefined;
  /** Where front gateways reach this node's gateway (MCPD_GATEWAY_URL); unset: http://<MCPD_HOST>:<port>. */
  gatewayUrl: string | undefined;
  /** Prometheus metrics on GET /metrics (MCPD_METRICS, default true; false records nothing). */
  metrics: boolean;
  /**
   * Where the Temporal SDK's own Prometheus exporter listens (MCPD_TEMPORAL_METRICS):
   * 'auto' (a free loopback port; /metrics includes its series), 'off', or host:port.
   */
  temporalMetrics: 'auto' | 'off' | { host: string; port: number };
  /** Traces go to this OTLP/HTTP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, the standard variable); unset: no tracing. */
  otlpEndpoint: string | undefined;
  /**
   * Origins besides loopback ones that may call /mcp* and /api from a browser
   * (MCPD_ALLOWED_ORIGINS, comma-separated; DNS-rebinding protection, see origins.ts).
   */
  allowedOrigins: string[];
  /**
   * The audit trail (MCPD_AUDIT, default true): JSON lines in <dataDir>/audit, a file rotated
   * once it reaches maxBytes (MCPD_AUDIT_MAX_BYTES, default 10 MiB), keepFiles rotated files
   * kept (MCPD_AUDIT_KEEP_FILES, default 5).
   */
  audit: { enabled: boolean; maxBytes: number; keepFiles: number };
  /**
   * OAuth 2.1 resource server (MCPD_OIDC_*): JWT access tokens of this issuer are accepted
   * besides the admin and scoped tokens; unset: only those (see src/api/oidc.ts).
   */
  oidc: OidcSettings | undefined;
}

export interface OidcSettings {
  /** The authorization server whose access tokens mcpd accepts (MCPD_OIDC_ISSUER), as its metadata spells it. */
  issuer: string;
  /**
   * mcpd's resource URI (RFC 8707), which tokens must name in `aud` (MCPD_OIDC_AUDIENCE);
   * undefined: mcpd's own URL, http://<MCPD_HOST>:<port>, known once it listens.
   */
  audience: string | undefined;
  /** The claim that names the principal (MCPD_OIDC_NAME_CLAIM, default sub). */
  nameClaim: string;
  /** The claim that lists the principal's groups (MCPD_OIDC_GROUPS_CLAIM, default groups). */
  groupsClaim: string;
}

export const ROLES = ['api', 'gateway', 'worker'] as const;

/**
 * Container creates and starts in flight on one node (MCPD_START_CONCURRENCY). Each start
 * costs the engine a runc run and a new shim process, CPU it shares with everything else on
 * the node, so unbounded starts of hundreds of replicas only pile up inside dockerd. On a
 * 2-core machine `npm run bench -- scale` reached the same few starts per second with 8 as
 * with 16 in flight (plain `docker run -d` reached 6-8 per second there), so 8 keeps the
 * engine busy while leaving room for the probes and calls of instances already running.
 */
export const DEFAULT_START_CONCURRENCY = 8;
export const START_CONCURRENCY_MAX = 256;

/**
 * Workflows the control worker keeps in memory between workflow tasks (MCPD_WORKFLOW_CACHE).
 * The SDK sizes its default from the heap (about 2,300 here), so every instance and probe
 * workflow stayed cached: with 500 instances `npm run bench -- scale` measured 3.1 MiB of
 * mcpd RSS per instance and 22.7 % of a core at steady state, most of it the garbage
 * collector walking that heap. A healthy instance's workflows have nothing to do between
 * health changes (the probing runs in an activity on the node), so with 100 the same run
 * took 1.1 MiB per instance and 6.9 %, and its start was no slower: a workflow that wakes
 * replays its short history.
 */
export const DEFAULT_WORKFLOW_CACHE = 100;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** An unset or empty variable takes the default. */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

const text = z.string().regex(/^\S+$/, 'must not be empty or contain spaces');

const port = z.string().transform((raw, ctx) => {
  const n = Number(raw);
  if (/^\d+$/.test(raw) && n >= 1 && n <= 65_535) return n;
  ctx.addIssue({ code: 'custom', message: `must be a port number 1-65535, got "${raw}"` });
  return z.NEVER;
});

const startConcurrency = z.string().transform((raw, ctx) => {
  const n = Number(raw);
  if (/^\d+$/.test(raw) && n >= 1 && n <= START_CONCURRENCY_MAX) return n;
  ctx.addIssue({ code: 'custom', message: `must be an integer from 1 to ${START_CONCURRENCY_MAX}, got "${raw}"` });
  return z.NEVER;
});

/** At least 2, the SDK's floor for a workflow worker that caches (it needs a slot to evict into). */
const workflowCacheSize = z.string().transform((raw, ctx) => {
  const n = Number(raw);
  if (/^\d+$/.test(raw) && n >= 2 && n <= 1_000_000) return n;
  ctx.addIssue({ code: 'custom', message: `must be an integer from 2 to 1000000, got "${raw}"` });
  return z.NEVER;
});

const nodeName = z.string().regex(NODE_NAME_PATTERN, 'must be 1-128 letters, digits, ".", "_" or "-", starting and ending with a letter or digit');

const nodeLabels = z.string().transform((raw, ctx) => {
  const parsed = parseNodeLabels(raw);
  if (parsed.ok) return parsed.labels;
  ctx.addIssue({ code: 'custom', message: `must be key=value pairs separated by commas: ${parsed.error}` });
  return z.NEVER;
});

export const NODE_CAPACITY_MAX = 100_000;
const nodeCapacity = z.string().transform((raw, ctx) => {
  const n = Number(raw);
  if (/^\d+$/.test(raw) && n >= 1 && n <= NODE_CAPACITY_MAX) return n;
  ctx.addIssue({ code: 'custom', message: `must be an integer from 1 to ${NODE_CAPACITY_MAX} (instances), got "${raw}"` });
  return z.NEVER;
});

const roles = z.string().transform((raw, ctx) => {
  const names = raw
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  const unknown = names.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length || names.length === 0) {
    ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${ROLES.join(', ')}, got "${raw}"` });
    return z.NEVER;
  }
  return { api: names.includes('api'), gateway: names.includes('gateway'), worker: names.includes('worker') };
});

const httpUrl = z.string().refine((raw) => /^https?:\/\/\S+$/.test(raw) && URL.canParse(raw), {
  error: (issue) => `must be an http:// or https:// URL, got "${String(issue.input)}"`,
});

const byteCount = z.string().transform((raw, ctx) => {
  const n = Number(raw);
  if (/^\d+$/.test(raw) && n >= 1024 && n <= 2 ** 30) return n;
  ctx.addIssue({ code: 'custom', message: `must be a number of bytes from 1024 to 1073741824, got "${raw}"` });
  return z.NEVER;
});

const auditKeepFiles = z.string().transform((raw, ctx) => {
  const n = Number(raw);
  if (/^\d+$/.test(raw) && n >= 1 && n <= 1000) return n;
  ctx.addIssue({ code: 'custom', message: `must be a whole number of files from 1 to 1000, got "${raw}"` });
  return z.NEVER;
});

export const DEFAULT_AUDIT_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_AUDIT_KEEP_FILES = 5;

const flag = z.enum(['true', 'false'], { error: (issue) => `must be true or false, got "${String(issue.input)}"` }).transform((raw) => raw === 'true');

const temporalMetrics = z.string().transform((raw, ctx) => {
  if (raw === 'auto' || raw === 'off') return raw;
  const m = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(raw);
  const n = Number(m?.[2]);
  if (m && n >= 1 && n <= 65_535) return { host: m[1], port: n };
  ctx.addIssue({ code: 'custom', message: `must be auto, off or host:port, got "${raw}"` });
  return z.NEVER;
});

const allowedOrigins = z.string().transform((raw, ctx) => {
  const parsed = parseAllowedOrigins(raw);
  if (parsed.ok) return parsed.origins;
  ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of origins like https://app.example.com: ${parsed.error}` });
  return z.NEVER;
});

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * An issuer (RFC 8414): https, no query or fragment; plain http only on loopback, for a
 * provider on the same machine (development, the tests).
 */
const issuerUrl = z.string().transform((raw, ctx) => {
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  const loopback = url !== undefined && LOOPBACK_HOSTS.has(url.hostname);
  if (url && (url.protocol === 'https:' || (url.protocol === 'http:' && loopback)) && !url.search && !url.hash && !/\s/.test(raw)) return raw;
  ctx.addIssue({
    code: 'custom',
    message: `must be the issuer's https:// URL without query or fragment (http:// only on localhost), got "${raw}"`,
  });
  return z.NEVER;
});

/** A resource URI (RFC 8707): absolute http(s), no fragment; a trailing slash is dropped. */
const resourceUri = z.string().transform((raw, ctx) => {
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  if (url && (url.protocol === 'https:' || url.protocol === 'http:') && !url.hash && !/\s/.test(raw)) return raw.replace(/\/+$/, '');
  ctx.addIssue({ code: 'custom', message: `must be mcpd's public http(s) URL without fragment, e.g. https://mcpd.example.com, got "${raw}"` });
  return z.NEVER;
});

const claimName = z.string().regex(/^[A-Za-z0-9_.:/-]{1,100}$/, 'must be a claim name (letters, digits, _ . : / -)');

const logLevel = z.string().refine((raw) => (LOG_LEVELS as readonly string[]).includes(raw), {
  error: (issue) => `must be one of ${LOG_LEVELS.join(', ')}, got "${String(issue.input)}"`,
});

/** Every variable mcpd reads, by its name. */
export const environmentSchema = z.object({
  MCPD_DATA_DIR: optional(z.string()),
  TEMPORAL_ADDRESS: optional(text),
  TEMPORAL_NAMESPACE: optional(text),
  BAO_ADDR: optional(httpUrl),
  VAULT_ADDR: optional(httpUrl),
  // Tokens are only passed on: never validated, so never quoted in an error.
  BAO_TOKEN: optional(z.string()),
  VAULT_TOKEN: optional(z.string()),
  MCPD_GATEWAY_SECRET: optional(z.string()),
  MCPD_GATEWAY_URL: optional(httpUrl),
  MCPD_SECRETS_MOUNT: optional(text),
  MCPD_SECRETS_PREFIX: optional(text),
  MCPD_DOCKER_SOCKET: optional(text),
  MCPD_HOST: optional(text),
  MCPD_PORT: optional(port),
  MCPD_NODE: optional(nodeName),
  MCPD_NODE_LABELS: optional(nodeLabels),
  MCPD_NODE_CAPACITY: optional(nodeCapacity),
  DOCKER_HOST: optional(text),
  MCPD_ROLES: optional(roles),
  MCPD_LOG_LEVEL: optional(logLevel),
  MCPD_PACKAGE_NODE_BASE: optional(text),
  MCPD_PACKAGE_PYTHON_BASE: optional(text),
  MCPD_STDIO_MAX_LINE_BYTES: optional(byteCount),
  MCPD_START_CONCURRENCY: optional(startConcurrency),
  MCPD_WORKFLOW_CACHE: optional(workflowCacheSize),
  MCPD_METRICS: optional(flag),
  MCPD_TEMPORAL_METRICS: optional(temporalMetrics),
  OTEL_EXPORTER_OTLP_ENDPOINT: optional(httpUrl),
  MCPD_ALLOWED_ORIGINS: optional(allowedOrigins),
  MCPD_AUDIT: optional(flag),
  MCPD_AUDIT_MAX_BYTES: optional(byteCount),
  MCPD_AUDIT_KEEP_FILES: optional(auditKeepFiles),
  MCPD_OIDC_ISSUER: optional(issuerUrl),
  MCPD_OIDC_AUDIENCE: optional(resourceUri),
  MCPD_OIDC_NAME_CLAIM: optional(claimName),
  MCPD_OIDC_GROUPS_CLAIM: optional(claimName),
});

/** Hosts a server listens on that no client can call it by: the default audience would name nobody. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/** The OAuth settings, or the one-line complaint about how they combine. */
function oidcSettings(e: z.output<typeof environmentSchema>): OidcSettings | undefined | string {
  const dependents = (['MCPD_OIDC_AUDIENCE', 'MCPD_OIDC_NAME_CLAIM', 'MCPD_OIDC_GROUPS_CLAIM'] as const).filter((name) => e[name] !== undefined);
  if (!e.MCPD_OIDC_ISSUER)
    return dependents.length ? `${dependents.join(', ')}: set MCPD_OIDC_ISSUER too (they configure OAuth, which is off without an issuer)` : undefined;
  if (!e.MCPD_OIDC_AUDIENCE && WILDCARD_HOSTS.has(e.MCPD_HOST ?? '')) {
    return `MCPD_OIDC_AUDIENCE: required when MCPD_HOST is ${e.MCPD_HOST} (tokens must name mcpd's public URL, e.g. https://mcpd.example.com)`;
  }
  return {
    issuer: e.MCPD_OIDC_ISSUER,
    audience: e.MCPD_OIDC_AUDIENCE,
    nameClaim: e.MCPD_OIDC_NAME_CLAIM ?? 'sub',
    groupsClaim: e.MCPD_OIDC_GROUPS_CLAIM ?? 'groups',
  };
}

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

/** The settings from the environment; throws a SettingsError whose one-line message names every bad variable. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    throw new SettingsError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
  }
  const e = parsed.data;
  const oidc = oidcSettings(e);
  if (typeof oidc === 'string') throw new SettingsError(oidc);
  return {
    dataDir: path.resolve(e.MCPD_DATA_DIR ?? '.data'),
    temporalAddress: e.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    temporalNamespace: e.TEMPORAL_NAMESPACE ?? 'default',
    baoAddress: e.BAO_ADDR ?? e.VAULT_ADDR ?? 'http://127.0.0.1:8200',
    baoToken: e.BAO_TOKEN ?? e.VAULT_TOKEN,
    secretsMount: e.MCPD_SECRETS_MOUNT ?? 'secret',
    secretsPrefix: e.MCPD_SECRETS_PREFIX ?? 'mcpd',
    dockerSocket: e.MCPD_DOCKER_SOCKET,
    apiHost: e.MCPD_HOST ?? '127.0.0.1',
    apiPort: e.MCPD_PORT ?? 7400,
    node: e.MCPD_NODE ?? os.hostname(),
    nodeLabels: e.MCPD_NODE_LABELS ?? {},
    nodeCapacity: e.MCPD_NODE_CAPACITY ?? DEFAULT_NODE_CAPACITY,
    engineHost: e.MCPD_DOCKER_SOCKET ?? e.DOCKER_HOST ?? '/var/run/docker.sock',
    roles: e.MCPD_ROLES ?? { api: true, gateway: true, worker: true },
    logLevel: e.MCPD_LOG_LEVEL ?? 'info',
    packageBaseImages: { node: e.MCPD_PACKAGE_NODE_BASE, python: e.MCPD_PACKAGE_PYTHON_BASE },
    stdioMaxLineBytes: e.MCPD_STDIO_MAX_LINE_BYTES,
    startConcurrency: e.MCPD_START_CONCURRENCY ?? DEFAULT_START_CONCURRENCY,
    workflowCacheSize: e.MCPD_WORKFLOW_CACHE ?? DEFAULT_WORKFLOW_CACHE,
    gatewaySecret: e.MCPD_GATEWAY_SECRET,
    gatewayUrl: e.MCPD_GATEWAY_URL,
    metrics: e.MCPD_METRICS ?? true,
    temporalMetrics: e.MCPD_TEMPORAL_METRICS ?? 'auto',
    otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
    allowedOrigins: e.MCPD_ALLOWED_ORIGINS ?? [],
    audit: {
      enabled: e.MCPD_AUDIT ?? true,
      maxBytes: e.MCPD_AUDIT_MAX_BYTES ?? DEFAULT_AUDIT_MAX_BYTES,
      keepFiles: e.MCPD_AUDIT_KEEP_FILES ?? DEFAULT_AUDIT_KEEP_FILES,
    },
    oidc,
  };
}
