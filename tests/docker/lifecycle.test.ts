/**
 * The whole instance lifecycle on real parts: a Temporal dev server
 * (TEMPORAL_ADDRESS, search attributes registered), OpenBao (BAO_ADDR /
 * BAO_TOKEN), the Docker engine, and the workers of src/worker.ts with their exit
 * watcher and reaper. Only the gateway is replaced, by a recorder of attach/detach.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import Docker from 'dockerode';
import { validateSpec } from '../../src/contracts/spec';
import { TASK_QUEUE, instanceId, type InstanceView } from '../../src/contracts/instance';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceRouting, UpstreamTarget } from '../../src/contracts/routing';
import { Reaper } from '../../src/docker/reaper';
import { DockerRuntime } from '../../src/docker/runtime';
import { OpenBaoSecretStore } from '../../src/secrets/openbao';
import { createWorkers, type McpdWorkers } from '../../src/worker';
import type { InstanceWorkflowArgs } from '../../workflows/instance';
import { containerExitedSignal, statusQuery, stopSignal } from '../../src/contracts/messages';
import { waitForValue } from '../support/stack';

const run = promisify(execFile);
const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:20233';
const temporalCli = process.env.MCPD_TEMPORAL_CLI ?? '.tools/venv/bin/temporal';
const docker = new Docker();
const runtime = new DockerRuntime();
const OWNER = `t-docker-life-${process.pid}`;
const NODE = `t-docker-node-${process.pid}`;
const SECRET = `t-docker-life-${process.pid}`;
const TOKEN = '0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c';

class RecordingRouting implements InstanceRouting {
  attached: UpstreamTarget[] = [];
  detached: { id: string; reason: string }[] = [];
  async attach(target: UpstreamTarget) {
    this.attached.push(target);
  }
  setReady() {}
  async detach(id: string, reason: string) {
    this.detached.push({ id, reason });
  }
}

/** The CLI's JSON with every payload's base64 `data` decoded next to it, so a search sees what the payloads hold. */
function withDecodedPayloads(json: string): string {
  const decoded: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'data' && typeof value === 'string') decoded.push(Buffer.from(value, 'base64').toString('utf8'));
        else walk(value);
      }
    }
  };
  try {
    walk(JSON.parse(json));
  } catch {
    // JSON lines: one document per line.
    for (const line of json.split('\n').filter((l) => l.trim())) walk(JSON.parse(line));
  }
  return `${json}\n${decoded.join('\n')}`;
}

function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  return waitForValue(read, ok, { what, timeoutMs, intervalMs: 200 });
}

