/**
 * The McpServer spec: what an operator declares (YAML or JSON) and what every
 * workflow carries. Pure: imported by the API, the CLI and workflow code alike.
 */
import { z } from 'zod';
import { PROBE_DEFAULTS } from './instance';
import { nodeLabelsSchema, nodeNameSchema } from './nodeSchemas';
import { parsePackageRef } from './packageRef';

/** Server names become workflow ids, container names and tool-name prefixes. */
export const SERVER_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Secret names map to OpenBao KV v2 paths under the mcpd prefix. */
export const SECRET_NAME_PATTERN = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/;

/**
 * How many replicas a server may ask for; the spec, the scale request and mcpctl all use these bounds.
 * The cap is what one server workflow can carry, not what a node can hold (500 instances of a
 * small server fit on a 2-core machine): the server workflow keeps one record per instance,
 * starts its instances as children, and Temporal refuses more than 2,000 pending child
 * workflows per workflow by default (limit.numPendingChildExecutions.error). 1,000 stays well
 * under that and keeps the server's state small; more than that is more servers.
 */
export const REPLICAS = { min: 0, max: 1000 } as const;
const REPLICAS_MESSAGE = `must be an integer from ${REPLICAS.min} to ${REPLICAS.max}`;
export const replicasSchema = z
  .number({ error: REPLICAS_MESSAGE })
  .int({ error: REPLICAS_MESSAGE })
  .min(REPLICAS.min, { error: REPLICAS_MESSAGE })
  .max(REPLICAS.max, { error: REPLICAS_MESSAGE });

export const serverNameSchema = z
  .string()
  .regex(SERVER_NAME_PATTERN, 'must be 1-40 lowercase letters, digits or "-", starting and ending with a letter or digit');
export const secretNameSchema = z
  .string()
  .regex(SECRET_NAME_PATTERN, 'must be 1-64 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit');

export const secretRefSchema = z.strictObject({
  name: secretNameSchema,
  key: z.string().min(1, 'must not be empty'),
});

export const envEntrySchema = z
  .strictObject({
    name: z.string().regex(ENV_NAME_PATTERN, 'must be an environment variable name'),
    value: z.string().optional(),
    secretRef: secretRefSchema.optional(),
  })
  .refine((e) => (e.value === undefined) !== (e.secretRef === undefined), {
    message: 'needs exactly one of "value" or "secretRef"',
  });

export const healthCheckSchema = z.strictObject({
  tool: z.string().min(1),
  arguments: z.record(z.string(), z.unknown()).default({}),
  intervalSeconds: z.number().int().min(1).max(86_400).default(PROBE_DEFAULTS.intervalSeconds),
  timeoutSeconds: z.number().int().min(1).max(3_600).default(PROBE_DEFAULTS.timeoutSeconds),
  failureThreshold: z.number().int().min(1).max(100).default(PROBE_DEFAULTS.failureThreshold),
});

export const retrySchema = z.strictObject({
  fastDelaySeconds: z.number().min(0).max(86_400).default(30),
  fastAttempts: z.number().int().min(0).max(1_000).default(5),
  slowDelaySeconds: z.number().min(0).max(86_400).default(300),
  /** Running this long without a failure resets attemptCount (Kubernetes resets CrashLoopBackOff after 10 min). */
  stableSeconds: z
    .number()
    .min(1)
    .max(86_400 * 7)
    .default(600),
});

export const resourcesSchema = z.strictObject({
  /** Bytes, or a string like "512Mi" / "1Gi". */
  memory: z.union([z.number().int().positive(), z.string().regex(/^\d+(Ki|Mi|Gi|K|M|G)?$/, 'must be bytes or a size like 512Mi')]).optional(),
  /** Fractional CPUs, e.g. 0.5. */
  cpus: z.number().positive().max(1024).optional(),
  pids: z.number().int().positive().optional(),
});

/**
 * The Linux capabilities a spec may add back (capabilities(7)). Every container starts
 * with all of them dropped; a server that must, say, bind a port below 1024 asks for
 * NET_BIND_SERVICE by name.
 */
export const LINUX_CAPABILITIES = [
  'AUDIT_CONTROL',
  'AUDIT_READ',
  'AUDIT_WRITE',
  'BLOCK_SUSPEND',
  'BPF',
  'CHECKPOINT_RESTORE',
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'IPC_LOCK',
  'IPC_OWNER',
  'KILL',
  'LEASE',
  'LINUX_IMMUTABLE',
  'MAC_ADMIN',
  'MAC_OVERRIDE',
  'MKNOD',
  'NET_ADMIN',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_RAW',
  'PERFMON',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_CHROOT',
  'SYS_MODULE',
  'SYS_NICE',
  'SYS_PACCT',
  'SYS_PTRACE',
  'SYS_RAWIO',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'SYSLOG',
  'WAKE_ALARM',
] as const;

/** "NET_BIND_SERVICE" or "CAP_NET_BIND_SERVICE", any case, to the name Docker's CapAdd takes (overwrite: no transform, so the OpenAPI document can describe it). */
const capabilitySchema = z
  .string()
  .overwrite((raw) => raw.trim().toUpperCase().replace(/^CAP_/, ''))
  .refine((name) => (LINUX_CAPABILITIES as readonly string[]).includes(name), {
    error: (issue) =>
      issue.input === 'ALL'
        ? 'ALL is not allowed: name each capability the server needs (e.g. NET_BIND_SERVICE)'
        : 'is not a Linux capability (e.g. NET_BIND_SERVICE, CHOWN; see capabilities(7))',
  });

