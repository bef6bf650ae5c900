/**
 * The keys that let gateways of one mcpd cluster trust each other, all derived from
 * one shared secret (MCPD_GATEWAY_SECRET, else <data dir>/gateway-secret):
 *   - the link token: the bearer a front gateway presents to a node's gateway when it
 *     forwards MCP traffic to an instance that node runs;
 *   - the session key: signs Streamable HTTP session ids, so any front gateway can take
 *     over a session another one opened (the id itself says what the session routes
 *     to; no front holds routing state another one needs).
 * Separate HMAC derivations keep one key from ever serving as the other: a session id
 * says nothing about the link token, and the secret never leaves the process.
 * Pure apart from node:crypto; the file handling is in ensureGatewaySecret.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readOrCreateSecretFile } from '../secrets/localSecretFile';

export const GATEWAY_SECRET_FILE = 'gateway-secret';
const SECRET_PATTERN = /^[A-Za-z0-9._~+/=-]{32,}$/;

/** What a session id carries: the route it was opened on ('' for /mcp, a server name, or `instance:<id>` on a node link). */
export interface SessionClaims {
  route: string;
  /** Who opened it (source:name of the principal); only they may use it on any front. */
  principal?: string;
}

export class GatewayKeys {
  /** The bearer of the gateway link (never logged, never in an error). */
  readonly linkToken: string;
  private readonly sessionKey: Buffer;

  constructor(secret: string) {
    if (!SECRET_PATTERN.test(secret)) throw new Error('the gateway secret must be at least 32 characters of letters, digits or ._~+/=-');
    this.linkToken = createHmac('sha256', secret).update('mcpd gateway link v1').digest('base64url');
    this.sessionKey = createHmac('sha256', secret).update('mcpd gateway session v1').digest();
  }

  /** Whether an Authorization header carries the link token (compared by digest: no length or content leaks through timing). */
  linkAuthorized(authorization: string | undefined): boolean {
    const match = authorization ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization) : null;
    if (!match) return false;
    return timingSafeEqual(digest(match[1]), digest(this.linkToken));
  }

  /**
   * A new session id for a route: `s1.<claims>.<nonce>.<mac>`, base64url parts only, so
   * it is visible ASCII as the MCP spec requires; 128 random bits make it unguessable.
   */
  issueSession(claims: SessionClaims): string {
    const body = `s1.${Buffer.from(JSON.stringify({ r: claims.route, p: claims.principal })).toString('base64url')}.${randomBytes(16).toString('base64url')}`;
    return `${body}.${this.mac(body)}`;
  }

  /** The claims of a session id this cluster issued; undefined for anything else (forged, altered, foreign, malformed). */
  verifySession(id: string): SessionClaims | undefined {
    const parts = id.split('.');
    if (parts.length !== 4 || parts[0] !== 's1' || id.length > 4096) return undefined;
    const body = parts.slice(0, 3).join('.');
    const expected = Buffer.from(this.mac(body));
    const presented = Buffer.from(parts[3]);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return undefined;
    try {
      const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as { r?: unknown; p?: unknown };
      if (typeof claims.r !== 'string') return undefined;
      return typeof claims.p === 'string' ? { route: claims.r, principal: claims.p } : { route: claims.r };
    } catch {
      return undefined;
    }
  }

  private mac(body: string): string {
    return createHmac('sha256', this.sessionKey).update(body).digest('base64url');
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * The cluster's gateway secret: the given one (MCPD_GATEWAY_SECRET), else the one in
 * `<dataDir>/gateway-secret`, created (32 random bytes, hex, mode 0600, exclusively, so
 * processes starting together agree) when absent. Processes that share a data dir
 * (npm run cluster) share it; others must be given the same MCPD_GATEWAY_SECRET.
 */
export function ensureGatewaySecret(dataDir: string, given?: string): string {
  return given ?? readOrCreateSecretFile(dataDir, GATEWAY_SECRET_FILE, SECRET_PATTERN, 'gateway secret');
}
