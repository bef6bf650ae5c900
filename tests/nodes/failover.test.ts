/**
 * Node failure: node B (an mcpd next to a Docker engine of the test's own) loses its
 * worker and its engine. Within 60 s B is NotReady and its instance runs again on node A
 * (same workflow id, a new container) and is healthy; when B and its engine return, the
 * container B had for that instance is removed, so it never runs twice.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { Client, Connection } from '@temporalio/client';
import type { InstanceView } from '../../src/contracts/instance';
import { LABELS } from '../../src/contracts/labels';
import type { NodeView } from '../../src/contracts/node';
import { callApi } from '../support/clients';
import { DockerEngine } from '../../src/cluster/dockerEngine';
import { recordHistory } from '../workflows/fixtures/env';
import { removeContainers, startMcpd, testEnv, waitForValue, type McpdProcess } from '../support/stack';
import { engineDocker } from '../support/engineDocker';
import { forgetNodes, startSecondHost, type SecondHost } from '../support/secondHost';

const IMAGE = 'mcpd/gitea-like:dev';

describe('node failure: instances move to a Ready node and never run twice', function () {
  this.timeout(300_000);
  const suffix = randomBytes(3).toString('hex');
  const nodeA = `t-fail-a-${suffix}`;
  const nodeB = `t-fail-b-${suffix}`;
  const server = `t-nodes-fail-${suffix}`;
  let host: SecondHost | undefined;
  let engine: DockerEngine;
  let a: McpdProcess;
  let b: McpdProcess | undefined;

  before(async () => {
    host = await startSecondHost('failover', [IMAGE]);
    engine = host.engine;
    [a, b] = await Promise.all([startMcpd({ env: { MCPD_NODE: nodeA } }), startMcpd({ env: { MCPD_NODE: nodeB, MCPD_DOCKER_SOCKET: engine.socket } })]);
    await waitForValue(nodes, (m) => m.get(nodeA)?.status === 'Ready' && m.get(nodeB)?.status === 'Ready', { timeoutMs: 30_000, what: 'both nodes Ready' });
  });

  after(async () => {
    await callApi(a, 'DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
    await Promise.all([a?.stop(), b?.stop()]);
    await removeContainers({ label: `${LABELS.server}=${server}` });
    await host?.remove();
    await forgetNodes([nodeA, nodeB]);
  });

  async function nodes(): Promise<Map<string, NodeView>> {
    const res = await callApi(a, 'GET', '/api/v1/nodes');
    assert.equal(res.status, 200, res.text);
    return new Map((res.json.items as NodeView[]).map((n) => [n.name, n]));
  }

  async function instances(): Promise<InstanceView[]> {
    const res = await callApi(a, 'GET', `/api/v1/instances?server=${server}`);
    assert.equal(res.status, 200, res.text);
    return res.json.items as InstanceView[];
  }

  const healthy = (i: InstanceView) => i.status === 'RUNNING' && i.health === 'healthy';

  it("restarts node B's instance on node A within 60 s of B going away, and B removes its old container when it returns", async () => {
    const applied = await callApi(a, 'PUT', `/api/v1/servers/${server}`, { name: server, image: IMAGE, transport: 'stdio', replicas: 2 });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await callApi(a, 'POST', `/api/v1/servers/${server}/start`)).status, 200);
    const before = await waitForValue(instances, (list) => list.length === 2 && list.every(healthy), {
      timeoutMs: 90_000,
      what: 'both replicas healthy',
      describe: (list) => JSON.stringify(list.map((i) => [i.id, i.status, i.health, i.node])),
    });
    const onB = before.find((i) => i.node === nodeB);
    assert.ok(onB, `one replica on ${nodeB}: ${JSON.stringify(before.map((i) => [i.id, i.node]))}`);
    const onA = before.find((i) => i.node === nodeA)!;

    // Node B goes away: its worker dies, then its engine stops (taking its containers down).
    await b!.kill();
    const lostAt = Date.now();
    await engine.stop();

    const moved = await waitForValue(
      instances,
      (list) => {
        const v = list.find((i) => i.id === onB.id);
        return !!v && healthy(v) && v.node === nodeA && v.containerId !== onB.containerId;
      },
      {
        timeoutMs: 90_000,
        intervalMs: 500,
        what: `${onB.id} healthy on ${nodeA}`,
        describe: (list) => JSON.stringify(list.map((i) => ({ ...i, events: i.events.slice(-5) }))),
      },
    );
    const seconds = (Date.now() - lostAt) / 1000;
    console.log(`      ${onB.id} healthy on ${nodeA} ${seconds.toFixed(1)} s after node ${nodeB} went away`);
    assert.ok(seconds <= 60, `moved within 60 s, took ${seconds.toFixed(1)} s`);
    assert.equal((await nodes()).get(nodeB)?.status, 'NotReady');
    const movedView = moved.find((i) => i.id === onB.id)!;
    assert.ok(
      movedView.events.some((e) => e.type === 'Moved' && e.message.startsWith(`moved from node ${nodeB} to node ${nodeA}`)),
      JSON.stringify(movedView.events),
    );
    assert.equal(moved.find((i) => i.id === onA.id)?.containerId, onA.containerId, 'the replica on A was left alone');
    const onSharedEngine = await new Docker().listContainers({ filters: { label: [`${LABELS.server}=${server}`] } });
    assert.equal(onSharedEngine.length, 2, 'both replicas run on node A');

    // B comes back: its engine still holds the old container; B's worker removes it.
    await engine.start();
    b = await b!.restart();
    await waitForValue(
      () => engineDocker(engine).listContainers({ all: true, filters: { label: [`${LABELS.server}=${server}`] } }),
      (left) => left.length === 0,
      {
        timeoutMs: 30_000,
        what: `no container of ${server} left on node ${nodeB}'s engine`,
        describe: (left) => JSON.stringify(left.map((c) => [c.Id.slice(0, 12), c.State])),
      },
    );
    await waitForValue(nodes, (m) => m.get(nodeB)?.status === 'Ready', { timeoutMs: 30_000, what: `${nodeB} Ready again` });
    const after = await instances();
    assert.ok(
      after.every((i) => i.node === nodeA && healthy(i)),
      JSON.stringify(after.map((i) => [i.id, i.node, i.status, i.health])),
    );
    const connection = await Connection.connect({ address: testEnv().temporalAddress });
    await recordHistory(new Client({ connection }).workflow.getHandle(onB.id), 'instance-placement-node-failover');
    await connection.close();
  });
});
