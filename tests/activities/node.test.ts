/**
 * resolveEnv and the node activities against the real Docker engine and a real
 * OpenBao dev server (BAO_ADDR / BAO_TOKEN). Containers are named t-act-*.
 */
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import Docker from 'dockerode';
import { createControlActivities } from '../../activities/control';
import { createNodeActivities } from '../../activities/node';
import type { ResolvedEnvEntry } from '../../activities/types';
import { validateSpec, type McpServerSpec, type McpServerSpecInput } from '../../src/contracts/spec';
import { containerName, instanceId } from '../../src/contracts/instance';
import { LABELS } from '../../src/contracts/labels';
import { DockerRuntime } from '../../src/docker/runtime';
import type { InstanceRouting, UpstreamTarget } from '../../src/contracts/routing';
import { OpenBaoSecretStore } from '../../src/secrets/openbao';
import { Gateway } from '../../src/gateway/gateway';

const docker = new Docker();
const OWNER = `t-act-owner-${process.pid}`;
const SECRET = `t-act-secret-${process.pid}`;
const TOKEN = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const secrets = new OpenBaoSecretStore({
  address: process.env.BAO_ADDR ?? 'http://127.0.0.1:20200',
  token: process.env.BAO_TOKEN ?? 'h2root',
  mount: 'secret',
  prefix: 'mcpd',
});

/** Records what the node activities tell the gateway. */
class RecordingRouting implements InstanceRouting {
  attached: UpstreamTarget[] = [];
  detached: string[] = [];
  async attach(target: UpstreamTarget) {
    this.attached.push(target);
  }
  setReady() {}
  async detach(id: string) {
    this.detached.push(id);
  }
}

function spec(name: string, extra: Partial<McpServerSpecInput>): McpServerSpec {
  const result = validateSpec({ name, ...extra });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.spec;
}

