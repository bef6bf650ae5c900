/**
 * A real OpenID provider for tests: the certified `oidc-provider` package on a loopback
 * port, issuing RFC 9068 JWT access tokens for any resource under mcpd's URL (resource
 * indicators, RFC 8707). It offers what MCP clients use: dynamic client registration,
 * authorization code with PKCE, refresh tokens, and client credentials for a test service.
 *
 * The login and consent pages are replaced by a handler that logs in `user` and grants it
 * the scopes in `user.scopes` (of those requested), so a test drives an interactive flow
 * by following redirects (followAuthorization). Tests also get the provider's signing key,
 * to mint tokens the provider would never issue (expired, another audience or issuer).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as Jose from 'jose' with { 'resolution-mode': 'import' };
import type { default as ProviderClass, Configuration } from 'oidc-provider' with { 'resolution-mode': 'import' };
import { freePort } from './stack';

export const MCPD_SCOPES = 'mcpd:admin mcpd:operator mcpd:viewer mcpd:client';

export interface TestUser {
  sub: string;
  groups: string[];
  /** The mcpd scopes the user may be granted (space-separated). */
  scopes: string;
}

export interface TestIssuer {
  /** http://127.0.0.1:<port> */
  issuer: string;
  /** Who the next login is, and what it may be granted. */
  user: TestUser;
  /** mcpd's URL: the provider issues tokens for resources under it. */
  resourcePrefix: string;
  /** The client_credentials client (a service), with every mcpd scope. */
  service: { clientId: string; clientSecret: string };
  /** The provider's signing key (private JWK with its kid), for minting tokens in tests. */
  signingKey: Jose.JWK;
  provider: ProviderClass;
  /** An access token for `resource` from the token endpoint (client credentials). */
  serviceToken(resource: string, scope: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts the provider. It issues tokens for resources under `resourcePrefix` (mcpd's URL),
 * which a test that learns mcpd's URL later sets then.
 */
export async function startTestIssuer(resourcePrefix = ''): Promise<TestIssuer> {
  const jose = await import('jose');
  const { default: Provider } = await import('oidc-provider');
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const signingKey = { ...(await jose.exportJWK(privateKey)), kid: `test-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' };
  const service = { clientId: 'mcpd-test-service', clientSecret: randomBytes(24).toString('hex') };
  const state: { user: TestUser; resourcePrefix: string } = { user: { sub: 'alice', groups: ['dev'], scopes: MCPD_SCOPES }, resourcePrefix };

  const configuration: Configuration = {
    clients: [
      {
        client_id: service.clientId,
        client_secret: service.clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: MCPD_SCOPES,
      },
    ],
    jwks: { keys: [signingKey] },
    // The one key is an EC key, so ID tokens are signed with it too (the default, RS256, needs an RSA key).
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    scopes: ['openid', 'offline_access', ...MCPD_SCOPES.split(' ')],
    claims: { openid: ['sub'], groups: ['groups'] },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    // The MCP SDK's client registers with token_endpoint_auth_method none and asks for a refresh token.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A request that names no resource gets none: its tokens are for the userinfo endpoint only.
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? undefined!,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resourceIndicator) => {
          const prefix = state.resourcePrefix;
          if (!prefix || (resourceIndicator !== prefix && !resourceIndicator.startsWith(`${prefix}/`)))
            throw new Error(`unknown resource ${resourceIndicator}`);
          return { scope: MCPD_SCOPES, audience: resourceIndicator, accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'ES256' } } };
        },
      },
    },
    // The user's groups travel in the access token, where mcpd reads them.
    extraTokenClaims: (_ctx, token) => (token.kind === 'AccessToken' && token.accountId ? { groups: state.user.groups } : undefined),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { AccessToken: 600, AuthorizationCode: 60, Interaction: 600, Session: 600, Grant: 600, RefreshToken: 3600, ClientCredentials: 600 },
  };
  const provider = new Provider(issuer, configuration);

  // Login and consent without pages: the current test user, granted the scopes it may have of those asked for.
  provider.use(async (ctx, next) => {
    const match = /^\/interaction\/([^/]+)$/.exec(ctx.path);
    if (!match || ctx.method !== 'GET') return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const user = state.user;
    if (details.prompt.name === 'login') {
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false }));
      return;
    }
    const grant = details.grantId
      ? (await provider.Grant.find(details.grantId))!
      : new provider.Grant({ accountId: user.sub, clientId: details.params.client_id as string });
    const { missingOIDCScope, missingResourceScopes } = details.prompt.details as {
      missingOIDCScope?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope);
    const allowed = new Set(user.scopes.split(' '));
    for (const [resource, scopes] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(
        resource,
        scopes.filter((s) => allowed.has(s)),
      );
      // Refused, not pending: otherwise the provider would ask for consent again and again.
      const refused = scopes.filter((s) => !allowed.has(s));
      if (refused.length) grant.rejectResourceScope(resource, refused);
    }
    const grantId = await grant.save();
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true }));
  });

  const handle = provider.callback();
  const server = http.createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actualPort = (server.address() as AddressInfo).port;
  if (actualPort !== port) throw new Error('the provider listens on another port than its issuer names');

  return {
    issuer,
    get user() {
      return state.user;
    },
    set user(user: TestUser) {
      state.user = user;
    },
    get resourcePrefix() {
      return state.resourcePrefix;
    },
    set resourcePrefix(prefix: string) {
      state.resourcePrefix = prefix;
    },
    service,
    signingKey,
    provider,
    async serviceToken(resource, scope) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${service.clientId}:${service.clientSecret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`the provider issued no token: ${body.error}: ${body.error_description}`);
      return body.access_token;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Follows an authorization URL as a browser would (carrying the provider's cookies) until
 * it redirects to the client's redirect URI, and returns that URL (with `code` and `state`,
 * or `error`) without requesting it.
 */
export async function followAuthorization(authorizationUrl: string | URL, redirectUri: string): Promise<URL> {
  const cookies = new Map<string, string>();
  let next = new URL(authorizationUrl);
  for (let hop = 0; hop < 20; hop++) {
    if (next.href.startsWith(redirectUri)) return next;
    const res = await fetch(next, { redirect: 'manual', headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
    }
    const location = res.headers.get('location');
    const body = await res.text();
    if (!location) throw new Error(`the authorization flow stopped at ${next.pathname} with HTTP ${res.status}: ${body.slice(0, 300)}`);
    next = new URL(location, next);
  }
  throw new Error('the authorization flow redirected more than 20 times');
}
