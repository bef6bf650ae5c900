/**
 * mcpd's Prometheus metrics: one McpdMetrics per mcpd process, made by the composition
 * root (src/mcpd.ts) and handed to the parts that record (the gateway, the activity
 * factories, the exit watcher) and to the /metrics endpoint that serves it. Nothing
 * here is a module-level singleton: a test process that runs several mcpds in-process
 * gets one registry each.
 *
 * Label values are bounded: `server` is an McpServer name (as many as the operator
 * applied), `node` a node name; every other label takes a value from a fixed list
 * (src/metrics/classify.ts). No label carries an instance id, a message or a secret.
 * Workflow code records nothing (it replays); what the workflows decide shows in the
 * gauges read from Temporal visibility at scrape time (observeCluster).
 */
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallOutcome, ExitClass, SecretFailureReason, StartFailureReason } from './classify';
import { scrapeTemporalSdk } from './temporalSdk';

/**
 * Gateway latency buckets, in seconds: from 50 µs (a cached list answered in-process, a
 * fast STDIO round trip is 100-300 µs) to a minute (tools that do real work).
 */
export const GATEWAY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Starts, probes and secret reads: milliseconds to minutes. */
const LIFECYCLE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** prom-client's default gauges whose names end in _total. */
const NOT_COUNTERS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Who sent an upstream request through the gateway: a client, a probe, discovery, or a front gateway over the link. */
export type CallOrigin = 'client' | 'probe' | 'discovery' | 'link';
export type ProbeKind = 'liveness' | 'readiness';
export type ProbeOutcome = 'pass' | 'fail' | 'not_counted';
export type SecretOperation = 'pin' | 'read';

/** What the gateway's routing table says about one upstream (src/gateway/gateway.ts instances()). */
export interface UpstreamState {
  server: string;
  ready: boolean;
  connected: boolean;
  inFlight: number;
}

/** What Temporal visibility says about the cluster (src/metrics/clusterView.ts). */
export interface ClusterView {
  instances: { server: string; status: string; health: string }[];
  nodes: { name: string; ready: boolean }[];
}

export interface McpdMetricsOptions {
  /** The node this process runs as, and its roles as MCPD_ROLES names them (labels of mcpd_process_info). */
  node: string;
  roles: string;
  /** Process metrics (CPU, memory, event loop, GC) with prom-client's collectDefaultMetrics; default true. */
  processMetrics?: boolean;
}

type CallSeries = { duration: Histogram.Internal<'server' | 'method' | 'origin'>; outcomes: Map<CallOutcome, Counter.Internal> };

export class McpdMetrics {
  readonly registry = new Registry();

  private readonly startAttempts: Counter<'server'>;
  private readonly startFailures: Counter<'server' | 'reason'>;
  private readonly startDuration: Histogram<'server'>;
  private readonly containerStarts: Counter<'server'>;
  private readonly containerExits: Counter<'server' | 'class'>;
  private readonly secretDuration: Histogram<'operation'>;
  private readonly secretFailures: Counter<'operation' | 'reason'>;
  private readonly probes: Counter<'server' | 'kind' | 'result'>;
  private readonly probeDuration: Histogram<'kind'>;
  private readonly gatewayRequests: Counter<'server' | 'method' | 'origin' | 'outcome'>;
  private readonly gatewayDuration: Histogram<'server' | 'method' | 'origin'>;
  private readonly discoveryLookups: Counter<'kind' | 'result'>;
  /** Children of the gateway's series by server, method and origin: labels() hashes its arguments on every call. */
  private readonly callSeries = new Map<string, CallSeries>();
  private gatewaySource?: () => UpstreamState[];
  private clusterSource?: () => Promise<ClusterView>;
  private clusterCache?: { at: number; view: Promise<ClusterView> };

  constructor(options: McpdMetricsOptions) {
    const registers = [this.registry];
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters, which `promtool check metrics` rejects; the same figures
      // stay, by type, in nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
      for (const name of NOT_COUNTERS) this.registry.removeSingleMetric(name);
    }
    new Gauge({
      name: 'mcpd_process_info',
      help: "Always 1; its labels name this process's node and roles (api, gateway, worker).",
      labelNames: ['node', 'roles'],
      registers,
    })
      .labels(options.node, options.roles)
      .set(1);

