/**
 * mcpd as an OAuth 2.1 resource server (the MCP authorization spec), against a real
 * OpenID provider started here (oidc-provider on loopback) and a real mcpd process
 * started with MCPD_OIDC_ISSUER: the protected resource metadata documents (RFC 9728),
 * 401 pointing to them, JWT access tokens accepted on the API and the gateway, bad
 * tokens refused with invalid_token and changing nothing, scopes as roles, the MCP SDK
 * client's own OAuth flow (dynamic registration, authorization code + PKCE) ending in
 * tools/list, `mcpctl login` / `logout`, and (with an in-process mcpd) no token reaching
 * an upstream server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { InstanceView } from '../../src/contracts/instance';
import { LABELS } from '../../src/contracts/labels';
import { createLogger } from '../../src/logger';
import { createMcpd, type Mcpd } from '../../src/mcpd';
import { followAuthorization, MCPD_SCOPES, startTestIssuer, type TestIssuer } from '../support/oidcProvider';
import { MCPCTL, connectMcp, runCommand } from '../support/clients';
import { removeContainers, startMcpd, waitFor, waitForValue, type McpdProcess } from '../support/stack';
import { stackSettings } from './stack';
import type * as Jose from 'jose' with { 'resolution-mode': 'import' };

type Reply = { status: number; headers: Headers; json: any; text: string };

async function call(url: string, method: string, token: string | undefined, body?: unknown): Promise<Reply> {
  const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** The parameters of a Bearer challenge. */
function challenge(reply: Reply): Record<string, string> {
  const header = reply.headers.get('www-authenticate') ?? '';
  assert.match(header, /^Bearer /, `no Bearer challenge in ${JSON.stringify(header)}`);
  return Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'oauth-test', version: '1' } },
};

