/**
 * Signals, queries and updates of mcpd's workflows. Clients (the API, mcpctl via
 * the API, tests) import these constants; operators can also use the names
 * directly with the Temporal CLI, e.g.
 *   temporal workflow signal --workflow-id mcp-instance:gitea:0 --name forceRetry
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { McpServerSpec, McpServerSpecInput } from './spec';
import type { HealthStatus, InstanceView } from './instance';
import type { NodeState } from './node';

// ---- instanceWorkflow -------------------------------------------------------

/**
 * Ends a retry wait at once (an unhealthy RUNNING instance gets a fresh container). Operators
 * send it without arguments; mcpd's node sends a reason when it knows a failure was not the
 * instance's own, e.g. "the Docker engine restarted".
 */
export const forceRetrySignal = defineSignal<[RetryRequest?]>('forceRetry');
/**
 * Stops and removes the container, then ends the workflow. A server stopping a batch first has
 * the node remove their containers and names the removed one here: the instance then ends at once.
 */
export const stopSignal = defineSignal<[StopRequest?]>('stop');
/** Stop the current container and start a fresh one (same backoff bookkeeping). */
export const restartSignal = defineSignal('restart');
/** Sent by the node's Docker event watcher when an instance's container dies. */
export const containerExitedSignal = defineSignal<[ContainerExit]>('containerExited');
/** Sent by the probe child only when health changes. */
export const healthChangedSignal = defineSignal<[HealthTransition]>('healthChanged');
/** Sent by the server workflow when the spec changes; the instance rolls onto it. */
export const specChangedSignal = defineSignal<[McpServerSpec]>('specChanged');
/**
 * Sent to a probe workflow by its node worker when it starts again: the probe loop it ran
 * before is gone, so the probe starts a new one at once instead of waiting out the loop's
 * heartbeat timeout. Not a failed probe.
 */
export const probeLoopLostSignal = defineSignal('probeLoopLost');
export const statusQuery = defineQuery<InstanceView>('status');
/**
 * Completes once the instance's start has an outcome (RUNNING, ERROR, waiting for a node,
 * stopping or stopped) or after the given seconds, with the instance's view either way:
 * a caller waits for a start without polling the status.
 */
export const awaitStartedUpdate = defineUpdate<InstanceView, [timeoutSeconds: number]>('awaitStarted');
/**
 * Sent by a node workflow to the instances placed on it once it has stayed NotReady past
 * its grace period: a RUNNING instance there gives up its container (it cannot be stopped
 * through a node that is gone) and starts again on a Ready node; a waiting one retries now.
 */
export const nodeNotReadySignal = defineSignal<[NodeLost]>('nodeNotReady');

export interface NodeLost {
  node: string;
  /** e.g. "no heartbeat from its worker for 20 s". */
  reason: string;
}

export interface ContainerExit {
  containerId: string;
  exitCode: number | null;
  /** e.g. "container exited with code 137 (killed)". */
  reason: string;
  /**
   * True when something outside the server took the container down (the Docker engine
   * restarted, the container was removed while mcpd was down): the next attempt starts
   * at once instead of after the backoff delay.
   */
  external?: boolean;
}

export interface RetryRequest {
  /** Why the retry is due, for the instance's events, e.g. "the Docker engine restarted". */
  reason: string;
}

export interface StopRequest {
  /** The id of the container the instance's node already stopped and removed for this stop. */
  containerRemoved?: string;
}

export interface HealthTransition {
  health: HealthStatus;
  /** The probe's reason, e.g. "token is required" or "timeout after 10 s". */
  reason: string | null;
  /** True when the failing probe was liveness (tools/list): the instance is restarted. */
  liveness: boolean;
  consecutiveFailures: number;
}

export interface InstanceWorkflowInput {
  server: string;
  ordinal: number;
  spec: McpServerSpec;
  /**
   * Node whose task queue runs this instance's container activities, as the server placed it.
   * Absent when no Ready node fitted the placement: the instance then places itself.
   */
  node?: string;
  /** State carried across continue-as-new. */
  carried?: CarriedInstanceState;
}

export interface CarriedInstanceState {
  attemptCount: number;
  lastAttemptAt: string | null;
  nextRetryAt: string | null;
  error: string | null;
  containerId: string | null;
  runningSince: string | null;
  /** Bumped on every container start; labels the container so a retried start finds its own. */
  generation: number;
  events: InstanceView['events'];
  status: InstanceView['status'];
  health: HealthStatus;
  healthReason: string | null;
  retryRequested: boolean;
  /** Why the pending forceRetry was sent, when the sender said (absent: an operator's forceRetry). */
  retryReason?: string | null;
  /** The node the instance runs on when it placed itself (or moved) since it started; wins over the input's node. */
  node?: string | null;
  /** The exact version a spec's packageName resolved to: later attempts of that spec run the same version. */
  pinnedPackage?: { packageName: string; exact: string } | null;
  /**
   * Signals received but not yet acted on when the run continued as new. A signal can
   * land while a run hands over (e.g. while it waits for its probe child to end); the
   * next run acts on it instead of losing it.
   */
  pending?: PendingInstanceSignals;
}

