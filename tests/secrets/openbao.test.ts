/** OpenBaoSecretStore against a real OpenBao dev server (BAO_ADDR / BAO_TOKEN). */
import assert from 'node:assert/strict';
import { OpenBaoSecretStore } from '../../src/secrets/openbao';

const address = process.env.BAO_ADDR ?? 'http://127.0.0.1:20200';
const token = process.env.BAO_TOKEN ?? 'h2root';
const VALUE_1 = 'kv-first-0123456789abcdef0123456789abcdef';
const VALUE_2 = 'kv-second-fedcba9876543210fedcba98765432';

describe('OpenBaoSecretStore', () => {
  const store = new OpenBaoSecretStore({ address, token, mount: 'secret', prefix: 'mcpd' });
  const name = `t-secrets-gitea-${process.pid}`;

  after(async () => {
    await store.delete(name).catch(() => undefined);
  });

  it('pins a key to the current version and reads exactly that version later', async () => {
    const first = await store.put(name, { token: VALUE_1, host: 'h' });
    const pinned = await store.pin({ name, key: 'token' });
    assert.deepEqual(pinned, { name, key: 'token', version: first.version });
    assert.ok(!JSON.stringify(pinned).includes(VALUE_1));
    const second = await store.put(name, { token: VALUE_2 });
    assert.equal(second.version, first.version + 1);
    assert.equal(await store.readPinned(pinned), VALUE_1, 'the pinned version, not the newest');
    assert.equal(await store.readPinned(await store.pin({ name, key: 'token' })), VALUE_2);
  });

  it('describes and lists key names only, never values', async () => {
    await store.put(name, { token: VALUE_1, host: 'h' });
    const summary = await store.describe(name);
    assert.deepEqual(summary?.keys, ['host', 'token']);
    assert.ok(!JSON.stringify(summary).includes(VALUE_1));
    const listed = await store.list();
    assert.ok(listed.some((s) => s.name === name));
    assert.ok(!JSON.stringify(listed).includes(VALUE_1));
  });

  it('fails pin naming the missing secret, or the secret and its missing key', async () => {
    await store.put(name, { token: VALUE_1 });
    await assert.rejects(store.pin({ name: 't-secrets-does-not-exist', key: 'token' }), {
      message: 'secret resolution failed: secret "t-secrets-does-not-exist" not found (wanted key "token")',
    });
    await assert.rejects(store.pin({ name, key: 'password' }), (err: Error) => {
      assert.equal(err.message, `secret resolution failed: secret "${name}" has no key "password"`);
      assert.ok(!err.message.includes(VALUE_1));
      return true;
    });
  });

  it('says OpenBao is unreachable, with its address', async () => {
    const down = new OpenBaoSecretStore({ address: 'http://127.0.0.1:20299', token, mount: 'secret', prefix: 'mcpd' });
    await assert.rejects(down.pin({ name: 'gitea', key: 'token' }), {
      message: 'secret resolution failed: secret "gitea" key "token": OpenBao unreachable at http://127.0.0.1:20299: ECONNREFUSED',
    });
  });

  it('says permission denied for a bad token, without echoing the token', async () => {
    const denied = new OpenBaoSecretStore({ address, token: 'kv-wrong-token', mount: 'secret', prefix: 'mcpd' });
    await assert.rejects(denied.pin({ name, key: 'token' }), (err: Error) => {
      assert.match(err.message, /^secret resolution failed: .*permission denied/);
      assert.ok(!err.message.includes('kv-wrong-token'));
      return true;
    });
  });

  it('deletes every version; a second delete reports there was none', async () => {
    await store.put(name, { token: VALUE_1 });
    assert.equal(await store.delete(name), true);
    assert.equal(await store.describe(name), null);
    assert.equal(await store.delete(name), false);
    await assert.rejects(store.pin({ name, key: 'token' }), /not found/);
  });

  it('rejects a bad secret name clearly', async () => {
    await assert.rejects(store.put('Bad/Name', { a: 'b' }), /"Bad\/Name" is not a valid secret name/);
  });
});
