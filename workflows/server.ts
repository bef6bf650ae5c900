/**
 * serverWorkflow: one per McpServer. It holds the spec and reconciles the
 * instance workflows (children with deterministic ids) towards it.
 *
 * Concurrency: update handlers only change the desired state (synchronously, so
 * they cannot interleave) and then wait for the single reconciler loop below to
 * converge on it. The reconciler is the only code that starts, stops or rolls
 * instances, so concurrent apply/scale/stop/delete are applied one after the
 * other and a newer request interrupts a rollout at the next safe point.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { ServerActivities } from '../activities/server';
import { describeFieldErrors, validateSpec, type McpServerSpec } from '../src/contracts/spec';
import { instanceId, TASK_QUEUE, type InstanceView } from '../src/contracts/instance';
import { mcpHealthKey, mcpInstanceStatusKey, mcpServerKey } from '../src/contracts/searchAttributes';
import {
  applySpecUpdate,
  deleteServerUpdate,
  scaleServerUpdate,
  serverQuery,
  specChangedSignal,
  startServerUpdate,
  stopServerUpdate,
  stopSignal,
  type InstanceWorkflowInput,
  type ServerInstanceRecord,
  type ServerView,
  type ServerWorkflowInput,
} from '../src/contracts/messages';

/** How long a rolled instance may take to run healthy on the new spec before the rollout halts. */
export const READY_TIMEOUT_SECONDS = 600;
/** How long a stopping instance may take to end before the server gives up waiting for it. */
export const STOP_TIMEOUT_SECONDS = 300;
const POLL_MIN_SECONDS = 1;
const POLL_MAX_SECONDS = 10;
/** Continue as new past this many events even if the server does not suggest it yet. */
const MAX_HISTORY_EVENTS = 10_000;


type InstanceWorkflow = (input: InstanceWorkflowInput) => Promise<void>;

const { instanceStatus, instanceRunning } = proxyActivities<ServerActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '15 s',
  retry: { maximumAttempts: 3, initialInterval: '1 s' },
});

