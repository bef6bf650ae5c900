/**
 * Control activities of the server workflow (task queue TASK_QUEUE): it reads
 * its instances' state through the Temporal client, because instance workflows
 * do not push status to their server workflow.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { InstanceView } from '../src/contracts/instance';
import { statusQuery } from '../src/contracts/messages';

export function createServerActivities({ client }: { client: Client }) {
  return {
    /**
     * Whether an instance workflow with that id is still running. Waiting for a
     * stop needs no more than this, and it does not query a workflow that is
     * about to complete.
     */
    async instanceRunning(instanceId: string): Promise<boolean> {
      try {
        const description = await client.workflow.getHandle(instanceId).describe();
        return description.status.name === 'RUNNING';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
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
