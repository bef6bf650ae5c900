/**
 * Resources of the REST API that are not workflow views: what mcpctl and other
 * clients receive.
 */
import type { ServerView } from './messages';

/** What the API returns for a server: the workflow's view plus what visibility knows. */
export interface ServerResource extends ServerView {
  createdAt: string | null;
  /** Instances that are RUNNING and healthy, as visibility last saw them. */
  readyReplicas: number;
}

export type ApplyOutcome = 'created' | 'configured' | 'unchanged';