    this.startAttempts = new Counter({
      name: 'mcpd_instance_start_attempts_total',
      help: 'Start attempts of instances (each begins by resolving the env, or with its container start when the env has no secret; Temporal retries of one attempt are not counted again).',
      labelNames: ['server'],
      registers,
    });
    this.startFailures = new Counter({
      name: 'mcpd_instance_start_failures_total',
      help: 'Failed tries of the start activities by reason class (secret, image, exit, engine, handshake, spec, other); a try Temporal retries counts each time.',
      labelNames: ['server', 'reason'],
      registers,
    });
    this.startDuration = new Histogram({
      name: 'mcpd_instance_start_duration_seconds',
      help: 'Duration of successful container starts on this node: create, start, MCP handshake and the first probe.',
      labelNames: ['server'],
      buckets: LIFECYCLE_BUCKETS,
      registers,
    });
    this.containerStarts = new Counter({
      name: 'mcpd_container_starts_total',
      help: 'Containers this node created and started for instances (a retried start that found its container is not counted).',
      labelNames: ['server'],
      registers,
    });
    this.containerExits = new Counter({
      name: 'mcpd_container_exits_total',
      help: 'Exits ("die" events) of mcpd containers on this node by class (clean, error, killed, terminated, oom, unknown); stops count too.',
      labelNames: ['server', 'class'],
      registers,
    });
    this.secretDuration = new Histogram({
      name: 'mcpd_secret_resolution_duration_seconds',
      help: 'Duration of secret look-ups in OpenBao: pin (the version check of each start attempt) and read (the pinned value, at container create).',
      labelNames: ['operation'],
      buckets: LIFECYCLE_BUCKETS,
      registers,
    });
    this.secretFailures = new Counter({
      name: 'mcpd_secret_resolution_failures_total',
      help: 'Failed secret look-ups by operation and reason class (not_found, unreachable, denied, sealed, invalid, other).',
      labelNames: ['operation', 'reason'],
      registers,
    });
    this.probes = new Counter({
      name: 'mcpd_probes_total',
      help: 'Health probes run on this node by server, kind (liveness, readiness) and result (pass, fail, not_counted).',
      labelNames: ['server', 'kind', 'result'],
      registers,
    });
    this.probeDuration = new Histogram({
      name: 'mcpd_probe_duration_seconds',
      help: 'Duration of counted health probes, the MCP request through the gateway included.',
      labelNames: ['kind'],
      buckets: GATEWAY_BUCKETS,
      registers,
    });
    this.gatewayRequests = new Counter({
      name: 'mcpd_gateway_requests_total',
      help: 'Requests the gateway sent upstream by server, method, origin (client, probe, discovery, link: from a front gateway) and outcome.',
      labelNames: ['server', 'method', 'origin', 'outcome'],
      registers,
    });
    this.gatewayDuration = new Histogram({
      name: 'mcpd_gateway_request_duration_seconds',
      help: 'Duration of upstream requests through the gateway, from the gateway handing it on to the answer.',
      labelNames: ['server', 'method', 'origin'],
      buckets: GATEWAY_BUCKETS,
      registers,
    });
    this.discoveryLookups = new Counter({
      name: 'mcpd_gateway_discovery_cache_lookups_total',
      help: 'Discovery list look-ups (tools, resources, resource templates, prompts) by result: hit (answered from the cache) or miss.',
      labelNames: ['kind', 'result'],
      registers,
    });

