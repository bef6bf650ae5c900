/**
 * The McpServer spec: what an operator declares (YAML or JSON) and what every
 * workflow carries. Pure: imported by the API, the CLI and workflow code alike.
 */
import { z } from 'zod';
import { parsePackageRef } from './packageRef';

/** Server names become workflow ids, container names and tool-name prefixes. */
export const SERVER_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Secret names map to OpenBao KV v2 paths under the mcpd prefix. */
export const SECRET_NAME_PATTERN = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/;

export const secretRefSchema = z.strictObject({
  name: z.string().regex(SECRET_NAME_PATTERN, 'must be a secret name: lowercase letters, digits, ".", "_" or "-"'),
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
  intervalSeconds: z.number().int().min(1).max(86_400).default(60),
  timeoutSeconds: z.number().int().min(1).max(3_600).default(10),
  failureThreshold: z.number().int().min(1).max(100).default(3),
});

export const retrySchema = z.strictObject({
  fastDelaySeconds: z.number().min(0).max(86_400).default(30),
  fastAttempts: z.number().int().min(0).max(1_000).default(5),
  slowDelaySeconds: z.number().min(0).max(86_400).default(300),
  /** Running this long without a failure resets attemptCount (Kubernetes resets CrashLoopBackOff after 10 min). */
  stableSeconds: z.number().min(1).max(86_400 * 7).default(600),
});

export const resourcesSchema = z.strictObject({
  /** Bytes, or a string like "512Mi" / "1Gi". */
  memory: z.union([z.number().int().positive(), z.string().regex(/^\d+(Ki|Mi|Gi|K|M|G)?$/, 'must be bytes or a size like 512Mi')]).optional(),
  /** Fractional CPUs, e.g. 0.5. */
  cpus: z.number().positive().max(1024).optional(),
  pids: z.number().int().positive().optional(),
});

export const mcpServerSpecSchema = z
  .strictObject({
    name: z.string().regex(SERVER_NAME_PATTERN, 'must be 1-40 lowercase letters, digits or "-", starting and ending with a letter or digit'),
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
    entrypoint: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be the name of an executable the package installs').optional(),
    command: z.array(z.string()).min(1).optional(),
    args: z.array(z.string()).default([]),
    transport: z.enum(['stdio', 'http', 'sse']).default('stdio'),
    port: z.number().int().min(1).max(65_535).optional(),
    /** Path of the MCP endpoint for http/sse servers. */
    path: z.string().startsWith('/').optional(),
    replicas: z.number().int().min(0).max(100).default(1),
    env: z.array(envEntrySchema).default([]),
    healthCheck: healthCheckSchema.optional(),
    retry: retrySchema.default(retrySchema.parse({})),
    resources: resourcesSchema.default({}),
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
  });

export type McpServerSpec = z.output<typeof mcpServerSpecSchema>;
export type McpServerSpecInput = z.input<typeof mcpServerSpecSchema>;
export type EnvEntry = McpServerSpec['env'][number];
export type RetryPolicy = McpServerSpec['retry'];
export type HealthCheck = NonNullable<McpServerSpec['healthCheck']>;

export interface FieldError {
  /** Dotted path, e.g. "env.0.secretRef.key". */
  field: string;
  message: string;
}

export type SpecValidation = { ok: true; spec: McpServerSpec } | { ok: false; errors: FieldError[] };

export function validateSpec(input: unknown): SpecValidation {
  const result = mcpServerSpecSchema.safeParse(input);
  if (result.success) return { ok: true, spec: result.data };
  return {
    ok: false,
    errors: result.error.issues.map((issue) => ({
      field: issue.path.length ? issue.path.join('.') : '(root)',
      message: issue.message,
    })),
  };
}

/** One line naming every bad field, for CLI output and error messages. */
export function describeFieldErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}
