/**
 * The Policy kind: a named Cedar policy set that decides, per principal, which tools,
 * resources and prompts the gateway lets through (lists show what the principal may use:
 * tools by "tools/list", resources by "resources/read", prompts by "prompts/get").
 * Applied like servers (`mcpctl apply -f`, `PUT /api/v1/policies/<name>`), kept by one
 * workflow (policySetWorkflow) and published in its memo, where every gateway of the
 * cluster reads it.
 *
 * The Cedar names mcpd evaluates with, and the schema policies are validated against:
 *   principal  Mcpd::User::"<name>"  { name, role, source }  in its Mcpd::Group::"<g>"s and Mcpd::Role::"<role>"
 *   action     Mcpd::Action::"tools/list" | "tools/call" | "resources/read" | "prompts/get"
 *   resource   Mcpd::Tool::"<server>/<tool>" { server, name }, Mcpd::Resource::"<server>/<uri>" { server, uri },
 *              Mcpd::Prompt::"<server>/<prompt>" { server, name }; each in Mcpd::Server::"<server>"
 */
import { z } from 'zod';
import { SERVER_NAME_PATTERN } from './spec';

export const POLICY_KIND = 'Policy';
export const POLICY_NAME_PATTERN = SERVER_NAME_PATTERN;
/** A policy set's text is bounded: it lives in a workflow's memo with every other one. */
export const POLICY_MAX_CHARS = 64 * 1024;

export const policyNameSchema = z
  .string()
  .regex(POLICY_NAME_PATTERN, 'must be 1-40 lowercase letters, digits or "-", starting and ending with a letter or digit');
export const policyPathSchema = z.object({ name: policyNameSchema });

/** A Policy document as applied (`kind: Policy` in a file; the API takes it with or without `kind`). */
export const policyDocumentSchema = z
  .strictObject({
    kind: z.literal(POLICY_KIND, { error: `must be "${POLICY_KIND}"` }).optional(),
    name: policyNameSchema,
    description: z.string().max(1000, { error: 'must be at most 1000 characters' }).optional(),
    policy: z
      .string({ error: 'must be the Cedar policy text (a string)' })
      .min(1, { error: 'must not be empty' })
      .max(POLICY_MAX_CHARS, { error: `must be at most ${POLICY_MAX_CHARS} characters` }),
  })
  .meta({ id: 'PolicyDocument' });
export type PolicyDocument = Omit<z.output<typeof policyDocumentSchema>, 'kind'>;

/** A policy as stored and listed. */
export interface PolicyView {
  name: string;
  description?: string;
  policy: string;
  createdAt: string;
  updatedAt: string;
}

export const policyViewSchema = z
  .object({
    name: z.string(),
    description: z.string().optional(),
    policy: z.string(),
    createdAt: z.string().meta({ format: 'date-time' }),
    updatedAt: z.string().meta({ format: 'date-time' }),
  })
  .meta({ id: 'Policy' });

/** Every policy in force, with a revision that grows with each change (gateways reload when it differs). */
export interface PolicySetState {
  revision: number;
  policies: PolicyView[];
}

// ---- Cedar names -----------------------------------------------------------------

export const CEDAR_NAMESPACE = 'Mcpd';
export const POLICY_ACTIONS = ['tools/list', 'tools/call', 'resources/read', 'prompts/get'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

/** The Cedar schema every policy is validated against (strict mode): a typo in an attribute or a type is an error at apply. */
export const CEDAR_SCHEMA = `namespace ${CEDAR_NAMESPACE} {
  entity Role;
  entity Group;
  entity User in [Group, Role] { name: String, role: String, source: String };
  entity Server;
  entity Tool in [Server] { server: String, name: String };
  entity Resource in [Server] { server: String, uri: String };
  entity Prompt in [Server] { server: String, name: String };
  action "tools/list", "tools/call" appliesTo { principal: User, resource: Tool };
  action "resources/read" appliesTo { principal: User, resource: Resource };
  action "prompts/get" appliesTo { principal: User, resource: Prompt };
}`;

/** The JSON-RPC error code of a request a policy denied (in the implementation-defined server error range). */
export const POLICY_DENIED_CODE = -32040;
