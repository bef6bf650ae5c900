import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureGatewaySecret, GatewayKeys } from '../../src/gateway/linkKeys';

const SECRET = 'a'.repeat(64);

describe('gateway link keys', () => {
  it('a session id issued by one front gateway is accepted, with its route, by another that shares the secret', () => {
    const x = new GatewayKeys(SECRET);
    const y = new GatewayKeys(SECRET);
    const id = x.issueSession({ route: 'gitea' });
    assert.match(id, /^[\x21-\x7e]+$/, 'visible ASCII only, as the MCP spec requires');
    assert.deepEqual(y.verifySession(id), { route: 'gitea' });
    assert.deepEqual(y.verifySession(x.issueSession({ route: '' })), { route: '' });
    assert.notEqual(x.issueSession({ route: 'gitea' }), id, 'every session id is new');
    assert.deepEqual(y.verifySession(x.issueSession({ route: 'gitea', principal: 't-client' })), { route: 'gitea', principal: 't-client' });
  });

  it('rejects ids of another cluster, altered ids, and anything that is not one', () => {
    const keys = new GatewayKeys(SECRET);
    const foreign = new GatewayKeys('b'.repeat(64)).issueSession({ route: 'gitea' });
    assert.equal(keys.verifySession(foreign), undefined);
    const id = keys.issueSession({ route: 'gitea' });
    const [v, , nonce, mac] = id.split('.');
    const rerouted = `${v}.${Buffer.from(JSON.stringify({ r: 'other' })).toString('base64url')}.${nonce}.${mac}`;
    assert.equal(keys.verifySession(rerouted), undefined, 'the route cannot be changed');
    for (const junk of ['', 'x', 'a0b1c2d3-e4f5-6789-abcd-ef0123456789', `${id}x`, id.replace(/^s1/, 's2'), 's1...']) {
      assert.equal(keys.verifySession(junk), undefined, junk);
    }
  });

  it('accepts the link token only as the bearer, and the session key is not the link token', () => {
    const keys = new GatewayKeys(SECRET);
    assert.equal(keys.linkAuthorized(`Bearer ${keys.linkToken}`), true);
    assert.equal(keys.linkAuthorized(`bearer  ${keys.linkToken} `), true);
    assert.equal(keys.linkAuthorized(undefined), false);
    assert.equal(keys.linkAuthorized(`Bearer ${keys.linkToken}x`), false);
    assert.equal(keys.linkAuthorized(`Bearer ${SECRET}`), false, 'the secret itself is not the token');
    assert.equal(keys.linkAuthorized(`Basic ${keys.linkToken}`), false);
    assert.ok(!keys.issueSession({ route: '' }).includes(keys.linkToken));
  });

  it('refuses a short secret without repeating it', () => {
    assert.throws(
      () => new GatewayKeys('short-secret'),
      (err: Error) => !err.message.includes('short-secret') && /at least 32 characters/.test(err.message),
    );
  });

  it('creates one secret file (mode 0600) that processes sharing a data dir agree on; a given secret wins', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-keys-'));
    try {
      const first = ensureGatewaySecret(dir);
      assert.equal(ensureGatewaySecret(dir), first);
      assert.equal(fs.statSync(path.join(dir, 'gateway-secret')).mode & 0o777, 0o600);
      assert.equal(ensureGatewaySecret(dir, SECRET), SECRET);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
