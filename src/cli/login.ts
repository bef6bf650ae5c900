/**
 * `mcpctl login`: gets an access token for mcpd from the issuer mcpd names in its
 * protected resource metadata (RFC 9728), the way native apps do (RFC 8252): the
 * authorization code flow with PKCE and a redirect to a loopback port of this machine.
 * mcpctl prints the URL to open; the browser comes back to the loopback port with the
 * code. The MCP SDK's client (`auth`) does discovery, dynamic client registration
 * (unless --client-id names a registered public client), PKCE and the token request.
 * The token is kept for this mcpd URL in the credentials file (credentials.ts).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { EXIT, McpdError } from '../client/mcpdClient';
import { readLogin, saveLogin, type StoredLogin } from '../client/credentials';

export interface LoginOptions {
  url: string;
  /** Scopes to ask for (default: every scope mcpd lists; the issuer grants what the user may have). */
  scope?: string;
  /** A public client registered at the issuer; default: register one dynamically. */
  clientId?: string;
  /** The loopback port for the redirect (default: any free one). */
  port?: number;
  timeoutSeconds: number;
  /** Tells the user which URL to open. */
  announce: (authorizationUrl: string) => void;
  env?: NodeJS.ProcessEnv;
}

export interface LoginResult {
  login: StoredLogin;
  file: string;
}

interface ProtectedResource {
  resource: string;
  authorization_servers?: string[];
}

/** What mcpd says about itself; a clear error when it has no issuer. */
async function protectedResourceOf(url: string): Promise<ProtectedResource> {
  let res: Response;
  try {
    res = await fetch(`${url}/.well-known/oauth-protected-resource`, { headers: { accept: 'application/json' } });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new McpdError(`cannot reach mcpd at ${url}: ${cause?.code ?? (err as Error).message}`, EXIT.error);
  }
  if (res.status === 404) {
    throw new McpdError(
      `mcpd at ${url} has no OAuth issuer configured (MCPD_OIDC_ISSUER), so there is nothing to log in to: use its API token (--token, MCPD_TOKEN or <data dir>/api-token)`,
      EXIT.error,
    );
  }
  const doc = (await res.json().catch(() => undefined)) as ProtectedResource | undefined;
  if (!res.ok || !doc?.resource || !doc.authorization_servers?.length) {
    throw new McpdError(`mcpd at ${url} answered its protected resource metadata with HTTP ${res.status} and no issuer`, EXIT.error);
  }
  return doc;
}

/** Waits on a loopback port for the browser to come back with the code (or an error). */
class LoopbackRedirect {
  private server = http.createServer((req, res) => this.receive(req, res));
  private settle!: { resolve: (code: string) => void; reject: (err: Error) => void };
  readonly code = new Promise<string>((resolve, reject) => (this.settle = { resolve, reject }));
  url = '';

  constructor(private readonly state: string) {
    // The promise may settle before anyone awaits it (a fast browser); its rejection is handled there.
    this.code.catch(() => undefined);
  }

  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new McpdError(`cannot listen on 127.0.0.1:${port} for the login redirect: ${err.code ?? err.message}`, EXIT.error)),
      );
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/callback`;
  }

  private receive(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    if (url.pathname !== '/callback') return void res.writeHead(404).end();
    const answer = (status: number, text: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${text}\n`);
    };
    if (url.searchParams.get('state') !== this.state) {
      // Not the answer to this login (a stale tab, or a forged request): ignored, the login goes on waiting.
      return answer(400, 'mcpctl: this is not the login mcpctl is waiting for (state does not match).');
    }
    const error = url.searchParams.get('error');
    if (error) {
      const description = url.searchParams.get('error_description');
      answer(400, `mcpctl: the login failed: ${error}${description ? `: ${description}` : ''}`);
      return this.settle.reject(new McpdError(`the issuer refused the login: ${error}${description ? `: ${description}` : ''}`, EXIT.auth));
    }
    const code = url.searchParams.get('code');
    if (!code) return answer(400, 'mcpctl: the redirect carries no code.');
    answer(200, 'mcpctl: logged in. You can close this tab.');
    this.settle.resolve(code);
  }

  close(): void {
    this.server.closeAllConnections();
    this.server.close();
  }
}

/** The claims of a JWT access token, read without verifying (for the expiry and the name shown): mcpd verifies. */
function unverifiedClaims(token: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

export async function login(options: LoginOptions): Promise<LoginResult> {
  const env = options.env ?? process.env;
  const metadata = await protectedResourceOf(options.url);
  const issuer = metadata.authorization_servers![0];
  const previous = readLogin(options.url, env);
  const state = randomBytes(16).toString('base64url');
  const redirect = new LoopbackRedirect(state);
  await redirect.listen(options.port);
  let client: OAuthClientInformationMixed | undefined = options.clientId
    ? { client_id: options.clientId }
    : previous?.issuer === issuer
      ? (previous.client as OAuthClientInformationMixed | undefined)
      : undefined;
  let tokens: OAuthTokens | undefined;
  let verifier = '';
  const provider: OAuthClientProvider = {
    get redirectUrl() {
      return redirect.url;
    },
    get clientMetadata(): OAuthClientMetadata {
      return {
        client_name: 'mcpctl',
        redirect_uris: [redirect.url],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        // A native app (RFC 8252): the issuer lets its loopback redirect use any port.
        application_type: 'native',
      } as OAuthClientMetadata;
    },
    state: () => state,
    clientInformation: () => client,
    saveClientInformation: (info) => void (client = info),
    // A login always asks the user anew; it never reuses a stored token.
    tokens: () => tokens,
    saveTokens: (saved) => void (tokens = saved),
    redirectToAuthorization: (authorizationUrl) => options.announce(authorizationUrl.href),
    saveCodeVerifier: (v) => void (verifier = v),
    codeVerifier: () => verifier,
  };
  const { auth } = await import('@modelcontextprotocol/sdk/client/auth.js');
  const timeout = new Promise<never>((_resolve, reject) => {
    const timer = setTimeout(
      () => reject(new McpdError(`no login within ${options.timeoutSeconds} s (the browser never came back to ${redirect.url})`, EXIT.auth)),
      options.timeoutSeconds * 1000,
    );
    timer.unref();
  });
  try {
    const started = await auth(provider, { serverUrl: options.url, scope: options.scope });
    if (started === 'REDIRECT') {
      const code = await Promise.race([redirect.code, timeout]);
      await auth(provider, { serverUrl: options.url, authorizationCode: code, scope: options.scope });
    }
  } catch (err) {
    if (err instanceof McpdError) throw err;
    throw new McpdError(`login at ${issuer} failed: ${(err as Error).message}`, EXIT.auth);
  } finally {
    redirect.close();
  }
  const received = tokens;
  if (!received?.access_token) throw new McpdError(`login at ${issuer} ended without an access token`, EXIT.auth);
  const claims = unverifiedClaims(received.access_token);
  const expiresAt =
    received.expires_in !== undefined
      ? new Date(Date.now() + received.expires_in * 1000)
      : typeof claims.exp === 'number'
        ? new Date(claims.exp * 1000)
        : new Date(Date.now() + 3600 * 1000);
  const stored: StoredLogin = {
    issuer,
    resource: metadata.resource,
    accessToken: received.access_token,
    expiresAt: expiresAt.toISOString(),
    subject: typeof claims.sub === 'string' ? claims.sub : undefined,
    scope: received.scope ?? (typeof claims.scope === 'string' ? claims.scope : undefined),
    client,
  };
  return { login: stored, file: saveLogin(options.url, stored, env) };
}
