/**
 * The policy check of one client session: its principal against the policy set in
 * force, for each tools/list entry, tools/call, resources/read and prompts/get. A
 * decision taken while policies are in force is noted in the request's audit record.
 */
import type { Principal } from '../contracts/api';
import type { PolicyAction } from '../contracts/policy';
import { describeResource, type PolicyResource } from '../policy/entities';
import type { PolicyEngine } from '../policy/engine';
import type { AuditNote } from './requestAudit';

export interface SessionPolicy {
  /** Null when allowed, else the message of the JSON-RPC error to answer with. */
  refusal(action: PolicyAction, resource: PolicyResource, note?: AuditNote): string | null;
  /** Whether a listed item stays in the list this session sees. */
  visible(action: PolicyAction, resource: PolicyResource): boolean;
  /** Whether policies are in force at all (else lists need no filtering). */
  readonly enforcing: boolean;
}

export function sessionPolicy(engine: PolicyEngine, principal: Principal): SessionPolicy {
  return {
    get enforcing() {
      return !engine.loaded || engine.enforcing;
    },
    refusal(action, resource, note) {
      if (!engine.loaded) {
        if (note) Object.assign(note, { decision: 'denied', decidedBy: 'policies not loaded yet' });
        return `denied by policy: the policies are not loaded yet (Temporal does not answer); try again shortly`;
      }
      const decision = engine.decide(principal, action, resource);
      if (note && engine.enforcing) note.decidedBy = decision.decidedBy;
      if (decision.allowed) return null;
      if (note) note.decision = 'denied';
      return `denied by policy: "${principal.name}" may not ${action} ${describeResource(resource)} (${decision.decidedBy})`;
    },
    visible(action, resource) {
      return engine.loaded && engine.decide(principal, action, resource).allowed;
    },
  };
}

/**
 * Which decision shows an item of a list: tools have their own tools/list action; prompts
 * and resources are listed to the principals that may get or read them.
 */
const LISTED: Record<PolicyListKind, { action: PolicyAction; resource: (server: string, key: string) => PolicyResource }> = {
  tools: { action: 'tools/list', resource: (server, name) => ({ kind: 'tool', server, name }) },
  prompts: { action: 'prompts/get', resource: (server, name) => ({ kind: 'prompt', server, name }) },
  resources: { action: 'resources/read', resource: (server, uri) => ({ kind: 'resource', server, uri }) },
};

/** The lists a session's policy filters. */
export type PolicyListKind = 'tools' | 'prompts' | 'resources';

export function isPolicyListKind(kind: string | undefined): kind is PolicyListKind {
  return kind === 'tools' || kind === 'prompts' || kind === 'resources';
}

/** Whether an item stays in a list: its server, and its name (its URI for resources). */
export type ListFilter = (server: string, key: string) => boolean;

/** The session's policy as a filter of one list, asked at each list (policies come and go); undefined while none is in force. */
export function listFilter(policy: SessionPolicy | undefined, list: PolicyListKind): ListFilter | undefined {
  if (!policy?.enforcing) return undefined;
  const { action, resource } = LISTED[list];
  return (server, key) => policy.visible(action, resource(server, key));
}
