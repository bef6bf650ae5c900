/**
 * The two workers of an mcpd process:
 *   - `mcpd`: every workflow plus the control activities (OpenBao, Temporal client);
 *   - `mcpd-node-<node>`: the activities that need this node's Docker engine and
 *     gateway (containers, upstream attach, readiness, probes),
 * plus the node's Docker exit watcher and container reaper. Either half can be
 * switched off, so a node-only process can run next to a remote Docker engine.
 */
import { Client } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  makeWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry/lib/worker';
import { createControlActivities } from '../activities/control';
import { createNodeActivities } from '../activities/node';
import { createNodeLeaseActivities, createNodeRegistryActivities } from '../activities/nodes';
import { createPackageActivities } from '../activities/packages';
import { createProbeActivities, ProbeLoops } from '../activities/probe';
import { createServerActivities } from '../activities/server';
import { TASK_QUEUE, nodeTaskQueue } from './contracts/instance';
import type { NodeWorkflowInput } from './contracts/messages';
import { DEFAULT_NODE_CAPACITY, nodeWorkflowId, type NodeLabels } from './contracts/node';
import type { InstanceRouting, ProxyExecutor } from './contracts/routing';
import type { SecretStore } from './secrets/types';
import type { InstanceContainerOptions } from './docker/containers';
import { ExitWatcher } from './docker/exit-watcher';
import type { PackageImageBuilderOptions } from './docker/packageImages';
import { Reaper } from './docker/reaper';
import { reattachRunningInstances, repairInstance } from './docker/reattach';
import type { ContainerRuntime } from './docker/runtime';
import type { Logger } from './logger';
import type { McpdMetrics } from './metrics/registry';
import type { Tracing } from './tracing/tracing';

export interface WorkerDeps {
  connection: NativeConnection;
  namespace: string;
  node: string;
  runtime: ContainerRuntime;
  secrets: SecretStore;
  routing: InstanceRouting;
  client: Client;
  /** The gateway's proxy; when given, the node queue also runs the probe activity. */
  proxy?: ProxyExecutor;
  /** Whether the gateway has an upstream for an instance (probes that find it does not repair the instance). */
  knows?: (instanceId: string) => boolean;
  /**
   * Identifies this control plane on shared Docker engines: its containers carry it
   * as a label, and the exit watcher and reaper only touch containers that do.
   * Use `<temporal address>/<namespace>`; default `<namespace>@<node>`.
   */
  owner?: string;
  container?: Pick<InstanceContainerOptions, 'baseImage' | 'startGraceMs' | 'stopTimeoutSeconds' | 'startConcurrency'>;
  /** Base images, npm client and work dir of the package image builder (defaults: mcpd/node-base:20, mcpd/python-base:3). */
  packageImages?: PackageImageBuilderOptions;
  /** Which halves to run (both by default). */
  queues?: { control?: boolean; node?: boolean };
  reaperIntervalMs?: number;
  /** Workflows kept in memory between tasks (WorkerOptions.maxCachedWorkflows); the SDK's default when unset. */
  workflowCacheSize?: number;
  /** What the node reports about itself (default: no labels, DEFAULT_NODE_CAPACITY, engine "unknown"). */
  registration?: { labels?: NodeLabels; capacity?: number; engineHost?: string; gatewayUrl?: () => Promise<string | undefined> };
  /** Knobs of the node workflow this worker starts (tests shorten the heartbeat timeout). */
  nodeTuning?: NodeWorkflowInput['tuning'];
  log?: Logger;
  /** This process's metrics, recorded by the activities and the exit watcher (none: nothing is recorded). */
  metrics?: McpdMetrics;
  /** Traces workflows and activities, continuing the trace of whoever started or signalled them (none: no spans). */
  tracing?: Tracing;
}

export interface McpdWorkers {
  /** Runs until shutdown(); rejects if a worker fails. */
  run(): Promise<void>;
  /** True once the node's running instances were handed back to the gateway (right away without a node queue). */
  reattached(): boolean;
  shutdown(): Promise<void>;
}

/**
 * Pollers that grow with the backlog. With the SDK's fixed ten workflow-task pollers, two
 * of them poll the queue new workflows arrive on; a start of hundreds of instances left
 * their first workflow tasks waiting there 15 s (median, 200 replicas; bench/scale).
 */
const POLLERS = {
  workflowTaskPollerBehavior: { type: 'autoscaling' },
  activityTaskPollerBehavior: { type: 'autoscaling' },
} as const;

/** Room for one probe loop per instance (REPLICAS.max per server, several servers) plus the lifecycle activities. */
export const NODE_ACTIVITY_SLOTS = 10_000;

/**
 * The Temporal SDK's OpenTelemetry interceptors: a span per activity (its parent comes in the
 * activity's headers), and per workflow run, signal, update and child start inside the
 * workflow sandbox, whose spans leave it through the `exporter` sink (only when not replaying).
 */
function tracingOptions(tracing: Tracing | undefined): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  if (!tracing) return {};
  const options = { tracer: tracing.tracer };
  return {
    interceptors: {
      workflowModules: [require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors')],
      activity: [
        (ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx, options), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) }),
      ],
    },
    sinks: { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) },
  };
}

