/**
 * Honest health, end to end: a server that answers tools/list fine but fails
 * every real call is reported unhealthy with the upstream's reason, leaves the
 * gateway, and becomes healthy once its secret is fixed and it is retried.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import { removeContainers, startMcpd, waitFor, waitForValue, type McpdProcess } from '../support/stack';
import { callApi } from '../support/clients';

const docker = new Docker();

describe('honest health (end to end)', function () {
  this.timeout(240_000);

  const suffix = randomBytes(3).toString('hex');
  const gitea = `t-e2e-health-${suffix}`;
  const hanging = `t-e2e-hang-${suffix}`;
  const goodToken = randomBytes(20).toString('hex');
  let mcpd: McpdProcess;

  const api = (method: string, path: string, body?: unknown) => callApi(mcpd, method, path, body);
  const waitForView = (id: string, what: string, ok: (v: InstanceView) => boolean, timeoutMs: number) =>
    waitForValue(
      async () => {
        const res = await api('GET', `/api/v1/instances/${encodeURIComponent(id)}`);
        if (res.status !== 200) throw new Error(`GET instance: ${res.status} ${res.text}`);
        return res.json as InstanceView;
      },
      ok,
      { timeoutMs, intervalMs: 250, what, describe: (v) => JSON.stringify({ ...v, events: v.events.slice(-6) }) },
    );
  const aggregateTools = async (): Promise<string[]> => {
    const client = new Client({ name: 'health-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } } }),
    );
    try {
      return (await client.listTools()).tools.map((t) => t.name);
    } finally {
      await client.close();
    }
  };

  before(async () => {
    mcpd = await startMcpd({ env: { MCPD_SEED_EXAMPLES: 'false' } });
  });

  after(async () => {
    if (mcpd) {
      for (const s of [gitea, hanging]) await api('DELETE', `/api/v1/servers/${s}`).catch(() => undefined);
      await mcpd.stop();
    }
    for (const s of [gitea, hanging]) await removeContainers({ label: `${LABELS.server}=${s}` });
  });

  it('a wrong token answers tools/list fine but the readiness probe reports unhealthy with the reason', async () => {
    assert.equal((await api('PUT', `/api/v1/secrets/${gitea}`, { data: { token: 'not-a-real-token' } })).status, 200);
    const applied = await api('PUT', `/api/v1/servers/${gitea}`, {
      name: gitea,
      image: 'mcpd/gitea-like:dev',
      env: [{ name: 'GITEA_TOKEN', secretRef: { name: gitea, key: 'token' } }],
      healthCheck: { tool: 'get_me', intervalSeconds: 2, timeoutSeconds: 2, failureThreshold: 3 },
      retry: { fastDelaySeconds: 2 },
    });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await api('POST', `/api/v1/servers/${gitea}/start`)).status, 200);

    const id = `mcp-instance:${gitea}:0`;
    const running = await waitForView(id, 'RUNNING', (v) => v.status === 'RUNNING', 30_000);
    // interval x threshold, plus the first probe's start
    const unhealthy = await waitForView(id, 'unhealthy', (v) => v.health === 'unhealthy', 20_000);
    assert.equal(unhealthy.status, 'RUNNING', 'a failing readiness probe does not restart the container');
    assert.equal(unhealthy.containerId, running.containerId);
    assert.match(unhealthy.healthReason ?? '', /invalid token/);
    assert.ok(
      unhealthy.events.some((e) => /unhealthy/.test(e.message) && /invalid token/.test(e.message)),
      'the transition is an event with the reason',
    );
    assert.ok(
      unhealthy.events.some((e) => /degraded/.test(e.message)),
      'degraded comes before unhealthy',
    );

    // An unhealthy instance leaves the gateway's aggregate.
    await waitFor(async () => !(await aggregateTools()).some((t) => t.startsWith(`${gitea}__`)), { timeoutMs: 10_000, what: 'tools to leave /mcp' });
  });

  it('with the secret fixed and the instance retried, it becomes healthy and its tools return', async () => {
    const id = `mcp-instance:${gitea}:0`;
    assert.equal((await api('PUT', `/api/v1/secrets/${gitea}`, { data: { token: goodToken } })).status, 200);
    const retried = await api('POST', `/api/v1/instances/${encodeURIComponent(id)}/retry`);
    assert.equal(retried.status, 202, retried.text);
    const healthy = await waitForView(id, 'healthy', (v) => v.status === 'RUNNING' && v.health === 'healthy', 60_000);
    assert.equal(healthy.healthReason ?? null, null);
    const inspect = await docker.getContainer(healthy.containerId!).inspect();
    assert.ok(inspect.Config.Env.includes(`GITEA_TOKEN=${goodToken}`), 'the retried container runs with the fixed secret');
    await waitFor(async () => (await aggregateTools()).includes(`${gitea}__get_me`), { timeoutMs: 10_000, what: 'tools back in /mcp' });
  });

  it('a probe tool that hangs past timeoutSeconds makes the instance unhealthy ("timeout")', async () => {
    const applied = await api('PUT', `/api/v1/servers/${hanging}`, {
      name: hanging,
      image: 'mcpd/gitea-like:dev',
      healthCheck: { tool: 'hang', intervalSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 },
    });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await api('POST', `/api/v1/servers/${hanging}/start`)).status, 200);
    const v = await waitForView(`mcp-instance:${hanging}:0`, 'unhealthy by timeout', (x) => x.health === 'unhealthy', 45_000);
    assert.match(v.healthReason ?? '', /timeout/i);
  });

  it('a container killed while being probed is noticed and restarted', async () => {
    const id = `mcp-instance:${gitea}:0`;
    const before = await waitForView(id, 'healthy', (v) => v.status === 'RUNNING' && v.health === 'healthy', 30_000);
    await docker.getContainer(before.containerId!).kill();
    const after = await waitForView(id, 'RUNNING in a new container', (v) => v.status === 'RUNNING' && v.containerId !== before.containerId, 60_000);
    assert.ok(after.events.some((e) => /exit/i.test(e.message)));
    await waitForView(id, 'healthy again', (v) => v.health === 'healthy', 30_000);
  });
});
