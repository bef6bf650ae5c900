/**
 * The workflows the instance tests run: the real instanceWorkflow and the real
 * probeWorkflow (its probe activity is mocked in the test worker). Kept apart
 * from workflows/index.ts so these tests do not depend on the server workflow.
 */
export { instanceWorkflow } from '../../workflows/instance';
export { probeWorkflow } from '../../workflows/probe';