    const inFlight = new Gauge({
      name: 'mcpd_gateway_upstream_requests_in_flight',
      help: 'Requests this gateway has sent upstream and not yet seen answered, by server.',
      labelNames: ['server'],
      registers,
      collect: () => {
        inFlight.reset();
        for (const upstream of this.gatewaySource?.() ?? []) inFlight.labels(upstream.server).inc(upstream.inFlight);
      },
    });
    const upstreams = new Gauge({
      name: 'mcpd_gateway_upstreams',
      help: "Upstreams in this gateway's routing table by server and state (ready, not_ready: taken out by readiness, disconnected).",
      labelNames: ['server', 'state'],
      registers,
      collect: () => {
        upstreams.reset();
        for (const upstream of this.gatewaySource?.() ?? []) {
          upstreams.labels(upstream.server, !upstream.connected ? 'disconnected' : upstream.ready ? 'ready' : 'not_ready').inc();
        }
      },
    });
  }

  private async readCluster(up: Gauge, instances: Gauge<'server' | 'status' | 'health'>, nodeReady: Gauge<'node'>): Promise<void> {
    instances.reset();
    nodeReady.reset();
    try {
      const view = await this.clusterView();
      for (const i of view.instances) instances.labels(i.server, i.status, i.health).inc();
      for (const n of view.nodes) nodeReady.labels(n.name).set(n.ready ? 1 : 0);
      up.set(1);
    } catch {
      up.set(0);
    }
  }

  /** The gateway's routing table, read at scrape time (in-flight requests and upstream states). */
  observeGateway(source: () => UpstreamState[]): void {
    this.gatewaySource = source;
  }

  /**
   * Temporal visibility, read at scrape time: adds mcpd_instances, mcpd_node_ready and
   * mcpd_cluster_view_up (processes with the API role call it; the others do not report
   * cluster-wide figures). Reads within cacheMs share one answer, so several Prometheus
   * servers scraping every few seconds cost Temporal one list.
   */
  observeCluster(source: () => Promise<ClusterView>, cacheMs = 5_000): void {
    if (this.clusterSource) throw new Error('observeCluster: the cluster view is observed already');
    this.clusterSource = source;
    this.clusterCacheMs = cacheMs;
    const registers = [this.registry];
    // One visibility read serves the three gauges of a scrape: prom-client collects every
    // metric in one synchronous pass, so the first collect() starts the read and the others join it.
    let reading: Promise<void> | undefined;
    const collectCluster = (): Promise<void> => (reading ??= this.readCluster(clusterUp, instances, nodeReady).finally(() => (reading = undefined)));
    const clusterUp: Gauge = new Gauge({
      name: 'mcpd_cluster_view_up',
      help: '1 when the last read of the instances and nodes from Temporal visibility succeeded, 0 when it failed (mcpd_instances and mcpd_node_ready are then absent).',
      registers,
      collect: collectCluster,
    });
    const instances: Gauge<'server' | 'status' | 'health'> = new Gauge({
      name: 'mcpd_instances',
      help: 'Running instance workflows of the whole cluster by server, status and health (ERROR: waiting out its backoff), from Temporal visibility.',
      labelNames: ['server', 'status', 'health'],
      registers,
      collect: collectCluster,
    });
    const nodeReady: Gauge<'node'> = new Gauge({
      name: 'mcpd_node_ready',
      help: 'Registered nodes of the cluster: 1 Ready, 0 NotReady, from Temporal visibility.',
      labelNames: ['node'],
      registers,
      collect: collectCluster,
    });
  }

  private clusterCacheMs = 5_000;

  private clusterView(): Promise<ClusterView> {
    const now = performance.now();
    if (!this.clusterCache || now - this.clusterCache.at >= this.clusterCacheMs) {
      const view = this.clusterSource!();
      this.clusterCache = { at: now, view };
      // A failed read is not kept: the next scrape asks again.
      view.catch(() => {
        if (this.clusterCache?.view === view) this.clusterCache = undefined;
      });
    }
    return this.clusterCache.view;
  }

  /**
   * Appends the Temporal SDK exporter's series (src/metrics/temporalSdk.ts) to every
   * exposition, with mcpd_temporal_sdk_metrics_up saying whether its last scrape worked.
   */
  includeTemporalSdk(url: string): void {
    if (this.temporalSdk) throw new Error('includeTemporalSdk: included already');
    this.temporalSdk = {
      url,
      up: new Gauge({
        name: 'mcpd_temporal_sdk_metrics_up',
        help: "1 when this scrape read the Temporal SDK's own metrics (temporal_*), 0 when its exporter did not answer.",
        registers: [this.registry],
      }),
    };
  }

  private temporalSdk?: { url: string; up: Gauge };

  /** The Prometheus text exposition of everything registered here, the Temporal SDK's series after mcpd's. */
  async exposition(): Promise<string> {
    const sdk = this.temporalSdk;
    if (!sdk) return this.registry.metrics();
    const sdkText = await scrapeTemporalSdk(sdk.url).then(
      (text) => {
        sdk.up.set(1);
        return text;
      },
      () => {
        sdk.up.set(0);
        return '';
      },
    );
    const own = await this.registry.metrics();
    return sdkText.trim() === '' ? own : `${own.endsWith('\n') ? own : `${own}\n`}${sdkText.endsWith('\n') ? sdkText : `${sdkText}\n`}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  // ---- lifecycle (node and control activities, the exit watcher) -------------------

  startAttempted(server: string): void {
    this.startAttempts.labels(server).inc();
  }

  startFailed(server: string, reason: StartFailureReason): void {
    this.startFailures.labels(server, reason).inc();
  }

  containerStarted(server: string, fresh: boolean, seconds: number): void {
    if (fresh) this.containerStarts.labels(server).inc();
    this.startDuration.labels(server).observe(seconds);
  }

  containerExited(server: string, exit: ExitClass): void {
    this.containerExits.labels(server, exit).inc();
  }

  secretLookedUp(operation: SecretOperation, seconds: number, failure?: SecretFailureReason): void {
    this.secretDuration.labels(operation).observe(seconds);
    if (failure) this.secretFailures.labels(operation, failure).inc();
  }

  probed(server: string, kind: ProbeKind, result: ProbeOutcome, seconds: number): void {
    this.probes.labels(server, kind, result).inc();
    if (result !== 'not_counted') this.probeDuration.labels(kind).observe(seconds);
  }

  // ---- gateway -------------------------------------------------------------------------

  /** One upstream request: method is already bounded (methodLabel). */
  gatewayCall(server: string, method: string, origin: CallOrigin, outcome: CallOutcome, seconds: number): void {
    const key = `${server}\n${method}\n${origin}`;
    let series = this.callSeries.get(key);
    if (!series) {
      series = { duration: this.gatewayDuration.labels(server, method, origin), outcomes: new Map() };
      this.callSeries.set(key, series);
    }
    series.duration.observe(seconds);
    let counter = series.outcomes.get(outcome);
    if (!counter) {
      counter = this.gatewayRequests.labels(server, method, origin, outcome);
      series.outcomes.set(outcome, counter);
    }
    counter.inc();
  }

  discoveryLookup(kind: string, hit: boolean): void {
    this.discoveryLookups.labels(kind, hit ? 'hit' : 'miss').inc();
  }
}

/** Seconds since `startedAt` (a performance.now() reading). */
export function secondsSince(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}
