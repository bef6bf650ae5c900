/**
 * The pure parts of mcpd's OAuth resource server: how a verified token's claims become a
 * principal (name, groups, role from scopes) for what a request wants to do, and how the
 * MCPD_OIDC_* variables are checked at start.
 */
import assert from 'node:assert/strict';
import { loadSettings, SettingsError } from '../../src/config/settings';
import { OidcResourceServer, principalFromClaims, scopeNeeded, scopesOf } from '../../src/api/oidc';
import type { Access } from '../../src/api/auth';

const claimNames = { nameClaim: 'sub', groupsClaim: 'groups' };
const read: Access = { kind: 'api', method: 'GET', path: '/servers' };
const write: Access = { kind: 'api', method: 'PUT', path: '/servers/x' };
const tokens: Access = { kind: 'api', method: 'GET', path: '/tokens' };
const gateway: Access = { kind: 'gateway' };

describe('OAuth claims to principal', () => {
  it('names the principal by sub, takes its groups, and picks the strongest scope that allows the request', () => {
    const mapped = principalFromClaims({ sub: 'alice', groups: ['dev', 'ops'], scope: 'openid mcpd:viewer mcpd:operator' }, write, claimNames);
    assert.deepEqual(mapped, { ok: true, principal: { name: 'alice', role: 'operator', servers: null, source: 'oidc', groups: ['dev', 'ops'] } });
  });

  it('a viewer may read but not write, and is told which scope a write needs', () => {
    const claims = { sub: 'bob', scope: 'mcpd:viewer' };
    assert.equal(principalFromClaims(claims, read, claimNames).ok, true);
    const refused = principalFromClaims(claims, write, claimNames);
    assert.equal(refused.ok, false);
    assert.ok(!refused.ok && refused.status === 403 && refused.error === 'insufficient_scope');
    assert.match(!refused.ok ? refused.message : '', /needs mcpd:operator/);
  });

  it('viewer and client scopes together: reads on the API as viewer, the gateway as client', () => {
    const claims = { sub: 'carol', scope: 'mcpd:client mcpd:viewer' };
    const api = principalFromClaims(claims, read, claimNames);
    const mcp = principalFromClaims(claims, gateway, claimNames);
    assert.equal(api.ok && api.principal.role, 'viewer');
    assert.equal(mcp.ok && mcp.principal.role, 'client');
    assert.equal(principalFromClaims(claims, tokens, claimNames).ok, false, 'only admin manages tokens');
  });

  it('a token without any mcpd scope, or without its name claim, is refused', () => {
    const none = principalFromClaims({ sub: 'dave', scope: 'openid profile' }, read, claimNames);
    assert.ok(!none.ok && none.status === 403 && /no mcpd scope/.test(none.message));
    const nameless = principalFromClaims({ scope: 'mcpd:admin' }, read, claimNames);
    assert.ok(!nameless.ok && nameless.status === 401 && nameless.error === 'invalid_token' && /"sub"/.test(nameless.message));
  });

  it('reads the name and groups from configured claims, and scopes from scp lists', () => {
    const mapped = principalFromClaims({ sub: 'x1', email: 'erin@example.com', roles: 'admins', scp: ['mcpd:admin'] }, tokens, {
      nameClaim: 'email',
      groupsClaim: 'roles',
    });
    assert.deepEqual(mapped.ok && mapped.principal, { name: 'erin@example.com', role: 'admin', servers: null, source: 'oidc', groups: ['admins'] });
    assert.deepEqual(scopesOf({ scp: 'a b' }), ['a', 'b']);
    assert.deepEqual(scopesOf({}), []);
  });

  it('asks for the weakest scope that may do a request', () => {
    assert.equal(scopeNeeded(gateway), 'mcpd:client');
    assert.equal(scopeNeeded(read), 'mcpd:viewer');
    assert.equal(scopeNeeded(write), 'mcpd:operator');
    assert.equal(scopeNeeded(tokens), 'mcpd:admin');
  });
});

