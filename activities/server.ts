/**
 * Control activities of the server workflow (task queue TASK_QUEUE): it reads
 * its instances' state through the Temporal client, because instance workflows
 * do not push status to their server workflow.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { mapLimit } from '../src/concurrency';
import { TASK_QUEUE, type InstanceView } from '../src/contracts/instance';
import { statusQuery, stopSignal, type InstanceWorkflowInput } from '../src/contracts/messages';
import { mcpHealthKey, mcpInstanceStatusKey, mcpNodeKey, mcpServerKey } from '../src/contracts/searchAttributes';
import { instanceListQuery } from '../src/contracts/visibility';

/** Signals in flight at once when stopping many instances: enough to keep Temporal busy, not to flood it. */
const STOP_SIGNAL_CONCURRENCY = 16;
/** How often stopInstances looks again for instances still running. */
const STOP_POLL_MS = 1_000;

/** Instance workflows started at once when starting many: Temporal takes them faster than the nodes start containers. */
const START_CONCURRENCY = 16;

/** One instance workflow to start: its deterministic id, its input, and the line the Web UI's list shows. */
export interface InstanceStart {
  workflowId: string;
  input: InstanceWorkflowInput;
  summary: string;
}

/** What became of each start: a new run, or one already running under that id (a repair, or a server workflow recreated while its instances lived on). */
export type InstanceStartOutcome = 'started' | 'running';

export interface StopInstancesInput {
  server: string;
  instanceIds: string[];
  timeoutSeconds: number;
  /** The container a node already removed, by instance (NodeActivities.stopContainers): its stop says so. */
  removed?: Record<string, string>;
}

/**
 * `eagerStarter`, a client on the control worker's own connection, starts instance workflows
 * eagerly: Temporal hands each one's first workflow task straight to this worker instead of
 * queueing it for a poll (with hundreds of starts at once, that queue was most of a start).
 */
export function createServerActivities({ client, eagerStarter }: { client: Client; eagerStarter?: Client }) {
  async function isRunning(instanceId: string): Promise<boolean> {
    try {
      return (await client.workflow.getHandle(instanceId).describe()).status.name === 'RUNNING';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  /** The ids among `ids` that visibility lists as running instances of `server`, each with its node (McpNode) where it has one. */
  async function listedRunning(server: string, ids: Set<string>): Promise<Map<string, string | undefined>> {
    const running = new Map<string, string | undefined>();
    for await (const info of client.workflow.list({ query: instanceListQuery({ server }) }))
      if (ids.has(info.workflowId)) running.set(info.workflowId, info.typedSearchAttributes.get(mcpNodeKey));
    return running;
  }

  return {
    /**
     * Starts instance workflows (not children: instances outlive the server's runs) with
     * bounded concurrency. One activity for a whole batch: a start of 500 replicas is not
     * 500 commands and 500 started events that the server's history must hold and replay.
     * Idempotent: a retry finds the ones it started running.
     */
    async startInstances(starts: InstanceStart[]): Promise<InstanceStartOutcome[]> {
      const context = Context.current();
      return mapLimit(starts, START_CONCURRENCY, async ({ workflowId, input, summary }): Promise<InstanceStartOutcome> => {
        try {
          await (eagerStarter ?? client).workflow.start('instanceWorkflow', {
            workflowId,
            taskQueue: TASK_QUEUE,
            requestEagerStart: eagerStarter !== undefined,
            args: [input],
            staticSummary: summary,
            typedSearchAttributes: [
              { key: mcpServerKey, value: input.server },
              { key: mcpInstanceStatusKey, value: 'PENDING' },
              { key: mcpHealthKey, value: 'unknown' },
              // Placement counts a node's instances by McpNode from the start.
              ...(input.node !== undefined ? [{ key: mcpNodeKey, value: input.node }] : []),
            ],
          });
          return 'started';
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) return 'running';
          throw err;
        } finally {
          context.heartbeat();
        }
      });
    },

    /**
     * Signals stop to each instance and waits until they have all ended; returns the ids
     * still running after timeoutSeconds. One activity for a whole batch: a delete of
     * 500 instances is 500 signals and a visibility list a second, not 500 polling loops
     * of activities and timers in the server's history. Visibility only narrows the wait;
     * an instance counts as ended once a describe says so (visibility may lag behind).
     */
    async stopInstances({ server, instanceIds, timeoutSeconds, removed = {} }: StopInstancesInput): Promise<string[]> {
      const context = Context.current();
      const deadline = Date.now() + timeoutSeconds * 1000;
      await mapLimit(instanceIds, STOP_SIGNAL_CONCURRENCY, async (id) => {
        try {
          const containerRemoved = removed[id];
          await client.workflow.getHandle(id).signal(stopSignal, ...(containerRemoved !== undefined ? [{ containerRemoved }] : []));
        } catch (err) {
          // Not running any more: nothing to stop.
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
        context.heartbeat();
      });
      let waiting = new Set(instanceIds);
      for (;;) {
        const listed = await listedRunning(server, waiting);
        const maybeEnded = [...waiting].filter((id) => !listed.has(id));
        const stillRunning = await mapLimit(maybeEnded, STOP_SIGNAL_CONCURRENCY, async (id) => ((await isRunning(id)) ? id : null));
        waiting = new Set([...listed.keys(), ...stillRunning.filter((id): id is string => id !== null)]);
        context.heartbeat(waiting.size);
        if (waiting.size === 0 || Date.now() >= deadline) return [...waiting];
        await sleep(Math.min(STOP_POLL_MS, deadline - Date.now()), undefined, { signal: context.cancellationSignal });
      }
    },

    /** The node of each of these instances that visibility lists as running (McpNode), so a batch stop can go to their nodes. */
    async instanceNodes({ server, instanceIds }: { server: string; instanceIds: string[] }): Promise<Record<string, string>> {
      const nodes: Record<string, string> = {};
      for (const [id, node] of await listedRunning(server, new Set(instanceIds))) if (node !== undefined) nodes[id] = node;
      return nodes;
    },

    /**
     * Whether an instance workflow with that id is still running. Waiting for a
     * stop needs no more than this, and it does not query a workflow that is
     * about to complete.
     */
    async instanceRunning(instanceId: string): Promise<boolean> {
      return isRunning(instanceId);
    },

    /** The instance's status view, or null when no instance workflow with that id is running. */
    async instanceStatus(instanceId: string): Promise<InstanceView | null> {
      const handle = client.workflow.getHandle(instanceId);
      try {
        const description = await handle.describe();
        if (description.status.name !== 'RUNNING') return null;
        return await handle.query(statusQuery);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return null;
        // A query racing the workflow's completion: the next describe says it ended.
        if (err instanceof Error && /workflow.*(completed|closed|terminated)/i.test(err.message)) return null;
        throw err;
      }
    },
  };
}

export type ServerActivities = ReturnType<typeof createServerActivities>;
