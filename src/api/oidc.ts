/**
 * mcpd as an OAuth 2.1 resource server (the MCP authorization spec): with an issuer
 * configured (MCPD_OIDC_ISSUER), JWT access tokens of that issuer are accepted besides
 * the first-start admin token and the scoped `mcpd_…` tokens.
 *
 * - RFC 9728 protected resource metadata at /.well-known/oauth-protected-resource, and
 *   the path-specific documents of /mcp and /mcp/servers/<name>, tell clients which
 *   authorization server to ask and for which resource (RFC 8707).
 * - A token is verified with jose against the issuer's JWKS (found in the issuer's
 *   metadata): signature, `iss`, `aud` (mcpd's resource URI, or the URI of the endpoint
 *   called), `exp`, `nbf`.
 * - Its scopes grant mcpd's roles (see ROLE_SCOPES); its name claim (default `sub`) names
 *   the principal, its groups claim (default `groups`) lists the principal's groups.
 *
 * The token itself stays here: the gateway hands upstream servers JSON-RPC messages on
 * its own connections, never a client's headers.
 */
import type { ServerResponse } from 'node:http';
import type * as Jose from 'jose' with { 'resolution-mode': 'import' };
import type { Principal, TokenRole } from '../contracts/api';
import { SERVER_NAME_PATTERN } from '../contracts/spec';
import type { OidcSettings } from '../config/settings';
import { describeAccess, roleRefusal, type Access, type AuthOutcome, type AuthRejection } from './auth';

export const PROTECTED_RESOURCE_PATH = '/.well-known/oauth-protected-resource';

/**
 * The scope that grants each role. A token may carry several; a request is allowed when one
 * of its roles allows it, and the principal's role is the strongest such role.
 */
export const ROLE_SCOPES: Readonly<Record<TokenRole, string>> = Object.freeze({
  admin: 'mcpd:admin',
  operator: 'mcpd:operator',
  viewer: 'mcpd:viewer',
  client: 'mcpd:client',
});
/** Strongest first: the order a principal's role is picked in. */
const ROLES_BY_STRENGTH: readonly TokenRole[] = ['admin', 'operator', 'viewer', 'client'];

/** The scope a client should ask for to do this (the weakest role that may): sent with 401 and 403. */
export function scopeNeeded(access: Access): string {
  const weakestFirst: TokenRole[] = ['client', 'viewer', 'operator', 'admin'];
  return ROLE_SCOPES[weakestFirst.find((role) => roleRefusal(role, access) === null) ?? 'admin'];
}

/** The scopes of a token: `scope` (RFC 9068: space-separated) or `scp` (a list, as some providers send). */
export function scopesOf(claims: Record<string, unknown>): string[] {
  if (typeof claims.scope === 'string') return claims.scope.split(' ').filter(Boolean);
  if (Array.isArray(claims.scp)) return claims.scp.filter((s): s is string => typeof s === 'string');
  if (typeof claims.scp === 'string') return claims.scp.split(' ').filter(Boolean);
  return [];
}

export type ClaimsMapping =
  { ok: true; principal: Principal } | { ok: false; status: 401 | 403; error: 'invalid_token' | 'insufficient_scope'; message: string };

/**
 * The principal of a verified token's claims for this access (pure): its name from
 * `nameClaim`, its groups from `groupsClaim`, its role from its scopes.
 */
export function principalFromClaims(claims: Record<string, unknown>, access: Access, options: { nameClaim: string; groupsClaim: string }): ClaimsMapping {
  const name = claims[options.nameClaim];
  if (typeof name !== 'string' || name === '') {
    return { ok: false, status: 401, error: 'invalid_token', message: `the access token has no "${options.nameClaim}" claim to name its principal` };
  }
  const rawGroups = claims[options.groupsClaim];
  const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string') : typeof rawGroups === 'string' ? [rawGroups] : [];
  const scopes = new Set(scopesOf(claims));
  const granted = ROLES_BY_STRENGTH.filter((role) => scopes.has(ROLE_SCOPES[role]));
  const role = granted.find((r) => roleRefusal(r, access) === null);
  if (!role) {
    const has = granted.length ? `scopes ${granted.map((r) => ROLE_SCOPES[r]).join(', ')}` : 'no mcpd scope';
    return {
      ok: false,
      status: 403,
      error: 'insufficient_scope',
      message: `the access token of "${name}" has ${has}; ${describeAccess(access)} needs ${scopeNeeded(access)}`,
    };
  }
  return { ok: true, principal: { name, role, servers: null, source: 'oidc', groups } };
}

