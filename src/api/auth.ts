/**
 * One bearer token guards the API and the gateway. It is generated on first
 * start and kept in the data dir with mode 0600, where mcpctl finds it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { readOrCreateSecretFile } from '../secrets/localSecretFile';
import type { Principal, TokenRole } from '../contracts/api';
import { TOKEN_PREFIX, type TokenStore } from './tokens';
import type { OidcResourceServer } from './oidc';

export const API_TOKEN_FILE = 'api-token';
const TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]{16,}$/;

export function apiTokenPath(dataDir: string): string {
  return path.join(dataDir, API_TOKEN_FILE);
}

/**
 * Returns the token in `<dataDir>/api-token`, creating it (32 random bytes, hex)
 * when absent. The file is created exclusively, so two processes starting
 * together agree on one token; its mode is tightened to 0600 if it was loosened.
 */
export function ensureApiToken(dataDir: string): string {
  return readOrCreateSecretFile(dataDir, API_TOKEN_FILE, TOKEN_PATTERN, 'API token');
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares digests, so neither the length nor the content of the token leaks through timing. */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

export interface AuthRejection {
  /** 503: the token could not be checked (the issuer's keys are unreachable). */
  status: 401 | 403 | 503;
  wwwAuthenticate: string;
  body: { error: string; details?: unknown };
}

/** The bearer-token check of the API and the gateway: null when allowed, else the rejection to send. */
export function checkBearer(authorization: string | undefined, token: string): AuthRejection | null {
  const match = authorization ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization) : null;
  if (!match) {
    return {
      status: 401,
      wwwAuthenticate: 'Bearer realm="mcpd"',
      body: { error: 'missing bearer token', details: { hint: 'send "Authorization: Bearer <token>"; the token is in <data dir>/api-token' } },
    };
  }
  if (!tokenMatches(match[1], token)) {
    return { status: 403, wwwAuthenticate: 'Bearer realm="mcpd", error="invalid_token"', body: { error: 'invalid bearer token' } };
  }
  return null;
}

/** What a request wants to do, for the role check. `path` is below /api/v1. */
export type Access =
  | {
      kind: 'gateway';
      server?: string;
      /** /mcp/virtual/<name>, with the servers its spec draws from (none when it does not exist). */
      virtual?: { name: string; servers: string[] };
    }
  | { kind: 'api'; method: string; path: string };

/** Why a role may not do this, or null when it may. */
export function roleRefusal(role: TokenRole, access: Access): string | null {
  if (role === 'admin') return null;
  if (access.kind === 'gateway') return role === 'viewer' ? 'the viewer role may not use the gateway (/mcp)' : null;
  if (role === 'client') return 'the client role may use the gateway (/mcp) only, not the API';
  if (/^\/tokens(\/|$)/.test(access.path)) return 'only the admin role may manage tokens';
  if (role === 'viewer' && /^\/audit(\/|$)/.test(access.path)) return 'the viewer role may not read the audit trail (admin and operator may)';
  const reads = access.method === 'GET' || access.method === 'HEAD';
  if (!reads && /^\/policies(\/|$)/.test(access.path)) return 'only the admin role may change policies';
  if (role === 'viewer' && !reads) return 'the viewer role may only read (GET)';
  return null;
}

/** The first-start token's principal: may do everything. */
export const ADMIN_PRINCIPAL: Principal = Object.freeze({ name: 'admin', role: 'admin', servers: null, source: 'admin-token', groups: [] });

/** Who a request acts as, or the rejection to send. */
export type AuthOutcome = { principal: Principal; rejection?: undefined } | { rejection: AuthRejection; principal?: undefined };

/**
 * The bearer check of the API and the gateway with scoped tokens: the first-start token
 * is admin, a scoped token has its role.
 */
export function authorize(authorization: string | undefined, adminToken: string, tokens: TokenStore | undefined, access: Access): AuthOutcome {
  const match = authorization ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization) : null;
  if (!match || !tokens || !match[1].startsWith(TOKEN_PREFIX)) {
    const rejection = checkBearer(authorization, adminToken);
    return rejection ? { rejection } : { principal: ADMIN_PRINCIPAL };
  }
  const found = tokens.lookup(match[1]);
  if (!found.ok) {
    const why = found.reason === 'expired' ? 'expired bearer token' : 'invalid bearer token';
    return { rejection: { status: 403, wwwAuthenticate: 'Bearer realm="mcpd", error="invalid_token"', body: { error: why } } };
  }
  const rejection = refusalFor(found.principal, access);
  return rejection ? { rejection } : { principal: found.principal };
}