/** An MCP client's OAuth state, in memory, as the SDK's OAuthClientProvider asks for it; it remembers the URL it was sent to. */
class MemoryOAuthProvider implements OAuthClientProvider {
  client?: OAuthClientInformationMixed;
  saved?: OAuthTokens;
  verifier = '';
  authorizationUrl?: URL;
  constructor(readonly redirectUrl: string) {}
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'oauth-test MCP client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    } as OAuthClientMetadata;
  }
  clientInformation = () => this.client;
  saveClientInformation = (info: OAuthClientInformationMixed) => void (this.client = info);
  tokens = () => this.saved;
  saveTokens = (tokens: OAuthTokens) => void (this.saved = tokens);
  redirectToAuthorization = (url: URL) => void (this.authorizationUrl = url);
  saveCodeVerifier = (verifier: string) => void (this.verifier = verifier);
  codeVerifier = () => this.verifier;
}

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('OAuth resource server (MCPD_OIDC_ISSUER) on a real mcpd', function () {
  this.timeout(180_000);

  const server = `t-oauth-${randomBytes(3).toString('hex')}`;
  let issuer: TestIssuer;
  let mcpd: McpdProcess;
  let jose: typeof Jose;
  const admin = () => mcpd.token;

  /** A token signed with the provider's key, with these claims over sensible defaults: what the provider would never issue. */
  async function mint(claims: Record<string, unknown>, key: Jose.JWK = issuer.signingKey): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const body = { iss: issuer.issuer, aud: mcpd.url, sub: 'mallory', scope: 'mcpd:admin', iat: now, exp: now + 300, ...claims };
    return new jose.SignJWT(body).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).sign(await jose.importJWK(key, 'ES256'));
  }

  before(async () => {
    jose = await import('jose');
    issuer = await startTestIssuer();
    mcpd = await startMcpd({ env: { MCPD_OIDC_ISSUER: issuer.issuer } });
    issuer.resourcePrefix = mcpd.url;
    // A running server, so the gateway has tools to list.
    const applied = await call(`${mcpd.url}/api/v1/servers/${server}`, 'PUT', admin(), { name: server, image: 'mcpd/gitea-like:dev' });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await call(`${mcpd.url}/api/v1/servers/${server}/start`, 'POST', admin())).status, 200);
    await waitForValue(
      async () => (await call(`${mcpd.url}/api/v1/instances?server=${server}`, 'GET', admin())).json.items as InstanceView[],
      (items) => items.length === 1 && items[0].status === 'RUNNING',
      { timeoutMs: 90_000, what: `${server} RUNNING` },
    );
  });

  after(async () => {
    if (mcpd) await call(`${mcpd.url}/api/v1/servers/${server}`, 'DELETE', admin()).catch(() => undefined);
    await mcpd?.stop();
    await removeContainers({ label: `${LABELS.server}=${server}` });
    await issuer?.close();
  });

  describe('protected resource metadata (RFC 9728)', () => {
    it('describes mcpd, /mcp and each /mcp/servers/<name> as resources of the issuer', async () => {
      for (const [suffix, resource] of [
        ['', mcpd.url],
        ['/mcp', `${mcpd.url}/mcp`],
        [`/mcp/servers/${server}`, `${mcpd.url}/mcp/servers/${server}`],
      ]) {
        const res = await fetch(`${mcpd.url}/.well-known/oauth-protected-resource${suffix}`);
        assert.equal(res.status, 200, suffix);
        assert.equal(res.headers.get('access-control-allow-origin'), '*');
        const doc = (await res.json()) as Record<string, unknown>;
        assert.equal(doc.resource, resource);
        assert.deepEqual(doc.authorization_servers, [issuer.issuer]);
        assert.deepEqual(doc.scopes_supported, MCPD_SCOPES.split(' '));
        assert.deepEqual(doc.bearer_methods_supported, ['header']);
      }
      assert.equal((await fetch(`${mcpd.url}/.well-known/oauth-protected-resource/elsewhere`)).status, 404);
    });

    it('answers 401 without a token with resource_metadata pointing to the document of what was called', async () => {
      const apiReply = await call(`${mcpd.url}/api/v1/servers`, 'GET', undefined);
      assert.equal(apiReply.status, 401);
      assert.deepEqual(
        { resource_metadata: challenge(apiReply).resource_metadata, scope: challenge(apiReply).scope },
        { resource_metadata: `${mcpd.url}/.well-known/oauth-protected-resource`, scope: 'mcpd:viewer' },
      );
      const mcpReply = await call(`${mcpd.url}/mcp`, 'POST', undefined, INITIALIZE);
      assert.equal(mcpReply.status, 401);
      const params = challenge(mcpReply);
      assert.equal(params.resource_metadata, `${mcpd.url}/.well-known/oauth-protected-resource/mcp`);
      assert.equal(params.scope, 'mcpd:client');
      assert.equal(params.error, undefined, 'no token is not an invalid token');
      const doc = (await (await fetch(params.resource_metadata)).json()) as { resource: string };
      assert.equal(doc.resource, `${mcpd.url}/mcp`);
    });
  });

  describe('access tokens', () => {
    it("accepts the issuer's JWT on the API and on /mcp, where tools/list shows the server's tools", async () => {
      const token = await issuer.serviceToken(mcpd.url, 'mcpd:operator');
      assert.equal(claimsOf(token).aud, mcpd.url);
      const servers = await call(`${mcpd.url}/api/v1/servers/${server}`, 'GET', token);
      assert.equal(servers.status, 200, servers.text);
      const client = await connectMcp(mcpd, '/mcp', token, 'oauth-test');
      try {
        const tools = await client.listTools();
        assert.ok(
          tools.tools.some((t) => t.name === `${server}__echo`),
          JSON.stringify(tools.tools.map((t) => t.name)),
        );
      } finally {
        await client.close();
      }
    });

    it('a token for /mcp/servers/<name> (its own resource) serves that endpoint but not the API', async () => {
      const resource = `${mcpd.url}/mcp/servers/${server}`;
      const token = await issuer.serviceToken(resource, 'mcpd:admin');
      const client = new Client({ name: 'oauth-test', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(resource), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      try {
        const reply = (await client.callTool({ name: 'echo', arguments: { message: 'via oauth' } })) as { content: { text: string }[] };
        assert.equal(reply.content[0].text, 'via oauth');
      } finally {
        await client.close();
      }
      const apiReply = await call(`${mcpd.url}/api/v1/servers`, 'GET', token);
      assert.equal(apiReply.status, 401);
      assert.equal(challenge(apiReply).error, 'invalid_token');
      assert.match(apiReply.json.error, /not for this resource/);
    });

    it('refuses wrong audience, expired, badly signed, malformed and foreign tokens with 401 invalid_token, and changes nothing', async () => {
      const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
      const impostorKey = { ...(await jose.exportJWK(privateKey)), kid: issuer.signingKey.kid };
      const now = Math.floor(Date.now() / 1000);
      const cases: [string, string, RegExp][] = [
        ['wrong audience', await mint({ aud: 'https://other.example.com' }), /not for this resource/],
        ['expired', await mint({ iat: now - 600, exp: now - 300 }), /has expired/],
        ['not yet valid', await mint({ nbf: now + 300 }), /not valid yet/],
        ['bad signature', await mint({}, impostorKey), /signature does not verify/],
        ['unknown key', await mint({}, { ...impostorKey, kid: 'nobody-has-this-key' }), /signed with a key .* does not publish/],
        ['malformed JWT', 'eyJhbGciOiJFUzI1NiJ9.not-json.c2ln', /malformed/],
        ['wrong issuer', await mint({ iss: 'https://evil.example.com' }), /not issued by/],
        ['no expiry', await mint({ exp: undefined }), /"exp" claim|no expiry/],
        ['not a JWT nor an mcpd token', 'definitely-not-a-valid-token', /invalid bearer token/],
      ];
      const secret = `t-oauth-${randomBytes(3).toString('hex')}`;
      for (const [what, token, message] of cases) {
        const write = await call(`${mcpd.url}/api/v1/secrets/${secret}`, 'PUT', token, { data: { k: 'v' } });
        assert.equal(write.status, 401, `${what}: ${write.text}`);
        const params = challenge(write);
        assert.equal(params.error, 'invalid_token', what);
        assert.equal(params.resource_metadata, `${mcpd.url}/.well-known/oauth-protected-resource`, what);
        assert.match(write.json.error, message, what);
        assert.ok(!write.text.includes(token), `${what}: the answer repeats the token`);
        const mcp = await call(`${mcpd.url}/mcp`, 'POST', token, INITIALIZE);
        assert.equal(mcp.status, 401, `${what} on /mcp: ${mcp.text}`);
        assert.equal(challenge(mcp).error, 'invalid_token', what);
      }
      assert.equal((await call(`${mcpd.url}/api/v1/secrets/${secret}`, 'GET', admin())).status, 404, 'no refused write happened');
    });

    it('a viewer-scope token may GET but not PUT (403 insufficient_scope naming the scope), nor use the gateway', async () => {
      const token = await issuer.serviceToken(mcpd.url, 'mcpd:viewer');
      assert.equal((await call(`${mcpd.url}/api/v1/servers`, 'GET', token)).status, 200);
      const spec = { name: `${server}-x`, image: 'mcpd/gitea-like:dev' };
      const put = await call(`${mcpd.url}/api/v1/servers/${spec.name}`, 'PUT', token, spec);
      assert.equal(put.status, 403, put.text);
      assert.deepEqual([challenge(put).error, challenge(put).scope], ['insufficient_scope', 'mcpd:operator']);
      assert.match(put.json.error, /has scopes mcpd:viewer; PUT \/api\/v1\/servers\/.* needs mcpd:operator/);
      assert.equal((await call(`${mcpd.url}/api/v1/servers/${spec.name}`, 'GET', admin())).status, 404, 'nothing was applied');
      const mcp = await call(`${mcpd.url}/mcp`, 'POST', token, INITIALIZE);
      assert.equal(mcp.status, 403);
      assert.equal(challenge(mcp).scope, 'mcpd:client');
    });

    it("mcpd's own tokens keep working beside the issuer's", async () => {
      assert.equal((await call(`${mcpd.url}/api/v1/servers`, 'GET', admin())).status, 200);
      const created = await call(`${mcpd.url}/api/v1/tokens`, 'POST', admin(), { name: `viewer-${randomBytes(3).toString('hex')}`, role: 'viewer' });
      assert.equal(created.status, 201, created.text);
      assert.equal((await call(`${mcpd.url}/api/v1/servers`, 'GET', created.json.token)).status, 200);
      assert.equal((await call(`${mcpd.url}/api/v1/servers/x`, 'DELETE', created.json.token)).status, 403);
      const revoked = `mcpd_${randomBytes(32).toString('hex')}`;
      const unknown = await call(`${mcpd.url}/api/v1/servers`, 'GET', revoked);
      assert.equal(unknown.status, 401, 'with an issuer, an unknown token is a 401 invalid_token (RFC 6750)');
      assert.equal(challenge(unknown).error, 'invalid_token');
    });
  });

  describe('mcpctl login', () => {
    let home: string;
    const env = () => ({ PATH: process.env.PATH, HOME: home, MCPD_URL: mcpd.url });
    const mcpctl = (args: string[]) => runCommand(process.execPath, [MCPCTL, ...args], { cwd: home, env: env() });

    before(() => {
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpctl-login-'));
    });
    after(() => fs.rmSync(home, { recursive: true, force: true }));

    it('logs in at the issuer through the printed URL and a loopback redirect; commands then act as the user; logout forgets it', async () => {
      issuer.user = { sub: 'bob', groups: ['ops'], scopes: 'mcpd:viewer' };
      const child = spawn(process.execPath, [MCPCTL, 'login', '--timeout', '60s'], { cwd: home, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      try {
        const printed = await waitFor(() => /Open this URL in a browser to log in:\s+(\S+)/.exec(stderr)?.[1], { timeoutMs: 20_000, what: 'the login URL' });
        const authorizationUrl = new URL(printed);
        assert.equal(authorizationUrl.origin, issuer.issuer);
        assert.equal(authorizationUrl.searchParams.get('resource'), mcpd.url);
        assert.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256');
        const redirectUri = authorizationUrl.searchParams.get('redirect_uri')!;
        assert.match(redirectUri, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
        // The browser: log in at the issuer, then come back to mcpctl's loopback port.
        const back = await followAuthorization(authorizationUrl, redirectUri);
        assert.equal((await fetch(back)).status, 200);
        assert.equal(await exited, 0, `mcpctl login failed: ${stderr}`);
      } finally {
        child.kill();
      }
      assert.match(stdout, /^logged in to .* as bob \(scopes mcpd:viewer; expires .*\); token kept in .*credentials\.json$/m);
      const file = path.join(home, '.config', 'mcpctl', 'credentials.json');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);

      // No MCPD_DATA_DIR, no MCPD_TOKEN: the login's token is all mcpctl has.
      const list = await mcpctl(['get', 'servers']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(server));
      const apply = await mcpctl(['scale', 'server', server, '--replicas', '2']);
      assert.equal(apply.code, 4, 'a viewer may not scale');
      assert.match(apply.stderr, /forbidden: .*needs mcpd:operator .*token from the login of bob at/);

      const out = await mcpctl(['logout']);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /^logged out of /);
      const after = await mcpctl(['get', 'servers']);
      assert.equal(after.code, 4);
      assert.match(after.stderr, /unauthorized: missing bearer token/);
    });

    it('an expired login is not used, and says so', async () => {
      const file = path.join(home, '.config', 'mcpctl', 'credentials.json');
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const stale = { issuer: issuer.issuer, resource: mcpd.url, accessToken: 'x.y.z', expiresAt: new Date(Date.now() - 60_000).toISOString(), subject: 'bob' };
      fs.writeFileSync(file, JSON.stringify({ version: 1, logins: { [mcpd.url]: stale } }), { mode: 0o600 });
      const run = await mcpctl(['get', 'servers']);
      assert.equal(run.code, 4);
      assert.match(run.stderr, /login of bob .* expired at .*: run mcpctl login again/);
      fs.rmSync(file);
    });

    it('says clearly when mcpd has no issuer to log in at', async () => {
      // API and gateway only: a worker would register a node that other suites' placement might pick after it stopped.
      const plain = await startMcpd({ env: { MCPD_ROLES: 'api,gateway' } });
      try {
        const run = await runCommand(process.execPath, [MCPCTL, 'login', '--server', plain.url], { cwd: home, env: { PATH: process.env.PATH, HOME: home } });
        assert.equal(run.code, 1);
        assert.match(run.stderr, /^error: mcpd at http:\/\/127\.0\.0\.1:\d+ has no OAuth issuer configured \(MCPD_OIDC_ISSUER\)/);
      } finally {
        await plain.stop();
      }
    });
  });

  describe("the MCP SDK client's OAuth flow", () => {
    it('discovers the issuer from the 401, registers, logs in with authorization code + PKCE, and lists tools on /mcp', async () => {
      issuer.user = { sub: 'alice', groups: ['dev', 'oncall'], scopes: 'mcpd:client' };
      const redirectUrl = 'http://127.0.0.1:1/callback';
      const oauth = new MemoryOAuthProvider(redirectUrl);
      const endpoint = new URL(`${mcpd.url}/mcp`);
      const first = new StreamableHTTPClientTransport(endpoint, { authProvider: oauth });
      await assert.rejects(new Client({ name: 'oauth-test', version: '1' }).connect(first), /Unauthorized/);
      assert.ok(oauth.authorizationUrl, 'the SDK sent the user to the issuer');
      assert.equal(oauth.authorizationUrl.origin, issuer.issuer);
      assert.equal(oauth.authorizationUrl.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(oauth.authorizationUrl.searchParams.get('resource'), `${mcpd.url}/mcp`);
      assert.equal(oauth.authorizationUrl.searchParams.get('scope'), 'mcpd:client', "the scope of mcpd's challenge");

      const landed = await followAuthorization(oauth.authorizationUrl, redirectUrl);
      const code = landed.searchParams.get('code');
      assert.ok(code, `no code in ${landed.href}`);
      await first.finishAuth(code);
      const token = oauth.saved?.access_token ?? '';
      assert.deepEqual((({ sub, aud, scope, groups }) => ({ sub, aud, scope, groups }))(claimsOf(token)), {
        sub: 'alice',
        aud: `${mcpd.url}/mcp`,
        scope: 'mcpd:client',
        groups: ['dev', 'oncall'],
      });

      const client = new Client({ name: 'oauth-test', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(endpoint, { authProvider: oauth }));
      try {
        const tools = await client.listTools();
        assert.ok(
          tools.tools.some((t) => t.name === `${server}__echo`),
          JSON.stringify(tools.tools.map((t) => t.name)),
        );
      } finally {
        await client.close();
      }
      // The client scope reaches the gateway only.
      assert.equal((await call(`${mcpd.url}/api/v1/servers`, 'GET', token)).status, 401, 'a token for /mcp is not one for the API');
    });
  });
});

describe('OAuth: no token reaches an upstream server (in-process mcpd)', function () {
  this.timeout(120_000);

  const node = `t-oauth-${randomBytes(3).toString('hex')}`;
  const upstreamName = `t-oauth-up-${randomBytes(3).toString('hex')}`;
  const instanceId = `mcp-instance:${upstreamName}:0`;
  /** The headers of every request the upstream received. */
  const received: http.IncomingHttpHeaders[] = [];
  let issuer: TestIssuer;
  let mcpd: Mcpd;
  let upstream: http.Server;
  let dataDir: string;

  before(async () => {
    issuer = await startTestIssuer();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-oauth-'));
    const settings = stackSettings(node, dataDir);
    mcpd = await createMcpd(
      {
        ...settings,
        apiPort: 0,
        // No worker: the upstream is attached by hand, and no node is left registered when this mcpd stops.
        roles: { api: true, gateway: true, worker: false },
        oidc: { issuer: issuer.issuer, audience: undefined, nameClaim: 'sub', groupsClaim: 'groups' },
      },
      { owner: node, logger: createLogger(process.env.MCPD_LOG_LEVEL ?? 'silent'), seedExamples: false },
    );
    issuer.resourcePrefix = mcpd.url;
    await waitFor(async () => (await fetch(`${mcpd.url}/readyz`)).status === 200, { timeoutMs: 60_000, what: 'mcpd ready' });

    // An HTTP MCP server in this process that records what every request carried.
    const mcp = new McpServer({ name: 'oauth-upstream', version: '1' });
    mcp.registerTool('whoami', { description: 'Says hello.' }, () => ({ content: [{ type: 'text', text: 'hello' }] }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomBytes(8).toString('hex') });
    await mcp.connect(transport);
    upstream = http.createServer((req, res) => {
      received.push(req.headers);
      void transport.handleRequest(req, res);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    await mcpd.gateway!.attach({ instanceId, server: upstreamName, transport: 'http', containerId: 'in-process-upstream', port, path: '/mcp' });
  });

  after(async () => {
    await mcpd?.gateway?.detach(instanceId, 'test over').catch(() => undefined);
    await mcpd?.close();
    upstream?.closeAllConnections();
    upstream?.close();
    await removeContainers({ label: `${LABELS.owner}=${node}` });
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    await issuer?.close();
  });

  it('calls through /mcp/servers/<name> and /mcp with a JWT; the upstream sees neither an Authorization header nor the token', async () => {
    const token = await issuer.serviceToken(mcpd.url, 'mcpd:client');
    for (const endpoint of [`/mcp/servers/${upstreamName}`, '/mcp']) {
      const client = new Client({ name: 'oauth-test', version: '1' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${mcpd.url}${endpoint}`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
      );
      try {
        const name = endpoint === '/mcp' ? `${upstreamName}__whoami` : 'whoami';
        const reply = (await client.callTool({ name, arguments: {} })) as { content: { text: string }[] };
        assert.equal(reply.content[0].text, 'hello', endpoint);
      } finally {
        await client.close();
      }
    }
    assert.ok(received.length > 0, 'the upstream was called');
    for (const headers of received) {
      assert.equal(headers.authorization, undefined, `the upstream got an Authorization header: ${Object.keys(headers).join(', ')}`);
      assert.ok(!JSON.stringify(headers).includes(token.split('.')[2]), 'the upstream got the token in some header');
    }
  });
});
