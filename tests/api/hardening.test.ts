/**
 * Hardened containers by default, against a real mcpd process and the real engine:
 * every container mcpd starts runs with no-new-privileges and every capability dropped
 * (what the process inside sees in /proc/self/status, not only what Docker was told),
 * a spec's `security` adds capabilities back, mounts the image read-only (with a
 * writable /tmp) and picks the user; a bad `security` is a 400 naming the field and
 * stores nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import Dockerode from 'dockerode';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import { removeContainers, startMcpd, waitForValue, type McpdProcess } from '../support/stack';
import { callApi } from '../support/clients';

const docker = new Dockerode();

/** Runs a command in the container as its own user and returns stdout (stderr on failure). */
async function execIn(containerId: string, cmd: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  docker.modem.demuxStream(stream, stdout, stderr);
  await new Promise((resolve) => stream.on('end', resolve));
  const { ExitCode } = await exec.inspect();
  return { exitCode: ExitCode ?? -1, stdout: out, stderr: err };
}

/** A node script run inside the container (the gitea-like image has node and nothing else). */
const PROBE_SCRIPT = `
const fs = require('fs');
const status = fs.readFileSync('/proc/self/status', 'utf8');
const field = (name) => (new RegExp('^' + name + ':\\\\s*(\\\\S+)', 'm').exec(status) || [])[1];
const canWrite = (dir) => { try { fs.writeFileSync(dir + '/mcpd-hardening-probe', 'x'); fs.unlinkSync(dir + '/mcpd-hardening-probe'); return true; } catch { return false; } };
console.log(JSON.stringify({ capEff: field('CapEff'), capBnd: field('CapBnd'), noNewPrivs: field('NoNewPrivs'), uid: process.getuid(), gid: process.getgid(), rootWritable: canWrite('/'), tmpWritable: canWrite('/tmp') }));
`;

/** CAP_NET_BIND_SERVICE is bit 10. */
const NET_BIND_SERVICE_MASK = (1n << 10n).toString(16).padStart(16, '0');

describe('hardened containers on a real mcpd', function () {
  this.timeout(180_000);

  const suffix = randomBytes(3).toString('hex');
  const plain = `t-hard-${suffix}`;
  const locked = `t-hard-ro-${suffix}`;
  let mcpd: McpdProcess;
  const api = (method: string, path: string, body?: unknown) => callApi(mcpd, method, path, body);

  async function runHealthy(spec: Record<string, unknown>): Promise<InstanceView> {
    const applied = await api('PUT', `/api/v1/servers/${String(spec.name)}`, spec);
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await api('POST', `/api/v1/servers/${String(spec.name)}/start`)).status, 200);
    const [view] = await waitForValue(
      async () => (await api('GET', `/api/v1/instances?server=${String(spec.name)}`)).json.items as InstanceView[],
      (items) => items.length === 1 && items[0].status === 'RUNNING' && items[0].health === 'healthy',
      {
        timeoutMs: 90_000,
        what: `${String(spec.name)} RUNNING and healthy`,
        describe: (items) => JSON.stringify(items.map((v) => [v.status, v.health, v.error])),
      },
    );
    return view;
  }

  before(async () => {
    mcpd = await startMcpd();
  });

  after(async () => {
    if (mcpd) {
      for (const name of [plain, locked]) await api('DELETE', `/api/v1/servers/${name}`).catch(() => undefined);
      await mcpd.stop();
    }
    for (const name of [plain, locked]) await removeContainers({ label: `${LABELS.server}=${name}` });
  });

  const echoProbe = { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: 5, timeoutSeconds: 10 };

  it('by default: no-new-privileges, every capability dropped, the limits kept; the server runs healthy', async () => {
    const view = await runHealthy({ name: plain, image: 'mcpd/gitea-like:dev', healthCheck: echoProbe, resources: { memory: '256Mi', pids: 128 } });
    const info = await docker.getContainer(view.containerId!).inspect();
    assert.deepEqual(info.HostConfig.SecurityOpt, ['no-new-privileges:true']);
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.ok(!info.HostConfig.CapAdd?.length, `CapAdd: ${JSON.stringify(info.HostConfig.CapAdd)}`);
    assert.equal(info.HostConfig.ReadonlyRootfs, false);
    assert.equal(info.HostConfig.Memory, 256 * 1024 ** 2);
    assert.equal(info.HostConfig.PidsLimit, 128);
    assert.equal(info.Config.User, '');

    const inside = await execIn(view.containerId!, ['node', '-e', PROBE_SCRIPT]);
    assert.equal(inside.exitCode, 0, inside.stderr);
    const seen = JSON.parse(inside.stdout);
    assert.equal(seen.capEff, '0000000000000000', 'root inside holds no capability');
    assert.equal(seen.capBnd, '0000000000000000', 'and cannot regain one');
    assert.equal(seen.noNewPrivs, '1');
  });

  it('with security: the capabilities asked for, a read-only image with a writable /tmp, and the user; still healthy', async () => {
    const view = await runHealthy({
      name: locked,
      image: 'mcpd/gitea-like:dev',
      healthCheck: echoProbe,
      security: { capabilities: ['cap_net_bind_service'], readOnlyRootFilesystem: true, user: '1000:1000' },
    });
    const stored = await api('GET', `/api/v1/servers/${locked}`);
    assert.deepEqual(stored.json.spec.security, { capabilities: ['NET_BIND_SERVICE'], readOnlyRootFilesystem: true, user: '1000:1000' });
    const info = await docker.getContainer(view.containerId!).inspect();
    assert.deepEqual(info.HostConfig.SecurityOpt, ['no-new-privileges:true']);
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.deepEqual(
      info.HostConfig.CapAdd?.map((c: string) => c.replace(/^CAP_/, '')),
      ['NET_BIND_SERVICE'],
    );
    assert.equal(info.HostConfig.ReadonlyRootfs, true);
    assert.equal(info.Config.User, '1000:1000');

    const inside = await execIn(view.containerId!, ['node', '-e', PROBE_SCRIPT]);
    assert.equal(inside.exitCode, 0, inside.stderr);
    const seen = JSON.parse(inside.stdout);
    assert.equal(seen.uid, 1000);
    assert.equal(seen.gid, 1000);
    assert.equal(seen.rootWritable, false, 'the image is mounted read-only');
    assert.equal(seen.tmpWritable, true, '/tmp is a writable tmpfs');
    assert.equal(seen.capBnd, NET_BIND_SERVICE_MASK, 'NET_BIND_SERVICE is the only capability left');
    assert.equal(seen.noNewPrivs, '1');
  });

  it('a bad security block is a 400 naming the field, and stores nothing', async () => {
    const name = `t-hard-bad-${suffix}`;
    const cases: [unknown, RegExp][] = [
      [{ capabilities: ['ALL'] }, /security\.capabilities\.0: ALL is not allowed/],
      [{ capabilities: ['NET_BIND'] }, /security\.capabilities\.0: is not a Linux capability/],
      [{ user: 'root; rm -rf /' }, /security\.user: must be a user name or uid/],
      [{ readOnlyRootFilesystem: 'yes' }, /security\.readOnlyRootFilesystem/],
      [{ privileged: true }, /security\.privileged: unknown field "privileged"/],
    ];
    for (const [security, message] of cases) {
      const res = await api('PUT', `/api/v1/servers/${name}`, { name, image: 'mcpd/gitea-like:dev', security });
      assert.equal(res.status, 400, res.text);
      assert.match(res.json.error, message);
    }
    assert.equal((await api('GET', `/api/v1/servers/${name}`)).status, 404);
  });
});
