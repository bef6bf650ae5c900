import assert from 'node:assert/strict';
import { checkOrigin, isLoopbackBind, isLoopbackHostname, originPolicy } from '../../src/config/origins';
import { loadSettings } from '../../src/config/settings';

describe('origins: DNS-rebinding protection', () => {
  const loopbackOnly = originPolicy({ apiHost: '127.0.0.1', allowedOrigins: [] });

  it('lets requests without Origin through (curl, mcpctl, MCP SDK clients, the gateway link)', () => {
    assert.equal(checkOrigin({ host: '127.0.0.1:7400' }, loopbackOnly), null);
    assert.equal(checkOrigin({}, loopbackOnly), null);
  });

  it('allows loopback origins on any port by default', () => {
    for (const origin of ['http://localhost:6274', 'http://127.0.0.1:7400', 'https://127.0.0.5', 'http://[::1]:3000', 'http://app.localhost:8080']) {
      assert.equal(checkOrigin({ origin, host: 'localhost:7400' }, loopbackOnly), null, origin);
    }
  });

  it('answers 403 naming the origin for one that is not allowed', () => {
    const rejection = checkOrigin({ origin: 'http://evil.example.com', host: '127.0.0.1:7400' }, loopbackOnly);
    assert.equal(rejection?.status, 403);
    assert.equal(rejection?.body.error, 'origin "http://evil.example.com" is not allowed');
    assert.equal(rejection?.body.details.origin, 'http://evil.example.com');
    assert.match(rejection.body.details.hint, /MCPD_ALLOWED_ORIGINS/);
  });

  it('rejects the opaque origin "null" and two Origin headers', () => {
    assert.equal(checkOrigin({ origin: 'null' }, loopbackOnly)?.status, 403);
    assert.equal(checkOrigin({ origin: ['http://localhost', 'http://evil.example.com'] }, loopbackOnly)?.status, 403);
  });

  it('allows the origins of the allow-list, compared as browsers send them', () => {
    const policy = originPolicy(loadSettings({ MCPD_HOST: '0.0.0.0', MCPD_ALLOWED_ORIGINS: 'https://App.Example.com:443/' }));
    assert.equal(checkOrigin({ origin: 'https://app.example.com', host: 'mcpd.internal:7400' }, policy), null);
    assert.equal(checkOrigin({ origin: 'http://app.example.com', host: 'mcpd.internal:7400' }, policy)?.status, 403, 'another scheme is another origin');
    assert.equal(checkOrigin({ origin: 'https://app.example.com:8443', host: 'mcpd.internal:7400' }, policy)?.status, 403, 'another port too');
  });

  it('checks Host only while mcpd listens on loopback: a rebound name is refused', () => {
    const rebound = checkOrigin({ host: 'evil.example.com:7400' }, loopbackOnly);
    assert.equal(rebound?.status, 403);
    assert.equal(rebound?.body.error, 'host "evil.example.com:7400" is not allowed');
    for (const host of ['127.0.0.1:7400', 'localhost', '[::1]:7400', 'LOCALHOST:1']) assert.equal(checkOrigin({ host }, loopbackOnly), null, host);
    const everywhere = originPolicy({ apiHost: '0.0.0.0', allowedOrigins: [] });
    assert.equal(checkOrigin({ host: 'mcpd.example.com' }, everywhere), null);
  });

  it('behind a reverse proxy on loopback, the hosts of allowed origins pass', () => {
    const policy = originPolicy({ apiHost: '127.0.0.1', allowedOrigins: ['https://mcp.example.com'] });
    assert.equal(checkOrigin({ origin: 'https://mcp.example.com', host: 'mcp.example.com' }, policy), null);
    assert.equal(checkOrigin({ host: 'other.example.com' }, policy)?.status, 403);
  });

  it('keeps a hostile header short and on one line in the reply', () => {
    const rejection = checkOrigin({ origin: `http://evil.example.com/${'x'.repeat(500)}\r\nSet-Cookie: a=b` }, loopbackOnly);
    assert.equal(rejection?.status, 403);
    assert.ok(rejection.body.error.length < 260);
    assert.doesNotMatch(rejection.body.error, /[\r\n]/);
  });

  it('knows which names and bind addresses are loopback', () => {
    assert.ok(isLoopbackHostname('127.1.2.3'));
    assert.ok(!isLoopbackHostname('127.example.com'));
    assert.ok(!isLoopbackHostname('localhost.evil.com'));
    assert.ok(isLoopbackBind('::1'));
    assert.ok(isLoopbackBind('[::1]'));
    assert.ok(!isLoopbackBind('0.0.0.0'));
    assert.ok(!isLoopbackBind('192.168.1.2'));
  });

  it('parses MCPD_ALLOWED_ORIGINS, and a bad entry is one line naming the variable and the entry', () => {
    assert.deepEqual(loadSettings({}).allowedOrigins, []);
    assert.deepEqual(loadSettings({ MCPD_ALLOWED_ORIGINS: 'https://a.example.com, http://b.example.com:8080/,,https://a.example.com' }).allowedOrigins, [
      'https://a.example.com',
      'http://b.example.com:8080',
    ]);
    assert.throws(() => loadSettings({ MCPD_ALLOWED_ORIGINS: 'https://a.example.com,app.example.com' }), {
      name: 'SettingsError',
      message: 'MCPD_ALLOWED_ORIGINS: must be a comma-separated list of origins like https://app.example.com: "app.example.com" is not a URL',
    });
    assert.throws(
      () => loadSettings({ MCPD_ALLOWED_ORIGINS: 'https://a.example.com/path' }),
      /^SettingsError: MCPD_ALLOWED_ORIGINS: .*"https:\/\/a\.example\.com\/path" is not an origin: give only scheme, host and port/,
    );
    assert.throws(() => loadSettings({ MCPD_ALLOWED_ORIGINS: 'ftp://a.example.com' }), /is not an http:\/\/ or https:\/\/ origin/);
  });
});
