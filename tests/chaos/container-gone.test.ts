/**
 * A container removed while mcpd is down: on its next start mcpd reconciles what
 * Temporal records (the instance RUNNING with that container) with what Docker has
 * (nothing), so the instance goes through the attempt path at once with a fresh
 * container and says why, instead of staying RUNNING with a container that does not
 * exist while its probes blame the server.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { callApi, runMcpctl } from '../support/clients';
import { startMcpd, waitFor, type McpdProcess } from '../support/stack';
import {
  applyServer,
  assertNoSecret,
  assertOneCurrentContainer,
  echoThroughGateway,
  runningAndHealthy,
  stopServersAndMcpd,
  waitForInstance,
  type ChaosServer,
} from './support';

const docker = new Docker();

describe('chaos: a container removed while mcpd is down', function () {
  this.timeout(240_000);
  let mcpd: McpdProcess;
  let server: ChaosServer;
  let workDir: string;

  before(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-chaos-gone-'));
    mcpd = await startMcpd();
    // The default schedule (30 s fast delay): the replacement must not wait for it.
    server = await applyServer(mcpd, 'gone');
    await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 60_000);
  });

  after(async () => {
    await stopServersAndMcpd(mcpd, [server]);
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('gets a fresh container within 30 s of the start, says why, and serves calls again', async () => {
    const before = await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 30_000);
    const firstOutput = mcpd.output();
    // Ctrl-C: a clean stop; the container keeps running, as its workflow owns it.
    process.kill(mcpd.pid, 'SIGTERM');
    await waitFor(() => !isAlive(mcpd.pid), { timeoutMs: 20_000, what: 'mcpd to exit after SIGTERM' });
    await docker.getContainer(before.containerId!).remove({ force: true });

    const t0 = Date.now();
    mcpd = await mcpd.restart();
    const after = await waitForInstance(
      mcpd,
      server,
      'RUNNING and healthy in a new container',
      (v) => runningAndHealthy(v) && v.containerId !== before.containerId,
      30_000,
    );
    const seconds = (Date.now() - t0) / 1000;
    console.log(`      healthy in a new container ${seconds.toFixed(1)} s after mcpd was started again`);

    const why = after.events.find((e) => e.type === 'AttemptFailed' && e.message.includes(before.containerId!.slice(0, 12)));
    assert.ok(why, `an event names the gone container: ${JSON.stringify(after.events.slice(-8))}`);
    assert.match(why.message, /is gone \(removed while mcpd was down\)/);
    assert.ok(
      !after.events.some((e) => e.type === 'HealthChanged' && /unknown instance/.test(e.message)),
      'no probe blamed the server for the gateway not knowing it',
    );

    await assertOneCurrentContainer(docker, server, after);
    assert.equal(await echoThroughGateway(mcpd, server, 'after the reconcile'), 'after the reconcile');
    const listed = await callApi(mcpd, 'GET', '/api/v1/instances');
    assert.ok(
      listed.json.items.some((v: { id: string }) => v.id === server.instance),
      'no instance was lost',
    );
    const ctl = await runMcpctl(mcpd, ['get', 'instances'], { cwd: workDir });
    assert.equal(ctl.code, 0, ctl.stderr);
    assertNoSecret(server, { 'mcpd output before': firstOutput, 'mcpd output': mcpd.output(), API: listed.text, mcpctl: ctl.stdout + ctl.stderr });
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
