/**
 * A container killed by its memory limit: a server with `resources.memory: 64Mi` is asked
 * (through the gateway) to allocate far past it. The kernel's OOM killer ends it; the
 * client's call in flight gets an error at once instead of hanging, the instance's event
 * says it was OOM-killed, the backoff starts a fresh container that comes back healthy,
 * there is no duplicate container, and later calls succeed.
 */
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { callApi } from '../support/clients';
import { startMcpd, type McpdProcess } from '../support/stack';
import {
  applyServer,
  assertNoSecret,
  assertOneCurrentContainer,
  callThroughGateway,
  CHAOS_TOOLS_ENV,
  echoThroughGateway,
  runningAndHealthy,
  settle,
  stopServersAndMcpd,
  waitForInstance,
  type ChaosServer,
} from './support';

const docker = new Docker();
const LIMIT_BYTES = 64 * 1024 * 1024;

describe('chaos: a container killed by its memory limit', function () {
  this.timeout(180_000);
  let mcpd: McpdProcess;
  let server: ChaosServer;

  before(async () => {
    mcpd = await startMcpd();
    server = await applyServer(
      mcpd,
      'oom',
      { fastDelaySeconds: 2, fastAttempts: 5, slowDelaySeconds: 300, stableSeconds: 60 },
      { resources: { memory: '64Mi' }, env: [CHAOS_TOOLS_ENV] },
    );
    await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 60_000);
  });

  after(async () => {
    await stopServersAndMcpd(mcpd, [server]);
  });

  it('fails the call in flight, says OOM-killed, restarts through the backoff and serves again', async () => {
    const before = await waitForInstance(mcpd, server, 'RUNNING and healthy', runningAndHealthy, 30_000);
    const inspected = await docker.getContainer(before.containerId!).inspect();
    assert.equal(inspected.HostConfig.Memory, LIMIT_BYTES, 'resources.memory reached Docker as HostConfig.Memory');
    assert.equal(inspected.HostConfig.MemorySwap, LIMIT_BYTES, 'and no swap on top of it');

    // Far past the limit: 512 MiB in a 64 MiB container.
    const call = await settle(callThroughGateway(mcpd, server, 'allocate', { megabytes: 512 }, 60_000));
    console.log(`      the call in flight ended after ${call.ms} ms: ${call.ok ? JSON.stringify(call.value) : call.error.message}`);
    assert.ok(call.ms < 15_000, `the call ended within 15 s (not a hang), took ${call.ms} ms`);
    assert.ok(!call.ok || call.value.isError, 'the call in flight failed');
    if (!call.ok) assert.match(call.error.message, /exited with code 137|stopped|closed/, 'the error says the server went away');

    const killed = await docker.getContainer(before.containerId!).inspect();
    assert.equal(killed.State.OOMKilled, true, 'Docker says the OOM killer ended it');

    const after = await waitForInstance(
      mcpd,
      server,
      'RUNNING and healthy in a new container',
      (v) => runningAndHealthy(v) && v.containerId !== before.containerId,
      30_000,
    );
    const failure = after.events.find((e) => e.type === 'AttemptFailed' && e.message.includes('code 137'));
    assert.ok(failure, `an AttemptFailed event for the exit: ${JSON.stringify(after.events.slice(-8))}`);
    assert.match(failure.message, /out of memory: OOM-killed, see resources\.memory/);
    assert.match(failure.message, /next attempt in 2s/, 'the restart went through the backoff');
    assert.equal(after.attemptCount, before.attemptCount + 1);

    await assertOneCurrentContainer(docker, server, after);
    assert.equal(await echoThroughGateway(mcpd, server, 'after the OOM kill'), 'after the OOM kill');
    // Within the limit the same tool works: the limit is what killed it, not the tool.
    const small = await callThroughGateway(mcpd, server, 'allocate', { megabytes: 4 });
    assert.ok(!small.isError, JSON.stringify(small.content));
    const listed = await callApi(mcpd, 'GET', '/api/v1/instances');
    assert.ok(
      listed.json.items.some((v: { id: string }) => v.id === server.instance),
      'no instance was lost',
    );
    assertNoSecret(server, { 'mcpd output': mcpd.output(), API: listed.text, events: JSON.stringify(after.events) });
  });
});