export async function serverWorkflow(input: ServerWorkflowInput): Promise<void> {
  const name = input.spec.name;
  const node = input.node;
  let spec: McpServerSpec = input.spec;
  let running = input.running;
  let deleting = false;
  let specVersion = input.carried?.specVersion ?? 1;
  let haltedVersion = input.carried?.haltedVersion ?? null;
  let rolloutError = input.carried?.rolloutError ?? null;
  const instances = new Map<number, ServerInstanceRecord>((input.carried?.instances ?? []).map((r) => [r.ordinal, { ...r }]));
  /** Bumped by every accepted change of the desired state; the reconciler has converged up to `converged`. */
  let requested = input.carried ? 0 : 1;
  let converged = 0;
  /** `start` also re-starts instance workflows that ended behind the server's back. */
  let repairRequested = false;

  const wantedOrdinals = (): number[] => (running && !deleting ? range(spec.replicas) : []);
  const idOf = (ordinal: number) => instanceId(name, ordinal);
  const hasPendingChange = () => requested > converged;
  /** The instances running or about to run (the reconciler may not have started them yet). */
  const currentIds = () => [...new Set([...instances.keys(), ...wantedOrdinals()])].sort(byNumber).map(idOf);

  const view = (): ServerView => {
    const wanted = wantedOrdinals();
    const updated = wanted.filter((o) => (instances.get(o)?.readyVersion ?? 0) >= specVersion).length;
    const outdated = updated < wanted.length;
    return {
      name,
      spec,
      running,
      instances: wanted.map(idOf),
      specVersion,
      rollout:
        outdated || (rolloutError && haltedVersion === specVersion)
          ? { inProgress: outdated && haltedVersion !== specVersion, updated, total: wanted.length, error: haltedVersion === specVersion ? rolloutError : null }
          : null,
    };
  };

  /** Applies a change of the desired state at once and waits until the reconciler has started/stopped instances for it. */
  const change = async (mutate: () => void): Promise<void> => {
    mutate();
    const ticket = ++requested;
    await condition(() => converged >= ticket);
  };

  const rejectWhileDeleting = () => {
    if (deleting) throw new Error(`server "${name}" is being deleted`);
  };

  setHandler(serverQuery, view);

  setHandler(
    applySpecUpdate,
    async (specInput) => {
      const next = parseSpec(specInput);
      await change(() => {
        if (!sameSpecIgnoringReplicas(spec, next)) {
          specVersion++;
          haltedVersion = null;
          rolloutError = null;
        }
        spec = next;
      });
      return view();
    },
    {
      validator: (specInput) => {
        rejectWhileDeleting();
        const next = parseSpec(specInput);
        if (next.name !== name) throw new Error(`name: must be "${name}" (this server's name), got "${next.name}"`);
      },
    },
  );

  setHandler(
    startServerUpdate,
    async () => {
      await change(() => {
        running = true;
        repairRequested = true;
      });
      return wantedOrdinals().map(idOf);
    },
    { validator: rejectWhileDeleting },
  );

  setHandler(
    stopServerUpdate,
    async () => {
      const stopped = currentIds();
      await change(() => {
        running = false;
      });
      return stopped;
    },
    { validator: rejectWhileDeleting },
  );

  setHandler(
    scaleServerUpdate,
    async (replicas) => {
      await change(() => {
        spec = { ...spec, replicas };
      });
      return view();
    },
    {
      validator: (replicas) => {
        rejectWhileDeleting();
        parseSpec({ ...spec, replicas });
      },
    },
  );

  setHandler(deleteServerUpdate, async () => {
    const stopped = currentIds();
    await change(() => {
      deleting = true;
    });
    return stopped;
  });

  // ---- the reconciler ----------------------------------------------------------

  const startInstances = async (ordinals: number[]): Promise<void> => {
    await Promise.all(
      ordinals.map(async (ordinal) => {
        const record: ServerInstanceRecord = { ordinal, signalledVersion: specVersion, readyVersion: specVersion, containerBefore: null };
        try {
          await startChild<InstanceWorkflow>('instanceWorkflow', {
            workflowId: idOf(ordinal),
            taskQueue: TASK_QUEUE,
            // Instances outlive this run: the server continues as new while they keep running.
            parentClosePolicy: ParentClosePolicy.ABANDON,
            args: [{ server: name, ordinal, spec, node }],
            // The line the Web UI's workflow list shows; live status is in the instance's current details.
            staticSummary: `MCP server ${name}, replica ${ordinal} (${spec.image ?? spec.packageName ?? spec.command?.join(' ')})`,
            typedSearchAttributes: [
              { key: mcpServerKey, value: name },
              { key: mcpInstanceStatusKey, value: 'PENDING' },
              { key: mcpHealthKey, value: 'unknown' },
            ],
          });
          instances.set(ordinal, record);
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          // Already running (a repair, or a server workflow recreated while its
          // instances lived on): adopt it. Without a record we cannot know its
          // spec and take it as current rather than restarting it blindly.
          if (!instances.has(ordinal)) instances.set(ordinal, record);
        }
      }),
    );
  };

  const stopInstances = async (ordinals: number[]): Promise<void> => {
    await Promise.all(
      ordinals.map(async (ordinal) => {
        try {
          await getExternalWorkflowHandle(idOf(ordinal)).signal(stopSignal);
        } catch (err) {
          // Not running any more: nothing to stop.
          log.info('instance already gone', { instanceId: idOf(ordinal), error: String(err) });
        }
      }),
    );
    await Promise.all(
      ordinals.map(async (ordinal) => {
        if (!(await waitUntilEnded(idOf(ordinal), STOP_TIMEOUT_SECONDS))) {
          log.warn('instance did not stop in time', { instanceId: idOf(ordinal), timeoutSeconds: STOP_TIMEOUT_SECONDS });
        }
        instances.delete(ordinal);
      }),
    );
  };

  const scaleToDesired = async (): Promise<void> => {
    const wanted = wantedOrdinals();
    // Scale down from the highest ordinal; delete and stop take everything.
    const extra = [...instances.keys()].filter((o) => !wanted.includes(o)).sort((a, b) => b - a);
    if (extra.length) await stopInstances(extra);
    const repair = repairRequested;
    repairRequested = false;
    const missing = wanted.filter((o) => repair || !instances.has(o));
    if (missing.length) await startInstances(missing);
  };

  /** Rolls outdated instances one at a time in ordinal order; returns early when a newer change waits. */
  const rollOut = async (): Promise<void> => {
    for (const ordinal of wantedOrdinals()) {
      const record = instances.get(ordinal);
      if (!record || record.readyVersion >= specVersion) continue;
      if (haltedVersion === specVersion || hasPendingChange()) return;
      const target = specVersion;
      const id = idOf(ordinal);
      if (record.signalledVersion < target) {
        const before = await statusOrUnknown(id);
        record.containerBefore = before && before.status === 'RUNNING' ? before.containerId : null;
        try {
          await getExternalWorkflowHandle(id).signal(specChangedSignal, spec);
        } catch {
          // The instance workflow ended behind our back: the next pass starts it on the new spec.
          instances.delete(ordinal);
          requested++;
          return;
        }
        record.signalledVersion = target;
      }
      const outcome = await pollInstance(
        id,
        READY_TIMEOUT_SECONDS,
        (v) => v !== null && v.status === 'RUNNING' && v.health === 'healthy' && !!v.containerId && v.containerId !== record.containerBefore,
        () => hasPendingChange() || specVersion !== target,
      );
      if (outcome === 'interrupted') return;
      if (outcome === 'gone') {
        instances.delete(ordinal);
        requested++;
        return;
      }
      if (outcome === 'timeout') {
        haltedVersion = target;
        rolloutError = `${id} was not running healthy on spec version ${target} within ${READY_TIMEOUT_SECONDS} s; rollout halted (apply a fixed spec to resume)`;
        log.warn('rollout halted', { server: name, instanceId: id, specVersion: target });
        return;
      }
      record.readyVersion = target;
    }
  };

  const rolloutPending = (): boolean =>
    haltedVersion !== specVersion && wantedOrdinals().some((o) => (instances.get(o)?.readyVersion ?? specVersion) < specVersion);

  const shouldContinueAsNew = (): boolean =>
    workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY_EVENTS;

  for (;;) {
    await condition(() => hasPendingChange() || rolloutPending() || shouldContinueAsNew());
    if (hasPendingChange()) {
      const ticket = requested;
      await scaleToDesired();
      converged = ticket;
      if (deleting && instances.size === 0) break;
      continue;
    }
    if (rolloutPending()) {
      await rollOut();
      continue;
    }
    // Idle and the history is long: hand the state to a fresh run once no update is in flight.
    await condition(allHandlersFinished);
    if (hasPendingChange()) continue;
    await continueAsNew<typeof serverWorkflow>({
      spec,
      node,
      running,
      carried: { specVersion, instances: [...instances.values()], haltedVersion, rolloutError },
    });
  }
  // Deleted: let the delete update return before the workflow completes.
  await condition(allHandlersFinished);
}

