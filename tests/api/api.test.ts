/**
 * The REST API against a real mcpd assembled in-process (real workflows,
 * activities, Docker, OpenBao, gateway) on npm test's Temporal and OpenBao.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { InstanceView } from '../../src/contracts/instance';
import { REPLICAS } from '../../src/contracts/spec';
import { PLACEHOLDER_SECRET_VALUE, SEED_MARKER, defaultExamplesDir, seedExamples } from '../../src/api/seed';
import { waitFor } from '../support/stack';
import { api, startApiStack, type ApiStack } from './stack';

const EVERYTHING = {
  image: 'mcpd/server-everything:dev',
  args: ['stdio'],
  healthCheck: { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: 2, timeoutSeconds: 10, failureThreshold: 2 },
};

describe('api: REST against a real mcpd', function () {
  this.timeout(180_000);
  let stack: ApiStack;
  let call: ReturnType<typeof api>;
  const created: string[] = [];

  before(async () => {
    stack = await startApiStack();
    call = api(stack);
  });

  after(async () => {
    for (const name of created) await call('DELETE', `/api/v1/servers/${name}`).catch(() => undefined);
    await stack?.stop();
  });

  async function instances(server: string): Promise<InstanceView[]> {
    const res = await call('GET', `/api/v1/instances?server=${server}`);
    assert.equal(res.status, 200, res.text);
    return res.json.items;
  }

  async function waitHealthy(server: string, count: number): Promise<InstanceView[]> {
    return waitFor(
      async () => {
        const items = await instances(server);
        return items.length === count && items.every((i) => i.status === 'RUNNING' && i.health === 'healthy') && items;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: `${count} healthy instance(s) of ${server}` },
    );
  }

  describe('authentication', () => {
    it('keeps /healthz, /readyz and the OpenAPI document open', async () => {
      assert.equal((await call('GET', '/healthz', undefined, { token: null })).status, 200);
      assert.deepEqual((await call('GET', '/readyz', undefined, { token: null })).json, { status: 'ready', gateway: 'ok', controlPlane: 'ok' });
      const doc = await call('GET', '/api/v1/openapi.json', undefined, { token: null });
      assert.equal(doc.status, 200);
      assert.ok(doc.json.paths['/api/v1/servers/{name}/scale']);
    });

    it('answers 401 without a token and 403 with a wrong one, on the API and the gateway', async () => {
      const none = await call('GET', '/api/v1/servers', undefined, { token: null });
      assert.equal(none.status, 401);
      assert.deepEqual(none.json.error, 'missing bearer token');
      assert.match(none.headers.get('www-authenticate') ?? '', /Bearer/);
      const wrong = await call('GET', '/api/v1/servers', undefined, { token: 'f'.repeat(64) });
      assert.equal(wrong.status, 403);
      assert.equal((await call('POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'ping' }, { token: null })).status, 401);
      assert.equal((await call('POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'ping' }, { token: 'nope-nope-nope-nope' })).status, 403);
    });

    it('checks the token before reading the body', async () => {
      const res = await call('PUT', '/api/v1/servers/x', undefined, { token: null, rawBody: '{not json' });
      assert.equal(res.status, 401);
    });
  });

  describe('bad input', () => {
    it('400 naming every bad field of a spec', async () => {
      const res = await call('PUT', '/api/v1/servers/t-api-bad', {
        name: 't-api-bad',
        transport: 'http',
        replicas: REPLICAS.max + 1,
        healthCheck: { tool: '' },
      });
      assert.equal(res.status, 400);
      assert.match(res.json.error, /^invalid spec: /);
      const fields = res.json.details.map((d: { field: string }) => d.field).sort();
      assert.deepEqual(fields, ['healthCheck.tool', 'image', 'port', 'replicas']);
    });

    it('400 when the URL name and spec.name differ, for bad JSON, and 413 for a huge body', async () => {
      const mismatch = await call('PUT', '/api/v1/servers/t-api-a', { name: 't-api-b', image: 'x' });
      assert.equal(mismatch.status, 400);
      assert.match(mismatch.json.error, /does not match the URL name/);
      const badJson = await call('PUT', '/api/v1/servers/t-api-a', undefined, { rawBody: '{"name": ' });
      assert.equal(badJson.status, 400);
      assert.equal(badJson.json.error, 'request body is not valid JSON');
      const huge = await call('PUT', '/api/v1/servers/t-api-a', { name: 't-api-a', image: 'x'.repeat(2_000_000) });
      assert.equal(huge.status, 413);
      const noBody = await call('PUT', '/api/v1/servers/t-api-a');
      assert.equal(noBody.status, 400);
    });

    it('404 JSON for unknown servers, instances, secrets and routes', async () => {
      for (const [method, p] of [
        ['GET', '/api/v1/servers/t-api-nope'],
        ['POST', '/api/v1/servers/t-api-nope/start'],
        ['POST', '/api/v1/servers/t-api-nope/stop'],
        ['DELETE', '/api/v1/servers/t-api-nope'],
        ['GET', '/api/v1/instances/mcp-instance:t-api-nope:0'],
        ['POST', '/api/v1/instances/t-api-nope:0/retry'],
        ['GET', '/api/v1/instances/t-api-nope:0/logs'],
        ['GET', '/api/v1/secrets/t-api-nope'],
        ['DELETE', '/api/v1/secrets/t-api-nope'],
        ['GET', '/api/v1/nothing-here'],
      ]) {
        const res = await call(method, p);
        assert.equal(res.status, 404, `${method} ${p}: ${res.text}`);
        assert.equal(typeof res.json.error, 'string');
      }
      const scale = await call('POST', '/api/v1/servers/t-api-nope/scale', { replicas: 2 });
      assert.equal(scale.status, 404);
    });

    it('400 for a malformed instance id, a bad filter or bad replicas', async () => {
      assert.equal((await call('GET', '/api/v1/instances/not-an-id')).status, 400);
      const filter = await call('GET', '/api/v1/instances?status=SLEEPING');
      assert.equal(filter.status, 400);
      assert.equal(filter.json.details[0].field, 'status');
      const scale = await call('POST', '/api/v1/servers/t-api-nope/scale', { replicas: 'many' });
      assert.equal(scale.status, 400);
      assert.equal(scale.json.details[0].field, 'replicas');
    });

    it('every 400 names the bad path parameter, query parameter or body field as {field, message}', async () => {
      const cases: [string, string, unknown, string][] = [
        ['GET', '/api/v1/servers/Not_A_Name', undefined, 'name'],
        ['GET', '/api/v1/secrets/Bad%20Name', undefined, 'name'],
        ['GET', '/api/v1/instances/gitea', undefined, 'id'],
        ['GET', '/api/v1/instances?server=a&server=b', undefined, 'server'],
        ['GET', '/api/v1/instances?health=fine', undefined, 'health'],
        ['GET', '/api/v1/instances/t-api-nope:0/logs?tail=-1', undefined, 'tail'],
        ['POST', '/api/v1/servers/t-api-nope/scale', { replicas: REPLICAS.max + 1 }, 'replicas'],
        ['POST', '/api/v1/servers/t-api-nope/start?wait=true&timeout=0', undefined, 'timeout'],
        ['PUT', '/api/v1/secrets/t-api-any', { data: {} }, 'data'],
        ['PUT', '/api/v1/secrets/t-api-any', { data: { a: 'b' }, value: 'c' }, 'value'],
      ];
      for (const [method, p, body, field] of cases) {
        const res = await call(method, p, body);
        assert.equal(res.status, 400, `${method} ${p}: ${res.text}`);
        assert.equal(typeof res.json.error, 'string');
        assert.ok(Array.isArray(res.json.details), `${method} ${p}: details is a list`);
        assert.deepEqual(Object.keys(res.json.details[0]).sort(), ['field', 'message']);
        assert.equal(res.json.details[0].field, field, `${method} ${p}`);
      }
    });

    it('serves the OpenAPI document generated from the same schemas', async () => {
      const doc = (await call('GET', '/api/v1/openapi.json', undefined, { token: null })).json;
      assert.equal(doc.components.schemas.ScaleRequest.properties.replicas.maximum, REPLICAS.max);
      assert.equal(doc.paths['/api/v1/servers/{name}'].put.requestBody.content['application/json'].schema.$ref, '#/components/schemas/McpServerSpec');
    });
  });

  describe('servers and instances', () => {
    const name = 't-api-everything';

    it('applies, starts and shows a healthy instance with its events and stderr', async () => {
      created.push(name);
      const first = await call('PUT', `/api/v1/servers/${name}`, { name, ...EVERYTHING });
      assert.equal(first.status, 201, first.text);
      assert.equal(first.json.outcome, 'created');
      assert.equal(first.json.running, false);
      const again = await call('PUT', `/api/v1/servers/${name}`, { name, ...EVERYTHING });
      assert.equal(again.status, 200);
      assert.equal(again.json.outcome, 'unchanged');

      const start = await call('POST', `/api/v1/servers/${name}/start`);
      assert.equal(start.status, 200, start.text);
      assert.deepEqual(start.json.instances, [`mcp-instance:${name}:0`]);

      const [instance] = await waitHealthy(name, 1);
      assert.ok(instance.containerId);
      assert.equal(instance.attemptCount, 1);

      const described = await call('GET', `/api/v1/instances/${encodeURIComponent(instance.id)}`);
      assert.equal(described.status, 200);
      assert.equal(described.json.id, instance.id);
      const short = await call('GET', `/api/v1/instances/${name}:0`);
      assert.equal(short.json.id, instance.id);

      const events = await call('GET', `/api/v1/instances/${name}:0/events`);
      assert.equal(events.status, 200);
      assert.ok(events.json.items.length > 0, 'the instance has events');

      const logs = await call('GET', `/api/v1/instances/${name}:0/logs?tail=50`);
      assert.equal(logs.status, 200);
      assert.match(logs.headers.get('content-type') ?? '', /^text\/plain/);
      assert.match(logs.text, /Starting default \(STDIO\) server/);
      assert.doesNotMatch(logs.text, /jsonrpc/, 'stdout (the protocol) is not in the logs');

      const servers = await call('GET', '/api/v1/servers');
      const mine = servers.json.items.find((s: { name: string }) => s.name === name);
      assert.equal(mine.running, true);
      assert.equal(mine.readyReplicas, 1);
      assert.ok(mine.createdAt);
    });

    it('follows logs until the client goes away', async () => {
      const controller = new AbortController();
      const res = await fetch(`${stack.url}/api/v1/instances/${name}:0/logs?follow=true&tail=all`, {
        headers: { authorization: `Bearer ${stack.token}` },
        signal: controller.signal,
      });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      const { value } = await reader.read();
      assert.match(Buffer.from(value).toString('utf8'), /Starting default/);
      controller.abort();
      await reader.read().catch(() => undefined);
    });

    it('filters instances by status and health', async () => {
      const healthy = await call('GET', `/api/v1/instances?server=${name}&health=healthy`);
      assert.equal(healthy.json.items.length, 1);
      const errors = await call('GET', `/api/v1/instances?server=${name}&status=ERROR`);
      assert.equal(errors.json.items.length, 0);
    });

    it('scales 1 -> 2 -> 1', async () => {
      const up = await call('POST', `/api/v1/servers/${name}/scale`, { replicas: 2 });
      assert.equal(up.status, 200, up.text);
      assert.equal(up.json.spec.replicas, 2);
      await waitHealthy(name, 2);
      const down = await call('POST', `/api/v1/servers/${name}/scale`, { replicas: 1 });
      assert.equal(down.status, 200);
      const left = await waitFor(
        async () => {
          const items = await instances(name);
          return items.length === 1 && items;
        },
        { timeoutMs: 60_000, what: 'scale down to 1' },
      );
      assert.equal(left[0].id, `mcp-instance:${name}:0`);
    });

    it('restarts an instance onto a new container', async () => {
      const before = (await call('GET', `/api/v1/instances/${name}:0`)).json as InstanceView;
      const res = await call('POST', `/api/v1/instances/${name}:0/restart`);
      assert.equal(res.status, 202);
      assert.deepEqual(res.json, { id: before.id, signal: 'restart' });
      await waitFor(
        async () => {
          const now = (await call('GET', `/api/v1/instances/${name}:0`)).json as InstanceView;
          return now.containerId && now.containerId !== before.containerId && now.status === 'RUNNING';
        },
        { timeoutMs: 60_000, what: 'a new container' },
      );
    });

    it('stops (keeping the spec) and deletes', async () => {
      const stop = await call('POST', `/api/v1/servers/${name}/stop`);
      assert.equal(stop.status, 200, stop.text);
      await waitFor(async () => (await instances(name)).length === 0, { timeoutMs: 60_000, what: 'no running instances' });
      const server = await call('GET', `/api/v1/servers/${name}`);
      assert.equal(server.json.running, false);
      assert.equal(server.json.spec.name, name);

      // Started again with ?wait: the answer comes once the instance runs, healthy from the probe at start, no polling.
      const waited = await call('POST', `/api/v1/servers/${name}/start?wait=true&timeout=60`);
      assert.equal(waited.status, 200, waited.text);
      assert.deepEqual(
        (waited.json.views as InstanceView[]).map((v) => [v.id, v.status, v.health]),
        [[`mcp-instance:${name}:0`, 'RUNNING', 'healthy']],
      );

      const del = await call('DELETE', `/api/v1/servers/${name}`);
      assert.equal(del.status, 200, del.text);
      await waitFor(async () => (await call('GET', `/api/v1/servers/${name}`)).status === 404, { what: 'the server gone' });
      const containers = await stack.docker.listContainers({ all: true, filters: { label: [`io.mcpd.server=${name}`] } });
      assert.equal(containers.length, 0);

      // The name is free again: applying it creates a new server.
      const again = await call('PUT', `/api/v1/servers/${name}`, { name, ...EVERYTHING });
      assert.equal(again.status, 201, again.text);
      assert.equal(again.json.outcome, 'created');
      assert.equal((await call('DELETE', `/api/v1/servers/${name}`)).status, 200);
    });
  });

  describe('retry of a failed start', () => {
    const name = 't-api-nosecret';

    it('shows the failure, and retry cuts the wait', async () => {
      created.push(name);
      const spec = {
        name,
        image: 'mcpd/gitea-like:dev',
        env: [{ name: 'GITEA_TOKEN', secretRef: { name: 't-api-missing', key: 'token' } }],
        retry: { fastDelaySeconds: 3600, fastAttempts: 5, slowDelaySeconds: 3600 },
      };
      assert.equal((await call('PUT', `/api/v1/servers/${name}`, spec)).status, 201);
      // ?wait answers with the failed attempt: a start's outcome need not be RUNNING.
      const waited = await call('POST', `/api/v1/servers/${name}/start?wait=true`);
      assert.equal(waited.status, 200, waited.text);
      assert.deepEqual(
        (waited.json.views as InstanceView[]).map((v) => [v.status, v.attemptCount]),
        [['ERROR', 1]],
      );
      const failed = await waitFor(
        async () => {
          const v = (await call('GET', `/api/v1/instances/${name}:0`)).json as InstanceView;
          return v.status === 'ERROR' && v.attemptCount === 1 && v;
        },
        { timeoutMs: 60_000, what: 'the first failed attempt' },
      );
      assert.match(failed.error ?? '', /secret resolution failed/);
      assert.ok(failed.nextRetryAt && Date.parse(failed.nextRetryAt) > Date.now() + 600_000, 'the next retry is an hour away');
      assert.equal(failed.containerId, null);

      const retry = await call('POST', `/api/v1/instances/${name}:0/retry`);
      assert.equal(retry.status, 202);
      await waitFor(async () => ((await call('GET', `/api/v1/instances/${name}:0`)).json as InstanceView).attemptCount === 2, {
        timeoutMs: 30_000,
        what: 'a second attempt right after retry',
      });
      // Search attributes follow the workflow's state: the ERROR filter finds it (visibility is eventually consistent).
      await waitFor(async () => (await call('GET', `/api/v1/instances?status=ERROR&server=${name}`)).json.items.length === 1, {
        what: 'the instance under status=ERROR',
      });
      assert.equal((await call('GET', `/api/v1/instances?status=RUNNING&server=${name}`)).json.items.length, 0);
      assert.equal((await call('DELETE', `/api/v1/servers/${name}`)).status, 200);
    });
  });

  describe('secrets', () => {
    it('writes, lists names and keys, never returns values, deletes', async () => {
      const value = `v-${Date.now()}-do-not-show`;
      const put = await call('PUT', '/api/v1/secrets/t-api-secret', { data: { token: value, user: 'bob-the-value' } });
      assert.equal(put.status, 200, put.text);
      assert.deepEqual(put.json.keys, ['token', 'user']);
      assert.equal(put.json.version, 1);
      const list = await call('GET', '/api/v1/secrets');
      const mine = list.json.items.find((s: { name: string }) => s.name === 't-api-secret');
      assert.deepEqual(mine.keys, ['token', 'user']);
      const one = await call('GET', '/api/v1/secrets/t-api-secret');
      for (const res of [put, list, one]) {
        assert.ok(!res.text.includes(value) && !res.text.includes('bob-the-value'), 'no value in any response');
      }
      const bad = await call('PUT', '/api/v1/secrets/t-api-secret', { data: { token: 42 } });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.details[0].field, 'data.token');
      assert.equal((await call('PUT', '/api/v1/secrets/Bad Name', { data: { a: 'b' } })).status, 400);
      assert.equal((await call('DELETE', '/api/v1/secrets/t-api-secret')).status, 200);
      assert.equal((await call('GET', '/api/v1/secrets/t-api-secret')).status, 404);
    });
  });

  describe('seeded examples', () => {
    it('the shipped examples are valid specs', () => {
      const dir = defaultExamplesDir();
      const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
      assert.deepEqual(files.sort(), ['gitea.yaml', 'server-everything.yaml']);
      const gitea = YAML.parse(fs.readFileSync(path.join(dir, 'gitea.yaml'), 'utf8'));
      assert.deepEqual(gitea.healthCheck, { tool: 'get_me', intervalSeconds: 60, timeoutSeconds: 10, failureThreshold: 3 });
      assert.deepEqual(gitea.env[0].secretRef, { name: 'gitea', key: 'token' });
    });

    it('applies and starts them once: healthy instances and one honestly unhealthy', async () => {
      // The shipped examples, renamed to this suite's prefix and probed faster.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-api-examples-'));
      const rename = (file: string, name: string) => {
        const spec = YAML.parse(fs.readFileSync(path.join(defaultExamplesDir(), file), 'utf8'));
        spec.name = name;
        spec.replicas = 1;
        spec.healthCheck.intervalSeconds = 1;
        for (const e of spec.env ?? []) if (e.secretRef) e.secretRef.name = 't-api-gitea';
        fs.writeFileSync(path.join(dir, file), YAML.stringify(spec));
      };
      rename('server-everything.yaml', 't-api-ex-everything');
      rename('gitea.yaml', 't-api-ex-gitea');
      created.push('t-api-ex-everything', 't-api-ex-gitea');
      try {
        const result = await seedExamples({ url: stack.url, token: stack.token, dataDir: stack.dataDir, examplesDir: dir, env: {} });
        assert.deepEqual(result, { seeded: true, servers: ['t-api-ex-gitea', 't-api-ex-everything'] });
        assert.ok(fs.existsSync(path.join(stack.dataDir, SEED_MARKER)));
        const secret = await call('GET', '/api/v1/secrets/t-api-gitea');
        assert.deepEqual(secret.json.keys, ['token']);
        assert.ok(!secret.text.includes(PLACEHOLDER_SECRET_VALUE));

        await waitHealthy('t-api-ex-everything', 1);
        const gitea = await waitFor(
          async () => {
            const [v] = await instances('t-api-ex-gitea');
            return v?.status === 'RUNNING' && v.health === 'unhealthy' && v;
          },
          { timeoutMs: 90_000, what: 'the gitea example unhealthy' },
        );
        assert.match(gitea.healthReason ?? '', /invalid token/);

        const again = await seedExamples({ url: stack.url, token: stack.token, dataDir: stack.dataDir, examplesDir: dir, env: {} });
        assert.deepEqual(again, { seeded: false, servers: [], reason: 'already seeded' });
      } finally {
        await call('DELETE', '/api/v1/servers/t-api-ex-everything');
        await call('DELETE', '/api/v1/servers/t-api-ex-gitea');
        await call('DELETE', '/api/v1/secrets/t-api-gitea');
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('does nothing when disabled, and reports a failure without writing the marker', async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-api-seed-'));
      try {
        const disabled = await seedExamples({ url: stack.url, token: stack.token, dataDir, env: { MCPD_SEED_EXAMPLES: 'false' } });
        assert.equal(disabled.seeded, false);
        const wrongToken = await seedExamples({ url: stack.url, token: 'wrong-token-wrong-token', dataDir, env: {} });
        assert.equal(wrongToken.seeded, false);
        assert.match(wrongToken.reason ?? '', /forbidden/);
        assert.ok(!fs.existsSync(path.join(dataDir, SEED_MARKER)));
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
});