/** What arrived by signal and is not yet acted on (forceRetry lives in the carried state). */
export interface PendingInstanceSignals {
  stopRequested: boolean;
  restartRequested: boolean;
  pendingSpec: McpServerSpec | null;
  /** The last exit reported; it counts only while it names the current container. */
  lastExit: ContainerExit | null;
  healthChanges: HealthTransition[];
  /** The instance's node went NotReady while it ran there (absent in runs from before node failover). */
  nodeLost?: NodeLost | null;
}

// ---- serverWorkflow ---------------------------------------------------------

/** Validated by the workflow's update validator: an invalid spec is rejected whole. */
export const applySpecUpdate = defineUpdate<ServerView, [McpServerSpecInput]>('apply');
/** Starts (or reconciles) the instance workflows for `replicas`; returns their ids. */
export const startServerUpdate = defineUpdate<string[]>('start');
/** Stops every instance; returns their ids. */
export const stopServerUpdate = defineUpdate<string[]>('stop');
export const scaleServerUpdate = defineUpdate<ServerView, [number]>('scale');
/** Stops every instance, removes their containers and ends the server workflow. */
export const deleteServerUpdate = defineUpdate<string[]>('delete');
export const serverQuery = defineQuery<ServerView>('server');

export interface ServerWorkflowInput {
  spec: McpServerSpec;
  /** The node of the API that created the server: where instances went before placement (histories without the 'placement' patch). */
  node: string;
  /** Whether the instances should be running (start) or not (stop). */
  running: boolean;
  /** State carried across continue-as-new. */
  carried?: CarriedServerState;
  /** Knobs tests turn; carried across continue-as-new unchanged. */
  tuning?: {
    /** How long a rolled instance may take to run healthy before the rollout halts (default READY_TIMEOUT_SECONDS, 600). */
    readyTimeoutSeconds?: number;
  };
}

export interface CarriedServerState {
  specVersion: number;
  /** The instances the server workflow started or adopted, with the spec version each runs. */
  instances: ServerInstanceRecord[];
  /** A rollout that timed out waiting for an instance stays halted for this spec version. */
  haltedVersion: number | null;
  rolloutError: string | null;
}

export interface ServerInstanceRecord {
  ordinal: number;
  /** Spec version last sent to the instance (at start or by specChanged). */
  signalledVersion: number;
  /** Spec version the instance was seen ready on; below specVersion means it still has to roll. */
  readyVersion: number;
  /** The container before the spec change, to recognise the new one. */
  containerBefore: string | null;
}

export interface ServerView {
  name: string;
  spec: McpServerSpec;
  running: boolean;
  /** Instance workflow ids the server currently wants. */
  instances: string[];
  /** Bumped on every applied spec change. */
  specVersion: number;
  rollout: {
    inProgress: boolean;
    updated: number;
    total: number;
    /** Why a rollout halted, e.g. an instance that did not become ready in time. */
    error?: string | null;
  } | null;
}

// ---- probeWorkflow ------------------------------------------------------------

export interface ProbeWorkflowInput {
  instanceId: string;
  node: string;
  /** Readiness probe (tools/call of this tool) when set; otherwise liveness (tools/list). */
  healthCheck?: import('./spec').HealthCheck;
  /** Liveness settings when no healthCheck is set; each falls back to PROBE_DEFAULTS (instance.ts). */
  intervalSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  carried?: {
    health: HealthStatus;
    consecutiveFailures: number;
    /** Probes of the run so far (runs that probe with one activity per interval). */
    probesInRun?: number;
    /** The last run ended right after a probe: the next probe waits one interval. */
    nextProbeAfterInterval?: boolean;
  };
  /** Knobs tests turn; carried across continue-as-new unchanged. */
  tuning?: {
    /** How long one probe loop activity runs without a health change (default PROBE_LOOP_SECONDS, an hour). */
    loopSeconds?: number;
    /** Continue as new once a run's history passes this many events (default PROBE_HISTORY_LIMIT, 2,000). */
    historyLimit?: number;
  };
}

// ---- nodeWorkflow -------------------------------------------------------------

/** The node's state: Ready while its worker heartbeats the lease activity on its task queue. */
export const nodeQuery = defineQuery<NodeState>('node');

export interface NodeWorkflowInput {
  name: string;
  carried?: NodeState;
  /** Knobs tests turn. */
  tuning?: {
    /** The lease activity's heartbeat timeout: how long a silent worker stays Ready (default NODE_HEARTBEAT_TIMEOUT_SECONDS). */
    heartbeatTimeoutSeconds?: number;
    /** How long one lease activity runs before it is renewed (default NODE_LEASE_SECONDS). */
    leaseSeconds?: number;
    /** How long a node that lost its lease stays NotReady before its instances move (default NODE_EVICTION_GRACE_SECONDS). */
    evictionGraceSeconds?: number;
  };
}