/**
 * Polls the instance's status with a durable, growing sleep until `done` holds
 * for it, it ends, the bound passes, or `interrupt` says a newer change waits.
 */
async function pollInstance(
  id: string,
  timeoutSeconds: number,
  done: (view: InstanceView | null) => boolean,
  interrupt: () => boolean,
): Promise<'done' | 'gone' | 'timeout' | 'interrupted'> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let delaySeconds = POLL_MIN_SECONDS;
  for (;;) {
    const status = await statusOrUnknown(id);
    if (status !== undefined && done(status)) return 'done';
    if (status === null) return 'gone';
    const remaining = deadline - Date.now();
    if (remaining <= 0) return 'timeout';
    if (await condition(interrupt, Math.min(delaySeconds * 1000, remaining))) return 'interrupted';
    delaySeconds = Math.min(delaySeconds * 2, POLL_MAX_SECONDS);
  }
}

/** Polls with a durable, growing sleep until the instance workflow has ended; false when the bound passed first. */
async function waitUntilEnded(id: string, timeoutSeconds: number): Promise<boolean> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let delaySeconds = POLL_MIN_SECONDS;
  for (;;) {
    let running = true;
    try {
      running = await instanceRunning(id);
    } catch (err) {
      log.warn('instance lookup failed', { instanceId: id, error: String(err) });
    }
    if (!running) return true;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return false;
    await sleep(Math.min(delaySeconds * 1000, remaining));
    delaySeconds = Math.min(delaySeconds * 2, POLL_MAX_SECONDS);
  }
}

/** The instance's view; null when its workflow is not running; undefined when the lookup itself failed. */
async function statusOrUnknown(id: string): Promise<InstanceView | null | undefined> {
  try {
    return await instanceStatus(id);
  } catch (err) {
    log.warn('instance status lookup failed', { instanceId: id, error: String(err) });
    return undefined;
  }
}

/** The validator and the handler agree: an invalid spec is rejected with every field error. */
function parseSpec(input: unknown): McpServerSpec {
  const result = validateSpec(input);
  if (!result.ok) throw new Error(describeFieldErrors(result.errors));
  return result.spec;
}

/** Replicas alone never restart instances: only a change of anything else rolls them. */
export function sameSpecIgnoringReplicas(a: McpServerSpec, b: McpServerSpec): boolean {
  return canonicalJson({ ...a, replicas: 0 }) === canonicalJson({ ...b, replicas: 0 });
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function byNumber(a: number, b: number): number {
  return a - b;
}
