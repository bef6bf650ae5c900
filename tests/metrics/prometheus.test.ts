/**
 * A real Prometheus (Debian's package) scrapes a real mcpd with the example configuration
 * of ops/prometheus/prometheus.yml (its target and token file pointed at the test's mcpd,
 * a 1 s interval), and the series come back through Prometheus's HTTP API: the instance
 * gauge of a server the test applied, the gateway counter after a tool call, the Temporal
 * SDK's series. Its alerting rules load and evaluate, and every query of the Grafana
 * dashboard runs. Prometheus is stopped by pid.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import YAML from 'yaml';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import { callApi } from '../support/clients';
import { dashboardQueries, startPrometheus, type PrometheusServer } from '../support/prometheus';
import { REPO_ROOT, removeContainers, startMcpd, waitFor, waitForValue, type McpdProcess } from '../support/stack';

describe('metrics: a real Prometheus scrapes mcpd', function () {
  this.timeout(180_000);

  const server = `t-met-prom-${randomBytes(3).toString('hex')}`;
  let mcpd: McpdProcess;
  let prometheus: PrometheusServer | undefined;
  const api = (method: string, urlPath: string, body?: unknown) => callApi(mcpd, method, urlPath, body);
  /** The value of a query that returns one sample, or undefined while it returns none. */
  const scalar = async (promql: string) => {
    const result = await prometheus!.query(promql);
    return result.length === 1 ? Number(result[0].value[1]) : undefined;
  };

  before(async () => {
    mcpd = await startMcpd();
  });

  after(async () => {
    await prometheus?.stop();
    if (mcpd) {
      await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
      await mcpd.stop();
    }
    await removeContainers({ label: `${LABELS.server}=${server}` });
  });

  it('reads the instance gauge and the gateway counter back through its HTTP API, and loads the alerting rules', async () => {
    const applied = await api('PUT', `/api/v1/servers/${server}`, { name: server, image: 'mcpd/tiny:dev', replicas: 1 });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await api('POST', `/api/v1/servers/${server}/start`)).status, 200);
    await waitForValue(
      async () => (await api('GET', `/api/v1/instances?server=${server}`)).json.items as InstanceView[],
      (items) => items.length === 1 && items[0].status === 'RUNNING',
      { timeoutMs: 90_000, what: `${server} RUNNING`, describe: (items) => JSON.stringify(items.map((v) => [v.status, v.health, v.error])) },
    );
    const client = new Client({ name: 'prometheus-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}/mcp/servers/${server}`), {
        requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } },
      }),
    );
    try {
      for (let i = 0; i < 2; i++) await client.callTool({ name: 'echo', arguments: { message: `scraped ${i}` } });
    } finally {
      await client.close();
    }

    // The shipped example configuration, pointed at this mcpd.
    const config = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'ops', 'prometheus', 'prometheus.yml'), 'utf8'));
    config.global.scrape_interval = '1s';
    config.global.evaluation_interval = '1s';
    config.rule_files = [path.join(REPO_ROOT, 'ops', 'prometheus', 'alerts.yml')];
    const job = config.scrape_configs[0];
    assert.equal(job.job_name, 'mcpd');
    job.authorization.credentials_file = path.join(mcpd.dataDir, 'api-token');
    job.static_configs = [{ targets: [new URL(mcpd.url).host] }];
    prometheus = await startPrometheus(YAML.stringify(config));

    const up = await waitFor(async () => (await scalar('up{job="mcpd"}')) === 1, { timeoutMs: 30_000, what: 'up{job="mcpd"} == 1' }).catch((err: Error) => {
      throw new Error(`${err.message}\n--- prometheus output ---\n${prometheus!.output()}`);
    });
    assert.equal(up, true);
    await waitFor(async () => (await scalar(`sum(mcpd_instances{server="${server}",status="RUNNING"})`)) === 1, {
      timeoutMs: 30_000,
      what: `mcpd_instances of ${server} in Prometheus`,
    });
    assert.equal(await scalar(`sum(mcpd_gateway_requests_total{server="${server}",method="tools/call",origin="client",outcome="ok"})`), 2);
    assert.equal(await scalar(`sum(mcpd_container_starts_total{server="${server}"})`), 1);
    assert.equal(await scalar(`mcpd_node_ready{node="${mcpd.node}"}`), 1);
    assert.ok(((await scalar('count({__name__=~"temporal_.+"})')) ?? 0) > 0, 'the Temporal SDK series came along');
    assert.ok(((await scalar('scrape_samples_scraped{job="mcpd"}')) ?? 0) > 100, 'a whole scrape, not a fragment');

    const rules = await waitForValue(
      async () => {
        const res = await fetch(`${prometheus!.url}/api/v1/rules?type=alert`);
        const body = (await res.json()) as { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } };
        return body.data.groups.flatMap((g) => g.rules);
      },
      (rules) => rules.length === 7 && rules.every((r) => r.health === 'ok'),
      { timeoutMs: 20_000, what: 'the 7 alerting rules loaded and evaluated without error' },
    );
    assert.ok(rules.some((r) => r.name === 'McpdNodeNotReady'));
    // Nothing is wrong with this mcpd: no alert fires.
    assert.deepEqual(await prometheus.query('ALERTS{alertstate="firing"}'), []);
  });

  it("runs every query of the Grafana dashboard without an error, and its server variable's query finds the server", async () => {
    assert.ok(prometheus, 'the first test started prometheus');
    for (const { panel, expr } of dashboardQueries()) {
      // What Grafana substitutes: every server, and a rate interval of four scrapes.
      const promql = expr.replace(/\$server/g, '.*').replace(/\$__rate_interval/g, '4s');
      await prometheus.query(promql).catch((err: Error) => assert.fail(`panel "${panel}": ${err.message}`));
    }
    const servers = await prometheus.query('group by (server) (mcpd_instances)');
    assert.ok(servers.some((s) => s.metric.server === server));
  });

  it('stops by pid, leaving nothing listening', async () => {
    const { pid, url } = prometheus!;
    await prometheus!.stop();
    prometheus = undefined;
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    await assert.rejects(fetch(`${url}/-/ready`));
  });
});
