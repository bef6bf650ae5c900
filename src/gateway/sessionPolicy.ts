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