describe('MCPD_OIDC_* settings', () => {
  const load = (env: NodeJS.ProcessEnv) => loadSettings({ MCPD_DATA_DIR: '/tmp/x', ...env });

  it('is off without an issuer, and takes the issuer, audience and claims when set', () => {
    assert.equal(load({}).oidc, undefined);
    assert.deepEqual(
      load({ MCPD_OIDC_ISSUER: 'https://id.example.com/realms/a', MCPD_OIDC_AUDIENCE: 'https://mcpd.example.com/', MCPD_OIDC_NAME_CLAIM: 'email' }).oidc,
      {
        issuer: 'https://id.example.com/realms/a',
        audience: 'https://mcpd.example.com',
        nameClaim: 'email',
        groupsClaim: 'groups',
      },
    );
    assert.equal(load({ MCPD_OIDC_ISSUER: 'http://127.0.0.1:9000' }).oidc?.audience, undefined, 'the default audience is the URL mcpd listens on');
  });

  it('stops with one line naming the variable for a bad value', () => {
    const bad: [NodeJS.ProcessEnv, RegExp][] = [
      [{ MCPD_OIDC_ISSUER: 'http://id.example.com' }, /^MCPD_OIDC_ISSUER: must be the issuer's https:\/\/ URL.*http:\/\/ only on localhost/],
      [{ MCPD_OIDC_ISSUER: 'https://id.example.com/?x=1' }, /^MCPD_OIDC_ISSUER: .*without query or fragment/],
      [{ MCPD_OIDC_ISSUER: 'not a url' }, /^MCPD_OIDC_ISSUER: /],
      [{ MCPD_OIDC_ISSUER: 'https://id.example.com', MCPD_OIDC_AUDIENCE: 'mcpd' }, /^MCPD_OIDC_AUDIENCE: must be mcpd's public http\(s\) URL/],
      [{ MCPD_OIDC_AUDIENCE: 'https://mcpd.example.com' }, /^MCPD_OIDC_AUDIENCE: set MCPD_OIDC_ISSUER too/],
      [{ MCPD_OIDC_ISSUER: 'https://id.example.com', MCPD_HOST: '0.0.0.0' }, /^MCPD_OIDC_AUDIENCE: required when MCPD_HOST is 0\.0\.0\.0/],
      [{ MCPD_OIDC_ISSUER: 'https://id.example.com', MCPD_OIDC_GROUPS_CLAIM: 'my groups' }, /^MCPD_OIDC_GROUPS_CLAIM: must be a claim name/],
    ];
    for (const [env, message] of bad) {
      assert.throws(
        () => load(env),
        (err: Error) => err instanceof SettingsError && message.test(err.message) && !err.message.includes('\n'),
        JSON.stringify(env),
      );
    }
  });
});

describe('OAuth resource server without its issuer', () => {
  const settings = { issuer: 'https://id.example.com', audience: 'https://mcpd.example.com', nameClaim: 'sub', groupsClaim: 'groups' };
  // Shaped like a JWT, signed by nobody: what matters here is that it cannot be checked.
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'k1' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ sub: 'x', exp: 4_000_000_000 })).toString('base64url');
  const token = `${header}.${payload}.c2ln`;

  it('answers 503 naming the issuer when its metadata cannot be fetched, and asks again only after a pause', async () => {
    let asked = 0;
    const unreachable: typeof fetch = () => {
      asked++;
      return Promise.reject(new TypeError('fetch failed'));
    };
    const server = new OidcResourceServer(settings, unreachable);
    const { rejection } = await server.authorize(token, { kind: 'gateway' });
    assert.equal(rejection?.status, 503);
    assert.match(rejection?.body.error ?? '', /keys of https:\/\/id\.example\.com are unavailable .*fetch failed/);
    const before = asked;
    await server.authorize(token, { kind: 'gateway' });
    assert.equal(asked, before, 'a second request within the pause does not hammer the issuer');
  });

  it('refuses metadata that names another issuer', async () => {
    const impostor: typeof fetch = () => Promise.resolve(Response.json({ issuer: 'https://evil.example.com', jwks_uri: 'https://evil.example.com/jwks' }));
    await assert.rejects(
      new OidcResourceServer(settings, impostor).discover(),
      /names the issuer "https:\/\/evil\.example\.com", not https:\/\/id\.example\.com/,
    );
  });

  it('each endpoint is a resource of its own: /mcp, /mcp/servers/<name> and /mcp/virtual/<name>, each with its metadata document', () => {
    const server = new OidcResourceServer(settings, () => Promise.reject(new Error('not asked')));
    const endpoints: [Access, string][] = [
      [{ kind: 'gateway' }, 'https://mcpd.example.com/mcp'],
      [{ kind: 'gateway', server: 'gitea' }, 'https://mcpd.example.com/mcp/servers/gitea'],
      [{ kind: 'gateway', virtual: { name: 'triage', servers: [] } }, 'https://mcpd.example.com/mcp/virtual/triage'],
    ];
    for (const [access, resource] of endpoints) {
      assert.equal(server.resourceOf(access), resource);
      const metadataUrl = server.metadataUrlOf(resource);
      assert.equal(server.metadataFor(new URL(metadataUrl).pathname)?.resource, resource, metadataUrl);
      assert.match(server.missingToken(access).wwwAuthenticate, new RegExp(`resource_metadata="${metadataUrl}"`));
    }
    assert.equal(server.metadataFor('/.well-known/oauth-protected-resource/mcp/virtual/Not_A_Name'), undefined);
  });

  it('calls a malformed token malformed (401) without asking the issuer', async () => {
    const never: typeof fetch = () => Promise.reject(new Error('the issuer was asked'));
    const { rejection } = await new OidcResourceServer(settings, never).authorize('abc.def.ghi', { kind: 'api', method: 'GET', path: '/servers' });
    assert.equal(rejection?.status, 401);
    assert.match(rejection?.wwwAuthenticate ?? '', /error="invalid_token"/);
    assert.match(rejection?.body.error ?? '', /malformed/);
  });
});
