/**
 * The MCP conformance suite's server scenarios (the pinned package of
 * tests/conformance/package.json, every scenario of its active suite) through a real
 * mcpd, against mcpd/conformance-everything:dev (images/conformance-everything, built
 * by scripts/images.mjs like the project's other images):
 * - through /mcp/servers/<name>, the transparent endpoint of one server;
 * - through /mcp/virtual/<name>, a virtual server over that one server with naming
 *   "none", so the names the suite asks for are the server's own.
 * Any FAILURE check fails the test, unless tests/conformance/expected-failures.yaml
 * lists it with a reason; a listed failure that passes fails the test too (the entry
 * is stale). The suite needs Node.js 22 and sends no bearer token: see
 * dns-rebinding.test.ts for its installation and the token-adding proxy.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { LABELS } from '../../src/contracts/labels';
import { REPO_ROOT, removeContainers, type McpdProcess } from '../support/stack';
import { callApi } from '../support/clients';
import { NODE22, SUITE, startSuiteTarget } from './suite';

const EXPECTED_FAILURES = path.join(REPO_ROOT, 'tests', 'conformance', 'expected-failures.yaml');

interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}

interface ExpectedFailure {
  endpoint: 'servers' | 'virtual';
  scenario: string;
  check: string;
  reason: string;
}

function readExpectedFailures(): ExpectedFailure[] {
  const entries = (YAML.parse(fs.readFileSync(EXPECTED_FAILURES, 'utf8')) ?? []) as ExpectedFailure[];
  assert.ok(Array.isArray(entries), `${EXPECTED_FAILURES}: must be a list`);
  for (const [i, e] of entries.entries()) {
    assert.ok(['servers', 'virtual'].includes(e.endpoint), `${EXPECTED_FAILURES} entry ${i + 1}: endpoint must be "servers" or "virtual"`);
    assert.ok(e.scenario && e.check, `${EXPECTED_FAILURES} entry ${i + 1}: needs scenario and check`);
    assert.ok(typeof e.reason === 'string' && e.reason.trim().length >= 10, `${EXPECTED_FAILURES} entry ${i + 1}: needs a reason`);
  }
  return entries;
}

/** Runs every active server scenario (or one) against url; resolves with the checks of each scenario. */
async function runSuite(url: string, scenario?: string): Promise<Map<string, Check[]>> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-conformance-'));
  try {
    await new Promise<number>((resolve, reject) => {
      const args = [SUITE, 'server', '--url', url, '-o', out, ...(scenario ? ['--scenario', scenario] : [])];
      const child = spawn(NODE22, args, { stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', (c) => resolve(c ?? -1));
    });
    const byScenario = new Map<string, Check[]>();
    for (const dir of fs.readdirSync(out)) {
      const file = path.join(out, dir, 'checks.json');
      if (!fs.existsSync(file)) continue;
      // server-<scenario>-<ISO time with : and . as ->
      const scenario = dir.replace(/^server-/, '').replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, '');
      byScenario.set(scenario, JSON.parse(fs.readFileSync(file, 'utf8')) as Check[]);
    }
    return byScenario;
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

describe('MCP conformance: server scenarios through mcpd', function () {
  this.timeout(600_000);

  const suffix = randomBytes(3).toString('hex');
  const server = `t-conf-${suffix}`;
  const virtual = `t-conf-${suffix}-v`;
  let mcpd: McpdProcess;
  let proxy: http.Server;
  const api = (method: string, urlPath: string, body?: unknown) => callApi(mcpd, method, urlPath, body);

  before(async () => {
    ({ mcpd, proxy } = await startSuiteTarget(server, 'mcpd/conformance-everything:dev'));
    const virtualApplied = await api('PUT', `/api/v1/virtualservers/${virtual}`, {
      kind: 'VirtualServer',
      name: virtual,
      naming: 'none',
      servers: [{ name: server }],
    });
    assert.equal(virtualApplied.status, 201, virtualApplied.text);
  });

  after(async () => {
    proxy?.close();
    if (mcpd) {
      await api('DELETE', `/api/v1/virtualservers/${virtual}`).catch(() => undefined);
      await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
      await mcpd.stop();
    }
    await removeContainers({ label: `${LABELS.server}=${server}` });
  });

  // On /mcp every name is <server>__<name>, which the scenarios that call a tool or get a prompt by name cannot know
  // (a virtual server with naming none is the answer to that); the rest must pass there too.
  const NAME_FREE_SCENARIOS = [
    'server-initialize',
    'logging-set-level',
    'ping',
    'tools-list',
    'resources-list',
    'resources-read-text',
    'resources-read-binary',
    'resources-templates-read',
    'resources-subscribe',
    'resources-unsubscribe',
    'prompts-list',
  ];
  it(`passes the scenarios that do not name a tool or prompt through the /mcp aggregate: ${NAME_FREE_SCENARIOS.join(', ')}`, async () => {
    const port = (proxy.address() as AddressInfo).port;
    const failed: string[] = [];
    for (const scenario of NAME_FREE_SCENARIOS) {
      const results = await runSuite(`http://localhost:${port}/mcp`, scenario);
      const checks = results.get(scenario);
      assert.ok(checks && checks.length > 0, `${scenario}: no checks ran (${[...results.keys()].join(', ')})`);
      for (const check of checks) if (check.status === 'FAILURE') failed.push(`${scenario}/${check.id}: ${check.errorMessage ?? '(no message)'}`);
    }
    assert.deepEqual(failed, [], `failed checks through /mcp:\n${failed.join('\n')}`);
  });

  for (const endpoint of ['servers', 'virtual'] as const) {
    const where = endpoint === 'servers' ? '/mcp/servers/<name>' : '/mcp/virtual/<name> (one server, naming none)';
    it(`passes every active server scenario through ${where}`, async () => {
      const port = (proxy.address() as AddressInfo).port;
      const target = endpoint === 'servers' ? `/mcp/servers/${server}` : `/mcp/virtual/${virtual}`;
      const results = await runSuite(`http://localhost:${port}${target}`);
      assert.ok(results.size >= 30, `the suite ran ${results.size} scenarios: ${[...results.keys()].join(', ')}`);
      const expected = readExpectedFailures().filter((e) => e.endpoint === endpoint);
      const isExpected = (scenario: string, check: string) => expected.some((e) => e.scenario === scenario && e.check === check);
      const unexpected: string[] = [];
      const failedKeys = new Set<string>();
      for (const [scenario, checks] of results) {
        for (const check of checks) {
          if (check.status !== 'FAILURE') continue;
          failedKeys.add(`${scenario}/${check.id}`);
          if (!isExpected(scenario, check.id)) unexpected.push(`${scenario}/${check.id}: ${check.errorMessage ?? '(no message)'}`);
        }
      }
      // What the suite must have seen work through mcpd, not merely not fail: the relayed and routed parts.
      const succeeded = (scenario: string) => results.get(scenario)?.some((c) => c.status === 'SUCCESS') === true;
      for (const scenario of [
        'tools-call-with-logging',
        'tools-call-with-progress',
        'tools-call-sampling',
        'tools-call-elicitation',
        'resources-subscribe',
        'logging-set-level',
        'completion-complete',
      ]) {
        assert.ok(succeeded(scenario), `${scenario}: ${JSON.stringify(results.get(scenario))}`);
      }
      const statuses = [...results.values()].flat().map((c) => c.status);
      process.stdout.write(
        `      ${where}: ${results.size} scenarios, ${statuses.length} checks: ${['SUCCESS', 'FAILURE', 'WARNING', 'INFO'].map((s) => `${statuses.filter((x) => x === s).length} ${s}`).join(', ')}\n`,
      );
      const stale = expected.filter((e) => results.has(e.scenario) && !failedKeys.has(`${e.scenario}/${e.check}`));
      assert.deepEqual(unexpected, [], `failed checks through ${where}:\n${unexpected.join('\n')}`);
      assert.deepEqual(
        stale.map((e) => `${e.scenario}/${e.check}`),
        [],
        `these expected failures pass now: remove them from ${EXPECTED_FAILURES}`,
      );
    });
  }
});
