/**
 * GET /metrics of a real mcpd process (node dist/src/main.js) on npm test's stack: what an
 * operator's Prometheus reads after a server runs, a client calls a tool, and another
 * server fails to start on a missing secret. The scrape passes `promtool check metrics`,
 * names no secret value and no instance id, and includes the Temporal SDK's own series.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import { callApi } from '../support/clients';
import { parseExposition, runPromtool, valueOf, type Sample } from '../support/prometheus';
import { removeContainers, startMcpd, waitForValue, type McpdProcess } from '../support/stack';

describe('metrics: GET /metrics of a running mcpd', function () {
  this.timeout(180_000);

  const suffix = randomBytes(3).toString('hex');
  const healthy = `t-met-ok-${suffix}`;
  const broken = `t-met-nosecret-${suffix}`;
  const plain = `t-met-plain-${suffix}`;
  const secretName = `t-met-${suffix}`;
  // A value that must never appear in a scrape.
  const secretValue = `s3cr3t-${randomBytes(12).toString('hex')}`;
  let mcpd: McpdProcess;
  const api = (method: string, path: string, body?: unknown) => callApi(mcpd, method, path, body);
  const scrape = async () => {
    const res = await fetch(`${mcpd.url}/metrics`, { headers: { authorization: `Bearer ${mcpd.token}` } });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return { text, contentType: res.headers.get('content-type'), samples: parseExposition(text) };
  };

  before(async () => {
    mcpd = await startMcpd();
  });

  after(async () => {
    if (mcpd) {
      for (const server of [healthy, broken, plain]) await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
      await api('DELETE', `/api/v1/secrets/${secretName}`).catch(() => undefined);
      await mcpd.stop();
    }
    for (const server of [healthy, broken, plain]) await removeContainers({ label: `${LABELS.server}=${server}` });
  });

  it('answers only with the API token, in the Prometheus text format', async () => {
    const anonymous = await fetch(`${mcpd.url}/metrics`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/);
    const wrong = await fetch(`${mcpd.url}/metrics`, { headers: { authorization: 'Bearer not-the-token' } });
    assert.equal(wrong.status, 403);
    const posted = await fetch(`${mcpd.url}/metrics`, { method: 'POST', headers: { authorization: `Bearer ${mcpd.token}` } });
    assert.equal(posted.status, 405);

    const { contentType, samples } = await scrape();
    assert.match(contentType ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal(valueOf(samples, 'mcpd_process_info', { node: mcpd.node, roles: 'api,gateway,worker' }), 1);
    assert.ok((valueOf(samples, 'process_cpu_seconds_total') ?? 0) > 0, 'process metrics (collectDefaultMetrics)');
    assert.ok(valueOf(samples, 'nodejs_eventloop_lag_seconds') !== undefined, 'event loop lag');
  });

  it('counts a server that runs, its probes and a client tool call through the gateway', async () => {
    const applied = await api('PUT', `/api/v1/servers/${healthy}`, {
      name: healthy,
      image: 'mcpd/tiny:dev',
      replicas: 1,
      env: [{ name: 'TOKEN', secretRef: { name: secretName, key: 'token' } }],
      healthCheck: { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: 2, timeoutSeconds: 5 },
    });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await api('PUT', `/api/v1/secrets/${secretName}`, { data: { token: secretValue } })).status, 200);
    assert.equal((await api('POST', `/api/v1/servers/${healthy}/start`)).status, 200);
    await waitForValue(
      async () => (await api('GET', `/api/v1/instances?server=${healthy}`)).json.items as InstanceView[],
      (items) => items.length === 1 && items[0].status === 'RUNNING' && items[0].health === 'healthy',
      { timeoutMs: 90_000, what: `${healthy} RUNNING and healthy`, describe: (items) => JSON.stringify(items.map((v) => [v.status, v.health, v.error])) },
    );

    const client = new Client({ name: 'metrics-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } } }),
    );
    try {
      await client.listTools();
      await client.listTools();
      for (let i = 0; i < 3; i++) await client.callTool({ name: `${healthy}__echo`, arguments: { message: `call ${i}` } });
      const failed = (await client.callTool({ name: `${healthy}__echo`, arguments: {} })) as { isError?: boolean };
      assert.equal(failed.isError, true, 'echo without a message is a tool error');
    } finally {
      await client.close();
    }

    // The status in visibility can lag the status query by a moment.
    const { samples } = await waitForValue(
      scrape,
      ({ samples }) => valueOf(samples, 'mcpd_instances', { server: healthy, status: 'RUNNING', health: 'healthy' }) === 1,
      {
        timeoutMs: 20_000,
        what: `mcpd_instances{server="${healthy}",status="RUNNING",health="healthy"} 1`,
        describe: ({ samples }) => JSON.stringify(samples.filter((s) => s.labels.server === healthy && s.name === 'mcpd_instances')),
      },
    );
    const server = { server: healthy };
    assert.equal(valueOf(samples, 'mcpd_instance_start_attempts_total', server), 1);
    assert.equal(valueOf(samples, 'mcpd_container_starts_total', server), 1);
    assert.equal(valueOf(samples, 'mcpd_instance_start_duration_seconds_count', server), 1);
    assert.equal(valueOf(samples, 'mcpd_instance_start_failures_total', server), undefined, 'no failed start');
    const tools = { ...server, method: 'tools/call', origin: 'client' };
    assert.equal(valueOf(samples, 'mcpd_gateway_requests_total', { ...tools, outcome: 'ok' }), 3);
    assert.equal(valueOf(samples, 'mcpd_gateway_requests_total', { ...tools, outcome: 'tool_error' }), 1);
    assert.equal(valueOf(samples, 'mcpd_gateway_request_duration_seconds_count', tools), 4);
    // Sub-millisecond buckets exist, so a fast call is not lumped into a coarse first bucket.
    assert.ok(samples.some((s) => s.name === 'mcpd_gateway_request_duration_seconds_bucket' && s.labels.le === '0.0001'));
    assert.ok((valueOf(samples, 'mcpd_probes_total', { ...server, kind: 'readiness', result: 'pass' }) ?? 0) >= 1, 'the start probe passed');
    assert.ok((valueOf(samples, 'mcpd_gateway_requests_total', { ...server, method: 'tools/call', origin: 'probe', outcome: 'ok' }) ?? 0) >= 1);
    assert.ok((valueOf(samples, 'mcpd_gateway_requests_total', { ...server, method: 'tools/list', origin: 'discovery', outcome: 'ok' }) ?? 0) >= 1);
    assert.ok((valueOf(samples, 'mcpd_gateway_discovery_cache_lookups_total', { kind: 'tools', result: 'hit' }) ?? 0) >= 1, 'the second tools/list is a hit');
    assert.ok((valueOf(samples, 'mcpd_gateway_discovery_cache_lookups_total', { kind: 'tools', result: 'miss' }) ?? 0) >= 1);
    assert.equal(valueOf(samples, 'mcpd_gateway_upstreams', { ...server, state: 'ready' }), 1);
    assert.equal(valueOf(samples, 'mcpd_gateway_upstream_requests_in_flight', server), 0);
    assert.ok((valueOf(samples, 'mcpd_secret_resolution_duration_seconds_count', { operation: 'pin' }) ?? 0) >= 1);
    assert.ok((valueOf(samples, 'mcpd_secret_resolution_duration_seconds_count', { operation: 'read' }) ?? 0) >= 1);
    assert.equal(valueOf(samples, 'mcpd_node_ready', { node: mcpd.node }), 1);
    assert.equal(valueOf(samples, 'mcpd_cluster_view_up'), 1);
  });

  it('counts a start that fails on a missing secret by its reason class, and the instance waiting in ERROR', async () => {
    const applied = await api('PUT', `/api/v1/servers/${broken}`, {
      name: broken,
      image: 'mcpd/tiny:dev',
      replicas: 1,
      env: [{ name: 'TOKEN', secretRef: { name: `${secretName}-missing`, key: 'token' } }],
    });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await api('POST', `/api/v1/servers/${broken}/start`)).status, 200);
    const { samples } = await waitForValue(
      scrape,
      ({ samples }) =>
        valueOf(samples, 'mcpd_instance_start_failures_total', { server: broken, reason: 'secret' }) !== undefined &&
        valueOf(samples, 'mcpd_instances', { server: broken, status: 'ERROR' }) === 1,
      {
        timeoutMs: 60_000,
        what: `a secret start failure of ${broken} and its instance in ERROR`,
        describe: ({ samples }) => JSON.stringify(samples.filter((s) => s.labels.server === broken)),
      },
    );
    assert.equal(valueOf(samples, 'mcpd_instance_start_attempts_total', { server: broken }), 1);
    assert.ok((valueOf(samples, 'mcpd_secret_resolution_failures_total', { operation: 'pin', reason: 'not_found' }) ?? 0) >= 1);
    assert.equal(valueOf(samples, 'mcpd_container_starts_total', { server: broken }), undefined, 'no container was started');
  });

  it('counts the start attempt of a server whose env holds no secret once, with its container start', async () => {
    const applied = await api('PUT', `/api/v1/servers/${plain}`, { name: plain, image: 'mcpd/tiny:dev', replicas: 1, env: [{ name: 'MODE', value: 'plain' }] });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await api('POST', `/api/v1/servers/${plain}/start`)).status, 200);
    const { samples } = await waitForValue(
      scrape,
      ({ samples }) => valueOf(samples, 'mcpd_instances', { server: plain, status: 'RUNNING', health: 'healthy' }) === 1,
      {
        timeoutMs: 60_000,
        what: `mcpd_instances{server="${plain}",status="RUNNING",health="healthy"} 1`,
        describe: ({ samples }) => JSON.stringify(samples.filter((s) => s.labels.server === plain)),
      },
    );
    assert.equal(valueOf(samples, 'mcpd_instance_start_attempts_total', { server: plain }), 1);
    assert.equal(valueOf(samples, 'mcpd_container_starts_total', { server: plain }), 1);
  });

  it('passes promtool check metrics, carries the Temporal SDK series, and names no secret value or instance id', async () => {
    const { text, samples } = await scrape();
    const check = await runPromtool(['check', 'metrics'], text);
    assert.equal(check.code, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
    assert.equal(`${check.stdout}${check.stderr}`.trim(), '', 'no lint findings either');

    assert.equal(valueOf(samples, 'mcpd_temporal_sdk_metrics_up'), 1);
    const sdk = samples.filter((s: Sample) => s.name.startsWith('temporal_'));
    assert.ok(sdk.length > 0, 'temporal_* series of the SDK exporter');
    assert.ok(
      sdk.some(
        (s) => s.name.startsWith('temporal_workflow_task_execution_latency_seconds') || s.name.startsWith('temporal_activity_execution_latency_seconds'),
      ),
      `task latencies among ${[...new Set(sdk.map((s) => s.name))].slice(0, 20).join(', ')}`,
    );

    assert.ok(!text.includes(secretValue), 'the secret value appears nowhere');
    assert.ok(!text.includes(`mcp-instance:`), 'no instance id in any label');
    const allowed = new Set([
      'class',
      'health',
      'kind',
      'le',
      'method',
      'node',
      'operation',
      'origin',
      'outcome',
      'reason',
      'result',
      'roles',
      'server',
      'state',
      'status',
    ]);
    const labelNames = new Set(samples.filter((s) => s.name.startsWith('mcpd_')).flatMap((s) => Object.keys(s.labels)));
    assert.deepEqual(
      [...labelNames].filter((l) => !allowed.has(l)),
      [],
      'only the labels the README documents',
    );
  });
});
