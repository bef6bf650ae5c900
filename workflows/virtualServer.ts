/**
 * virtualServerWorkflow: one per VirtualServer, the durable home of its spec (as
 * serverWorkflow is of an McpServer's). It runs no activity: updates change the
 * spec, the query reads it, delete ends the workflow. The gateways read it with
 * the query when a client connects to /mcp/virtual/<name>.
 */
import { allHandlersFinished, condition, continueAsNew, setHandler, workflowInfo } from '@temporalio/workflow';
import type { VirtualServerView, VirtualServerWorkflowInput } from '../src/contracts/virtualServer';
import { applyVirtualServerUpdate, deleteVirtualServerUpdate, virtualServerQuery } from '../src/contracts/virtualServerMessages';
import { specValidators, virtualServerValidators } from './specValidation';

/** Continue as new past this many events even if the server does not suggest it yet. */
const MAX_HISTORY_EVENTS = 5_000;

export async function virtualServerWorkflow(input: VirtualServerWorkflowInput): Promise<void> {
  const view: VirtualServerView = {
    name: input.spec.name,
    spec: input.spec,
    generation: input.generation ?? 1,
    updatedAt: input.updatedAt ?? new Date().toISOString(),
  };
  let deleted = false;

  setHandler(virtualServerQuery, () => view);
  setHandler(
    applyVirtualServerUpdate,
    (raw) => {
      const spec = virtualServerValidators().validateVirtualServerSpec(raw);
      if (!spec.ok) throw new Error('unreachable: the validator rejects invalid specs');
      if (JSON.stringify(spec.spec) !== JSON.stringify(view.spec)) {
        view.spec = spec.spec;
        view.generation += 1;
        view.updatedAt = new Date().toISOString();
      }
      return view;
    },
    {
      validator: (raw) => {
        const result = virtualServerValidators().validateVirtualServerSpec(raw);
        if (!result.ok) throw new Error(`invalid virtual server spec: ${specValidators().describeFieldErrors(result.errors)}`);
        if (result.spec.name !== view.name) throw new Error(`name: "${result.spec.name}" does not match the virtual server "${view.name}"`);
      },
    },
  );
  setHandler(deleteVirtualServerUpdate, () => {
    deleted = true;
    return view.name;
  });

  const continueAsNewDue = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY_EVENTS;
  await condition(() => deleted || continueAsNewDue());
  await condition(allHandlersFinished);
  if (deleted) return;
  await continueAsNew<typeof virtualServerWorkflow>({ spec: view.spec, generation: view.generation, updatedAt: view.updatedAt });
}