async function ourContainers(id: string) {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${id}`, `${LABELS.owner}=${OWNER}`] } });
}

function failureOf(err: unknown): ApplicationFailure {
  assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
  return err;
}

/** The ApplicationFailure an activity call rejects with (the test fails if it resolves). */
async function rejection(call: Promise<unknown>): Promise<ApplicationFailure> {
  return call.then((value) => assert.fail(`expected a failure, got ${JSON.stringify(value)}`), failureOf);
}

describe('instance activities (Docker + OpenBao)', function () {
  this.timeout(60_000);
  const routing = new RecordingRouting();
  const control = createControlActivities({ secrets });
  const node = createNodeActivities({ runtime: new DockerRuntime(), secrets, routing, containers: { node: 't-act-node', owner: OWNER, startGraceMs: 1_000 } });
  const used: string[] = [];
  const idFor = (server: string) => {
    const id = instanceId(server, 0);
    used.push(id);
    return id;
  };

  before(async () => {
    await secrets.put(SECRET, { token: TOKEN });
  });
  after(async () => {
    for (const id of used) {
      for (const c of await ourContainers(id))
        await docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined);
    }
    await secrets.delete(SECRET).catch(() => undefined);
  });

  it('resolves env to pinned references, and startContainer is idempotent: twice -> one container with the secret in its env', async () => {
    const id = idFor('t-act-idem');
    const s = spec('t-act-idem', {
      image: 'mcpd/gitea-like:dev',
      env: [
        { name: 'GITEA_TOKEN', secretRef: { name: SECRET, key: 'token' } },
        { name: 'MODE', value: 'test' },
      ],
    });
    const env = await control.resolveEnv(s.env);
    assert.deepEqual(env[1], { name: 'MODE', value: 'test' });
    assert.ok('secret' in env[0] && env[0].secret.name === SECRET && env[0].secret.key === 'token' && env[0].secret.version >= 1);
    assert.ok(!JSON.stringify(env).includes(TOKEN), 'resolution returns references, never values');

    const first = await node.startContainer({ instanceId: id, generation: 1, spec: s, env });
    const second = await node.startContainer({ instanceId: id, generation: 1, spec: s, env });
    assert.equal(second.containerId, first.containerId);
    assert.equal(second.reused, true);
    const containers = await ourContainers(id);
    assert.equal(containers.length, 1, 'one container, never a second');

    const info = await docker.getContainer(first.containerId).inspect();
    assert.equal(info.Name, `/${containerName(id)}`);
    assert.equal(info.State.Running, true, 'a stdio server keeps running with stdin held open');
    assert.equal(info.Config.Labels[LABELS.server], 't-act-idem');
    assert.equal(info.Config.Labels[LABELS.instance], id);
    assert.equal(info.Config.Labels[LABELS.generation], '1');
    assert.equal(info.HostConfig.Init, true);
    assert.equal(info.Config.Tty, false);
    assert.equal(info.Config.OpenStdin, true);
    assert.equal(info.HostConfig.RestartPolicy?.Name, 'no');
    assert.equal(info.HostConfig.NetworkMode, 'none');
    assert.ok(info.Config.Env.includes(`GITEA_TOKEN=${TOKEN}`));

    await node.attachUpstream({ instanceId: id, spec: s, containerId: first.containerId });
    assert.deepEqual(routing.attached.at(-1), { instanceId: id, server: 't-act-idem', transport: 'stdio', containerId: first.containerId });
  });

  it('a new generation replaces the old container', async () => {
    const id = idFor('t-act-gen');
    const s = spec('t-act-gen', { command: ['node', '-e', 'process.stdin.resume()'] });
    const first = await node.startContainer({ instanceId: id, generation: 1, spec: s, env: [] });
    const second = await node.startContainer({ instanceId: id, generation: 2, spec: s, env: [] });
    assert.notEqual(second.containerId, first.containerId);
    assert.equal(second.reused, false);
    const containers = await ourContainers(id);
    assert.deepEqual(
      containers.map((c) => c.Id),
      [second.containerId],
    );
  });

  it('a missing secret fails resolution naming secret and key, and no container is created', async () => {
    const id = idFor('t-act-nosecret');
    const s = spec('t-act-nosecret', { image: 'mcpd/gitea-like:dev', env: [{ name: 'GITEA_TOKEN', secretRef: { name: SECRET, key: 'password' } }] });
    const err = await rejection(control.resolveEnv(s.env));
    assert.equal(err.message, `secret resolution failed: secret "${SECRET}" has no key "password" (env GITEA_TOKEN)`);
    assert.equal(err.type, 'SecretResolutionFailed');
    assert.equal(err.nonRetryable, true);

    const missing = await rejection(control.resolveEnv([{ name: 'T', secretRef: { name: 't-act-never-written', key: 'token' } }]));
    assert.match(missing.message, /^secret resolution failed: secret "t-act-never-written" not found \(wanted key "token"\)/);

    // A pinned version that vanished before the start fails the same way, before any container exists.
    const stale: ResolvedEnvEntry[] = [{ name: 'GITEA_TOKEN', secret: { name: SECRET, key: 'token', version: 999 } }];
    const startErr = await rejection(node.startContainer({ instanceId: id, generation: 1, spec: s, env: stale }));
    assert.match(startErr.message, new RegExp(`^secret resolution failed: secret "${SECRET}" version 999 not found`));
    assert.equal((await ourContainers(id)).length, 0, 'no container');
  });

  it('a container that exits right after start fails with its exit code and last stderr lines, secrets masked', async () => {
    const id = idFor('t-act-exits');
    const s = spec('t-act-exits', {
      command: ['node', '-e', 'console.error("fatal: cannot log in with token " + process.env.GITEA_TOKEN); process.exit(3)'],
      env: [{ name: 'GITEA_TOKEN', secretRef: { name: SECRET, key: 'token' } }],
    });
    const env = await control.resolveEnv(s.env);
    const err = await rejection(node.startContainer({ instanceId: id, generation: 1, spec: s, env }));
    assert.equal(err.message, 'container exited right after start with code 3: fatal: cannot log in with token ***');
    assert.equal(err.type, 'ContainerStartFailed');
    assert.equal(err.nonRetryable, true);
    // A retry of the same start reports the same exit instead of making another container.
    const again = await rejection(node.startContainer({ instanceId: id, generation: 1, spec: s, env }));
    assert.match(again.message, /^container exited with code 3: fatal: cannot log in with token \*\*\*$/);
    assert.equal((await ourContainers(id)).length, 1);
  });

  describe('startContainer with attach (the gateway MCP-initializes it in the same activity)', () => {
    const runtime = new DockerRuntime();
    const gateway = new Gateway({ runtime });
    const attaching = createNodeActivities({ runtime, secrets, routing: gateway, containers: { node: 't-act-node', owner: OWNER, startGraceMs: 1_000 } });
    after(async () => {
      for (const id of used) await gateway.detach(id, 'test done');
    });

    it('returns once the server answered initialize, and the gateway serves its tools', async () => {
      const id = idFor('t-act-attach');
      const s = spec('t-act-attach', { image: 'mcpd/gitea-like:dev', env: [{ name: 'GITEA_TOKEN', secretRef: { name: SECRET, key: 'token' } }] });
      const started = await attaching.startContainer({ instanceId: id, generation: 1, spec: s, env: await control.resolveEnv(s.env), attach: true });
      assert.equal(started.reused, false);
      assert.deepEqual(gateway.readyInstances('t-act-attach'), [id], 'the gateway routes to it');
      const reply = await gateway.execute(id, { method: 'tools/call', params: { name: 'get_me', arguments: {} } }, { timeoutMs: 5000 });
      assert.ok(!JSON.stringify(reply).includes('"isError":true'), 'a tool call through the gateway answers');
    });

    it('a container that exits right after start fails with its exit code and last stderr lines, secrets masked', async () => {
      const id = idFor('t-act-attach-exits');
      const s = spec('t-act-attach-exits', {
        command: ['node', '-e', 'console.error("fatal: cannot log in with token " + process.env.GITEA_TOKEN); process.exit(3)'],
        env: [{ name: 'GITEA_TOKEN', secretRef: { name: SECRET, key: 'token' } }],
      });
      const env = await control.resolveEnv(s.env);
      const err = await rejection(attaching.startContainer({ instanceId: id, generation: 1, spec: s, env, attach: true }));
      assert.equal(err.message, 'container exited right after start with code 3: fatal: cannot log in with token ***');
      assert.equal(err.type, 'ContainerStartFailed');
      assert.equal(err.nonRetryable, true);
    });
  });

  it('an image that does not exist fails clearly, without retries', async () => {
    const id = idFor('t-act-noimage');
    const err = await rejection(
      node.startContainer({ instanceId: id, generation: 1, spec: spec('t-act-noimage', { image: 'mcpd/t-act-missing:dev' }), env: [] }),
    );
    assert.equal(err.message, 'image mcpd/t-act-missing:dev not found locally');
    assert.equal(err.nonRetryable, true);
    const pkg = await rejection(
      node.startContainer({ instanceId: id, generation: 1, spec: spec('t-act-noimage', { packageName: '@t-act/some-server' }), env: [] }),
    );
    // The package's image comes from preparePackageImage (tests/packages/); a start without it says so.
    assert.match(pkg.message, /^packageName "@t-act\/some-server" has no image yet: /);
  });

  it('never removes a container of the same name that another control plane owns; the attempt fails naming it', async () => {
    const id = idFor('t-act-foreign');
    const foreign = await docker.createContainer({
      name: containerName(id),
      Image: 'mcpd/gitea-like:dev',
      Labels: { [LABELS.managed]: 'true', [LABELS.instance]: id, [LABELS.owner]: 'another-temporal:7233/default' },
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      const failure = await rejection(
        node.startContainer({ instanceId: id, generation: 1, spec: spec('t-act-foreign', { image: 'mcpd/gitea-like:dev' }), env: [] }),
      );
      assert.match(failure.message, /in use by a container this mcpd does not own \(owner: another-temporal:7233\/default\)/);
      assert.equal(failure.nonRetryable, true);
      assert.equal((await foreign.inspect()).Id, foreign.id, 'the other control plane keeps its container');
    } finally {
      await foreign.remove({ force: true });
    }
  });

  it('stopContainer stops and removes, detaches the upstream, and is idempotent', async () => {
    const id = idFor('t-act-stop');
    const s = spec('t-act-stop', { command: ['node', '-e', 'process.stdin.resume()'] });
    const started = await node.startContainer({ instanceId: id, generation: 1, spec: s, env: [] });
    assert.equal((await docker.getContainer(started.containerId).inspect()).State.Running, true);
    assert.equal(await node.stopContainer({ instanceId: id, reason: 'instance stopped', remove: true }), started.containerId);
    assert.equal((await ourContainers(id)).length, 0);
    assert.equal(await node.stopContainer({ instanceId: id, reason: 'instance stopped', remove: true }), null);
    assert.deepEqual(routing.detached.filter((d) => d === id).length, 2);
  });

  it('stopContainers removes a batch, detaches each upstream, and names the container it removed for each instance that had one', async () => {
    const ids = [idFor('t-act-batch-a'), idFor('t-act-batch-b')];
    const started = await Promise.all(
      ids.map((id) =>
        node.startContainer({ instanceId: id, generation: 1, spec: spec('t-act-batch', { command: ['node', '-e', 'process.stdin.resume()'] }), env: [] }),
      ),
    );
    const neverStarted = idFor('t-act-batch-none');
    const removed = await node.stopContainers({ instanceIds: [...ids, neverStarted], reason: 'instance stopped' });
    assert.deepEqual(
      removed,
      { [ids[0]]: started[0].containerId, [ids[1]]: started[1].containerId },
      'the instance without a container is left to stop its own',
    );
    for (const id of ids) {
      assert.equal((await ourContainers(id)).length, 0, `${id} has no container left`);
      assert.ok(routing.detached.includes(id), `${id} was detached from the gateway`);
    }
  });

  it('runs http servers on the host network at spec.port + ordinal, passing the port in env and args', async () => {
    const id = instanceId('t-act-http', 1);
    used.push(id);
    const s = spec('t-act-http', { image: 'mcpd/gitea-like:dev', transport: 'http', port: 20410, args: ['--transport', 'http', '--port', '$(PORT)'] });
    const started = await node.startContainer({ instanceId: id, generation: 1, spec: s, env: [] });
    assert.equal(started.port, 20411);
    const info = await docker.getContainer(started.containerId).inspect();
    assert.equal(info.HostConfig.NetworkMode, 'host');
    assert.deepEqual(info.Config.Cmd, ['--transport', 'http', '--port', '20411']);
    assert.ok(info.Config.Env.includes('PORT=20411'));
    const target = await node.attachUpstream({ instanceId: id, spec: s, containerId: started.containerId, port: started.port });
    assert.equal(target.port, 20411);
    assert.equal(target.path, '/mcp');
    const res = await fetch('http://127.0.0.1:20411/mcp', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't-act', version: '0' } },
      }),
    });
    assert.equal(res.status, 200, 'the server listens on its port');
  });
});