export async function createWorkers(deps: WorkerDeps): Promise<McpdWorkers> {
  const owner = deps.owner ?? `${deps.namespace}@${deps.node}`;
  const traced = tracingOptions(deps.tracing);
  const runControl = deps.queues?.control ?? true;
  const runNode = deps.queues?.node ?? true;
  const workers: Worker[] = [];

  if (runControl) {
    workers.push(
      await Worker.create({
        connection: deps.connection,
        namespace: deps.namespace,
        taskQueue: TASK_QUEUE,
        // dist/src/worker.js -> dist/workflows/index.js
        workflowsPath: require.resolve('../workflows'),
        ...traced,
        ...(deps.workflowCacheSize !== undefined ? { maxCachedWorkflows: deps.workflowCacheSize } : {}),
        ...POLLERS,
        activities: {
          ...createControlActivities({ secrets: deps.secrets, metrics: deps.metrics }),
          ...createServerActivities({
            client: deps.client,
            eagerStarter: new Client({ connection: deps.connection, namespace: deps.namespace, interceptors: deps.client.options.interceptors }),
          }),
          ...createNodeRegistryActivities({ client: deps.client }),
        },
      }),
    );
  }

  let watcher: ExitWatcher | null = null;
  let reaper: Reaper | null = null;
  let reattachDone!: () => void;
  const reattachFinished = new Promise<void>((resolve) => (reattachDone = resolve));
  const repairOptions = { runtime: deps.runtime, client: deps.client, routing: deps.routing, owner, node: deps.node, log: deps.log };
  if (runNode) {
    const probeLoops = new ProbeLoops();
    const stoppingContainers = new Set<string>();
    const nodeActivities = createNodeActivities({
      runtime: deps.runtime,
      secrets: deps.secrets,
      routing: deps.routing,
      ...(deps.proxy ? { proxy: deps.proxy } : {}),
      probeLoops,
      containers: { node: deps.node, owner, ...deps.container, stopping: stoppingContainers },
      metrics: deps.metrics,
    });
    workers.push(
      await Worker.create({
        connection: deps.connection,
        namespace: deps.namespace,
        taskQueue: nodeTaskQueue(deps.node),
        // Every probed instance holds one slot for its long-lived probe loop (mostly waiting on a timer);
        // with the SDK's default of 100, the 101st instance on a node would leave container starts waiting.
        maxConcurrentActivityTaskExecutions: NODE_ACTIVITY_SLOTS,
        ...POLLERS,
        ...traced,
        activities: {
          ...nodeActivities,
          ...createPackageActivities({ runtime: deps.runtime, builder: deps.packageImages, metrics: deps.metrics }),
          ...createNodeLeaseActivities({
            runtime: deps.runtime,
            engineHost: deps.registration?.engineHost ?? 'unknown',
            labels: deps.registration?.labels ?? {},
            capacity: deps.registration?.capacity ?? DEFAULT_NODE_CAPACITY,
            gatewayUrl: deps.registration?.gatewayUrl,
          }),
          ...(deps.proxy
            ? createProbeActivities({
                proxy: deps.proxy,
                loops: probeLoops,
                metrics: deps.metrics,
                node: {
                  reattached: () => reattachFinished,
                  knows: deps.knows,
                  repair: (instanceId, handshakeTimeoutMs) => repairInstance(repairOptions, instanceId, undefined, handshakeTimeoutMs),
                },
              })
            : {}),
        },
      }),
    );
    watcher = new ExitWatcher({ runtime: deps.runtime, client: deps.client, owner, log: deps.log, metrics: deps.metrics, stopping: stoppingContainers });
    reaper = new Reaper({ runtime: deps.runtime, client: deps.client, owner, intervalMs: deps.reaperIntervalMs, log: deps.log });
  }

  let running: Promise<void> | null = null;
  let reattached = !runNode;
  return {
    reattached: () => reattached,
    run() {
      if (!running) {
        running = (async () => {
          await watcher?.start();
          reaper?.start();
          // At once, not after the first interval: a node that returns removes the containers of instances that moved away meanwhile.
          if (reaper) void reaper.reapOnce().catch((err: Error) => deps.log?.warn({ err: err.message }, 'reaper pass at start failed'));
          const polling = Promise.all(workers.map((w) => w.run()));
          if (runNode) {
            void ensureNodeWorkflow(deps).catch((err: Error) => deps.log?.warn({ err: err.message, node: deps.node }, 'starting the node workflow failed'));
          }
          // Status queries need a polling workflow worker, so this runs once the workers are up.
          if (runNode) {
            void reattachRunningInstances(repairOptions)
              .catch((err: Error) => deps.log?.warn({ err: err.message }, 're-attaching running instances failed'))
              .finally(() => {
                reattached = true;
                reattachDone();
              });
          }
          await polling;
        })();
      }
      return running;
    },
    async shutdown() {
      await watcher?.stop();
      await reaper?.stop();
      for (const w of workers) {
        if (w.getState() === 'RUNNING') w.shutdown();
      }
      await running?.catch(() => undefined);
    },
  };
}

/**
 * Starts this node's workflow unless it runs already (a restarted worker finds the one it
 * left). Its registerNode activity then waits in this node's queue for the worker to poll.
 */
async function ensureNodeWorkflow(deps: WorkerDeps): Promise<void> {
  const input: NodeWorkflowInput = { name: deps.node, ...(deps.nodeTuning ? { tuning: deps.nodeTuning } : {}) };
  await deps.client.workflow.start('nodeWorkflow', {
    workflowId: nodeWorkflowId(deps.node),
    taskQueue: TASK_QUEUE,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: `Docker node ${deps.node}`,
  });
}
