/**
 * Two nodes on this machine: node A is an mcpd on the shared Docker engine, node B an
 * mcpd whose worker runs next to a Docker engine of the test's own (its own data root
 * and socket: a second host as far as mcpd can tell). Both register; instances spread
 * over them; placement.node pins, placement.nodeSelector selects by label; a placement
 * nothing fits says so and is placed once a fitting node appears; a stopped node
 * worker turns its node NotReady.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { Client, Connection } from '@temporalio/client';
import type { InstanceView } from '../../src/contracts/instance';
import { LABELS } from '../../src/contracts/labels';
import { nodeWorkflowId, type NodeView } from '../../src/contracts/node';
import { callApi, runMcpctl } from '../support/clients';
import { DockerEngine } from '../../src/cluster/dockerEngine';
import { recordHistory } from '../workflows/fixtures/env';
import { removeContainers, startMcpd, testEnv, waitForValue, type McpdProcess } from '../support/stack';
import { engineDocker } from '../support/engineDocker';
import { forgetNodes, startSecondHost, type SecondHost } from '../support/secondHost';

const IMAGE = 'mcpd/gitea-like:dev';

describe('nodes and placement (two nodes, two Docker engines)', function () {
  this.timeout(300_000);
  const suffix = randomBytes(3).toString('hex');
  const nodeA = `t-nodes-a-${suffix}`;
  const nodeB = `t-nodes-b-${suffix}`;
  const nodeC = `t-nodes-c-${suffix}`;
  let host: SecondHost | undefined;
  let engine: DockerEngine;
  let a: McpdProcess;
  let b: McpdProcess | undefined;
  let c: McpdProcess | undefined;
  const servers: string[] = [];

  before(async () => {
    host = await startSecondHost('nodes', [IMAGE]);
    engine = host.engine;
    [a, b] = await Promise.all([
      startMcpd({ env: { MCPD_NODE: nodeA, MCPD_NODE_LABELS: 'disk=hdd', MCPD_NODE_CAPACITY: '10' } }),
      startMcpd({ env: { MCPD_NODE: nodeB, MCPD_NODE_LABELS: 'disk=ssd,zone=west', MCPD_NODE_CAPACITY: '10', MCPD_DOCKER_SOCKET: engine.socket } }),
    ]);
  });

  after(async () => {
    for (const name of servers) await callApi(a, 'DELETE', `/api/v1/servers/${name}`).catch(() => undefined);
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    for (const name of servers) await removeContainers({ label: `${LABELS.server}=${name}` });
    await host?.remove();
    await forgetNodes([nodeA, nodeB, nodeC]);
  });

  async function nodes(): Promise<Map<string, NodeView>> {
    const res = await callApi(a, 'GET', '/api/v1/nodes');
    assert.equal(res.status, 200, res.text);
    return new Map((res.json.items as NodeView[]).map((n) => [n.name, n]));
  }

  async function apply(prefix: string, extras: Record<string, unknown>): Promise<string> {
    const name = `t-nodes-${prefix}-${suffix}`;
    servers.push(name);
    const applied = await callApi(a, 'PUT', `/api/v1/servers/${name}`, { name, image: IMAGE, transport: 'stdio', ...extras });
    assert.ok([200, 201].includes(applied.status), applied.text);
    const started = await callApi(a, 'POST', `/api/v1/servers/${name}/start`);
    assert.equal(started.status, 200, started.text);
    return name;
  }

  async function instances(server: string): Promise<InstanceView[]> {
    const res = await callApi(a, 'GET', `/api/v1/instances?server=${server}`);
    assert.equal(res.status, 200, res.text);
    return res.json.items as InstanceView[];
  }

  function allRunning(server: string, count: number): Promise<InstanceView[]> {
    return waitForValue(
      () => instances(server),
      (list) => list.length === count && list.every((i) => i.status === 'RUNNING'),
      {
        timeoutMs: 90_000,
        intervalMs: 300,
        what: `${count} instances of ${server} RUNNING`,
        describe: (list) => JSON.stringify(list.map((i) => [i.id, i.status, i.node, i.error])),
      },
    );
  }

  async function containersOf(server: string, docker: Docker): Promise<number> {
    return (await docker.listContainers({ filters: { label: [`${LABELS.server}=${server}`] } })).length;
  }

  it('lists both nodes Ready with their engine, labels and capacity, in the API and in mcpctl', async () => {
    const listed = await waitForValue(nodes, (m) => m.get(nodeA)?.status === 'Ready' && m.get(nodeB)?.status === 'Ready', {
      timeoutMs: 30_000,
      what: 'both nodes Ready',
      describe: (m) => JSON.stringify([m.get(nodeA), m.get(nodeB)]),
    });
    const [viewA, viewB] = [listed.get(nodeA)!, listed.get(nodeB)!];
    assert.deepEqual(viewA.registration?.labels, { disk: 'hdd' });
    assert.deepEqual(viewB.registration?.labels, { disk: 'ssd', zone: 'west' });
    assert.equal(viewB.registration?.capacity, 10);
    assert.equal(viewB.registration?.engineHost, engine.socket);
    assert.equal(viewB.registration?.engineVersion, (await engineDocker(engine).version()).Version);
    assert.equal(viewA.instances, 0);

    const table = await runMcpctl(a, ['get', 'nodes'], { cwd: engine.dir });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NAME\s+ENGINE\s+STATUS\s+INSTANCES\s+CAPACITY\s+LABELS$/m);
    assert.match(table.stdout, new RegExp(`^${nodeB}\\s+docker \\S+\\s+Ready\\s+0\\s+10\\s+disk=ssd,zone=west$`, 'm'));

    const one = await callApi(a, 'GET', `/api/v1/nodes/${nodeB}`);
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.name, nodeB);
    const missing = await callApi(a, 'GET', '/api/v1/nodes/no-such-node');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error, 'node "no-such-node" not found');
    const bad = await callApi(a, 'GET', `/api/v1/nodes/${encodeURIComponent('bad name')}`);
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /^invalid node name "bad name": name: must be 1-128 letters/);
    const ctlMissing = await runMcpctl(a, ['describe', 'node', 'no-such-node'], { cwd: engine.dir });
    assert.equal(ctlMissing.code, 3);
    assert.equal(ctlMissing.stderr, 'error: node "no-such-node" not found\n');
  });

  it('spreads replicas over the Ready nodes, and the nodes count them', async () => {
    const server = await apply('spread', { replicas: 4 });
    const running = await allRunning(server, 4);
    const perNode = (n: string) => running.filter((i) => i.node === n).length;
    assert.equal(perNode(nodeA), 2, JSON.stringify(running.map((i) => [i.id, i.node])));
    assert.equal(perNode(nodeB), 2);
    assert.equal(await containersOf(server, new Docker()), 2, 'two containers on the shared engine');
    assert.equal(await containersOf(server, engineDocker(engine)), 2, "two containers on node B's engine");
    const listed = await nodes();
    assert.equal(listed.get(nodeA)?.instances, 2);
    assert.equal(listed.get(nodeB)?.instances, 2);

    const described = await runMcpctl(a, ['describe', 'instance', running.find((i) => i.node === nodeB)!.id], { cwd: engine.dir });
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, new RegExp(`^Node:\\s+${nodeB}$`, 'm'));
  });

  it('placement.node pins every replica to that node', async () => {
    const server = await apply('pin', { replicas: 2, placement: { node: nodeA } });
    const running = await allRunning(server, 2);
    assert.deepEqual(
      running.map((i) => i.node),
      [nodeA, nodeA],
    );
    assert.equal(await containersOf(server, engineDocker(engine)), 0);
  });

  it('placement.nodeSelector picks the nodes with those labels', async () => {
    const server = await apply('ssd', { replicas: 2, placement: { nodeSelector: { disk: 'ssd' } } });
    const running = await allRunning(server, 2);
    assert.deepEqual(
      running.map((i) => i.node),
      [nodeB, nodeB],
    );
    assert.equal(await containersOf(server, engineDocker(engine)), 2);
  });

  it('a placement no Ready node fits says why, and is placed once a fitting node appears', async () => {
    const server = await apply('nvme', { placement: { nodeSelector: { disk: 'nvme' } } });
    const [pending] = await waitForValue(
      () => instances(server),
      (list) => list.length === 1 && list[0].status === 'PENDING' && !!list[0].error,
      { timeoutMs: 30_000, what: 'the instance PENDING with a reason', describe: (list) => JSON.stringify(list) },
    );
    assert.match(
      pending.error!,
      new RegExp(`^no Ready node matches placement nodeSelector disk=nvme \\(.*${nodeA}: labels do not match.*${nodeB}: labels do not match`),
    );
    assert.equal(pending.node, undefined);
    const table = await runMcpctl(a, ['get', 'instances', server], { cwd: engine.dir });
    assert.match(table.stdout, /PENDING .*no Ready node matches placement nodeSelector disk=nvme/);

    c = await startMcpd({ env: { MCPD_NODE: nodeC, MCPD_NODE_LABELS: 'disk=nvme' } });
    const [placed] = await allRunning(server, 1);
    assert.equal(placed.node, nodeC);
    assert.ok(
      placed.events.some((e) => e.type === 'Placed' && e.message.startsWith(`placed on node ${nodeC}`)),
      JSON.stringify(placed.events),
    );
  });

  it('a node whose worker died is NotReady within the heartbeat timeout, and Ready again when it returns', async () => {
    await b!.kill();
    const killedAt = Date.now();
    const listed = await waitForValue(nodes, (m) => m.get(nodeB)?.status === 'NotReady', {
      timeoutMs: 40_000,
      what: `node ${nodeB} NotReady`,
      describe: (m) => JSON.stringify(m.get(nodeB)),
    });
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(`      NotReady ${seconds.toFixed(1)} s after its worker was killed`);
    assert.equal(listed.get(nodeB)!.reason, 'no heartbeat from its worker for 20 s');
    assert.equal(listed.get(nodeA)?.status, 'Ready');
    const table = await runMcpctl(a, ['get', 'nodes', nodeB], { cwd: engine.dir });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`^${nodeB}\\s+docker \\S+\\s+NotReady\\s`, 'm'));
    const described = await runMcpctl(a, ['describe', 'node', nodeB], { cwd: engine.dir });
    assert.match(described.stdout, /^Status:\s+NotReady since /m);
    assert.match(described.stdout, /^Reason:\s+no heartbeat from its worker for 20 s$/m);

    b = await b!.restart();
    await waitForValue(nodes, (m) => m.get(nodeB)?.status === 'Ready', {
      timeoutMs: 30_000,
      what: `node ${nodeB} Ready again`,
      describe: (m) => JSON.stringify(m.get(nodeB)),
    });
    const connection = await Connection.connect({ address: testEnv().temporalAddress });
    await recordHistory(new Client({ connection }).workflow.getHandle(nodeWorkflowId(nodeB)), 'node-lease-lost-and-back');
    await connection.close();
  });
});
