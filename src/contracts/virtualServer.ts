/**
 * The VirtualServer spec: a curated MCP endpoint over some of the fleet's servers,
 * with per-server allow/deny globs for tools, resources and prompts, per-tool
 * overrides, and a naming strategy. Pure: imported by the API, the CLI, the gateway
 * and the virtualServerWorkflow that stores it.
 */
import { z } from 'zod';
import { fieldErrorsOf, serverNameSchema, type FieldError } from './spec';

export const VIRTUAL_SERVER_KIND = 'VirtualServer';

/**
 * Tool names as the MCP spec (2025-11-25) recommends them: 1-64 characters of
 * letters, digits, "_", "-" and ".". Overridden names must follow it.
 */
export const TOOL_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

const globListSchema = z.array(z.string().min(1, 'a glob must not be empty').max(256)).max(200);

/** Which items pass: absent allow = all; deny wins over allow. Globs are picomatch globs (`*`, `?`, `[ab]`, `{a,b}`, `**`). */
export const itemFilterSchema = z.strictObject({
  allow: globListSchema.optional(),
  deny: globListSchema.optional(),
});

export const toolOverrideSchema = z.strictObject({
  /** The name clients see instead (used as given, without a prefix). */
  name: z.string().regex(TOOL_NAME_PATTERN, 'must be 1-64 letters, digits, "_", "-" or "."').optional(),
  description: z.string().max(10_000).optional(),
  /** Merged over the tool's own annotations (e.g. readOnlyHint, destructiveHint, title). */
  annotations: z.record(z.string(), z.unknown()).optional(),
});

export const virtualServerSourceSchema = z.strictObject({
  /** An McpServer's name. */
  name: serverNameSchema,
  tools: itemFilterSchema
    .extend({
      /** Keyed by the tool's name on its server. */
      overrides: z.record(z.string().min(1), toolOverrideSchema).optional(),
    })
    .optional(),
  /** Globs over resource URIs (and the uriTemplate of resource templates). */
  resources: itemFilterSchema.optional(),
  prompts: itemFilterSchema.optional(),
});

export const NAMING_STRATEGIES = ['prefix', 'none'] as const;

export const virtualServerSpecSchema = z
  .strictObject({
    /** Optional in documents (`mcpctl apply -f` tells kinds apart by it); always "VirtualServer". */
    kind: z.literal(VIRTUAL_SERVER_KIND).optional(),
    name: serverNameSchema,
    description: z.string().max(2_000).optional(),
    servers: z.array(virtualServerSourceSchema).min(1, 'must name at least one server').max(200),
    /** prefix: `<server>__<name>` (default); none: names as the servers give them, and a clash is an error naming both. */
    naming: z.enum(NAMING_STRATEGIES).default('prefix'),
    /** Expose only find_tools(query) and call_tool(name, arguments) instead of every tool. */
    toolSearch: z.boolean().default(false),
  })
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    spec.servers.forEach((source, i) => {
      if (seen.has(source.name)) ctx.addIssue({ code: 'custom', path: ['servers', i, 'name'], message: `lists server "${source.name}" twice` });
      seen.add(source.name);
    });
    // Overridden names are known now: two of them, or one and a name the prefix strategy makes, may clash.
    const claimed = new Map<string, string>();
    spec.servers.forEach((source, i) => {
      for (const [tool, override] of Object.entries(source.tools?.overrides ?? {})) {
        if (override.name === undefined) continue;
        const owner = claimed.get(override.name);
        const here = `${source.name}/${tool}`;
        if (owner) {
          ctx.addIssue({
            code: 'custom',
            path: ['servers', i, 'tools', 'overrides', tool, 'name'],
            message: `"${override.name}" is the name of both ${owner} and ${here}`,
          });
        }
        claimed.set(override.name, here);
      }
    });
  })
  .meta({ id: 'VirtualServerSpec' });

export type VirtualServerSpec = z.output<typeof virtualServerSpecSchema>;
export type VirtualServerSpecInput = z.input<typeof virtualServerSpecSchema>;
export type VirtualServerSource = VirtualServerSpec['servers'][number];
export type ItemFilter = z.output<typeof itemFilterSchema>;

export type VirtualServerValidation = { ok: true; spec: VirtualServerSpec } | { ok: false; errors: FieldError[] };

export function validateVirtualServerSpec(input: unknown): VirtualServerValidation {
  const result = virtualServerSpecSchema.safeParse(input);
  return result.success ? { ok: true, spec: result.data } : { ok: false, errors: fieldErrorsOf(result.error) };
}

/** A spec document is a VirtualServer when it says so; any other document is an McpServer. */
export function isVirtualServerDocument(doc: unknown): boolean {
  return typeof doc === 'object' && doc !== null && (doc as { kind?: unknown }).kind === VIRTUAL_SERVER_KIND;
}

/** The stored view: the spec as applied, and when. */
export interface VirtualServerView {
  name: string;
  spec: VirtualServerSpec;
  /** ISO-8601 time of the last change. */
  updatedAt: string;
  /** How many times the spec changed since creation. */
  generation: number;
}

export function virtualServerWorkflowId(name: string): string {
  return `mcp-virtual-server:${name}`;
}

export interface VirtualServerWorkflowInput {
  spec: VirtualServerSpec;
  /** Carried across continue-as-new. */
  generation?: number;
  updatedAt?: string;
}

// ---- REST resources (GET/PUT/DELETE /api/v1/virtualservers) --------------------------

export const virtualServerPathSchema = z.object({ name: serverNameSchema });

export const virtualServerResourceSchema = z
  .object({
    name: z.string(),
    spec: virtualServerSpecSchema,
    updatedAt: z.string(),
    generation: z.number().int(),
    createdAt: z.string().nullable(),
    /** Where MCP clients connect (Streamable HTTP). */
    endpoint: z.string(),
  })
  .meta({ id: 'VirtualServer' });
export type VirtualServerResource = z.output<typeof virtualServerResourceSchema>;

export const appliedVirtualServerSchema = virtualServerResourceSchema
  .extend({ outcome: z.enum(['created', 'configured', 'unchanged']) })
  .meta({ id: 'AppliedVirtualServer' });
export const deletedVirtualServerSchema = z.object({ name: z.string(), deleted: z.literal(true) }).meta({ id: 'DeletedVirtualServer' });

/** The gateway path of a virtual server. */
export function virtualServerEndpoint(name: string): string {
  return `/mcp/virtual/${name}`;
}