describe('instance lifecycle on Temporal, OpenBao and Docker', function () {
  this.timeout(120_000);
  const secrets = new OpenBaoSecretStore({
    address: process.env.BAO_ADDR ?? 'http://127.0.0.1:20200',
    token: process.env.BAO_TOKEN ?? 'h2root',
    mount: 'secret',
    prefix: 'mcpd',
  });
  const routing = new RecordingRouting();
  let nativeConnection: NativeConnection;
  let connection: Connection;
  let client: Client;
  let workers: McpdWorkers;
  let running: Promise<void>;

  before(async () => {
    await secrets.put(SECRET, { token: TOKEN });
    nativeConnection = await NativeConnection.connect({ address });
    connection = await Connection.connect({ address });
    client = new Client({ connection });
    workers = await createWorkers({ connection: nativeConnection, namespace: 'default', node: NODE, runtime, secrets, routing, client, owner: OWNER });
    running = workers.run();
  });

  after(async () => {
    await workers?.shutdown();
    await running?.catch(() => undefined);
    for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABELS.owner}=${OWNER}`] } })) {
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
    await secrets.delete(SECRET).catch(() => undefined);
    await nativeConnection?.close();
    await connection?.close();
  });

  it('starts with the secret, notices a killed container, retries on forceRetry from the CLI, and stops', async () => {
    const server = `t-docker-life${process.pid % 1000}`;
    const id = instanceId(server, 0);
    const parsed = validateSpec({ name: server, image: 'mcpd/gitea-like:dev', env: [{ name: 'GITEA_TOKEN', secretRef: { name: SECRET, key: 'token' } }] });
    assert.ok(parsed.ok);
    const args: InstanceWorkflowArgs = { server, ordinal: 0, spec: parsed.spec, node: NODE, tuning: { probes: false } };
    const handle: WorkflowHandle = await client.workflow.start('instanceWorkflow', {
      taskQueue: TASK_QUEUE,
      workflowId: id,
      args: [args],
      staticSummary: `${server} instance 0`,
    });

    const up = await until(
      () => handle.query(statusQuery),
      (v) => v.status === 'RUNNING',
      'RUNNING',
    );
    const info = await docker.getContainer(up.containerId!).inspect();
    assert.ok(info.Config.Env.includes(`GITEA_TOKEN=${TOKEN}`), 'the container got the secret');
    assert.equal(info.Config.Labels[LABELS.instance], id);
    assert.equal(routing.attached.at(-1)?.containerId, up.containerId);

    // Web UI filters: server and status are search attributes.
    await until(
      async () => (await client.workflow.count(`McpServer = '${server}' AND McpInstanceStatus = 'RUNNING'`)).count,
      (n) => n === 1,
      'the search attributes',
    );

    await docker.getContainer(up.containerId!).kill();
    const failed = await until(
      () => handle.query(statusQuery),
      (v) => v.status === 'ERROR',
      'ERROR after the kill',
    );
    assert.equal(failed.error, 'container exited with code 137 (killed)');
    assert.equal(failed.attemptCount, 1);
    assert.equal(Date.parse(failed.nextRetryAt!) - Date.parse(failed.events.at(-1)!.at), 30_000);
    assert.ok(
      routing.detached.some((d) => d.id === id),
      'the gateway was told the upstream is gone',
    );

    await run(temporalCli, ['workflow', 'signal', '--address', address, '--workflow-id', id, '--name', 'forceRetry']);
    const again: InstanceView = await until(
      () => handle.query(statusQuery),
      (v) => v.status === 'RUNNING' && v.attemptCount === 2,
      'RUNNING after forceRetry',
    );
    assert.notEqual(again.containerId, up.containerId);

    const { stdout: history } = await run(temporalCli, ['workflow', 'show', '--address', address, '--workflow-id', id, '--output', 'json'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    const readable = withDecodedPayloads(history);
    assert.ok(readable.includes(SECRET), 'the history holds the secret reference');
    assert.ok(!readable.includes(TOKEN), 'the history never holds the secret value');
    const { stdout: described } = await run(temporalCli, ['workflow', 'describe', '--address', address, '--workflow-id', id, '--output', 'json']);
    assert.ok(!withDecodedPayloads(described).includes(TOKEN));

    await handle.signal(stopSignal);
    const final = (await handle.result()) as InstanceView;
    assert.equal(final.status, 'STOPPED');
    const left = await docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${id}`, `${LABELS.owner}=${OWNER}`] } });
    assert.equal(left.length, 0, 'stop removed the container');
    // The kill was news to the workflow; the exit of the container it stopped itself is not (one signal fewer per instance on a delete).
    const exits = ((await handle.fetchHistory()).events ?? []).filter(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === containerExitedSignal.name,
    );
    assert.equal(exits.length, 1, 'only the kill was signalled');
  });

  it("the reaper removes this owner's containers whose workflow is gone, and nothing else", async () => {
    const orphanId = instanceId('t-docker-orphan', 0);
    const labels = (owner: string) => ({ [LABELS.managed]: 'true', [LABELS.instance]: orphanId, [LABELS.server]: 't-docker-orphan', [LABELS.owner]: owner });
    const orphan = await docker.createContainer({
      name: `t-docker-orphan-${process.pid}`,
      Image: 'mcpd/node-base:20',
      Cmd: ['node', '-e', '0'],
      Labels: labels(OWNER),
      HostConfig: { NetworkMode: 'none' },
    });
    const foreign = await docker.createContainer({
      name: `t-docker-foreign-${process.pid}`,
      Image: 'mcpd/node-base:20',
      Cmd: ['node', '-e', '0'],
      Labels: labels(`${OWNER}-other`),
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      const reaper = new Reaper({ runtime, client, owner: OWNER });
      const removed = await reaper.reapOnce();
      assert.deepEqual(removed, [orphan.id]);
      await assert.rejects(orphan.inspect(), (err: { statusCode?: number }) => err.statusCode === 404);
      assert.equal((await foreign.inspect()).Id, foreign.id, "another owner's container is untouched");
    } finally {
      await orphan.remove({ force: true }).catch(() => undefined);
      await foreign.remove({ force: true }).catch(() => undefined);
    }
  });
});
