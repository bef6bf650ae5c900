/**
 * The label values of mcpd's metrics (src/metrics/classify.ts) and the registry's
 * scrape-time gauges (src/metrics/registry.ts), without the stack: every message and
 * code a start, a secret look-up, an upstream call or a container exit can end with
 * maps to one word of a short fixed list.
 */
import assert from 'node:assert/strict';
import { GatewayErrorCode, UpstreamError } from '../../src/gateway/upstream';
import { exitReason } from '../../src/docker/containers';
import {
  CALL_OUTCOMES,
  GATEWAY_CODES,
  callOutcome,
  exitClass,
  methodLabel,
  secretFailureReason,
  startFailureReason,
  START_FAILURE_REASONS,
} from '../../src/metrics/classify';
import { loadSettings } from '../../src/config/settings';
import { McpdMetrics, type ClusterView } from '../../src/metrics/registry';
import { temporalSdkMetricsAddress } from '../../src/metrics/temporalSdk';

describe('metrics: label values', () => {
  it('classes a failed start by what the operator must fix', () => {
    const cases: [string, string][] = [
      ['secret resolution failed: secret "gitea" not found (wanted key "token") (env GITEA_TOKEN)', 'secret'],
      ['secret resolution failed: OpenBao unreachable at http://127.0.0.1:8200: ECONNREFUSED (env T)', 'secret'],
      ['image mcpd/nope:dev not found locally', 'image'],
      ['packageName "npm:x" has no image yet: the preparePackageImage activity builds it before the start', 'image'],
      ['building the image of npm:left-pad failed: npm ERR! 404', 'image'],
      ['container exited right after start with code 1: Error: token is required', 'exit'],
      ['container exited with code 137 (out of memory: OOM-killed, see resources.memory)', 'exit'],
      ['cannot attach to instance mcp-instance:a:0: MCP handshake failed: timeout after 30 s', 'handshake'],
      ['docker error: connect ENOENT /var/run/docker.sock', 'engine'],
      ['cannot create container: no space left on device', 'engine'],
      ['cannot start container: OCI runtime create failed', 'engine'],
      ['container name mcp-instance-a-0 is taken by another container', 'engine'],
      ['port 65535 + ordinal 1 exceeds 65535', 'spec'],
      ['resources.memory "lots" is not a size', 'spec'],
      ['something nobody expected', 'other'],
    ];
    for (const [message, reason] of cases) assert.equal(startFailureReason(message), reason, message);
    for (const [, reason] of cases) assert.ok((START_FAILURE_REASONS as readonly string[]).includes(reason));
  });

  it('classes a failed secret look-up by the messages of the OpenBao store', () => {
    assert.equal(secretFailureReason('secret resolution failed: secret "a" not found (wanted key "k")'), 'not_found');
    assert.equal(secretFailureReason('secret resolution failed: secret "a" has no key "k"'), 'not_found');
    assert.equal(secretFailureReason('secret resolution failed: secret "a" key "k": OpenBao unreachable at http://x: ECONNREFUSED'), 'unreachable');
    assert.equal(secretFailureReason('secret resolution failed: secret "a" key "k": OpenBao answered HTTP 502'), 'unreachable');
    assert.equal(secretFailureReason('secret resolution failed: secret "a" key "k": permission denied (check the OpenBao token and its policy)'), 'denied');
    assert.equal(secretFailureReason('secret resolution failed: secret "a" key "k": OpenBao at http://x is sealed (HTTP 503): unseal it'), 'sealed');
    assert.equal(secretFailureReason('secret resolution failed: "A!" is not a valid secret name'), 'invalid');
    assert.equal(secretFailureReason('secret resolution failed: secret store error'), 'other');
  });

  it("classes an upstream call's end, and its codes are the gateway's own", () => {
    assert.deepEqual(GATEWAY_CODES, {
      connectionClosed: GatewayErrorCode.ConnectionClosed,
      requestTimeout: GatewayErrorCode.RequestTimeout,
      unavailable: GatewayErrorCode.Unavailable,
      cancelled: GatewayErrorCode.Cancelled,
    });
    assert.equal(callOutcome({ result: { content: [] } }), 'ok');
    assert.equal(callOutcome({ result: { isError: true, content: [] } }), 'tool_error');
    assert.equal(callOutcome({ error: new UpstreamError('Method not found', -32601, undefined, true) }), 'upstream_error');
    assert.equal(callOutcome({ error: new UpstreamError('timeout after 5 s', GatewayErrorCode.RequestTimeout) }), 'timeout');
    assert.equal(callOutcome({ error: new UpstreamError('cancelled', GatewayErrorCode.Cancelled) }), 'cancelled');
    assert.equal(callOutcome({ error: new UpstreamError('not connected', GatewayErrorCode.Unavailable) }), 'unavailable');
    assert.equal(callOutcome({ error: new UpstreamError('closed', GatewayErrorCode.ConnectionClosed) }), 'connection_closed');
    assert.equal(callOutcome({ error: new Error('boom') }), 'error');
    assert.equal(callOutcome({ error: undefined }), 'error');
    assert.equal(CALL_OUTCOMES.length, 8);
  });

  it('keeps method labels to the MCP methods, whatever a passthrough client sends', () => {
    assert.equal(methodLabel('tools/call'), 'tools/call');
    assert.equal(methodLabel('resources/templates/list'), 'resources/templates/list');
    assert.equal(methodLabel('x/made-up-by-a-client'), 'other');
    assert.equal(methodLabel(`tools/${'a'.repeat(1000)}`), 'other');
  });

  it('classes a container exit as the exit watcher sees it', () => {
    assert.equal(exitClass(0), 'clean');
    assert.equal(exitClass(1), 'error');
    assert.equal(exitClass(137), 'killed');
    assert.equal(exitClass(137, true), 'oom');
    assert.equal(exitClass(143), 'terminated');
    assert.equal(exitClass(null), 'unknown');
    // The watcher tells an OOM kill by the reason it builds.
    assert.notEqual(exitReason(137, true), exitReason(137, false));
  });
});