/** What an issuer's metadata (RFC 8414 / OpenID discovery) says that mcpd uses. */
interface IssuerMetadata {
  issuer: string;
  jwks_uri: string;
}

/** After a failed discovery, the next request tries again no sooner than this. */
const DISCOVERY_RETRY_MS = 5_000;
/** Clock skew tolerated on exp and nbf. */
const CLOCK_TOLERANCE_SECONDS = 5;

type JoseModule = typeof Jose;
/** jose is an ES module; mcpd compiles to CommonJS, so it is loaded on first use. */
let josePromise: Promise<JoseModule> | undefined;
const loadJose = () => (josePromise ??= import('jose'));

export class OidcResourceServer {
  private audienceValue: string | undefined;
  private keys: Promise<Jose.JWTVerifyGetKey> | undefined;
  private keysFailedAt = 0;

  constructor(
    private readonly settings: OidcSettings,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    this.audienceValue = settings.audience;
  }

  get issuer(): string {
    return this.settings.issuer;
  }

  /** mcpd's resource URI: MCPD_OIDC_AUDIENCE, else the URL mcpd listens on (set once it listens). */
  get audience(): string {
    if (this.audienceValue === undefined) throw new Error('the OAuth audience is not known before mcpd listens');
    return this.audienceValue;
  }

  /** Called once mcpd listens: without MCPD_OIDC_AUDIENCE, tokens must name this URL. */
  listeningAt(url: string): void {
    this.audienceValue ??= url.replace(/\/+$/, '');
  }

  /** The resource URI of what a request calls: /mcp, each /mcp/servers/<name> and each /mcp/virtual/<name> are resources of their own. */
  resourceOf(access: Access): string {
    if (access.kind !== 'gateway') return this.audience;
    if (access.virtual) return `${this.audience}/mcp/virtual/${encodeURIComponent(access.virtual.name)}`;
    return `${this.audience}/mcp${access.server === undefined ? '' : `/servers/${encodeURIComponent(access.server)}`}`;
  }

  /** Where the metadata of a resource is (RFC 9728 section 3.1: the well-known path goes before the resource's path). */
  metadataUrlOf(resource: string): string {
    const url = new URL(resource);
    const tail = url.pathname === '/' ? '' : url.pathname;
    return `${url.origin}${PROTECTED_RESOURCE_PATH}${tail}`;
  }

  /**
   * The protected resource metadata served at this request path, or undefined when the path
   * is not one of mcpd's resources.
   */
  metadataFor(requestPath: string): Record<string, unknown> | undefined {
    if (!requestPath.startsWith(PROTECTED_RESOURCE_PATH)) return undefined;
    let tail = requestPath.slice(PROTECTED_RESOURCE_PATH.length).replace(/\/+$/, '');
    // Behind a proxy that serves mcpd under a path, the document's path carries that path too.
    const basePath = new URL(this.audience).pathname.replace(/\/+$/, '');
    if (basePath && tail.startsWith(basePath)) tail = tail.slice(basePath.length);
    let access: Access;
    if (tail === '') access = { kind: 'api', method: 'GET', path: '/' };
    else if (tail === '/mcp') access = { kind: 'gateway' };
    else {
      const endpoint = /^\/mcp\/(servers|virtual)\/([^/]+)$/.exec(tail);
      const name = endpoint ? decodeURIComponent(endpoint[2]) : undefined;
      if (!name || !SERVER_NAME_PATTERN.test(name)) return undefined;
      access = endpoint![1] === 'servers' ? { kind: 'gateway', server: name } : { kind: 'gateway', virtual: { name, servers: [] } };
    }
    return {
      resource: this.resourceOf(access),
      authorization_servers: [this.settings.issuer],
      scopes_supported: ROLES_BY_STRENGTH.map((role) => ROLE_SCOPES[role]),
      bearer_methods_supported: ['header'],
      resource_name: 'mcpd',
    };
  }

