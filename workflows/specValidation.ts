/**
 * The spec validators of serverWorkflow and virtualServerWorkflow, loaded when first used.
 *
 * Why not an import: the worker evaluates the workflow bundle's modules again for every
 * workflow it creates or replays (that is how the SDK keeps workflows apart), so whatever a
 * module imports at its top is paid by every instance and probe workflow as well. zod and
 * the schemas built with it were most of that work: in a start of 300 instances, more than
 * half of the workflow thread's CPU. Only these two workflows validate specs, so only they
 * load the validators, when an update or a start asks for it.
 */
import type * as SpecModule from '../src/contracts/spec';
import type * as VirtualServerModule from '../src/contracts/virtualServer';

export function specValidators(): typeof SpecModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
  return require('../src/contracts/spec') as typeof SpecModule;
}

export function virtualServerValidators(): typeof VirtualServerModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
  return require('../src/contracts/virtualServer') as typeof VirtualServerModule;
}