/** A user name or uid, optionally with a group name or gid: "node", "1000", "1000:1000", "app:app". */
const CONTAINER_USER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$/;

/**
 * How locked down the container is. Whatever this says, containers run with
 * no-new-privileges (no setuid escalation) and every capability dropped.
 */
export const securitySchema = z.strictObject({
  /** Capabilities added back after all are dropped (default none). */
  capabilities: z
    .array(capabilitySchema)
    .max(LINUX_CAPABILITIES.length)
    .refine((caps) => new Set(caps).size === caps.length, 'lists a capability twice')
    .optional(),
  /** Mount the image's filesystem read-only; /tmp stays writable (a 64 MiB tmpfs). */
  readOnlyRootFilesystem: z.boolean().optional(),
  /** Run as this user instead of the image's: "uid[:gid]" or "name[:group]" (names must exist in the image). */
  user: z.string().regex(CONTAINER_USER_PATTERN, 'must be a user name or uid, optionally ":group" or ":gid", e.g. "1000:1000" or "node"').optional(),
});

/** Where the instances run: pinned to a node, on nodes with these labels, or (absent) spread over every Ready node. */
export const placementSchema = z.strictObject({
  node: nodeNameSchema.optional(),
  nodeSelector: nodeLabelsSchema.optional(),
});

export const mcpServerSpecSchema = z
  .strictObject({
    name: serverNameSchema,
    image: z.string().min(1).optional(),
    /** An MCP server published on npm ("@scope/name[@version]") or PyPI ("pypi:name[@version]"); mcpd builds its image. */
    packageName: z
      .string()
      .min(1)
      .superRefine((value, ctx) => {
        const parsed = parsePackageRef(value);
        if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.error });
      })
      .optional(),
    /** With packageName: which of the package's executables to run (an npm "bin" or a console script); default its own. */
    entrypoint: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be the name of an executable the package installs')
      .optional(),
    command: z.array(z.string()).min(1).optional(),
    args: z.array(z.string()).default([]),
    transport: z.enum(['stdio', 'http', 'sse']).default('stdio'),
    port: z.number().int().min(1).max(65_535).optional(),
    /** Path of the MCP endpoint for http/sse servers. */
    path: z.string().startsWith('/').optional(),
    replicas: replicasSchema.default(1),
    env: z.array(envEntrySchema).default([]),
    healthCheck: healthCheckSchema.optional(),
    retry: retrySchema.default(retrySchema.parse({})),
    resources: resourcesSchema.default({}),
    /** Absent in specs stored before it existed: the hardened defaults apply all the same. */
    security: securitySchema.optional(),
    placement: placementSchema.optional(),
  })
  .superRefine((s, ctx) => {
    const sources = [s.image, s.packageName, s.command].filter((x) => x !== undefined).length;
    if (sources !== 1) {
      ctx.addIssue({ code: 'custom', path: ['image'], message: 'needs exactly one of "image", "packageName" or "command"' });
    }
    if (s.entrypoint !== undefined && s.packageName === undefined) {
      ctx.addIssue({ code: 'custom', path: ['entrypoint'], message: 'only applies to "packageName" (use "command" to choose what an image runs)' });
    }
    if (s.transport !== 'stdio' && s.port === undefined) {
      ctx.addIssue({ code: 'custom', path: ['port'], message: `is required for transport "${s.transport}"` });
    }
    const seen = new Set<string>();
    s.env.forEach((e, i) => {
      if (seen.has(e.name)) ctx.addIssue({ code: 'custom', path: ['env', i, 'name'], message: `duplicates "${e.name}"` });
      seen.add(e.name);
    });
  })
  .meta({ id: 'McpServerSpec' });

export type McpServerSpec = z.output<typeof mcpServerSpecSchema>;
export type McpServerSpecInput = z.input<typeof mcpServerSpecSchema>;
export type EnvEntry = McpServerSpec['env'][number];
export type RetryPolicy = McpServerSpec['retry'];
export type HealthCheck = NonNullable<McpServerSpec['healthCheck']>;
export type ContainerSecurity = NonNullable<McpServerSpec['security']>;

export interface FieldError {
  /** Dotted path, e.g. "env.0.secretRef.key". */
  field: string;
  message: string;
}

export type SpecValidation = { ok: true; spec: McpServerSpec } | { ok: false; errors: FieldError[] };

/**
 * The fields a zod error names, one entry per problem; an unknown key of a
 * strict object gets its own entry. Messages never quote the rejected value.
 */
export function fieldErrorsOf(error: z.ZodError): FieldError[] {
  const at = (path: PropertyKey[]) => (path.length ? path.map(String).join('.') : '(root)');
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: at([...issue.path, key]), message: `unknown field ${JSON.stringify(key)}` }))
      : [{ field: at(issue.path), message: issue.message }],
  );
}

export function validateSpec(input: unknown): SpecValidation {
  const result = mcpServerSpecSchema.safeParse(input);
  return result.success ? { ok: true, spec: result.data } : { ok: false, errors: fieldErrorsOf(result.error) };
}

/** One line naming every bad field, for CLI output and error messages. */
export function describeFieldErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}