  /** The WWW-Authenticate challenge for this access (RFC 6750, RFC 9728 resource_metadata, the scope to ask for). */
  challenge(access: Access, error?: { code: 'invalid_token' | 'insufficient_scope'; description: string }): string {
    const params = [`realm="mcpd"`, `resource_metadata="${this.metadataUrlOf(this.resourceOf(access))}"`, `scope="${scopeNeeded(access)}"`];
    if (error) params.push(`error="${error.code}"`, `error_description="${error.description.replace(/["\\]/g, "'")}"`);
    return `Bearer ${params.join(', ')}`;
  }

  /** 401 for a request without a token: where to learn how to get one. */
  missingToken(access: Access): AuthRejection {
    return {
      status: 401,
      wwwAuthenticate: this.challenge(access),
      body: {
        error: 'missing bearer token',
        details: {
          hint: `get an access token from ${this.settings.issuer} (mcpctl login), or send an mcpd token`,
          resource_metadata: this.metadataUrlOf(this.resourceOf(access)),
        },
      },
    };
  }

  /** 401 invalid_token (RFC 6750): the client should get a new token. */
  invalidToken(access: Access, message: string): AuthRejection {
    return {
      status: 401,
      wwwAuthenticate: this.challenge(access, { code: 'invalid_token', description: message }),
      body: { error: `invalid access token: ${message}` },
    };
  }

