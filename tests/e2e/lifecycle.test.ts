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
import { LABELS } from '../../src/domain/instance';
import type { InstanceView } from '../../src/domain/instance';
import { removeContainers, startMcpd, testEnv, waitFor, type McpdProcess } from '../support/stack';

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

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${mcpd.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${mcpd.token}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
  };
  const view = async (): Promise<InstanceView> => {
    const res = await api('GET', `/api/v1/instances/${encodeURIComponent(instance)}`);
    assert.equal(res.status, 200, res.text);
    return res.json as InstanceView;
  };
  const containersOf = async () =>
    docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } });
  const temporal = (...args: string[]) =>
    run(env.temporalCli, [...args, '--address', env.temporalAddress, '--namespace', 'default'], { maxBuffer: 64 << 20 });

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
      retry: { fastDelaySeconds: 2, fastAttempts: 2, slowDelaySeconds: 600 },
    });
    assert.equal(good.status, 200, good.text);
  });

  it('a missing secret fails the attempt: ERROR with attemptCount, nextRetryAt and the reason, and no container', async () => {
    const started = await api('POST', `/api/v1/servers/${server}/start`);
    assert.equal(started.status, 200, started.text);
    assert.deepEqual(started.json.instances, [instance]);

    // After the fast attempts the schedule escalates to the slow delay.
    const v = await waitFor(
      async () => {
        const current = await view();
        return current.status === 'ERROR' && current.attemptCount >= 3 ? current : undefined;
      },
      { timeoutMs: 60_000, what: 'three failed attempts' },
    );
    assert.match(v.error ?? '', /secret resolution failed/);
    assert.match(v.error ?? '', new RegExp(secretName));
    assert.match(v.error ?? '', /token/);
    assert.ok(v.lastAttemptAt, 'lastAttemptAt is set');
    assert.ok(v.nextRetryAt, 'nextRetryAt is set');
    const waitSeconds = (Date.parse(v.nextRetryAt!) - Date.parse(v.lastAttemptAt!)) / 1000;
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
    const v = await waitFor(async () => {
      const current = await view();
      return current.status === 'RUNNING' ? current : undefined;
    }, { timeoutMs: 30_000, what: 'RUNNING after forceRetry' });
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

  it('a killed container is noticed and restarted through the backoff', async () => {
    const before = await view();
    await docker.getContainer(before.containerId!).kill();
    const failed = await waitFor(async () => {
      const current = await view();
      return current.events.some((e) => /exit/i.test(e.message) && Date.parse(e.at) >= Date.parse(before.runningSince ?? before.lastAttemptAt!))
        ? current
        : undefined;
    }, { timeoutMs: 15_000, what: 'the container exit to be recorded' });
    assert.ok(failed.attemptCount >= 1);
    const back = await waitFor(async () => {
      const current = await view();
      return current.status === 'RUNNING' && current.containerId !== before.containerId ? current : undefined;
    }, { timeoutMs: 30_000, what: 'RUNNING again in a new container' });
    assert.equal((await containersOf()).length, 1, 'the dead container was replaced, not kept beside a new one');
    assert.ok(back.events.length <= 50);
  });

  it('killing mcpd while an attempt is starting leaves one container, not two, once it is back', async () => {
    await api('POST', `/api/v1/instances/${encodeURIComponent(instance)}/restart`);
    await waitFor(async () => ((await view()).status === 'STARTING' ? true : undefined), { timeoutMs: 10_000, intervalMs: 20, what: 'STARTING' });
    await mcpd.kill();
    mcpd = await mcpd.restart();
    const v = await waitFor(async () => {
      const current = await view();
      return current.status === 'RUNNING' ? current : undefined;
    }, { timeoutMs: 90_000, what: 'RUNNING after the mcpd restart' });
    const containers = await containersOf();
    assert.equal(containers.length, 1, 'one container');
    assert.equal(containers[0].Id, v.containerId);
  });

  it('stop removes the container and ends the workflow as STOPPED', async () => {
    const res = await api('POST', `/api/v1/servers/${server}/stop`);
    assert.equal(res.status, 200, res.text);
    await waitFor(async () => ((await view()).status === 'STOPPED' ? true : undefined), { timeoutMs: 30_000, what: 'STOPPED' });
    assert.equal((await containersOf()).length, 0);
  });
});
