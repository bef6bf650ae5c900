/**
 * The ready-made operations files of ops/ checked by the real tools: Prometheus's alerting
 * rules with `promtool check rules` and their unit tests with `promtool test rules` (each
 * alert fires on the series that should raise it, and only after its `for`), and the
 * Grafana dashboard's JSON. (tests/metrics/prometheus.test.ts runs every dashboard query
 * against a real Prometheus.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { dashboardQueries, runPromtool } from '../support/prometheus';
import { REPO_ROOT } from '../support/stack';

const OPS = path.join(REPO_ROOT, 'ops');

describe('metrics: the operations files in ops/', () => {
  it('promtool check rules accepts the alerting rules', async () => {
    const check = await runPromtool(['check', 'rules', path.join(OPS, 'prometheus', 'alerts.yml')]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /SUCCESS: 7 rules found/);
  });

  it('promtool test rules: each alert fires when it should and not before', async () => {
    const run = await runPromtool(['test', 'rules', path.join(OPS, 'prometheus', 'alerts.test.yml')]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /SUCCESS/);
    // Every alert of alerts.yml has a test.
    const alerts = [...fs.readFileSync(path.join(OPS, 'prometheus', 'alerts.yml'), 'utf8').matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    const tested = new Set([...fs.readFileSync(path.join(OPS, 'prometheus', 'alerts.test.yml'), 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]));
    assert.deepEqual(
      alerts.filter((a) => !tested.has(a)),
      [],
    );
    assert.deepEqual(alerts.sort(), [
      'McpdClusterViewFailing',
      'McpdDown',
      'McpdGatewayErrorRate',
      'McpdInstanceCrashLooping',
      'McpdInstanceUnhealthy',
      'McpdNodeNotReady',
      'McpdSecretResolutionFailing',
    ]);
  });

  it('promtool check config accepts the example Prometheus configuration', async () => {
    const config = path.join(OPS, 'prometheus', 'prometheus.yml');
    const check = await runPromtool(['check', 'config', '--syntax-only', config]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
  });

  it("the Grafana dashboard is JSON with a query on every panel, on mcpd's series and its data source variable", () => {
    const dashboard = JSON.parse(fs.readFileSync(path.join(OPS, 'grafana', 'mcpd-dashboard.json'), 'utf8'));
    assert.equal(dashboard.uid, 'mcpd-overview');
    assert.deepEqual(
      dashboard.templating.list.map((v: { name: string }) => v.name),
      ['datasource', 'server'],
    );
    const panels = dashboard.panels.filter((p: { type: string }) => p.type !== 'row');
    assert.ok(panels.length >= 15);
    for (const panel of panels) {
      assert.ok(panel.targets.length > 0, `${panel.title} has a query`);
      assert.equal(panel.datasource.uid, '${datasource}', panel.title);
    }
    const ids = dashboard.panels.map((p: { id: number }) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    assert.ok(dashboardQueries().every((q) => /mcpd_|process_|nodejs_|temporal_/.test(q.expr)));
  });
});