  /** Verifies an access token for this access and maps it to its principal, or the rejection to send. */
  async authorize(token: string, access: Access): Promise<AuthOutcome> {
    const jose = await loadJose();
    try {
      // Its shape first: the signature check alone would call a token that is not JSON badly signed, and needs the issuer.
      jose.decodeProtectedHeader(token);
      jose.decodeJwt(token);
    } catch (err) {
      return { rejection: this.invalidToken(access, `the access token is malformed: ${(err as Error).message}`) };
    }
    let getKey: Jose.JWTVerifyGetKey;
    try {
      getKey = await this.jwks(jose);
    } catch (err) {
      return { rejection: this.unverifiable((err as Error).message) };
    }
    let claims: Jose.JWTPayload;
    try {
      const audiences = [...new Set([this.audience, this.resourceOf(access)])];
      ({ payload: claims } = await jose.jwtVerify(token, getKey, {
        issuer: this.settings.issuer,
        audience: audiences,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      const reason = this.whyInvalid(err as Jose.errors.JOSEError, access);
      if (reason === undefined) return { rejection: this.unverifiable((err as Error).message) };
      return { rejection: this.invalidToken(access, reason) };
    }
    const mapped = principalFromClaims(claims, access, this.settings);
    if (mapped.ok) return { principal: mapped.principal };
    if (mapped.status === 401) return { rejection: this.invalidToken(access, mapped.message) };
    return {
      rejection: {
        status: 403,
        wwwAuthenticate: this.challenge(access, { code: 'insufficient_scope', description: mapped.message }),
        body: { error: mapped.message, details: { scopesNeeded: [scopeNeeded(access)], scopes: scopesOf(claims) } },
      },
    };
  }

  /** Why a token does not verify, in words a user can act on; undefined when the fault is not the token's (the issuer cannot be reached). */
  private whyInvalid(err: Jose.errors.JOSEError, access: Access): string | undefined {
    switch (err.code) {
      case 'ERR_JWT_EXPIRED':
        return 'the access token has expired';
      case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
        const claim = (err as Jose.errors.JWTClaimValidationFailed).claim;
        if (claim === 'aud') return `the access token is not for this resource (its "aud" must name ${this.resourceOf(access)} or ${this.audience})`;
        if (claim === 'iss') return `the access token was not issued by ${this.settings.issuer}`;
        if (claim === 'nbf') return 'the access token is not valid yet (nbf)';
        if (claim === 'exp') return 'the access token has no expiry (exp)';
        return `the access token's "${claim}" claim is invalid: ${err.message}`;
      }
      case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
        return "the access token's signature does not verify";
      case 'ERR_JWKS_NO_MATCHING_KEY':
        return `the access token is signed with a key ${this.settings.issuer} does not publish`;
      case 'ERR_JOSE_ALG_NOT_ALLOWED':
      case 'ERR_JOSE_NOT_SUPPORTED':
        return `the access token's signing algorithm is not accepted: ${err.message}`;
      case 'ERR_JWS_INVALID':
      case 'ERR_JWT_INVALID':
      case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
        return `the access token is malformed: ${err.message}`;
      default:
        // A JWKS that could not be fetched (timeout, network, bad document) says nothing about the token.
        return err.code === 'ERR_JWKS_TIMEOUT' || err.code === 'ERR_JWKS_INVALID' || !err.code ? undefined : `the access token does not verify: ${err.message}`;
    }
  }

  private unverifiable(reason: string): AuthRejection {
    return {
      status: 503,
      wwwAuthenticate: `Bearer realm="mcpd"`,
      body: { error: `cannot verify the access token now: the keys of ${this.settings.issuer} are unavailable (${reason})` },
    };
  }

  /** The issuer's key set, from the jwks_uri of its metadata (discovered once; again after a failure, at most every DISCOVERY_RETRY_MS). */
  private jwks(jose: JoseModule): Promise<Jose.JWTVerifyGetKey> {
    if (this.keys && !(this.keysFailedAt && Date.now() - this.keysFailedAt >= DISCOVERY_RETRY_MS)) return this.keys;
    this.keysFailedAt = 0;
    this.keys = this.discover().then(
      (metadata) => jose.createRemoteJWKSet(new URL(metadata.jwks_uri), { timeoutDuration: 5_000 }),
      (err: Error) => {
        this.keysFailedAt = Date.now();
        throw err;
      },
    );
    return this.keys;
  }

  /**
   * The issuer's metadata: OpenID discovery (`<issuer>/.well-known/openid-configuration`),
   * else RFC 8414 (`/.well-known/oauth-authorization-server` before the issuer's path). The
   * document must name the configured issuer exactly (RFC 8414 section 3.3).
   */
  async discover(): Promise<IssuerMetadata> {
    const issuer = new URL(this.settings.issuer);
    const path = issuer.pathname.replace(/\/+$/, '');
    const candidates = [`${issuer.origin}${path}/.well-known/openid-configuration`, `${issuer.origin}/.well-known/oauth-authorization-server${path}`];
    const failures: string[] = [];
    for (const url of candidates) {
      let res: Response;
      try {
        res = await this.fetchImpl(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(5_000) });
      } catch (err) {
        failures.push(`${url}: ${(err as Error).message}`);
        continue;
      }
      if (!res.ok) {
        await res.body?.cancel();
        failures.push(`${url}: HTTP ${res.status}`);
        continue;
      }
      const doc = (await res.json()) as Partial<IssuerMetadata>;
      if (doc.issuer !== this.settings.issuer) throw new Error(`${url} names the issuer "${String(doc.issuer)}", not ${this.settings.issuer}`);
      if (typeof doc.jwks_uri !== 'string' || !URL.canParse(doc.jwks_uri)) throw new Error(`${url} has no jwks_uri`);
      return { issuer: doc.issuer, jwks_uri: doc.jwks_uri };
    }
    throw new Error(`no authorization server metadata: ${failures.join('; ')}`);
  }
}

/** Serves a protected resource metadata document (public, for any origin: browsers' MCP clients read it too). */
export function serveProtectedResourceMetadata(res: ServerResponse, document: Record<string, unknown>): void {
  const body = JSON.stringify(document);
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'access-control-allow-origin': '*',
    'cache-control': 'max-age=300',
  });
  res.end(body);
}
