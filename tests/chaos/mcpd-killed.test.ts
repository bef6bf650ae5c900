/**
 * kill -9 of the mcpd process, then mcpd started again on the same data dir, port and
 * node name (what `npm start`'s supervisor does after a crash; tests/embedded/supervisor.test.ts
 * covers the supervisor itself):
 * - mid-start, while instances are being started: every instance ends RUNNING and healthy
 *   with exactly one container (the activity the kill interrupted is retried and finds its
 *   own container, or replaces it; nothing is left behind);
 * - mid-call, while a client's tools/call is in flight through the gateway: that call ends
 *   in an error at once (not a hang), the instance keeps its container, and a fresh call
 *   through the gateway succeeds once mcpd is back.
 * Neither leaves a secret value in mcpd's output, the API or the events.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { LABELS } from '../../src/contracts/labels';
import { callApi, runMcpctl } from '../support/clients';
import { startMcpd, waitFor, type McpdProcess } from '../support/stack';
import {
  applyServer,
  assertNoSecret,
  assertOneCurrentContainer,
  echoThroughGateway,
  instanceView,
  runningAndHealthy,
  startServer,
  stopServersAndMcpd,
  waitForInstance,
  type ChaosServer,
} from './support';

const docker = new Docker();

describe('chaos: mcpd is killed (kill -9) and started again', function () {
  this.timeout(240_000);
  let mcpd: McpdProcess;
  let workDir: string;
  const servers: ChaosServer[] = [];

  before(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-chaos-killed-'));
    mcpd = await startMcpd();
  });

  after(async () => {
    await stopServersAndMcpd(mcpd, servers, docker);
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  /** Every instance RUNNING and healthy with one container, answering echo; no secret anywhere. */
  async function assertAllRecovered(mine: ChaosServer[], outputs: Record<string, string>): Promise<void> {
    const listed = await callApi(mcpd, 'GET', '/api/v1/instances');
    assert.equal(listed.status, 200, listed.text);
    for (const server of mine) {
      assert.ok(
        listed.json.items.some((v: { id: string }) => v.id === server.instance),
        `no instance was lost: ${server.instance}`,
      );
      const view = await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 5_000);
      await assertOneCurrentContainer(docker, server, view);
      assert.equal(await echoThroughGateway(mcpd, server, `after the crash ${server.name}`), `after the crash ${server.name}`);
      outputs[`events of ${server.instance}`] = JSON.stringify((await instanceView(mcpd, server)).events);
    }
    const ctl = await runMcpctl(mcpd, ['get', 'instances'], { cwd: workDir });
    assert.equal(ctl.code, 0, ctl.stderr);
    for (const server of mine) assert.match(ctl.stdout, new RegExp(server.name));
    for (const server of mine) {
      assertNoSecret(server, { ...outputs, 'mcpd output': mcpd.output(), API: listed.text, mcpctl: ctl.stdout + ctl.stderr });
    }
  }

  it('mid-start: every instance ends RUNNING and healthy with exactly one container', async () => {
    const mine = await Promise.all(['start-a', 'start-b', 'start-c'].map((prefix) => applyServer(mcpd, prefix, undefined, {}, { start: false })));
    servers.push(...mine);
    const names = new Set(mine.map((s) => s.name));
    const ours = async () =>
      (await docker.listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`] } })).filter((c) => names.has(c.Labels[LABELS.server]));

    await Promise.all(mine.map((server) => startServer(mcpd, server)));
    // The moment the first container exists its start activity is in flight; the others are further behind.
    const atKill = await waitFor(
      async () => {
        const found = await ours();
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 20, what: 'the first container of the servers being started' },
    );
    const crashed = mcpd;
    await crashed.kill();
    const seenAtKill = atKill.map((c) => `${c.Labels[LABELS.server]} ${c.Id.slice(0, 12)} ${c.State}`);
    console.log(`      killed mcpd with ${atKill.length} of ${mine.length} containers made: ${seenAtKill.join(', ')}`);
    assert.ok(
      atKill.length < mine.length || atKill.some((c) => c.State !== 'running'),
      `the kill came mid-start (some instance had no running container yet): ${seenAtKill.join(', ')}`,
    );

    const t0 = Date.now();
    mcpd = await crashed.restart();
    console.log(`      the new mcpd answered /readyz ${((Date.now() - t0) / 1000).toFixed(1)} s after it was started`);
    for (const server of mine) await waitForInstance(mcpd, server, 'RUNNING and healthy after the crash', runningAndHealthy, 60_000);
    console.log(`      all ${mine.length} instances RUNNING and healthy ${((Date.now() - t0) / 1000).toFixed(1)} s after mcpd was started again`);

    await assertAllRecovered(mine, { 'mcpd output before the crash': crashed.output() });
  });

  it('mid-call: the call in flight fails at once, the instance keeps its container, and fresh calls succeed', async () => {
    const server = await applyServer(mcpd, 'call');
    servers.push(server);
    const before = await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 60_000);

    const client = new Client({ name: 'chaos-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}/mcp/servers/${server.name}`), {
        requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } },
      }),
    );
    // The SDK client reports a response stream that breaks mid-call only through onerror and leaves the
    // call pending until its own timeout (modelcontextprotocol/typescript-sdk#2739); a client that wants
    // the error at once closes the session on it, which rejects what is in flight with ConnectionClosed.
    let disconnect: Error | undefined;
    client.onerror = (err) => {
      if (!/SSE stream disconnected/.test(err.message)) return;
      disconnect ??= err;
      void client.close();
    };
    try {
      let inFlight!: () => void;
      const upstreamWorking = new Promise<void>((resolve) => (inFlight = resolve));
      // A 30 s call with a 60 s client timeout: an error before either means the kill ended it.
      const call = client.callTool({ name: 'sleep', arguments: { ms: 30_000 } }, undefined, { timeout: 60_000, onprogress: () => inFlight() }).then(
        (result) => ({ ok: true as const, result, at: Date.now() }),
        (err: unknown) => ({ ok: false as const, err, at: Date.now() }),
      );
      await Promise.race([
        upstreamWorking,
        call.then((r) => {
          throw new Error(`the call ended before the kill: ${JSON.stringify(r)}`);
        }),
      ]);

      const crashed = mcpd;
      const killedAt = Date.now();
      await crashed.kill();
      const ended = await call;
      const ms = ended.at - killedAt;
      console.log(`      the call in flight ended ${ms} ms after the kill: ${ended.ok ? 'ok?!' : (ended.err as Error).message} (${disconnect?.message})`);
      assert.ok(!ended.ok, `the call in flight ends in an error, got ${JSON.stringify(ended.ok && ended.result)}`);
      assert.ok(disconnect, 'the client saw its response stream break');
      assert.ok(
        ended.err instanceof McpError && ended.err.code === (ErrorCode.ConnectionClosed as number),
        `a closed connection, not a timeout: ${String(ended.err)}`,
      );
      assert.ok(ms < 5_000, `the call in flight ends within 5 s of the kill, took ${ms} ms`);

      const t0 = Date.now();
      mcpd = await crashed.restart();
      const readySeconds = (Date.now() - t0) / 1000;
      console.log(`      the new mcpd answered /readyz ${readySeconds.toFixed(1)} s after it was started`);
      // Readiness waits for the re-attach, whose status queries must not wait out the dead worker's sticky queue (~10 s more).
      assert.ok(readySeconds < 10, `the new mcpd serves within 10 s of its start, took ${readySeconds.toFixed(1)} s`);
      const after = await waitForInstance(mcpd, server, 'RUNNING and healthy after the crash', runningAndHealthy, 60_000);
      console.log(`      RUNNING and healthy ${((Date.now() - t0) / 1000).toFixed(1)} s after mcpd was started again`);
      assert.equal(after.containerId, before.containerId, "the instance kept its container: the crash was mcpd's, not the server's");
      assert.equal(after.attemptCount, before.attemptCount, 'the crash cost the instance no attempt');

      await assertAllRecovered([server], { 'mcpd output before the crash': crashed.output() });
    } finally {
      await client.close().catch(() => undefined);
    }
  });
});
