/**
 * The workflows the instance tests run: the real instanceWorkflow and the real
 * probeWorkflow (its probe activities are the real ones, on a fast clock in
 * front of the fake node's gateway). Kept apart
 * from workflows/index.ts so these tests do not depend on the server workflow.
 */
export { instanceWorkflow } from '../../workflows/instance';
export { probeWorkflow } from '../../workflows/probe';
