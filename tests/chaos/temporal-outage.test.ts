/**
 * Temporal stops answering (SIGSTOP of a dev server this test starts for itself;
 * npm test's shared one is never touched): the API answers 503 "Temporal
 * unreachable at …" within 5 s, mcpctl exits non-zero with that one line, /readyz
 * keeps the gateway ready and reports the control plane unreachable, the gateway
 * keeps serving, and everything catches up once Temporal answers again (SIGCONT).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import type { TemporalDevServer } from '../../src/embedded/temporal';
import { callApi, runMcpctl } from '../support/clients';
import { startMcpd, waitForValue, type McpdProcess } from '../support/stack';
import {
  applyServer,
  assertNoSecret,
  assertOneCurrentContainer,
  echoThroughGateway,
  runningAndHealthy,
  startOwnTemporal,
  stopServersAndMcpd,
  waitForInstance,
  type ChaosServer,
} from './support';

const docker = new Docker();

describe('chaos: Temporal stops answering', function () {
  this.timeout(240_000);
  let workDir: string;
  let temporal: TemporalDevServer;
  let mcpd: McpdProcess;
  let server: ChaosServer;
  let stopped = false;
  const outputs: Record<string, string> = {};

  const resume = () => {
    if (stopped) process.kill(temporal.process.pid, 'SIGCONT');
    stopped = false;
  };

  before(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-chaos-temporal-'));
    temporal = await startOwnTemporal(workDir, { dbFile: null });
    mcpd = await startMcpd({ env: { TEMPORAL_ADDRESS: temporal.address } });
    server = await applyServer(mcpd, 'temporal');
    await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 60_000);
  });

  after(async () => {
    resume();
    await stopServersAndMcpd(mcpd, [server]);
    await temporal?.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('answers 503 within 5 s, mcpctl fails with one line, the gateway keeps serving, and all catches up after SIGCONT', async () => {
    const before = await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 30_000);
    process.kill(temporal.process.pid, 'SIGSTOP');
    stopped = true;
    const expected = new RegExp(`^Temporal unreachable at ${temporal.address.replace(/\./g, '\\.')}: .+`);

    let t0 = Date.now();
    const listed = await callApi(mcpd, 'GET', '/api/v1/instances');
    const apiMs = Date.now() - t0;
    console.log(`      API answered ${listed.status} in ${apiMs} ms: ${listed.text}`);
    assert.equal(listed.status, 503, listed.text);
    assert.match(listed.json.error, expected);
    assert.ok(apiMs < 5_000, `answered within 5 s, took ${apiMs} ms`);

    const applied = await callApi(mcpd, 'POST', `/api/v1/servers/${server.name}/start`);
    assert.equal(applied.status, 503, `a write answers 503 too: ${applied.text}`);

    t0 = Date.now();
    const ctl = await runMcpctl(mcpd, ['get', 'instances'], { cwd: workDir });
    const ctlMs = Date.now() - t0;
    console.log(`      mcpctl get instances exited ${ctl.code} in ${ctlMs} ms: ${ctl.stderr.trim()}`);
    outputs['mcpctl stdout'] = ctl.stdout;
    outputs['mcpctl stderr'] = ctl.stderr;
    assert.notEqual(ctl.code, 0);
    assert.equal(ctl.stderr.trim().split('\n').length, 1, `one line on stderr: ${ctl.stderr}`);
    assert.match(ctl.stderr, /Temporal unreachable at /);
    assert.ok(ctlMs < 6_500, `mcpctl ended within ~6 s, took ${ctlMs} ms`);

    const ready = await waitForValue(
      async () => {
        const res = await fetch(`${mcpd.url}/readyz`);
        return { status: res.status, body: (await res.json()) as Record<string, string> };
      },
      (r) => r.body.controlPlane === 'unreachable',
      { timeoutMs: 5_000, what: '/readyz to report the control plane unreachable' },
    );
    assert.equal(ready.status, 200, 'the gateway still serves, so a load balancer in front of /mcp keeps it');
    assert.equal(ready.body.gateway, 'ok');
    assert.match(ready.body.controlPlaneError, expected);
    const strict = await fetch(`${mcpd.url}/readyz?controlPlane=required`);
    assert.equal(strict.status, 503, 'a load balancer in front of the API can ask for the control plane too');

    assert.equal(await echoThroughGateway(mcpd, server, 'during the outage'), 'during the outage');

    resume();
    const listedAgain = await waitForValue(
      () => callApi(mcpd, 'GET', '/api/v1/instances'),
      (r) => r.status === 200,
      { timeoutMs: 30_000, what: 'the API to answer after SIGCONT' },
    );
    outputs['API'] = listedAgain.text;
    assert.ok(
      listedAgain.json.items.some((v: { id: string }) => v.id === server.instance),
      'no instance was lost',
    );
    const after = await waitForInstance(mcpd, server, 'RUNNING and healthy after SIGCONT', runningAndHealthy, 30_000);
    assert.equal(after.containerId, before.containerId, 'the container was kept through the outage');
    await waitForValue(
      async () => (await (await fetch(`${mcpd.url}/readyz`)).json()) as Record<string, string>,
      (b) => b.controlPlane === 'ok',
      { timeoutMs: 10_000, what: '/readyz to report the control plane ok' },
    );
    const ctlAgain = await runMcpctl(mcpd, ['get', 'instances'], { cwd: workDir });
    assert.equal(ctlAgain.code, 0, ctlAgain.stderr);
    assert.match(ctlAgain.stdout, new RegExp(server.name));
    assert.equal(await echoThroughGateway(mcpd, server, 'after the outage'), 'after the outage');
    await assertOneCurrentContainer(docker, server, after);
    assertNoSecret(server, { ...outputs, 'mcpd output': mcpd.output(), 'mcpctl after': ctlAgain.stdout + ctlAgain.stderr });
  });
});
