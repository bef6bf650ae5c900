/**
 * Keeps a PolicyEngine on the policy set in force: reads policySetWorkflow's memo (a
 * describe: no workflow task, no history) every POLL_MS, and at once when this
 * process's API changed a policy. While Temporal does not answer, the last set read
 * stays in force; until a first read succeeded nothing is decided (the gateway refuses
 * what policies govern, and /readyz waits for it).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { PolicySetState } from '../contracts/policy';
import { POLICY_MEMO_KEY, POLICY_SET_WORKFLOW_ID } from '../contracts/policyMessages';
import type { Logger } from '../logger';
import type { PolicyEngine } from './engine';

export const POLICY_POLL_MS = 2_000;

export class PolicySync {
  private timer: NodeJS.Timeout | undefined;
  /** Reads run one after another: a read asked for after a change must not join one that began before it. */
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly client: Client,
    readonly engine: PolicyEngine,
    private readonly log?: Logger,
    private readonly pollMs = POLICY_POLL_MS,
  ) {}

  start(): void {
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Reads the set now (after any read under way), then polls on from there. */
  refresh(): Promise<void> {
    clearTimeout(this.timer);
    const next = this.queue.then(() => this.read());
    this.queue = next.then(() => {
      if (this.stopped) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.refresh(), this.pollMs).unref();
    });
    return next;
  }

  private async read(): Promise<void> {
    let state: PolicySetState;
    try {
      const description = await this.client.workflow.getHandle(POLICY_SET_WORKFLOW_ID).describe();
      const published = description.status.name === 'RUNNING' ? (description.memo?.[POLICY_MEMO_KEY] as PolicySetState | undefined) : undefined;
      state = published ?? { revision: 0, policies: [] };
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) {
        this.log?.warn({ err: (err as Error).message }, 'policies: reading the policy set failed; the last one read stays in force');
        return;
      }
      state = { revision: 0, policies: [] }; // never applied: no policy
    }
    const before = this.engine.currentRevision;
    try {
      this.engine.load(state);
    } catch (err) {
      this.log?.error({ err: (err as Error).message }, 'policies: the policy set does not load; the last one stays in force');
      return;
    }
    if (before !== state.revision) this.log?.info({ revision: state.revision, policies: state.policies.length }, 'policies: in force');
  }
}
