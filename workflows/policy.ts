/**
 * policySetWorkflow: the one workflow (id `mcpd-policy-set`) that keeps every Policy,
 * like serverWorkflow keeps a server's spec. The API validates a policy's Cedar text
 * before it applies it here; this workflow stores it, counts a revision up with every
 * change and publishes the whole set in its memo, which every gateway of the cluster
 * reads (a describe, no workflow task). It never ends: deleting the last policy leaves
 * an empty set.
 */
import { allHandlersFinished, condition, continueAsNew, setHandler, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { PolicyDocument, PolicySetState, PolicyView } from '../src/contracts/policy';
import {
  applyPolicyUpdate,
  deletePolicyUpdate,
  POLICY_MAX_COUNT,
  POLICY_MEMO_KEY,
  policySetQuery,
  type PolicySetWorkflowInput,
} from '../src/contracts/policyMessages';

/** Continue as new past this many events (a change costs a few). */
const HISTORY_LIMIT = 2_000;
/** The memo carries every policy: bounded well below Temporal's payload limit. */
const MAX_TOTAL_CHARS = 512 * 1024;

export async function policySetWorkflow(input: PolicySetWorkflowInput = {}): Promise<void> {
  let state: PolicySetState = input.carried ?? { revision: 0, policies: [] };
  const publish = (next: PolicySetState) => {
    state = next;
    upsertMemo({ [POLICY_MEMO_KEY]: state });
  };
  setHandler(policySetQuery, () => state);
  setHandler(
    applyPolicyUpdate,
    (doc: PolicyDocument) => {
      const now = new Date().toISOString();
      const before = state.policies.find((p) => p.name === doc.name);
      if (before && before.policy === doc.policy && before.description === doc.description) return { policy: before, outcome: 'unchanged' as const };
      const policy: PolicyView = {
        name: doc.name,
        ...(doc.description !== undefined ? { description: doc.description } : {}),
        policy: doc.policy,
        createdAt: before?.createdAt ?? now,
        updatedAt: now,
      };
      const policies = [...state.policies.filter((p) => p.name !== doc.name), policy].sort((a, b) => a.name.localeCompare(b.name));
      publish({ revision: state.revision + 1, policies });
      return { policy, outcome: before ? ('configured' as const) : ('created' as const) };
    },
    {
      validator: (doc: PolicyDocument) => {
        const others = state.policies.filter((p) => p.name !== doc.name);
        if (others.length + 1 > POLICY_MAX_COUNT) throw new Error(`at most ${POLICY_MAX_COUNT} policies may exist`);
        const total = others.reduce((n, p) => n + p.policy.length, doc.policy.length);
        if (total > MAX_TOTAL_CHARS) throw new Error(`all policies together may hold at most ${MAX_TOTAL_CHARS} characters (this one would make ${total})`);
      },
    },
  );
  setHandler(deletePolicyUpdate, (name: string) => {
    if (!state.policies.some((p) => p.name === name)) return false;
    publish({ revision: state.revision + 1, policies: state.policies.filter((p) => p.name !== name) });
    return true;
  });
  publish(state);
  await condition(() => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > HISTORY_LIMIT);
  await condition(allHandlersFinished);
  await continueAsNew<typeof policySetWorkflow>({ carried: state });
}
