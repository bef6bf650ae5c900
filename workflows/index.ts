/** Every workflow the `mcpd` task queue runs; the worker bundles this file. */
export { instanceWorkflow } from './instance';
// ---- workflows owned by other parts of mcpd: one export per file ----
export { probeWorkflow } from './probe';
export { serverWorkflow } from './server';
export { nodeWorkflow } from './node';
export { virtualServerWorkflow } from './virtualServer';
export { policySetWorkflow } from './policy';
