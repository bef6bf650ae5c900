/**
 * The messages of policySetWorkflow (apart from the Policy kind's schemas in policy.ts:
 * workflow code imports this module, and every module it imports is evaluated again for
 * each workflow the worker creates, so it carries no zod).
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { PolicyDocument, PolicySetState, PolicyView } from './policy';

/** How many policies may exist at once (the set lives in one workflow's memo). */
export const POLICY_MAX_COUNT = 200;

export const POLICY_SET_WORKFLOW_ID = 'mcpd-policy-set';
export const POLICY_MEMO_KEY = 'policySet';

/** Stores the (already validated) policy; the answer says whether it was new, changed or the same. */
export const applyPolicyUpdate = defineUpdate<{ policy: PolicyView; outcome: 'created' | 'configured' | 'unchanged' }, [PolicyDocument]>('applyPolicy');
/** Removes a policy; false when there was none by that name. */
export const deletePolicyUpdate = defineUpdate<boolean, [string]>('deletePolicy');
export const policySetQuery = defineQuery<PolicySetState>('policySet');

export interface PolicySetWorkflowInput {
  /** The state carried across continue-as-new. */
  carried?: PolicySetState;
}
