/**
 * The embedded OpenBao keeps secrets across restarts: it is initialised once, its
 * unseal key and root token are kept in 0600 files, and every start unseals it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rootTokenFile, startDevOpenBao, startPersistentOpenBao, unsealKeyFile, type OpenBaoServer } from '../../src/embedded/openbao';
import { isPortOpen } from '../../src/embedded/process';
import { freePort, testEnv } from '../support/stack';

async function kv(server: OpenBaoServer, method: 'GET' | 'POST', secretPath: string, body?: unknown) {
  const res = await fetch(`${server.address}/v1/secret/data/${secretPath}`, {
    method,
    headers: { 'X-Vault-Token': server.token, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as any };
}

describe('embedded OpenBao', function () {
  this.timeout(120_000);
  const env = testEnv();
  let dir: string;
  let server: OpenBaoServer | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-t-bao-'));
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function startPersistent(port: number): Promise<OpenBaoServer> {
    return startPersistentOpenBao({ baoBin: env.baoCli, port, dir: path.join(dir, 'openbao'), logFile: path.join(dir, 'openbao.log') });
  }

  it('keeps a KV v2 secret across a restart, with the unseal key and root token in 0600 files', async () => {
    // The persistent server also listens on port+1 for cluster traffic.
    let port = await freePort();
    while (await isPortOpen('127.0.0.1', port + 1)) port = await freePort();

    server = await startPersistent(port);
    const written = await kv(server, 'POST', 't-survives', { data: { token: 'not-a-real-token' } });
    assert.equal(written.status, 200, JSON.stringify(written.json));
    const firstToken = server.token;
    await server.stop();
    assert.equal(await isPortOpen('127.0.0.1', port), false, 'stop() ended the server');

    server = await startPersistent(port);
    assert.equal(server.token, firstToken, 'the same root token after a restart');
    const read = await kv(server, 'GET', 't-survives');
    assert.equal(read.status, 200, JSON.stringify(read.json));
    assert.equal(read.json.data.data.token, 'not-a-real-token');

    for (const file of [unsealKeyFile(path.join(dir, 'openbao')), rootTokenFile(path.join(dir, 'openbao'))]) {
      assert.equal(fs.statSync(file).mode & 0o777, 0o600, `${file} is private`);
    }
  });

  it('dev mode serves KV v2 at secret/ with the given root token, and forgets on stop', async () => {
    const port = await freePort();
    server = await startDevOpenBao({ baoBin: env.baoCli, port, rootToken: 't-dev-root', logFile: path.join(dir, 'dev.log') });
    assert.equal(server.token, 't-dev-root');
    assert.equal((await kv(server, 'POST', 't-dev', { data: { a: 'b' } })).status, 200);
    await server.stop();
    server = await startDevOpenBao({ baoBin: env.baoCli, port, rootToken: 't-dev-root', logFile: path.join(dir, 'dev.log') });
    assert.equal((await kv(server, 'GET', 't-dev')).status, 404);
  });

  it('refuses a port that is already taken, naming it and how to use what listens there', async () => {
    const port = await freePort();
    server = await startDevOpenBao({ baoBin: env.baoCli, port, logFile: path.join(dir, 'dev.log') });
    await assert.rejects(
      startDevOpenBao({ baoBin: env.baoCli, port, logFile: path.join(dir, 'dev2.log') }),
      new RegExp(`127\\.0\\.0\\.1:${port} is already in use.*BAO_ADDR`),
    );
  });
});
