/**
 * Servers from packages, on the real stack with real packages from the registries:
 * an npm server (@modelcontextprotocol/server-memory, two replicas, applied with
 * mcpctl) and a PyPI server (mcp-server-time, through the REST API), each from apply
 * to a healthy instance and a real tool call through the gateway; a misspelt
 * package is a failed attempt naming the package, the version and the installer's
 * reason, with no container.
 *
 * The images built here stay: they are the node's cache (the next run reuses them),
 * and another run on the same engine may be using them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LABELS, PACKAGE_IMAGE_LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import { removeContainers, startMcpd, waitForValue, type McpdProcess } from '../support/stack';
import { callApi, runMcpctl } from '../support/clients';

const docker = new Docker();

type ToolResult = { isError?: boolean; content: { type: string; text: string }[] };

describe('servers from packages (npm and PyPI)', function () {
  this.timeout(600_000);

  const suffix = randomBytes(3).toString('hex');
  const memory = `t-pkg-memory-${suffix}`;
  const time = `t-pkg-time-${suffix}`;
  const typo = `t-pkg-typo-${suffix}`;
  const servers = [memory, time, typo];
  let mcpd: McpdProcess;
  let workDir: string;

  const api = (method: string, urlPath: string, body?: unknown) => callApi(mcpd, method, urlPath, body);
  const view = async (id: string): Promise<InstanceView> => {
    const res = await api('GET', `/api/v1/instances/${encodeURIComponent(id)}`);
    assert.equal(res.status, 200, res.text);
    return res.json as InstanceView;
  };
  const waitForView = (id: string, what: string, ok: (v: InstanceView) => boolean, timeoutMs: number) =>
    waitForValue(() => view(id), ok, {
      timeoutMs,
      intervalMs: 500,
      what: `${id} ${what}`,
      describe: (v) => JSON.stringify({ ...v, events: v.events.slice(-5) }) + `\n--- mcpd ---\n${mcpd.output().trim().split('\n').slice(-10).join('\n')}`,
    });
  const connect = async (server: string) => {
    const client = new Client({ name: 'packages-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}/mcp/servers/${server}`), { requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } } }),
    );
    return client;
  };
  /** The PackageImage event of an instance: which image, package and exact version it runs. */
  const packageImageEvent = (v: InstanceView) => {
    const event = [...v.events].reverse().find((e) => e.type === 'PackageImage');
    assert.ok(event, `no PackageImage event in ${JSON.stringify(v.events)}`);
    const m = /^image (\S+) for (\S+)@(\S+) \((built in \d+ s|built once for two starts, waited \d+ s|cached)\), runs (\S+), lock sha256:([0-9a-f]{12})$/.exec(
      event.message,
    );
    assert.ok(m, `unexpected PackageImage event: ${event.message}`);
    return { image: m[1], package: m[2], version: m[3], built: m[4].startsWith('built in'), executable: m[5], lockHash: m[6] };
  };
  const containersOf = (server: string) => docker.listContainers({ all: true, filters: { label: [`${LABELS.server}=${server}`] } });

  before(async () => {
    mcpd = await startMcpd();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 't-pkg-'));
  });

  after(async () => {
    if (mcpd) {
      for (const server of servers) await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
      await mcpd.stop();
    }
    for (const server of servers) await removeContainers({ label: `${LABELS.server}=${server}` });
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('npm: mcpctl apply of @modelcontextprotocol/server-memory runs two replicas from one image, and the graph written through the gateway reads back', async () => {
    const specFile = path.join(workDir, 'memory.yaml');
    fs.writeFileSync(
      specFile,
      [
        `name: ${memory}`,
        'packageName: "@modelcontextprotocol/server-memory"',
        'replicas: 2',
        'healthCheck:',
        '  tool: read_graph',
        '  intervalSeconds: 5',
        '',
      ].join('\n'),
    );
    const applied = await runMcpctl(mcpd, ['apply', '-f', specFile], { cwd: workDir });
    assert.equal(applied.code, 0, applied.stderr);

    const ids = [0, 1].map((ordinal) => `mcp-instance:${memory}:${ordinal}`);
    const views = await Promise.all(ids.map((id) => waitForView(id, 'RUNNING and healthy', (v) => v.status === 'RUNNING' && v.health === 'healthy', 300_000)));
    const images = views.map(packageImageEvent);
    assert.equal(images[0].image, images[1].image, 'both replicas run the same image');
    assert.equal(images[0].package, 'npm:@modelcontextprotocol/server-memory');
    assert.match(images[0].version, /^\d+\.\d+\.\d+$/, 'the exact version, not "latest"');
    assert.equal(images[0].executable, 'mcp-server-memory');
    assert.ok(images.filter((i) => i.built).length <= 1, `two instances of one package build it once: ${JSON.stringify(images)}`);

    // The image says what is in it: the package, the exact version and the hash of its lock.
    const labels = (await docker.getImage(images[0].image).inspect()).Config.Labels;
    assert.equal(labels[PACKAGE_IMAGE_LABELS.package], 'npm:@modelcontextprotocol/server-memory');
    assert.equal(labels[PACKAGE_IMAGE_LABELS.version], images[0].version);
    assert.ok(labels[PACKAGE_IMAGE_LABELS.lockHash].startsWith(images[0].lockHash));

    const containers = await containersOf(memory);
    assert.equal(containers.length, 2);
    for (const c of containers) {
      assert.equal(c.Image, images[0].image);
      assert.equal((await docker.getContainer(c.Id).inspect()).HostConfig.NetworkMode, 'none', 'a stdio package server has no network');
    }

    const client = await connect(memory);
    try {
      const created = (await client.callTool({
        name: 'create_entities',
        arguments: { entities: [{ name: `mcpd-${suffix}`, entityType: 'project', observations: ['runs MCP servers from npm and PyPI'] }] },
      })) as ToolResult;
      assert.ok(!created.isError, JSON.stringify(created));
      const graph = (await client.callTool({ name: 'read_graph', arguments: {} })) as ToolResult;
      assert.ok(!graph.isError, JSON.stringify(graph));
      const text = graph.content.map((c) => c.text).join('\n');
      assert.match(text, new RegExp(`mcpd-${suffix}`));
      assert.match(text, /runs MCP servers from npm and PyPI/);
    } finally {
      await client.close();
    }
  });

  it('PyPI: pypi:mcp-server-time applied through the API answers get_current_time through the gateway', async () => {
    const put = await api('PUT', `/api/v1/servers/${time}`, {
      name: time,
      packageName: 'pypi:mcp-server-time',
      args: ['--local-timezone', 'UTC'],
      healthCheck: { tool: 'get_current_time', arguments: { timezone: 'UTC' }, intervalSeconds: 5 },
    });
    assert.ok([200, 201].includes(put.status), put.text);
    const started = await api('POST', `/api/v1/servers/${time}/start`);
    assert.equal(started.status, 200, started.text);

    const id = `mcp-instance:${time}:0`;
    const v = await waitForView(id, 'RUNNING and healthy', (x) => x.status === 'RUNNING' && x.health === 'healthy', 300_000);
    const image = packageImageEvent(v);
    assert.equal(image.package, 'pypi:mcp-server-time');
    assert.match(image.version, /^\d{4}\.\d+\.\d+$/);
    assert.equal(image.executable, 'mcp-server-time');
    const [container] = await containersOf(time);
    assert.equal(container.Image, image.image);

    const client = await connect(time);
    try {
      const result = (await client.callTool({ name: 'get_current_time', arguments: { timezone: 'Europe/Warsaw' } })) as ToolResult;
      assert.ok(!result.isError, JSON.stringify(result));
      const answer = JSON.parse(result.content[0].text) as { timezone: string; datetime: string };
      assert.equal(answer.timezone, 'Europe/Warsaw');
      assert.ok(Math.abs(Date.parse(answer.datetime) - Date.now()) < 5 * 60_000, `a current time: ${answer.datetime}`);
    } finally {
      await client.close();
    }
  });

  it('a misspelt package (npm or PyPI) or a missing entrypoint is a failed attempt naming package, version and reason, with no container', async () => {
    const put = await api('PUT', `/api/v1/servers/${typo}`, {
      name: typo,
      packageName: '@modelcontextprotocol/server-memroy',
      retry: { fastDelaySeconds: 2, fastAttempts: 2, slowDelaySeconds: 600 },
    });
    assert.ok([200, 201].includes(put.status), put.text);
    assert.equal((await api('POST', `/api/v1/servers/${typo}/start`)).status, 200);
    const id = `mcp-instance:${typo}:0`;
    const npmFailure = await waitForView(id, 'ERROR', (v) => v.status === 'ERROR' && v.error !== null, 120_000);
    assert.match(npmFailure.error!, /^npm:@modelcontextprotocol\/server-memroy@latest cannot be installed: npm: .*Not Found/);
    assert.ok(npmFailure.attemptCount >= 1 && npmFailure.nextRetryAt, 'a failed attempt, through the backoff');
    assert.equal((await containersOf(typo)).length, 0, 'no container');

    const edit = async (spec: object) => {
      const res = await api('PUT', `/api/v1/servers/${typo}`, { name: typo, retry: { fastDelaySeconds: 2, fastAttempts: 2, slowDelaySeconds: 600 }, ...spec });
      assert.ok([200, 201].includes(res.status), res.text);
    };
    await edit({ packageName: 'pypi:mcp-server-tmie' });
    const pipFailure = await waitForView(id, 'ERROR from pip', (v) => v.status === 'ERROR' && /tmie/.test(v.error ?? ''), 120_000);
    assert.equal(pipFailure.error, 'pypi:mcp-server-tmie@latest cannot be installed: pip: No matching distribution found for mcp-server-tmie');

    await edit({ packageName: 'pypi:mcp-server-time@2099.1.1' });
    const noVersion = await waitForView(id, 'ERROR for a version that does not exist', (v) => v.status === 'ERROR' && /2099/.test(v.error ?? ''), 120_000);
    assert.match(noVersion.error!, /^pypi:mcp-server-time@2099\.1\.1 cannot be installed: pip: No matching distribution found for mcp-server-time==2099\.1\.1/);

    // The image of mcp-server-time exists by now (the previous test); an entrypoint it does not have is named.
    await edit({ packageName: 'pypi:mcp-server-time', entrypoint: 'mcp-server-clock' });
    const noEntrypoint = await waitForView(id, 'ERROR for the entrypoint', (v) => v.status === 'ERROR' && /mcp-server-clock/.test(v.error ?? ''), 120_000);
    assert.match(noEntrypoint.error!, /^pypi:mcp-server-time@\S+ has no executable "mcp-server-clock" \(it installs .*"mcp-server-time"/);
    assert.equal((await containersOf(typo)).length, 0, 'still no container');
  });
});
