/**
 * OpenBao stops answering (SIGSTOP) and is sealed (`bao operator seal`). The test starts
 * an OpenBao of its own (a real persistent one, so it can be sealed and unsealed with its
 * key) and an mcpd pointed at it; npm test's shared OpenBao is never touched. An instance
 * that needs its secret to start goes to ERROR with an event naming the cause and no
 * secret value; the replica already running keeps serving through the gateway; once
 * OpenBao answers again (SIGCONT, unseal) the instance recovers to RUNNING and healthy.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { startPersistentOpenBao, unsealKeyFile, type OpenBaoServer } from '../../src/embedded/openbao';
import { isPortOpen } from '../../src/embedded/process';
import type { InstanceView } from '../../src/contracts/instance';
import { callApi } from '../support/clients';
import { freePort, startMcpd, testEnv, waitFor, type McpdProcess } from '../support/stack';
import {
  applyServer,
  assertNoSecret,
  assertOneCurrentContainer,
  echoThroughGateway,
  instanceView,
  replica,
  runningAndHealthy,
  stopServersAndMcpd,
  waitForInstance,
  type ChaosServer,
} from './support';

const docker = new Docker();

/** A free port whose neighbour (OpenBao's cluster port) is free too. */
async function freePortPair(): Promise<number> {
  return waitFor(
    async () => {
      const port = await freePort();
      return port < 65_535 && !(await isPortOpen('127.0.0.1', port + 1)) ? port : false;
    },
    { timeoutMs: 5_000, intervalMs: 10, what: 'two free neighbouring ports' },
  );
}