/** Why a token limited to some servers may not use this gateway endpoint, or null. */
export function serversRefusal(servers: string[] | null, access: Access): string | null {
  if (servers === null || access.kind !== 'gateway') return null;
  if (access.virtual) {
    // A virtual server is the sum of its servers: a token may use it when it may use every one of them.
    const outside = access.virtual.servers.filter((s) => !servers.includes(s));
    return outside.length === 0
      ? null
      : `the token is limited to the servers ${servers.join(', ')}; virtual server "${access.virtual.name}" also draws from ${outside.join(', ')}`;
  }
  if (access.server === undefined) return `the token is limited to the servers ${servers.join(', ')}: connect to /mcp/servers/<name>, not the /mcp aggregate`;
  return servers.includes(access.server) ? null : `the token is limited to the servers ${servers.join(', ')}`;
}

/** What a request calls, as refusals name it: an endpoint of the gateway, or a method and path of the API. */
export function describeAccess(access: Access): string {
  if (access.kind === 'api') return `${access.method} /api/v1${access.path}`;
  if (access.virtual) return `/mcp/virtual/${access.virtual.name}`;
  return access.server === undefined ? '/mcp' : `/mcp/servers/${access.server}`;
}

function refusalFor(principal: Principal, access: Access): AuthRejection | null {
  const reason = roleRefusal(principal.role, access) ?? serversRefusal(principal.servers, access);
  if (!reason) return null;
  const what = describeAccess(access);
  return {
    status: 403,
    wwwAuthenticate: 'Bearer realm="mcpd", error="insufficient_scope"',
    body: { error: `token "${principal.name}" (role ${principal.role}) may not use ${what}`, details: { role: principal.role, reason } },
  };
}

/** What requests are checked against: the first-start token, scoped tokens, and with an issuer configured its access tokens. */
export interface Credentials {
  adminToken: string;
  tokens?: TokenStore;
  oidc?: OidcResourceServer;
}

/**
 * authorize() with OAuth access tokens besides mcpd's own tokens. Without an issuer it is
 * authorize(), answered at once. With one, a request without a token or with an invalid
 * one gets 401 pointing to the protected resource metadata (RFC 6750, RFC 9728), so an MCP
 * client can start its OAuth flow; a JWT is verified against the issuer (oidc.ts).
 */
export function authorizeRequest(authorization: string | undefined, credentials: Credentials, access: Access): AuthOutcome | Promise<AuthOutcome> {
  const { oidc } = credentials;
  if (!oidc) return authorize(authorization, credentials.adminToken, credentials.tokens, access);
  const match = authorization ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization) : null;
  if (!match) return { rejection: oidc.missingToken(access) };
  const presented = match[1];
  if (!presented.startsWith(TOKEN_PREFIX) && looksLikeJwt(presented)) return oidc.authorize(presented, access);
  const outcome = authorize(authorization, credentials.adminToken, credentials.tokens, access);
  if (outcome.rejection?.wwwAuthenticate.includes('error="invalid_token"')) return { rejection: oidc.invalidToken(access, outcome.rejection.body.error) };
  return outcome;
}

/** Whether a presented bearer value is a JWT (three base64url parts): one for the issuer's keys, not mcpd's token files. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(token);
}

/** Sends a rejection on a plain node:http response (the gateway is served without express). */
export function sendRejection(res: ServerResponse, rejection: AuthRejection): void {
  res.writeHead(rejection.status, { 'content-type': 'application/json', 'www-authenticate': rejection.wwwAuthenticate });
  res.end(JSON.stringify(rejection.body));
}

/**
 * 401 without a bearer token (with WWW-Authenticate), 403 with a wrong one or one whose role
 * may not do this; with an issuer configured, 401 invalid_token for a wrong one (authorizeRequest).
 */
export function bearerAuth(token: string, tokens?: TokenStore, oidc?: OidcResourceServer): RequestHandler {
  const credentials: Credentials = { adminToken: token, tokens, oidc };
  return (req, res, next) => {
    const settle = ({ rejection, principal }: AuthOutcome) => {
      if (rejection) return sendRejection(res, rejection);
      res.locals.principal = principal;
      next();
    };
    const outcome = authorizeRequest(req.headers.authorization, credentials, { kind: 'api', method: req.method, path: req.path });
    if ('then' in outcome) return outcome.then(settle, next);
    settle(outcome);
  };
}
