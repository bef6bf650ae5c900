/**
 * The failure mcpd exists to prevent, end to end on the real stack (Temporal dev
 * server, OpenBao, Docker engine, a real mcpd process): a server whose secret
 * cannot be read must not start, must say why, must retry on the escalating
 * schedule, and must come up as soon as the secret exists and an operator
 * forces a retry with the Temporal CLI.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import { removeContainers, startMcpd, testEnv, waitFor, waitForValue, type McpdProcess } from '../support/stack';
import { callApi } from '../support/clients';

const run = promisify(execFile);
const docker = new Docker();

describe('instance lifecycle (end to end)', function () {
  this.timeout(240_000);

  const env = testEnv();
  const suffix = randomBytes(3).toString('hex');
  const server = `t-e2e-gitea-${suffix}`;
  const secretName = `t-e2e-gitea-${suffix}`;
  const instance = `mcp-instance:${server}:0`;
  // Gitea access tokens are 40 hex characters; the gitea-like server checks the shape.
  const token = randomBytes(20).toString('hex');
  let mcpd: McpdProcess;

  const api = (method: string, path: string, body?: unknown) => callApi(mcpd, method, path, body);
  const view = async (): Promise<InstanceView> => {
    const res = await api('GET', `/api/v1/instances/${encodeURIComponent(instance)}`);
    assert.equal(res.status, 200, res.text);
    return res.json as InstanceView;
  };
  /** Waits for the instance view to satisfy `ok`; a timeout shows the last view, Temporal's pending activities and mcpd's log. */
  const waitForView = async (what: string, ok: (v: InstanceView) => boolean, timeoutMs: number, intervalMs = 250) => {
    try {
      return await waitForValue(view, ok, { timeoutMs, intervalMs, what, describe: (v) => JSON.stringify({ ...v, events: v.events.slice(-6) }) });
    } catch (err) {
      const pending = await temporal('workflow', 'describe', '--workflow-id', instance)
        .then(({ stdout }) => stdout.slice(stdout.indexOf('Pending Activities')))
        .catch(() => '');
      const logTail = mcpd.output().trim().split('\n').slice(-15).join('\n');
      throw new Error(`${(err as Error).message}\n${pending}\n--- mcpd ---\n${logTail}`, { cause: err });
    }
  };
  const containersOf = async () => docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } });
  const temporal = (...args: string[]) => run(env.temporalCli, [...args, '--address', env.temporalAddress, '--namespace', 'default'], { maxBuffer: 64 << 20 });

  before(async () => {
    mcpd = await startMcpd();
  });

  after(async () => {
    if (mcpd) {
      await api('POST', `/api/v1/servers/${server}/stop`).catch(() => undefined);
      await mcpd.stop();
    }
    await removeContainers({ label: `${LABELS.server}=${server}` });
  });

  it('rejects a bad spec with 400 naming the field, and applies a good one', async () => {
    const bad = await api('PUT', `/api/v1/servers/${server}`, { name: server, image: 'mcpd/gitea-like:dev', replicas: -1 });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /replicas/);

    const good = await api('PUT', `/api/v1/servers/${server}`, {
      name: server,
      image: 'mcpd/gitea-like:dev',
      transport: 'stdio',
      env: [
        { name: 'GITEA_HOST', value: 'http://127.0.0.1:3000' },
        { name: 'GITEA_TOKEN', secretRef: { name: secretName, key: 'token' } },
      ],
      // Short waits for the test; the defaults are 30 s x 5 then 300 s.
      // stableSeconds: a short stable run resets attemptCount, so a later crash starts the schedule afresh.
      retry: { fastDelaySeconds: 2, fastAttempts: 2, slowDelaySeconds: 600, stableSeconds: 5 },
    });
    assert.ok([200, 201].includes(good.status), good.text);
  });

  it('a missing secret fails the attempt: ERROR with attemptCount, nextRetryAt and the reason, and no container', async () => {
    const started = await api('POST', `/api/v1/servers/${server}/start`);
    assert.equal(started.status, 200, started.text);
    assert.deepEqual(started.json.instances, [instance]);

    // After the fast attempts the schedule escalates to the slow delay.
    const v = await waitForView('three failed attempts', (c) => c.status === 'ERROR' && c.attemptCount >= 3, 60_000);
    assert.match(v.error ?? '', /secret resolution failed/);
    assert.match(v.error ?? '', new RegExp(secretName));
    assert.match(v.error ?? '', /token/);
    assert.ok(v.lastAttemptAt, 'lastAttemptAt is set');
    assert.ok(v.nextRetryAt, 'nextRetryAt is set');
    const waitSeconds = (Date.parse(v.nextRetryAt) - Date.parse(v.lastAttemptAt)) / 1000;
    assert.ok(waitSeconds > 500, `after ${v.attemptCount} attempts the wait is the slow delay, got ${waitSeconds}s`);
    assert.equal((await containersOf()).length, 0, 'no container is started without its secret');

    // Operators filter on the search attributes in the Web UI.
    const { stdout } = await temporal('workflow', 'list', '--query', `McpServer="${server}" AND McpInstanceStatus="ERROR"`, '--output', 'json');
    assert.match(stdout, new RegExp(instance));
  });

  it('after the secret is written, forceRetry from the Temporal CLI brings it to RUNNING with the token in its env', async () => {
    const put = await api('PUT', `/api/v1/secrets/${secretName}`, { data: { token } });
    assert.equal(put.status, 200, put.text);
    assert.ok(!put.text.includes(token), 'the API never echoes a secret value');

    await temporal('workflow', 'signal', '--workflow-id', instance, '--name', 'forceRetry');
    const v = await waitForView('RUNNING after forceRetry', (c) => c.status === 'RUNNING', 30_000);
    assert.equal(v.error, null);
    assert.equal(v.nextRetryAt, null);

    const containers = await containersOf();
    assert.equal(containers.length, 1);
    assert.equal(containers[0].State, 'running');
    const inspect = await docker.getContainer(containers[0].Id).inspect();
    assert.ok(inspect.Config.Env.includes(`GITEA_TOKEN=${token}`), 'the container got the token');
    assert.equal(inspect.HostConfig.Init, true);
    assert.equal(inspect.Config.Tty, false);
    assert.equal(inspect.HostConfig.RestartPolicy?.Name || 'no', 'no');
  });

  it('keeps every secret value out of Temporal history, the API and the logs', async () => {
    const { stdout: history } = await temporal('workflow', 'show', '--workflow-id', instance, '--output', 'json');
    assert.ok(history.length > 100, 'history was fetched');
    assert.ok(!history.includes(token), 'no secret value in the workflow history');
    const { stdout: described } = await temporal('workflow', 'describe', '--workflow-id', instance, '--output', 'json');
    assert.ok(!described.includes(token), 'no secret value in search attributes or memo');
    const listed = await api('GET', '/api/v1/instances');
    assert.equal(listed.status, 200);
    assert.ok(listed.text.includes(instance));
    assert.ok(!listed.text.includes(token));
    assert.ok(!mcpd.output().includes(token), 'no secret value in mcpd logs');
  });

  it('a stable run resets attemptCount; a killed container is then noticed and restarted after the fast delay', async () => {
    const running = await waitForView('attemptCount reset after a stable run', (c) => c.status === 'RUNNING' && c.attemptCount === 0, 20_000);
    await docker.getContainer(running.containerId!).kill();
    const failed = await waitForView('the exit to be recorded', (c) => c.status === 'ERROR' || c.containerId !== running.containerId, 15_000, 50);
    if (failed.status === 'ERROR') {
      assert.match(failed.error ?? '', /exit/i);
      assert.ok(failed.attemptCount <= 1, `the count started afresh, got ${failed.attemptCount}`);
      const waitSeconds = (Date.parse(failed.nextRetryAt!) - Date.parse(failed.lastAttemptAt!)) / 1000;
      assert.ok(waitSeconds < 10, `the first failure after a reset waits the fast delay, got ${waitSeconds}s`);
    }
    const back = await waitForView('RUNNING again in a new container', (c) => c.status === 'RUNNING' && c.containerId !== running.containerId, 30_000);
    assert.ok(
      back.events.some((e) => /exit/i.test(e.message)),
      'the exit is in the events',
    );
    assert.equal((await containersOf()).length, 1, 'the dead container was replaced, not kept beside a new one');
    assert.ok(back.events.length <= 50);
  });

  it('after an mcpd restart, a RUNNING instance keeps its container and answers through the gateway again', async () => {
    const before = await waitForView('RUNNING', (c) => c.status === 'RUNNING', 30_000);
    mcpd = await mcpd.restart();
    // /readyz waits for the re-attach, so the first connect after the restart finds the instance.
    const client = new Client({ name: 'lifecycle-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}/mcp/servers/${server}`), { requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } } }),
    );
    try {
      const me = await waitFor(
        async () => {
          const result = (await client.callTool({ name: 'get_me', arguments: {} }).catch(() => undefined)) as
            { isError?: boolean; content: { text: string }[] } | undefined;
          return result && !result.isError ? result : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 500, what: 'get_me through the gateway after the restart' },
      );
      assert.match(me.content[0].text, /login/);
    } finally {
      await client.close();
    }
    const after = await view();
    assert.equal(after.status, 'RUNNING');
    assert.equal(after.containerId, before.containerId, 'the container was re-attached, not replaced');
  });

  it('killing mcpd while an attempt is starting leaves one container, not two, once it is back', async () => {
    const before = await view();
    const restarted = await api('POST', `/api/v1/instances/${encodeURIComponent(instance)}/restart`);
    assert.equal(restarted.status, 202, restarted.text);
    await waitForView('STARTING', (c) => c.status === 'STARTING', 10_000, 20);
    await mcpd.kill();
    mcpd = await mcpd.restart();
    const v = await waitForView('RUNNING after the mcpd restart', (c) => c.status === 'RUNNING' && c.containerId !== before.containerId, 90_000);
    const containers = await containersOf();
    assert.equal(containers.length, 1, 'one container');
    assert.equal(containers[0].Id, v.containerId);
  });

  it('stop removes the container and ends the workflow as STOPPED', async () => {
    const res = await api('POST', `/api/v1/servers/${server}/stop`);
    assert.equal(res.status, 200, res.text);
    await waitForView('STOPPED', (c) => c.status === 'STOPPED', 30_000);
    assert.equal((await containersOf()).length, 0);
  });
});
