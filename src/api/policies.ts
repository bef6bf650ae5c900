/**
 * Policies through the API: PUT /policies/<name> checks the Cedar text (parser, then
 * the validator against mcpd's schema; each problem with its line and column) before
 * anything is stored, then applies it to policySetWorkflow with update-with-start, as
 * servers are applied to their workflows. GET lists and reads them, DELETE removes one.
 */
import { WithStartWorkflowOperation, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { TASK_QUEUE } from '../contracts/instance';
import { policyDocumentSchema, type PolicyDocument, type PolicySetState, type PolicyView } from '../contracts/policy';
import { applyPolicyUpdate, deletePolicyUpdate, POLICY_SET_WORKFLOW_ID, policySetQuery, type PolicySetWorkflowInput } from '../contracts/policyMessages';
import type { ApplyOutcome } from '../contracts/api';
import { checkPolicyText } from '../policy/engine';
import { badRequest, notFound, toApiError } from './errors';
import { parseWith } from './validation';

/** A request body as Policy `name`; 400 naming the field, or the line and column of each Cedar problem. */
export function parsePolicyBody(name: string, body: unknown): PolicyDocument {
  const { kind: _kind, ...doc } = parseWith(policyDocumentSchema, body, 'policy');
  if (doc.name !== name)
    throw badRequest(`policy name "${doc.name}" does not match the URL name "${name}"`, [{ field: 'name', message: `must equal "${name}"` }]);
  const problems = checkPolicyText(doc.policy);
  if (problems.length > 0) {
    const details = problems.map((p) => ({ field: 'policy', ...(p.line !== undefined ? { line: p.line, column: p.column } : {}), message: p.message }));
    const first = details[0];
    const where = first.line !== undefined ? `line ${first.line}, column ${first.column}: ` : '';
    const more = details.length > 1 ? ` (and ${details.length - 1} more)` : '';
    throw badRequest(`invalid policy "${name}": ${where}${first.message}${more}`, details);
  }
  return doc;
}

export class PolicyControl {
  constructor(
    private readonly client: Client,
    /** Called after every change, so this process's gateway enforces it at once. */
    private readonly changed: () => Promise<void> = async () => undefined,
  ) {}

  async apply(doc: PolicyDocument): Promise<{ policy: PolicyView; outcome: ApplyOutcome }> {
    const input: PolicySetWorkflowInput = {};
    const startWorkflowOperation = new WithStartWorkflowOperation('policySetWorkflow', {
      workflowId: POLICY_SET_WORKFLOW_ID,
      taskQueue: TASK_QUEUE,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    try {
      const applied = await this.client.workflow.executeUpdateWithStart(applyPolicyUpdate, { args: [doc], startWorkflowOperation });
      await this.changed();
      return applied;
    } catch (err) {
      throw toApiError(err, `policy "${doc.name}"`);
    }
  }

  async list(): Promise<PolicyView[]> {
    return (await this.state()).policies;
  }

  async get(name: string): Promise<PolicyView> {
    const found = (await this.state()).policies.find((p) => p.name === name);
    if (!found) throw notFound(`policy "${name}" not found`);
    return found;
  }

  async delete(name: string): Promise<void> {
    let deleted = false;
    try {
      deleted = await this.client.workflow.getHandle(POLICY_SET_WORKFLOW_ID).executeUpdate(deletePolicyUpdate, { args: [name] });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw toApiError(err, `policy "${name}"`);
    }
    if (!deleted) throw notFound(`policy "${name}" not found`);
    await this.changed();
  }

  private async state(): Promise<PolicySetState> {
    try {
      return await this.client.workflow.getHandle(POLICY_SET_WORKFLOW_ID).query(policySetQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { revision: 0, policies: [] };
      throw toApiError(err, 'the policy set');
    }
  }
}
