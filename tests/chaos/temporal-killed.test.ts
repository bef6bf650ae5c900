/**
 * The Temporal dev server is killed (SIGKILL: a crash, not the pause of
 * temporal-outage.test.ts) and started again on the same port and SQLite file. The
 * test runs a dev server of its own for this; npm test's shared one is never touched.
 * While it is down the API answers 503 "Temporal unreachable at …" and the gateway
 * keeps serving; once it is back the workflows carry on where they were (same
 * workflow runs, the instance keeps its container, no duplicate), and mcpctl works,
 * down to a restart of the instance that the workflow carries out.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Client, Connection } from '@temporalio/client';
import { serverWorkflowId } from '../../src/contracts/instance';
import type { TemporalDevServer } from '../../src/embedded/temporal';
import { callApi, runMcpctl } from '../support/clients';
import { startMcpd, waitForValue, type McpdProcess } from '../support/stack';
import {
  applyServer,
  assertNoSecret,
  assertOneCurrentContainer,
  echoThroughGateway,
  instanceView,
  runningAndHealthy,
  startOwnTemporal,
  stopServersAndMcpd,
  waitForInstance,
  type ChaosServer,
} from './support';

const docker = new Docker();

/** The run id and start time of a workflow: the same after the restart means it carried on, not started over. */
async function describeRun(address: string, workflowId: string): Promise<{ runId: string; startTime: string; status: string }> {
  const connection = await Connection.connect({ address });
  try {
    const description = await new Client({ connection }).workflow.getHandle(workflowId).describe();
    return { runId: description.runId, startTime: description.startTime.toISOString(), status: description.status.name };
  } finally {
    await connection.close();
  }
}

describe('chaos: the Temporal dev server is killed and started again on the same SQLite file', function () {
  this.timeout(240_000);
  let workDir: string;
  let dbFile: string;
  let temporal: TemporalDevServer;
  let mcpd: McpdProcess;
  let server: ChaosServer;

  before(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-chaos-temporal-kill-'));
    dbFile = path.join(workDir, 'temporal.db');
    temporal = await startOwnTemporal(workDir, { dbFile });
    mcpd = await startMcpd({ env: { TEMPORAL_ADDRESS: temporal.address } });
    server = await applyServer(mcpd, 'tkill');
    await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 60_000);
  });

  after(async () => {
    await stopServersAndMcpd(mcpd, [server], docker);
    await temporal?.stop();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('answers 503 while it is down, keeps the gateway serving, and carries on with the same workflows and container after', async () => {
    const before = await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 30_000);
    const instanceRun = await describeRun(temporal.address, server.instance);
    const serverRun = await describeRun(temporal.address, serverWorkflowId(server.name));
    const port = Number(temporal.address.split(':').pop());

    // The whole process group, as a crash or the OOM killer would end it.
    process.kill(-temporal.process.pid, 'SIGKILL');
    await temporal.process.exited;

    const t0 = Date.now();
    const listed = await callApi(mcpd, 'GET', '/api/v1/instances');
    const apiMs = Date.now() - t0;
    console.log(`      API answered ${listed.status} in ${apiMs} ms: ${listed.text}`);
    assert.equal(listed.status, 503, listed.text);
    assert.match(listed.json.error, new RegExp(`^Temporal unreachable at ${temporal.address.replace(/\./g, '\\.')}: .+`));
    assert.ok(apiMs < 5_000, `answered within 5 s, took ${apiMs} ms`);
    const ctlDown = await runMcpctl(mcpd, ['get', 'instances'], { cwd: workDir });
    assert.notEqual(ctlDown.code, 0, 'mcpctl fails while Temporal is down');
    assert.match(ctlDown.stderr, /Temporal unreachable at /);
    assert.equal(await echoThroughGateway(mcpd, server, 'while Temporal is down'), 'while Temporal is down');

    const restartedAt = Date.now();
    temporal = await startOwnTemporal(workDir, { dbFile, port });
    const listedAgain = await waitForValue(
      () => callApi(mcpd, 'GET', '/api/v1/instances'),
      (r) => r.status === 200,
      { timeoutMs: 30_000, what: 'the API to answer after Temporal is back', describe: (r) => `${r.status} ${r.text}` },
    );
    assert.ok(
      listedAgain.json.items.some((v: { id: string }) => v.id === server.instance),
      'no instance was lost',
    );
    const after = await waitForInstance(mcpd, server, 'RUNNING and healthy after Temporal is back', runningAndHealthy, 30_000);
    console.log(
      `      API answering and the instance RUNNING and healthy ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after Temporal was started again`,
    );
    assert.equal(after.containerId, before.containerId, 'the instance kept its container');
    assert.equal(after.attemptCount, before.attemptCount, 'the outage cost the instance no attempt');
    assert.ok(
      before.events.every((e) => after.events.some((a) => a.at === e.at && a.type === e.type)) || after.events.length === 50,
      'the events recorded before the crash are still there',
    );
    assert.deepEqual(await describeRun(temporal.address, server.instance), instanceRun, 'the instance workflow carried on in the same run');
    assert.deepEqual(await describeRun(temporal.address, serverWorkflowId(server.name)), serverRun, 'the server workflow carried on in the same run');

    await assertOneCurrentContainer(docker, server, after);
    assert.equal(await echoThroughGateway(mcpd, server, 'after Temporal is back'), 'after Temporal is back');

    // The workflows are live, not only recorded: mcpctl asks for a fresh container and the instance workflow makes it.
    const ctl = await runMcpctl(mcpd, ['get', 'instances'], { cwd: workDir });
    assert.equal(ctl.code, 0, ctl.stderr);
    assert.match(ctl.stdout, new RegExp(server.name));
    const restart = await runMcpctl(mcpd, ['restart', 'instance', server.instance], { cwd: workDir });
    assert.equal(restart.code, 0, restart.stderr);
    const replaced = await waitForInstance(
      mcpd,
      server,
      'RUNNING and healthy in a fresh container',
      (v) => runningAndHealthy(v) && v.containerId !== after.containerId,
      30_000,
    );
    await assertOneCurrentContainer(docker, server, replaced);
    assert.equal(await echoThroughGateway(mcpd, server, 'in the fresh container'), 'in the fresh container');
    assertNoSecret(server, {
      'mcpd output': mcpd.output(),
      API: listedAgain.text,
      events: JSON.stringify((await instanceView(mcpd, server)).events),
      'mcpctl while down': ctlDown.stdout + ctlDown.stderr,
      mcpctl: ctl.stdout + ctl.stderr + restart.stdout + restart.stderr,
    });
  });
});
