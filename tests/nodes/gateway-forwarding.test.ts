/**
 * One gateway over many hosts. Node B is an mcpd whose worker runs next to a Docker
 * engine of the test's own (a second host as far as mcpd can tell); X and Y are front
 * processes (api,gateway: no worker, no container of their own) on the shared engine.
 * An instance pinned to B is reached from X's and Y's /mcp and /mcp/servers/<name>
 * while its attach stream stays B's: the fronts forward over the authenticated gateway
 * link. A session opened on X continues on Y (a load balancer may send any request
 * anywhere), and survives node B's process being killed and started again.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { InstanceView } from '../../src/contracts/instance';
import { LABELS } from '../../src/contracts/labels';
import type { NodeView } from '../../src/contracts/node';
import { DockerEngine } from '../../src/cluster/dockerEngine';
import { connectBalanced, callText } from '../support/balancedMcp';
import { callApi, runMcpctl } from '../support/clients';
import { engineDocker } from '../support/engineDocker';
import { forgetNodes, startSecondHost, type SecondHost } from '../support/secondHost';
import { REPO_ROOT, removeContainers, startMcpd, waitForValue, type McpdProcess } from '../support/stack';

const IMAGE = 'mcpd/gitea-like:dev';

type Text = { content: { type: string; text?: string }[]; isError?: boolean };

describe('front gateways forward to the node that runs an instance', function () {
  this.timeout(300_000);
  const suffix = randomBytes(3).toString('hex');
  const nodeA = `t-gwlink-a-${suffix}`;
  const nodeB = `t-gwlink-b-${suffix}`;
  const server = `t-gwlink-${suffix}`;
  const moving = `t-gwlink-move-${suffix}`;
  // Only the nodes with this label take the moving server: B at first, A once it joins.
  const movable = { gwlink: suffix };
  // Processes of one cluster share the gateway secret (npm run cluster: through the shared data dir).
  const secret = randomBytes(32).toString('hex');
  let host: SecondHost | undefined;
  let engine: DockerEngine;
  let a: McpdProcess | undefined;
  let b: McpdProcess;
  let x: McpdProcess;
  let y: McpdProcess;
  const clients: Client[] = [];

  before(async () => {
    host = await startSecondHost('gwlink', [IMAGE]);
    engine = host.engine;
    const front = { MCPD_ROLES: 'api,gateway', MCPD_GATEWAY_SECRET: secret };
    [b, x, y] = await Promise.all([
      startMcpd({ env: { MCPD_NODE: nodeB, MCPD_DOCKER_SOCKET: engine.socket, MCPD_GATEWAY_SECRET: secret, MCPD_NODE_LABELS: `gwlink=${suffix}` } }),
      startMcpd({ env: front }),
      startMcpd({ env: front }),
    ]);
    await waitForValue(nodes, (list) => list.find((n) => n.name === nodeB)?.status === 'Ready', { timeoutMs: 30_000, what: `node ${nodeB} Ready` });
    const applied = await callApi(x, 'PUT', `/api/v1/servers/${server}`, { name: server, image: IMAGE, transport: 'stdio', placement: { node: nodeB } });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await callApi(x, 'POST', `/api/v1/servers/${server}/start`)).status, 200);
    await waitForValue(
      async () => (await callApi(x, 'GET', `/api/v1/instances?server=${server}`)).json.items as InstanceView[],
      (list) => list.length === 1 && list[0].status === 'RUNNING' && list[0].health === 'healthy',
      { timeoutMs: 90_000, intervalMs: 300, what: `${server} RUNNING and healthy on ${nodeB}`, describe: (list) => JSON.stringify(list) },
    );
    // A front learns of a node that just joined when it next reads the node records (every few seconds).
    for (const front of [x, y]) {
      await waitForValue(
        async () =>
          ((await callApi(front, 'GET', '/api/v1/gateway')).json.instances as { server: string; connected: boolean; ready: boolean }[]).find(
            (i) => i.server === server,
          ),
        (i) => i?.connected === true && i.ready,
        { timeoutMs: 30_000, intervalMs: 250, what: `front ${front.url} linked to ${server} on ${nodeB}` },
      );
    }
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const [name, proc] of [
      ['X', x],
      ['Y', y],
    ] as const) {
      console.log(`      --- ${name} /api/v1/gateway: ${JSON.stringify((await callApi(proc, 'GET', '/api/v1/gateway').catch(() => undefined))?.json)}`);
    }
    // What the fronts' gateway links said: why a node's instances were not (yet) reachable.
    for (const [name, proc] of [
      ['X', x],
      ['Y', y],
      ['B', b],
    ] as const) {
      const lines = (proc?.output() ?? '').split('\n').filter((l) => /gateway/.test(l));
      console.log(`      --- ${name} (gateway log lines) ---\n${lines.slice(-30).join('\n')}`);
    }
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    for (const name of [server, moving]) await callApi(x, 'DELETE', `/api/v1/servers/${name}`).catch(() => undefined);
    await Promise.all([x?.stop(), y?.stop(), b?.stop(), a?.stop()]);
    await removeContainers({ label: `${LABELS.server}=${moving}` });
    await host?.remove();
    await forgetNodes([nodeA, nodeB]);
  });

  async function nodes(): Promise<NodeView[]> {
    const res = await callApi(x, 'GET', '/api/v1/nodes');
    assert.equal(res.status, 200, res.text);
    return res.json.items as NodeView[];
  }

  async function connect(endpoint: string, target: () => McpdProcess) {
    const connected = await connectBalanced(endpoint, target);
    clients.push(connected.client);
    return connected;
  }

  const echo = (client: Client, name: string, message: string) => callText(client, name, { message });

  it("a front process reaches the tools of an instance on another node's engine, on /mcp and /mcp/servers/<name>", async () => {
    const { client } = await connect('/mcp', () => x);
    const tools = await waitForValue(
      async () => (await client.listTools()).tools.map((t) => t.name),
      (names) => names.includes(`${server}__echo`),
      { timeoutMs: 30_000, what: `${server}__echo listed on front X` },
    );
    assert.ok(tools.includes(`${server}__get_me`), tools.join(','));
    assert.match(await echo(client, `${server}__echo`, 'through the link'), /through the link/);

    const one = await connect(`/mcp/servers/${server}`, () => y);
    assert.equal(one.client.getServerVersion()?.name, 'gitea-like', JSON.stringify(one.client.getServerVersion()));
    assert.match(await echo(one.client, 'echo', 'via Y'), /via Y/);
    // An upstream's own tool error comes back verbatim through both hops.
    const me = (await one.client.callTool({ name: 'get_me', arguments: {} })) as Text;
    assert.equal(me.isError, true);
    assert.match(me.content[0].text ?? '', /token is required/);
  });

  it('progress and cancellation pass both hops: the client sees its progress, and a cancelled call ends on node B', async () => {
    const { client } = await connect(`/mcp/servers/${server}`, () => y);
    const progress: number[] = [];
    const slept = (await client.callTool({ name: 'sleep', arguments: { ms: 600 } }, undefined, { onprogress: (p) => progress.push(p.progress) })) as Text;
    assert.equal(slept.content[0].text, 'slept 600 ms');
    assert.ok(progress.length >= 3, `progress seen: ${JSON.stringify(progress)}`);
    assert.deepEqual(
      progress,
      [...progress].sort((p, q) => p - q),
      'in order',
    );

    const cancel = new AbortController();
    const hanging = client.callTool({ name: 'hang', arguments: {} }, undefined, { signal: cancel.signal });
    const inFlightOnB = async () =>
      ((await callApi(b, 'GET', '/api/v1/gateway')).json.instances as { server: string; inFlight: number }[]).find((i) => i.server === server)?.inFlight;
    await waitForValue(inFlightOnB, (n) => n === 1, { timeoutMs: 10_000, what: 'the hanging call in flight on node B' });
    cancel.abort();
    await assert.rejects(hanging);
    await waitForValue(inFlightOnB, (n) => n === 0, { timeoutMs: 10_000, what: 'the cancelled call gone from node B' });
  });

  it("the attach stream stays node B's: the fronts hold a link to B, not the container", async () => {
    const [onX, onB] = await Promise.all([callApi(x, 'GET', '/api/v1/gateway'), callApi(b, 'GET', '/api/v1/gateway')]);
    const remote = (onX.json.instances as { server: string; remoteNode: string | null; connected: boolean }[]).find((i) => i.server === server);
    assert.deepEqual({ remoteNode: remote?.remoteNode, connected: remote?.connected }, { remoteNode: nodeB, connected: true });
    const local = (onB.json.instances as { server: string; remoteNode: string | null; transport: string }[]).find((i) => i.server === server);
    assert.deepEqual({ remoteNode: local?.remoteNode, transport: local?.transport }, { remoteNode: null, transport: 'stdio' });
    // The container is on B's engine only: the fronts' engine has none they could attach to.
    const filters = { label: [`${LABELS.server}=${server}`] };
    assert.equal((await engineDocker(engine).listContainers({ filters })).length, 1, "one container on node B's engine");
    assert.equal((await new Docker().listContainers({ filters })).length, 0, "none on the fronts' engine");
  });

  it("a front process reads the logs of an instance on node B's engine, through the API and mcpctl logs", async () => {
    const id = `mcp-instance:${server}:0`;
    for (const front of [x, y]) {
      const res = await callApi(front, 'GET', `/api/v1/instances/${encodeURIComponent(id)}/logs?timestamps=true`);
      assert.equal(res.status, 200, res.text);
      assert.match(res.text, /^\S+Z gitea-like MCP server on stdio$/m);
    }
    const cli = await runMcpctl(x, ['logs', 'instance', `${server}:0`], { cwd: REPO_ROOT });
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /gitea-like MCP server on stdio/);
    const missing = await callApi(x, 'GET', `/api/v1/instances/${encodeURIComponent(`mcp-instance:${server}:7`)}/logs`);
    assert.equal(missing.status, 404);
    assert.match(missing.json.error as string, /has no container/);
    const unlinked = await fetch(`${b.url}/mcp-link/v1/instances/${encodeURIComponent(id)}/logs`);
    assert.equal(unlinked.status, 401, 'the logs link wants the link token too');
  });

  it('a session opened on front X continues on front Y, on both endpoints', async () => {
    let front = x;
    for (const endpoint of ['/mcp', `/mcp/servers/${server}`]) {
      front = x;
      const tool = endpoint === '/mcp' ? `${server}__echo` : 'echo';
      const { client, transport } = await connect(endpoint, () => front);
      const session = transport.sessionId;
      assert.ok(session, 'a session id');
      assert.match(await echo(client, tool, 'on X'), /on X/);
      front = y;
      assert.match(await echo(client, tool, 'on Y'), /on Y/, `${endpoint}: the session goes on on Y`);
      assert.equal(transport.sessionId, session, 'the same session, not a new one');
      front = x;
      assert.match(await echo(client, tool, 'back on X'), /back on X/);
    }
  });

  it('a session id no front issued is not found; the link refuses anything but the link token', async () => {
    const forged = await fetch(`${y.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${y.token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': 's1.eyJyIjoiIn0.AAAAAAAAAAAAAAAAAAAAAA.forged',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(forged.status, 404);
    assert.match(await forged.text(), /Session not found/);
    for (const authorization of [undefined, `Bearer ${b.token}`, `Bearer ${secret}`]) {
      const res = await fetch(`${b.url}/mcp-link/v1/instances`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401, `link with ${authorization ? 'a wrong token' : 'no token'}`);
      assert.deepEqual(await res.json(), { error: 'missing or invalid gateway link token' });
    }
  });

  it("a front's session survives node B's process being killed and started again (the container keeps running)", async () => {
    const { client } = await connect(`/mcp/servers/${server}`, () => x);
    assert.match(await echo(client, 'echo', 'before'), /before/);
    await b.kill();
    b = await b.restart();
    // B re-attaches its container; the front's link session is taken over by the new B process.
    const text = await waitForValue(
      () => echo(client, 'echo', 'after').catch((err: Error) => `failed: ${err.message}`),
      (t) => /after/.test(t),
      { timeoutMs: 60_000, intervalMs: 500, what: 'echo through X after node B restarted' },
    );
    assert.match(text, /after/);
  });

  it("the fronts' /mcp drops the tools of an instance its node stops, without waiting for a cache to expire", async () => {
    const { client } = await connect('/mcp', () => x);
    assert.ok((await client.listTools()).tools.some((t) => t.name === `${server}__echo`));
    assert.equal((await callApi(x, 'POST', `/api/v1/servers/${server}/stop`)).status, 200);
    await waitForValue(
      async () => (await client.listTools()).tools.map((t) => t.name),
      (names) => !names.some((n) => n.startsWith(`${server}__`)),
      { timeoutMs: 30_000, intervalMs: 250, what: `${server}'s tools gone from front X's /mcp` },
    );
    const gone = (await client.callTool({ name: `${server}__echo`, arguments: { message: 'x' } }).catch((err: Error) => err)) as Error;
    assert.match(gone.message, /Unknown tool/);
  });

  it("when node B goes away its instance runs again on node A, and the fronts' clients get its tools back in the same session", async () => {
    const applied = await callApi(x, 'PUT', `/api/v1/servers/${moving}`, {
      name: moving,
      image: IMAGE,
      transport: 'stdio',
      placement: { nodeSelector: movable },
    });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await callApi(x, 'POST', `/api/v1/servers/${moving}/start`)).status, 200);
    const instance = async () => ((await callApi(x, 'GET', `/api/v1/instances?server=${moving}`)).json.items as InstanceView[])[0];
    await waitForValue(instance, (i) => i?.node === nodeB && i.status === 'RUNNING' && i.health === 'healthy', {
      timeoutMs: 90_000,
      what: `${moving} healthy on ${nodeB}`,
      describe: (i) => JSON.stringify(i),
    });
    a = await startMcpd({ env: { MCPD_NODE: nodeA, MCPD_NODE_LABELS: `gwlink=${suffix}`, MCPD_GATEWAY_SECRET: secret } });
    const { client } = await connect('/mcp', () => x);
    const tool = `${moving}__echo`;
    await waitForValue(
      async () => (await client.listTools()).tools.map((t) => t.name),
      (names) => names.includes(tool),
      { timeoutMs: 30_000, what: `${tool} on front X` },
    );
    assert.match(await echo(client, tool, 'on B'), /on B/);

    // Node B goes away: its worker dies, then its engine stops (taking its containers down).
    await b.kill();
    const lostAt = Date.now();
    await engine.stop();
    const text = await waitForValue(
      () => echo(client, tool, 'on A').catch((err: Error) => `failed: ${err.message}`),
      (t) => /on A/.test(t),
      { timeoutMs: 90_000, intervalMs: 1_000, what: `${tool} answering through front X again` },
    );
    assert.match(text, /on A/);
    console.log(`      ${tool} answered through front X again ${((Date.now() - lostAt) / 1000).toFixed(1)} s after node ${nodeB} went away`);
    assert.equal((await instance()).node, nodeA);
    const onX = ((await callApi(x, 'GET', '/api/v1/gateway')).json.instances as { server: string; remoteNode: string | null }[]).filter(
      (i) => i.server === moving,
    );
    assert.deepEqual(
      onX.map((i) => i.remoteNode),
      [nodeA],
      "front X reaches it through node A's gateway now",
    );
  });
});
