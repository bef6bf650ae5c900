/**
 * Cedar, through the official WebAssembly build (@cedar-policy/cedar-wasm, the only
 * importer): checking a policy text at apply (parser, then the validator against
 * CEDAR_SCHEMA in strict mode, every problem with its line and column), and deciding
 * the gateway's requests with the policy set in force.
 *
 * Semantics: with no policy at all, everything a principal's role allows is allowed
 * (mcpd before policies). Once one policy exists, Cedar's own rules hold: a request is
 * allowed only when some `permit` matches it and no `forbid` does.
 *
 * Cost: the policy set is parsed once per change (preparsePolicySet), the entities of
 * a principal are built once per principal, and each decision is cached per policy
 * revision, principal, action and resource, so a repeated call costs a Map look-up;
 * a first decision costs one Cedar evaluation (see bench/policy.bench.ts).
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Principal } from '../contracts/api';
import { CEDAR_SCHEMA, type PolicyAction, type PolicySetState } from '../contracts/policy';
import {
  actionUid,
  lineColumn,
  principalEntities,
  principalKey,
  resourceEntities,
  resourceKey,
  type CedarEntity,
  type EntityUid,
  type PolicyResource,
} from './entities';

export interface PolicyProblem {
  message: string;
  /** Where in the policy text, from 1; absent when Cedar names no place. */
  line?: number;
  column?: number;
}

function problemsOf(text: string, errors: cedar.DetailedError[]): PolicyProblem[] {
  return errors.map((e) => {
    const at = e.sourceLocations?.[0];
    const detail = [e.message.replace(/^failed to parse policies from string: /, ''), at?.label, e.help].filter(Boolean).join('; ');
    return at ? { message: detail, ...lineColumn(text, at.start) } : { message: detail };
  });
}

/** What is wrong with a policy text (it does not parse, or does not fit mcpd's schema); empty when nothing is. */
export function checkPolicyText(text: string): PolicyProblem[] {
  const parsed = cedar.checkParsePolicySet({ staticPolicies: text });
  if (parsed.type === 'failure') return problemsOf(text, parsed.errors);
  const validated = cedar.validate({ schema: CEDAR_SCHEMA, policies: { staticPolicies: text }, validationSettings: { mode: 'strict' } });
  if (validated.type === 'failure') return problemsOf(text, validated.errors);
  return problemsOf(
    text,
    validated.validationErrors.map((v) => v.error),
  );
}

/** The individual policies of a text (Cedar's own split), for ids that name the document they came from. */
function policiesOf(text: string): string[] {
  const parts = cedar.policySetTextToParts(text);
  if (parts.type === 'failure') throw new Error(parts.errors.map((e) => e.message).join('; '));
  return parts.policies;
}

export interface PolicyDecision {
  allowed: boolean;
  /** "no policy", "policy dev-tools", "policy (no permit matched)", … */
  decidedBy: string;
}

const NO_POLICY: PolicyDecision = Object.freeze({ allowed: true, decidedBy: 'no policy' });
/** Decisions kept before the cache starts over (each is a few hundred bytes). */
const MAX_CACHED_DECISIONS = 50_000;
let engines = 0;

export class PolicyEngine {
  private revision: number | undefined;
  private active = false;
  /** The preparsed set's name in the wasm module's cache (one per engine). */
  private readonly setId = `mcpd-policy-set-${++engines}`;
  private readonly decisions = new Map<string, PolicyDecision>();
  private readonly principals = new Map<string, { uid: EntityUid; entities: CedarEntity[] }>();

  /** Whether a policy set was loaded at least once (before that, nothing is decided). */
  get loaded(): boolean {
    return this.revision !== undefined;
  }

  /** Whether any policy is in force (else every request is allowed). */
  get enforcing(): boolean {
    return this.active;
  }

  get currentRevision(): number | undefined {
    return this.revision;
  }

  /** Puts a policy set in force; the same revision again changes nothing. Throws when a stored policy no longer parses (the old set stays). */
  load(state: PolicySetState): void {
    if (state.revision === this.revision) return;
    const staticPolicies: Record<string, string> = {};
    for (const doc of state.policies) {
      const parts = policiesOf(doc.policy);
      parts.forEach((text, i) => (staticPolicies[parts.length === 1 ? doc.name : `${doc.name}#${i + 1}`] = text));
    }
    if (Object.keys(staticPolicies).length > 0) {
      const prepared = cedar.preparsePolicySet(this.setId, { staticPolicies });
      if (prepared.type === 'failure') throw new Error(`policy set revision ${state.revision}: ${prepared.errors.map((e) => e.message).join('; ')}`);
    }
    this.active = Object.keys(staticPolicies).length > 0;
    this.revision = state.revision;
    this.decisions.clear();
    this.principals.clear();
  }

  /** May this principal do this to this resource? */
  decide(principal: Principal, action: PolicyAction, resource: PolicyResource): PolicyDecision {
    if (!this.active) return NO_POLICY;
    const who = principalKey(principal);
    const key = `${who}\n${action}\n${resourceKey(resource)}`;
    const cached = this.decisions.get(key);
    if (cached) return cached;
    let subject = this.principals.get(who);
    if (!subject) {
      subject = principalEntities(principal);
      this.principals.set(who, subject);
    }
    const target = resourceEntities(resource);
    const answer = cedar.statefulIsAuthorized({
      principal: subject.uid,
      action: actionUid(action),
      resource: target.uid,
      context: {},
      preparsedPolicySetId: this.setId,
      entities: [...subject.entities, ...target.entities],
    });
    let decision: PolicyDecision;
    if (answer.type === 'failure') {
      decision = { allowed: false, decidedBy: `policy evaluation failed: ${answer.errors.map((e) => e.message).join('; ')}` };
    } else {
      const { decision: verdict, diagnostics } = answer.response;
      const reasons = diagnostics.reason;
      decision = {
        allowed: verdict === 'allow',
        decidedBy: reasons.length > 0 ? `policy ${reasons.join(', ')}` : verdict === 'allow' ? 'policy' : 'policy (no permit matched)',
      };
    }
    if (this.decisions.size >= MAX_CACHED_DECISIONS) this.decisions.clear();
    this.decisions.set(key, decision);
    return decision;
  }

  /** One uncached evaluation, for the benchmark: what a first decision costs. */
  evaluateUncached(principal: Principal, action: PolicyAction, resource: PolicyResource): PolicyDecision {
    this.decisions.clear();
    this.principals.clear();
    return this.decide(principal, action, resource);
  }
}
