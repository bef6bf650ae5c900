/**
 * The Docker engine restarts. The test never touches the machine's shared dockerd:
 * it starts a second engine of its own (own data root, exec root, pidfile and socket,
 * no bridge, no iptables), loads the test image into it, points its own mcpd at it and
 * restarts that engine. The instance the restart took down must not wait out its
 * backoff (30 s): it is retried at once, says the engine restarted, and is RUNNING and
 * healthy within 15 s of the engine answering again.
 */
import assert from 'node:assert/strict';
import { DockerEngine } from '../../src/cluster/dockerEngine';
import { LABELS } from '../../src/contracts/labels';
import { callApi, runMcpctl } from '../support/clients';
import { startMcpd, type McpdProcess } from '../support/stack';
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
import { engineDocker } from '../support/engineDocker';
import { startSecondHost, type SecondHost } from '../support/secondHost';

describe('chaos: the Docker engine restarts', function () {
  this.timeout(300_000);
  let engine: DockerEngine;
  let mcpd: McpdProcess;
  let server: ChaosServer;
  let host: SecondHost | undefined;

  before(async () => {
    host = await startSecondHost('chaos-engine', ['mcpd/gitea-like:dev']);
    engine = host.engine;
    mcpd = await startMcpd({ env: { MCPD_DOCKER_SOCKET: engine.socket } });
    // The default schedule (30 s fast delay): an engine restart must not wait for it.
    server = await applyServer(mcpd, 'engine');
    await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 60_000);
  });

  after(async () => {
    await stopServersAndMcpd(mcpd, [server], engine ? engineDocker(engine) : undefined);
    await host?.remove();
  });

  it('retries the instances the restart took down at once, and they are healthy within 15 s of the engine answering', async () => {
    const before = await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 30_000);
    await engine.stop();
    const back = await engine.start();
    const after = await waitForInstance(
      mcpd,
      server,
      'RUNNING and healthy in a new container',
      (v) => runningAndHealthy(v) && v.containerId !== before.containerId,
      30_000,
    );
    const seconds = (Date.now() - back) / 1000;
    console.log(`      RUNNING and healthy ${seconds.toFixed(1)} s after the engine answered again`);
    assert.ok(seconds <= 15, `healthy within 15 s of the engine answering, took ${seconds.toFixed(1)} s`);
    const recent = after.events.slice(-12);
    assert.ok(
      recent.some((e) => /the Docker engine restarted/.test(e.message)),
      `the events say the engine restarted: ${JSON.stringify(recent)}`,
    );

    await assertOneCurrentContainer(engineDocker(engine), server, after);
    assert.equal(await echoThroughGateway(mcpd, server, 'after the engine restart'), 'after the engine restart');
    const listed = await callApi(mcpd, 'GET', '/api/v1/instances');
    assert.ok(
      listed.json.items.some((v: { id: string }) => v.id === server.instance),
      'no instance was lost',
    );
    const ctl = await runMcpctl(mcpd, ['get', 'instances'], { cwd: engine.dir });
    assert.equal(ctl.code, 0, ctl.stderr);
    assertNoSecret(server, { 'mcpd output': mcpd.output(), API: listed.text, mcpctl: ctl.stdout + ctl.stderr });
    assert.ok((await engineDocker(engine).listContainers({ all: true, filters: { label: [`${LABELS.instance}=${server.instance}`] } })).length === 1);
  });
});