describe('metrics: the registry', () => {
  const serieOf = (text: string, name: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .sort();

  it('reads the gateway table and the cluster view at scrape time, one visibility read per scrape and cache period', async () => {
    const metrics = new McpdMetrics({ node: 'n1', roles: 'api,gateway,worker', processMetrics: false });
    metrics.observeGateway(() => [
      { server: 'a', ready: true, connected: true, inFlight: 2 },
      { server: 'a', ready: false, connected: true, inFlight: 1 },
      { server: 'b', ready: true, connected: false, inFlight: 0 },
    ]);
    let reads = 0;
    let view: ClusterView = {
      instances: [
        { server: 'a', status: 'RUNNING', health: 'healthy' },
        { server: 'a', status: 'RUNNING', health: 'healthy' },
        { server: 'b', status: 'ERROR', health: 'unknown' },
      ],
      nodes: [
        { name: 'n1', ready: true },
        { name: 'n2', ready: false },
      ],
    };
    metrics.observeCluster(async () => {
      reads++;
      return view;
    }, 60_000);

    const text = await metrics.exposition();
    assert.deepEqual(serieOf(text, 'mcpd_gateway_upstream_requests_in_flight'), [
      'mcpd_gateway_upstream_requests_in_flight{server="a"} 3',
      'mcpd_gateway_upstream_requests_in_flight{server="b"} 0',
    ]);
    assert.deepEqual(serieOf(text, 'mcpd_gateway_upstreams'), [
      'mcpd_gateway_upstreams{server="a",state="not_ready"} 1',
      'mcpd_gateway_upstreams{server="a",state="ready"} 1',
      'mcpd_gateway_upstreams{server="b",state="disconnected"} 1',
    ]);
    assert.deepEqual(serieOf(text, 'mcpd_instances'), [
      'mcpd_instances{server="a",status="RUNNING",health="healthy"} 2',
      'mcpd_instances{server="b",status="ERROR",health="unknown"} 1',
    ]);
    assert.deepEqual(serieOf(text, 'mcpd_node_ready'), ['mcpd_node_ready{node="n1"} 1', 'mcpd_node_ready{node="n2"} 0']);
    assert.deepEqual(serieOf(text, 'mcpd_cluster_view_up'), ['mcpd_cluster_view_up 1']);
    assert.equal(reads, 1, 'the three cluster gauges share one read');

    view = { instances: [], nodes: [] };
    await metrics.exposition();
    assert.equal(reads, 1, 'within the cache period the answer is reused');
  });

  it('reports a failed visibility read as mcpd_cluster_view_up 0 with no stale instance counts, and asks again next time', async () => {
    const metrics = new McpdMetrics({ node: 'n1', roles: 'api', processMetrics: false });
    let fail = false;
    metrics.observeCluster(async () => {
      if (fail) throw new Error('Temporal unavailable');
      return { instances: [{ server: 'a', status: 'RUNNING', health: 'healthy' }], nodes: [] };
    }, 0);
    assert.deepEqual(serieOf(await metrics.exposition(), 'mcpd_instances'), ['mcpd_instances{server="a",status="RUNNING",health="healthy"} 1']);
    fail = true;
    const failed = await metrics.exposition();
    assert.deepEqual(serieOf(failed, 'mcpd_instances'), []);
    assert.deepEqual(serieOf(failed, 'mcpd_cluster_view_up'), ['mcpd_cluster_view_up 0']);
    fail = false;
    assert.deepEqual(serieOf(await metrics.exposition(), 'mcpd_cluster_view_up'), ['mcpd_cluster_view_up 1']);
  });

  it('records gateway calls per server, method, origin and outcome into sub-millisecond buckets', async () => {
    const metrics = new McpdMetrics({ node: 'n1', roles: 'gateway', processMetrics: false });
    metrics.gatewayCall('a', 'tools/call', 'client', 'ok', 0.00007);
    metrics.gatewayCall('a', 'tools/call', 'client', 'ok', 0.0004);
    metrics.gatewayCall('a', 'tools/call', 'client', 'timeout', 5);
    const text = await metrics.exposition();
    assert.deepEqual(serieOf(text, 'mcpd_gateway_requests_total'), [
      'mcpd_gateway_requests_total{server="a",method="tools/call",origin="client",outcome="ok"} 2',
      'mcpd_gateway_requests_total{server="a",method="tools/call",origin="client",outcome="timeout"} 1',
    ]);
    const buckets = serieOf(text, 'mcpd_gateway_request_duration_seconds_bucket');
    assert.ok(
      buckets.includes('mcpd_gateway_request_duration_seconds_bucket{le="0.0001",server="a",method="tools/call",origin="client"} 1'),
      buckets.join('\n'),
    );
    assert.ok(buckets.includes('mcpd_gateway_request_duration_seconds_bucket{le="0.0005",server="a",method="tools/call",origin="client"} 2'));
    // No cluster view observed (not an API process): no cluster gauges at all, rather than a misleading 0.
    assert.deepEqual(serieOf(text, 'mcpd_cluster_view_up'), []);
  });
});

describe('metrics: settings', () => {
  it('MCPD_METRICS, MCPD_TEMPORAL_METRICS and OTEL_EXPORTER_OTLP_ENDPOINT: defaults, values, and one line naming a bad one', async () => {
    const defaults = loadSettings({});
    assert.equal(defaults.metrics, true);
    assert.equal(defaults.temporalMetrics, 'auto');
    assert.equal(defaults.otlpEndpoint, undefined);
    const set = loadSettings({ MCPD_METRICS: 'false', MCPD_TEMPORAL_METRICS: '127.0.0.1:9464', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' });
    assert.equal(set.metrics, false);
    assert.deepEqual(set.temporalMetrics, { host: '127.0.0.1', port: 9464 });
    assert.equal(set.otlpEndpoint, 'http://127.0.0.1:4318');
    assert.equal(loadSettings({ MCPD_TEMPORAL_METRICS: 'off' }).temporalMetrics, 'off');
    assert.throws(() => loadSettings({ MCPD_METRICS: 'yes' }), /^SettingsError: MCPD_METRICS: must be true or false, got "yes"$/);
    assert.throws(() => loadSettings({ MCPD_TEMPORAL_METRICS: '9464' }), /^SettingsError: MCPD_TEMPORAL_METRICS: must be auto, off or host:port, got "9464"$/);
    assert.throws(() => loadSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), /OTEL_EXPORTER_OTLP_ENDPOINT: must be an http/);

    assert.equal(await temporalSdkMetricsAddress('off'), undefined);
    assert.equal(await temporalSdkMetricsAddress({ host: '127.0.0.1', port: 9464 }), '127.0.0.1:9464');
    assert.match((await temporalSdkMetricsAddress('auto'))!, /^127\.0\.0\.1:\d+$/);
  });
});
