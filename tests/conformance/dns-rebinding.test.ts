/**
 * The MCP conformance suite's `dns-rebinding-protection` scenario against a real mcpd,
 * on /mcp and on /mcp/servers/<name>, run as suite.ts describes (Node.js 22, and a
 * loopback proxy that adds mcpd's token).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LABELS } from '../../src/contracts/labels';
import { removeContainers, type McpdProcess } from '../support/stack';
import { callApi } from '../support/clients';
import { NODE22, SUITE, startSuiteTarget } from './suite';

interface Check {
  id: string;
  status: string;
  errorMessage?: string;
  details?: { statusCode?: number };
}

/** Runs the scenario against url; resolves with its exit code and checks. */
async function runScenario(url: string): Promise<{ code: number; checks: Check[] }> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-conformance-'));
  try {
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(NODE22, [SUITE, 'server', '--url', url, '--scenario', 'dns-rebinding-protection', '-o', out], { stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', (c) => resolve(c ?? -1));
    });
    const [run] = fs.readdirSync(out);
    const checks = JSON.parse(fs.readFileSync(path.join(out, run, 'checks.json'), 'utf8')) as Check[];
    return { code, checks };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

describe('MCP conformance: dns-rebinding-protection', function () {
  this.timeout(360_000);

  const server = `t-conf-${randomBytes(3).toString('hex')}`;
  let mcpd: McpdProcess;
  let proxy: http.Server;
  const api = (method: string, urlPath: string, body?: unknown) => callApi(mcpd, method, urlPath, body);

  before(async () => {
    ({ mcpd, proxy } = await startSuiteTarget(server, 'mcpd/tiny:dev'));
  });

  after(async () => {
    proxy?.close();
    if (mcpd) {
      await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
      await mcpd.stop();
    }
    await removeContainers({ label: `${LABELS.server}=${server}` });
  });

  for (const endpoint of ['/mcp', '/mcp/servers/<name>']) {
    it(`passes on ${endpoint}: evil.example.com is refused with a 4xx, localhost is served`, async () => {
      const port = (proxy.address() as AddressInfo).port;
      const { code, checks } = await runScenario(`http://localhost:${port}${endpoint.replace('<name>', server)}`);
      const byId = new Map(checks.map((c) => [c.id, c]));
      assert.equal(byId.get('localhost-host-rebinding-rejected')?.status, 'SUCCESS', JSON.stringify(byId.get('localhost-host-rebinding-rejected')));
      assert.equal(byId.get('localhost-host-rebinding-rejected')?.details?.statusCode, 403);
      assert.equal(byId.get('localhost-host-valid-accepted')?.status, 'SUCCESS', JSON.stringify(byId.get('localhost-host-valid-accepted')));
      assert.equal(code, 0);
    });
  }
});
