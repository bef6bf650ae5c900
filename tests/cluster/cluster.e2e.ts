/**
 * `npm run test:cluster`: the production-shaped stack of `npm run cluster` (src/cluster),
 * started on its own state dir and ports (base 24000). Both Temporal nodes are members of
 * one cluster; a server applied through API process 1 is seen through API process 2; its
 * instance reaches RUNNING on one of the two Docker hosts; one Temporal node restarts while
 * the other serves and the API keeps answering; a second start reuses PostgreSQL's and
 * OpenBao's data. Not part of `npm test` (its file name does not end in .test.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { LABELS } from '../../src/contracts/labels';
import { startCluster, type Cluster, type ClusterOptions } from '../../src/cluster/cluster';
import { TEMPORAL_SERVER_VERSION } from '../../src/cluster/config';
import type { InstanceView } from '../../src/contracts/instance';
import { DEFAULT_NODE_CAPACITY, type NodeView } from '../../src/contracts/node';
import type { DockerHost } from '../../src/cluster/config';
import { placeAll } from '../../workflows/placement';
import { callApi, runMcpctl } from '../support/clients';
import { REPO_ROOT, waitForValue } from '../support/stack';
import { applyServer, gatewaySession, instanceView, replica, runningAndHealthy, waitForInstance, type ChaosServer } from '../chaos/support';
import { engineDocker } from '../support/engineDocker';
import { callText, connectBalanced } from '../support/balancedMcp';

const execFileAsync = promisify(execFile);

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test through npm run test:cluster`);
  return value;
}

describe('the production-shaped cluster (npm run cluster)', function () {
  this.timeout(600_000);
  let cluster: Cluster | undefined;
  let server: ChaosServer | undefined;
  /** Servers the load test applies; stopped in after() like `server`. */
  const others: ChaosServer[] = [];
  const options = (): ClusterOptions => ({
    root: REPO_ROOT,
    stateDir: process.env.MCPD_CLUSTER_DIR ?? path.join(REPO_ROOT, '.data', 'cluster-test'),
    portBase: 24000,
    temporalCli: required('MCPD_TEMPORAL_CLI'),
    bao: required('MCPD_BAO_CLI'),
    images: JSON.parse(required('MCPD_CLUSTER_IMAGES')) as Record<string, string>,
    mcpdEnv: { MCPD_SEED_EXAMPLES: 'false', MCPD_LOG_LEVEL: 'warn' },
    log: (msg) => console.log(`    [cluster] ${msg}`),
  });
  const api = (i: number) => {
    const processes = cluster!.mcpd.filter((m) => m.plan.roles.split(',').includes('api'));
    return { url: processes[i].url, token: cluster!.apiToken };
  };

  before(async () => {
    const started = Date.now();
    cluster = await startCluster(options());
    console.log(`    [cluster] ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  });

  after(async () => {
    // The cluster stops even when the server's stop does not finish (an instance that never
    // started may keep its stop waiting): the state dir is the test's own.
    if (cluster) {
      const stopped = Promise.all(
        [server, ...others].filter((s) => s !== undefined).map((s) => callApi(api(0), 'POST', `/api/v1/servers/${s.name}/stop`).catch(() => undefined)),
      );
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 30_000))]);
    }
    await cluster?.stop();
  });

  /** The nodes (by their membership ports) in each service's ring. */
  async function ringsByService(): Promise<Record<string, string[]>> {
    const rings: Record<string, string[]> = {};
    for (const member of await cluster!.members()) (rings[member.service] ??= []).push(member.address);
    return rings;
  }

  it('runs two Temporal server nodes that are members of one cluster', async () => {
    const [a, b] = cluster!.layout.temporalNodes.map((n) => n.ports);
    assert.deepEqual(await ringsByService(), {
      frontend: [`127.0.0.1:${a.frontendMembership}`, `127.0.0.1:${b.frontendMembership}`],
      history: [`127.0.0.1:${a.historyMembership}`, `127.0.0.1:${b.historyMembership}`],
      matching: [`127.0.0.1:${a.matchingMembership}`, `127.0.0.1:${b.matchingMembership}`],
      worker: [`127.0.0.1:${a.workerMembership}`, `127.0.0.1:${b.workerMembership}`],
    });
    // Both frontends serve, and both describe the same cluster.
    const ids = new Set<string>();
    for (const node of cluster!.temporalNodes) {
      const described = JSON.parse(
        (await execFileAsync(required('MCPD_TEMPORAL_CLI'), ['operator', 'cluster', 'describe', '--address', node.address, '-o', 'json'])).stdout,
      ) as { clusterId: string; serverVersion: string };
      assert.equal(described.serverVersion, TEMPORAL_SERVER_VERSION);
      ids.add(described.clusterId);
    }
    assert.equal(ids.size, 1, 'one cluster id');
  });

  it('shows a server applied through API process 1 through API process 2, and runs its instance on a cluster host', async () => {
    server = await applyServer(api(0), 'cluster', undefined, {}, { start: true });
    const listed = await callApi(api(1), 'GET', `/api/v1/servers/${server.name}`);
    assert.equal(listed.status, 200, listed.text);
    const view = await waitForInstance(api(1), server, 'the instance RUNNING', (v) => v.status === 'RUNNING', 180_000);
    assert.equal(view.status, 'RUNNING');
    const onHosts = await Promise.all(
      cluster!.engines.map((e) =>
        engineDocker(e)
          .listContainers({ filters: { label: [`${LABELS.server}=${server!.name}`] } })
          .then((c) => c.length),
      ),
    );
    assert.equal(
      onHosts.reduce((a, b) => a + b, 0),
      1,
      `containers per host: ${onHosts.join(', ')}`,
    );
  });

  it("serves the instance's tools on both API processes' /mcp wherever it runs, and a session moves between them", async () => {
    const name = `${server!.name}__echo`;
    let front = api(0);
    const { client } = await connectBalanced('/mcp', () => front);
    try {
      await waitForValue(
        async () => (await client.listTools()).tools.map((t) => t.name),
        (names) => names.includes(name),
        { timeoutMs: 30_000, what: `${name} on API process 1's /mcp` },
      );
      assert.match(await callText(client, name, { message: 'via api-1' }), /via api-1/);
      front = api(1);
      assert.match(await callText(client, name, { message: 'via api-2' }), /via api-2/);
    } finally {
      await client.close();
    }
  });

  it("serves Temporal's Web UI on the cluster: its page, and its API lists the server's workflows", async () => {
    const page = await fetch(cluster!.uiUrl);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const query = encodeURIComponent(`WorkflowId = 'mcp-server:${server!.name}'`);
    const listed = await fetch(`${cluster!.uiUrl}/api/v1/namespaces/default/workflows?query=${query}`);
    assert.equal(listed.status, 200);
    const body = (await listed.json()) as { executions?: { execution?: { workflowId?: string } }[] };
    assert.deepEqual(
      (body.executions ?? []).map((e) => e.execution?.workflowId),
      [`mcp-server:${server!.name}`],
    );
  });

  it('keeps answering through the API while one Temporal node restarts', async () => {
    let calls = 0;
    const failures: string[] = [];
    let restarting = true;
    const restart = cluster!.restartTemporalNode(0).finally(() => (restarting = false));
    while (restarting) {
      for (const i of [0, 1]) {
        calls++;
        const res = await callApi(api(i), 'GET', `/api/v1/servers/${server!.name}`).catch((err: Error) => ({ status: 0, text: err.message }));
        if (res.status !== 200) failures.push(`api-${i + 1}: ${res.status} ${res.text.slice(0, 200)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await restart;
    console.log(`    [cluster] ${calls} API calls during the restart of temporal-1, ${failures.length} failed`);
    assert.deepEqual(failures, []);
    // The restarted node rejoins the ring.
    await waitForValue(ringsByService, (rings) => rings.history?.length === 2 && rings.matching?.length === 2, {
      timeoutMs: 60_000,
      what: 'temporal-1 back in the history and matching rings',
    });
    const view = await waitForInstance(api(0), server!, 'the instance still RUNNING', (v) => v.status === 'RUNNING', 60_000);
    assert.equal(view.status, 'RUNNING');
  });

  /** Running containers carrying a label value, on both engines. */
  async function containersOnHosts(label: string): Promise<{ id: string; host: string }[]> {
    const found: { id: string; host: string }[] = [];
    for (const [i, engine] of cluster!.engines.entries()) {
      for (const c of await engineDocker(engine).listContainers({ filters: { label: [label] } }))
        found.push({ id: c.Id, host: cluster!.layout.dockerHosts[i].name });
    }
    return found;
  }

  it('keeps MCP calls, workflows and containers whole while both Temporal nodes restart one after the other under load', async () => {
    // The gateway of the node that runs the instance answers its calls (front gateways that
    // forward to the owning node are issue 10 item 4).
    const running = await instanceView(api(0), server!);
    const gateway = cluster!.mcpd.find((m) => m.plan.dockerHost?.name === running.node);
    assert.ok(gateway, `a node worker for node ${running.node}`);
    const session = await gatewaySession({ url: gateway.url, token: cluster!.apiToken }, server!);
    let calls = 0;
    const failures: string[] = [];
    let flowing = true;
    const load = (async () => {
      while (flowing) {
        calls++;
        const text = `call-${calls}`;
        try {
          const result = await session.call('echo', { message: text });
          const echoed = result.content.map((c) => c.text).join('');
          if (result.isError || !echoed.includes(text)) failures.push(`${text}: ${echoed.slice(0, 200)}`);
        } catch (err) {
          failures.push(`${text}: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      // A lifecycle in progress while Temporal restarts: a new server's instance starting.
      const starting = await applyServer(api(1), 'restarts', undefined, {}, { start: true });
      others.push(starting);
      for (const index of [0, 1]) {
        await cluster!.restartTemporalNode(index);
        await waitForValue(ringsByService, (rings) => rings.history?.length === 2 && rings.matching?.length === 2, {
          timeoutMs: 60_000,
          what: `temporal-${index + 1} back in the history and matching rings`,
        });
      }
      const restartedAt = Date.now();
      // The control plane catches up by itself: the instance that was starting, a scale and a new apply reach RUNNING and healthy.
      await waitForInstance(api(0), starting, 'the instance started during the restarts RUNNING and healthy', runningAndHealthy, 180_000);
      const scaled = await callApi(api(0), 'POST', `/api/v1/servers/${starting.name}/scale`, { replicas: 2 });
      assert.equal(scaled.status, 200, scaled.text);
      const fresh = await applyServer(api(1), 'after', undefined, {}, { start: true });
      others.push(fresh);
      await waitForInstance(api(1), replica(starting, 1), 'the scaled replica RUNNING and healthy', runningAndHealthy, 180_000);
      await waitForInstance(api(1), fresh, 'a server applied after the restarts RUNNING and healthy', runningAndHealthy, 180_000);
      console.log(`    [cluster] caught up (scale and new apply RUNNING and healthy) ${((Date.now() - restartedAt) / 1000).toFixed(1)}s after both restarts`);
    } finally {
      flowing = false;
      await load;
      await session.close();
    }
    console.log(`    [cluster] ${calls} MCP tools/call through the gateway during both Temporal restarts, ${failures.length} failed`);
    assert.deepEqual(failures, []);

    // No workflow lost: every instance answers its query, through either API process; no
    // duplicate or orphan container: one running container per instance, the current one.
    const instances = [server!, replica(others[0], 0), replica(others[0], 1), replica(others[1], 0)];
    for (const [i, instance] of instances.entries()) {
      const view = await instanceView(api(i % 2), instance);
      assert.equal(view.status, 'RUNNING', `${instance.instance}: ${view.status}`);
      const containers = await containersOnHosts(`${LABELS.instance}=${instance.instance}`);
      assert.deepEqual(
        containers.map((c) => c.id),
        [view.containerId],
        `${instance.instance}: containers ${containers.map((c) => `${c.id.slice(0, 12)}@${c.host}`).join(', ') || 'none'}`,
      );
    }
    for (const applied of [server!, ...others]) {
      const listed = await callApi(api(0), 'GET', `/api/v1/servers/${applied.name}`);
      assert.equal(listed.status, 200, listed.text);
    }
  });

  async function nodesByName(): Promise<Map<string, NodeView>> {
    const res = await callApi(api(1), 'GET', '/api/v1/nodes');
    assert.equal(res.status, 200, res.text);
    return new Map((res.json.items as NodeView[]).map((n) => [n.name, n]));
  }

  async function instancesOf(name: string): Promise<InstanceView[]> {
    const res = await callApi(api(0), 'GET', `/api/v1/instances?server=${name}`);
    assert.equal(res.status, 200, res.text);
    return res.json.items as InstanceView[];
  }

  /** Applies a server of `replicas` and starts it, answering once every start has an outcome. */
  async function applyAndStart(prefix: string, extras: Record<string, unknown>): Promise<ChaosServer> {
    const applied = await applyServer(api(0), prefix, undefined, extras, { start: false });
    others.push(applied);
    const started = await callApi(api(1), 'POST', `/api/v1/servers/${applied.name}/start?wait=true&timeout=180`);
    assert.equal(started.status, 200, started.text);
    return applied;
  }

  const hosts = () => cluster!.layout.dockerHosts;
  /** The host that runs `server`: the one the failover test takes down. */
  let failing: DockerHost;
  let survivor: DockerHost;
  let spread: ChaosServer;
  let zonePinned: ChaosServer;

  it('lists both Docker hosts as Ready nodes with engine, labels, counts and capacity, through the API and mcpctl', async () => {
    const runningOn = async (host: DockerHost) =>
      (await engineDocker(cluster!.engines[hosts().indexOf(host)]).listContainers({ filters: { label: [LABELS.instance] } })).length;
    // Visibility counts a placement once the instance workflow records it: wait until the counts match the engines.
    const expected = await Promise.all(hosts().map(runningOn));
    const listed = await waitForValue(
      nodesByName,
      (m) => hosts().every((h, i) => m.get(h.name)?.status === 'Ready' && m.get(h.name)?.instances === expected[i]),
      {
        timeoutMs: 30_000,
        what: `both hosts Ready with ${expected.join(' and ')} instances`,
        describe: (m) => JSON.stringify([...m.values()].map((n) => [n.name, n.status, n.instances])),
      },
    );
    for (const host of hosts()) {
      const node = listed.get(host.name)!;
      assert.deepEqual(node.registration?.labels, host.labels);
      assert.equal(node.registration?.engineHost, host.socket);
      assert.match(node.registration?.engineVersion ?? '', /^\d+\.\d+/);
      assert.equal(node.registration?.capacity, DEFAULT_NODE_CAPACITY);
    }
    const table = await runMcpctl({ url: api(1).url, dataDir: cluster!.layout.mcpdDataDir }, ['get', 'nodes'], { cwd: REPO_ROOT });
    assert.equal(table.code, 0, table.stderr);
    for (const [i, host] of hosts().entries()) {
      assert.match(
        table.stdout,
        new RegExp(`^${host.name}\\s+docker \\S+\\s+Ready\\s+${expected[i]}\\s+${DEFAULT_NODE_CAPACITY}\\s+zone=${host.labels.zone}\\s*$`, 'm'),
      );
    }
  });

  it('spreads new replicas over the hosts fewest first, and places by node name or node label', async () => {
    const before = [...(await nodesByName()).values()];
    spread = await applyAndStart('spread', { replicas: 4 });
    const expected = new Map<string, number>();
    for (const node of placeAll(before, undefined, [0, 1, 2, 3]).values()) expected.set(node!, (expected.get(node!) ?? 0) + 1);
    const placed = await instancesOf(spread.name);
    const counted = new Map<string, number>();
    for (const instance of placed) counted.set(instance.node!, (counted.get(instance.node!) ?? 0) + 1);
    console.log(
      `    [cluster] instances per node before: ${before.map((n) => `${n.name} ${n.instances}`).join(', ')}; 4 replicas went ${[...counted].map(([n, c]) => `${c} to ${n}`).join(', ')}`,
    );
    assert.deepEqual(Object.fromEntries(counted), Object.fromEntries(expected));
    for (const instance of placed) {
      assert.ok(runningAndHealthy(instance), `${instance.id}: ${instance.status} ${instance.health}`);
      // An API process runs no containers: it reads the logs from the node that runs the instance.
      const logs = await callApi(api(1), 'GET', `/api/v1/instances/${encodeURIComponent(instance.id)}/logs`);
      assert.equal(logs.status, 200, logs.text);
      assert.match(logs.text, /gitea-like MCP server on stdio/, `${instance.id} on ${instance.node}`);
      const containers = await containersOnHosts(`${LABELS.instance}=${instance.id}`);
      assert.deepEqual(
        containers.map((c) => [c.id, c.host]),
        [[instance.containerId, instance.node]],
      );
    }

    const serverNode = (await instanceView(api(0), server!)).node;
    failing = hosts().find((h) => h.name === serverNode)!;
    survivor = hosts().find((h) => h !== failing)!;
    zonePinned = await applyAndStart('zone', { replicas: 2, placement: { nodeSelector: { zone: failing.labels.zone } } });
    const pinned = await applyAndStart('pinned', { placement: { node: survivor.name } });
    for (const [applied, host] of [
      [zonePinned, failing],
      [pinned, survivor],
    ] as const) {
      const list = await instancesOf(applied.name);
      assert.deepEqual(
        list.map((i) => [i.node, i.status, i.health]),
        list.map(() => [host.name, 'RUNNING', 'healthy']),
      );
    }
  });

  it('runs the instances of a host that fails on the other host within 60 s, serves their tools again on /mcp, and removes their old containers when the host returns', async () => {
    const allInstances = async () => (await Promise.all([server!, ...others].map((s) => instancesOf(s.name)))).flat();
    const zoneIds = new Set((await instancesOf(zonePinned.name)).map((i) => i.id));
    const onFailing = (await allInstances()).filter((i) => i.node === failing.name);
    const moving = onFailing.filter((i) => !zoneIds.has(i.id));
    assert.ok(moving.some((i) => i.id === server!.instance) && zoneIds.size === 2, JSON.stringify(onFailing.map((i) => i.id)));
    const tool = `${server!.name}__echo`;
    const { client } = await connectBalanced('/mcp', () => api(0));
    try {
      assert.match(await callText(client, tool, { message: 'before' }), /before/);

      // Timed from the kill of its worker: the engine's stop (its containers' stop) counts too.
      const lostAt = Date.now();
      await cluster!.failHost(failing.name);
      const since = () => ((Date.now() - lostAt) / 1000).toFixed(1);
      const notReady = await waitForValue(nodesByName, (m) => m.get(failing.name)?.status === 'NotReady', {
        timeoutMs: 60_000,
        intervalMs: 500,
        what: `${failing.name} NotReady`,
      });
      const notReadyAfter = since();
      assert.equal(notReady.get(survivor.name)?.status, 'Ready');
      const byId = (list: InstanceView[]) => new Map(list.map((i) => [i.id, i]));
      const moved = await waitForValue(
        allInstances,
        (list) => {
          const now = byId(list);
          return moving.every((old) => {
            const v = now.get(old.id);
            return !!v && runningAndHealthy(v) && v.node === survivor.name && v.containerId !== old.containerId;
          });
        },
        {
          timeoutMs: 90_000,
          intervalMs: 500,
          what: `the ${moving.length} instances of ${failing.name} RUNNING and healthy on ${survivor.name}`,
          describe: (list) => JSON.stringify(list.map((i) => [i.id, i.node, i.status, i.health])),
        },
      );
      const movedAfter = since();
      await waitForValue(
        async () => callText(client, tool, { message: 'after' }).catch((err: Error) => err.message),
        (text) => /after/.test(text),
        { timeoutMs: 30_000, intervalMs: 250, what: `${tool} answering on /mcp again` },
      );
      const toolsAfter = since();
      console.log(
        `    [cluster] ${failing.name} failed: NotReady after ${notReadyAfter}s; its ${moving.length} instances RUNNING and healthy on ${survivor.name} after ${movedAfter}s; ${tool} answered on /mcp after ${toolsAfter}s`,
      );
      assert.ok(Number(movedAfter) <= 60, `moved within 60 s, took ${movedAfter} s`);
      const now = byId(moved);
      for (const old of moving) {
        const view = now.get(old.id)!;
        assert.ok(
          view.events.some((e) => e.type === 'Moved' && e.message.startsWith(`moved from node ${failing.name} to node ${survivor.name}`)),
          `${old.id}: ${JSON.stringify(view.events.slice(-5))}`,
        );
      }
      // Instances that only the failed host's label fits wait for it instead of moving.
      for (const id of zoneIds) {
        const view = now.get(id)!;
        assert.equal(view.node, failing.name, `${id} stays on ${failing.name}`);
        assert.ok(
          view.events.some(
            (e) => e.type === 'NodeNotReady' && e.message.includes(`no other Ready node fits placement nodeSelector zone=${failing.labels.zone}: staying`),
          ),
          `${id}: ${JSON.stringify(view.events.slice(-5))}`,
        );
      }

      await cluster!.restoreHost(failing.name);
      const restoredAt = Date.now();
      const failingDocker = engineDocker(cluster!.engines[hosts().indexOf(failing)]);
      await waitForValue(
        () => Promise.all(moving.map((old) => failingDocker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${old.id}`] } }))),
        (left) => left.every((c) => c.length === 0),
        { timeoutMs: 60_000, what: `no container of a moved instance left on ${failing.name}` },
      );
      const back = await waitForValue(
        allInstances,
        (list) => list.filter((i) => zoneIds.has(i.id)).every((i) => runningAndHealthy(i) && i.node === failing.name),
        {
          timeoutMs: 120_000,
          what: `the zone-pinned instances RUNNING and healthy on ${failing.name} again`,
          describe: (list) => JSON.stringify(list.map((i) => [i.id, i.node, i.status, i.health])),
        },
      );
      console.log(
        `    [cluster] ${failing.name} back: leftovers removed and its pinned instances healthy ${((Date.now() - restoredAt) / 1000).toFixed(1)}s after its return`,
      );
      assert.equal((await nodesByName()).get(failing.name)?.status, 'Ready');
      // Never twice: one running container per instance across both hosts, the one its view names.
      for (const view of back) {
        const containers = await containersOnHosts(`${LABELS.instance}=${view.id}`);
        assert.deepEqual(
          containers.map((c) => [c.id, c.host]),
          [[view.containerId, view.node]],
          view.id,
        );
      }
      const perNode = new Map<string, number>();
      for (const view of back) perNode.set(view.node!, (perNode.get(view.node!) ?? 0) + 1);
      console.log(`    [cluster] instances per node after the failover: ${[...perNode].map(([n, c]) => `${n} ${c}`).join(', ')}`);
      assert.match(await callText(client, tool, { message: 'still' }), /still/);
    } finally {
      await client.close();
    }
  });

  it('comes up again on the same state after a stop: the server and its secret are still there', async () => {
    await cluster!.stop();
    const started = Date.now();
    cluster = await startCluster(options());
    console.log(`    [cluster] warm start ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    const listed = await callApi(api(1), 'GET', `/api/v1/servers/${server!.name}`);
    assert.equal(listed.status, 200, listed.text);
    const view = await waitForInstance(api(0), server!, 'the instance RUNNING again', (v) => v.status === 'RUNNING', 180_000);
    assert.equal(view.status, 'RUNNING');
  });
});