/** `bao <args>` against the test's own OpenBao; resolves with its exit code and output. */
function bao(baoBin: string, server: OpenBaoServer, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(baoBin, args, {
      env: { ...process.env, BAO_ADDR: server.address, BAO_TOKEN: server.token, VAULT_ADDR: '', VAULT_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

async function sealStatus(server: OpenBaoServer): Promise<{ sealed: boolean; active: boolean }> {
  const seal = (await (await fetch(`${server.address}/v1/sys/seal-status`, { signal: AbortSignal.timeout(2_000) })).json()) as { sealed: boolean };
  const health = await fetch(`${server.address}/v1/sys/health`, { signal: AbortSignal.timeout(2_000) });
  await health.arrayBuffer();
  return { sealed: seal.sealed, active: health.status === 200 };
}

describe('chaos: OpenBao stalls and is sealed', function () {
  this.timeout(240_000);
  const env = testEnv();
  let workDir: string;
  let openBao: OpenBaoServer;
  let mcpd: McpdProcess;
  let server: ChaosServer;
  let stalled = false;
  const outputs: Record<string, string> = {};

  const resume = () => {
    if (stalled) process.kill(openBao.process.pid, 'SIGCONT');
    stalled = false;
  };
  const errorNaming = (pattern: RegExp) => (v: InstanceView) => v.status === 'ERROR' && pattern.test(v.error ?? '');

  before(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-chaos-bao-'));
    openBao = await startPersistentOpenBao({
      baoBin: env.baoCli,
      port: await freePortPair(),
      dir: path.join(workDir, 'openbao'),
      logFile: path.join(workDir, 'openbao.log'),
    });
    mcpd = await startMcpd({ env: { BAO_ADDR: openBao.address, BAO_TOKEN: openBao.token } });
    // A short fast delay: the backoff keeps trying while OpenBao is out, and the test need not wait 30 s for it.
    server = await applyServer(mcpd, 'bao', { fastDelaySeconds: 2, fastAttempts: 5, slowDelaySeconds: 300, stableSeconds: 60 });
    await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 60_000);
  });

  after(async () => {
    resume();
    await stopServersAndMcpd(mcpd, [server]);
    await openBao?.stop();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('stalled: a new replica goes to ERROR naming OpenBao unreachable, the running one keeps serving, and after SIGCONT it runs', async () => {
    const first = await waitForInstance(mcpd, server, 'replica 0 RUNNING and healthy', runningAndHealthy, 30_000);
    process.kill(openBao.process.pid, 'SIGSTOP');
    stalled = true;

    const scaled = await callApi(mcpd, 'POST', `/api/v1/servers/${server.name}/scale`, { replicas: 2 });
    assert.equal(scaled.status, 200, scaled.text);
    const second = replica(server, 1);
    const t0 = Date.now();
    const failed = await waitForInstance(mcpd, second, 'replica 1 in ERROR naming OpenBao unreachable', errorNaming(/OpenBao unreachable at /), 45_000);
    console.log(`      replica 1 in ERROR ${((Date.now() - t0) / 1000).toFixed(1)} s after the scale: ${failed.error}`);
    assert.ok(failed.error!.includes(openBao.address), `the error names the address: ${failed.error}`);
    const event = failed.events.find((e) => e.type === 'AttemptFailed' && e.message.includes('OpenBao unreachable at '));
    assert.ok(event, `an AttemptFailed event names the cause: ${JSON.stringify(failed.events.slice(-6))}`);
    assert.equal(failed.containerId, null, 'no container was started without its secret');

    assert.equal(await echoThroughGateway(mcpd, server, 'while OpenBao is stalled'), 'while OpenBao is stalled');
    const kept = await instanceView(mcpd, server);
    assert.ok(runningAndHealthy(kept), `replica 0 still RUNNING and healthy: ${kept.status} ${kept.health}`);
    assert.equal(kept.containerId, first.containerId);

    resume();
    const t1 = Date.now();
    // The backoff (2 s) retries on its own.
    const back = await waitForInstance(mcpd, second, 'replica 1 RUNNING and healthy after SIGCONT', runningAndHealthy, 30_000);
    console.log(`      replica 1 RUNNING and healthy ${((Date.now() - t1) / 1000).toFixed(1)} s after SIGCONT`);
    await assertOneCurrentContainer(docker, second, back);
    await assertOneCurrentContainer(docker, server, await instanceView(mcpd, server));
    outputs['API (stalled)'] = JSON.stringify([failed, back]);
  });

  it('sealed: a restarted replica goes to ERROR naming OpenBao sealed, the other keeps serving, and after unseal and forceRetry it runs', async () => {
    const second = replica(server, 1);
    const first = await waitForInstance(mcpd, server, 'replica 0 RUNNING and healthy', runningAndHealthy, 30_000);
    const before = await waitForInstance(mcpd, second, 'replica 1 RUNNING and healthy', runningAndHealthy, 30_000);

    const sealed = await bao(env.baoCli, openBao, ['operator', 'seal']);
    assert.equal(sealed.code, 0, sealed.output);
    assert.equal((await sealStatus(openBao)).sealed, true);

    const restarted = await callApi(mcpd, 'POST', `/api/v1/instances/${encodeURIComponent(second.instance)}/restart`);
    assert.equal(restarted.status, 202, restarted.text);
    const t0 = Date.now();
    const failed = await waitForInstance(mcpd, second, 'replica 1 in ERROR naming OpenBao sealed', errorNaming(/OpenBao at \S+ is sealed/), 45_000);
    console.log(`      replica 1 in ERROR ${((Date.now() - t0) / 1000).toFixed(1)} s after the restart: ${failed.error}`);
    assert.ok(
      failed.events.some((e) => e.type === 'AttemptFailed' && /is sealed/.test(e.message)),
      `an AttemptFailed event says sealed: ${JSON.stringify(failed.events.slice(-6))}`,
    );
    assert.equal(failed.containerId, null);

    assert.equal(await echoThroughGateway(mcpd, server, 'while OpenBao is sealed'), 'while OpenBao is sealed');
    const kept = await instanceView(mcpd, server);
    assert.ok(runningAndHealthy(kept), `replica 0 still RUNNING and healthy: ${kept.status} ${kept.health}`);
    assert.equal(kept.containerId, first.containerId);

    const unsealed = await bao(env.baoCli, openBao, ['operator', 'unseal', fs.readFileSync(unsealKeyFile(path.join(workDir, 'openbao')), 'utf8').trim()]);
    assert.equal(unsealed.code, 0, 'bao operator unseal succeeded');
    // Raft elects itself again before OpenBao serves reads.
    await waitFor(async () => (await sealStatus(openBao)).active, { timeoutMs: 30_000, what: 'OpenBao active after unseal' });
    const retried = await callApi(mcpd, 'POST', `/api/v1/instances/${encodeURIComponent(second.instance)}/retry`);
    assert.equal(retried.status, 202, retried.text);
    const back = await waitForInstance(
      mcpd,
      second,
      'replica 1 RUNNING and healthy after unseal',
      (v) => runningAndHealthy(v) && v.containerId !== before.containerId,
      30_000,
    );
    await assertOneCurrentContainer(docker, second, back);
    assert.equal(await echoThroughGateway(mcpd, server, 'after the unseal'), 'after the unseal');

    const listed = await callApi(mcpd, 'GET', `/api/v1/instances?server=${server.name}`);
    assert.deepEqual(listed.json.items.map((v: InstanceView) => v.id).sort(), [server.instance, second.instance], 'no instance was lost');
    assertNoSecret(server, { ...outputs, 'API (sealed)': JSON.stringify([failed, back]), API: listed.text, 'mcpd output': mcpd.output() });
  });
});
