/**
 * DNS-rebinding protection for /mcp, /mcp/servers/<name> and /api: a web page on
 * another site must not reach mcpd through the user's browser. A browser names the
 * page's site in `Origin` on every cross-origin request, and after a DNS rebinding
 * (evil.example resolving to 127.0.0.1) it still sends `Host: evil.example`; so mcpd
 * answers only origins on its allow-list, and, while it listens on loopback only,
 * only loopback Host names. Requests without Origin (curl, mcpctl, MCP SDK clients,
 * the gateway link between mcpd processes) are not from a web page and pass.
 *
 * Pure: the settings parse the allow-list here, and the raw gateway handler of
 * src/mcpd.ts and the API's express middleware apply the same checkOrigin.
 */

export interface OriginPolicy {
  /** Extra allowed origins, normalized by URL (`https://app.example.com`, `http://10.1.2.3:8080`); loopback origins are always allowed. */
  allowedOrigins: readonly string[];
  /** Check Host too: mcpd listens on a loopback address only, so no honest request names another host. */
  checkHost: boolean;
}

export interface OriginRejection {
  status: 403;
  body: { error: string; details: { origin?: string; host?: string; hint: string } };
}

export const ALLOWED_ORIGINS_VARIABLE = 'MCPD_ALLOWED_ORIGINS';

/** localhost (and its subdomains, which resolve to loopback by RFC 6761), 127.0.0.0/8 and ::1. */
export function isLoopbackHostname(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (name === '[::1]' || name === '::1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** Whether mcpd bound to this address is reachable from this machine only. */
export function isLoopbackBind(host: string): boolean {
  return isLoopbackHostname(host.replace(/^\[(.*)\]$/, '$1'));
}

/**
 * One allow-list entry as an origin (scheme, host and port, as browsers send it), or
 * why it is not one. `https://App.Example.com:443/` becomes `https://app.example.com`.
 */
export function normalizeOrigin(raw: string): { ok: true; origin: string } | { ok: false; error: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, error: `"${raw}" is not a URL` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, error: `"${raw}" is not an http:// or https:// origin` };
  if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    return { ok: false, error: `"${raw}" is not an origin: give only scheme, host and port, like https://app.example.com` };
  }
  return { ok: true, origin: url.origin };
}

/** MCPD_ALLOWED_ORIGINS: comma-separated origins; an empty entry is skipped, a bad one is the error. */
export function parseAllowedOrigins(raw: string): { ok: true; origins: string[] } | { ok: false; error: string } {
  const origins: string[] = [];
  for (const entry of raw.split(',').map((e) => e.trim())) {
    if (entry === '') continue;
    const parsed = normalizeOrigin(entry);
    if (!parsed.ok) return parsed;
    if (!origins.includes(parsed.origin)) origins.push(parsed.origin);
  }
  return { ok: true, origins };
}

/** The hostname of a Host header value (`[::1]:7400` -> `[::1]`, `Example.com:80` -> `example.com`); undefined when it is not one. */
function hostnameOf(host: string): string | undefined {
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return undefined;
  }
}

/** The policy of an mcpd listening on `apiHost` with these extra origins. */
export function originPolicy(settings: { apiHost: string; allowedOrigins: readonly string[] }): OriginPolicy {
  return { allowedOrigins: settings.allowedOrigins, checkHost: isLoopbackBind(settings.apiHost) };
}

/** The Host every local client sends, answered without parsing a URL (this check runs on every gateway call). */
const PLAIN_LOOPBACK_HOST = /^(?:127\.0\.0\.1|localhost|\[::1\])(?::\d{1,5})?$/;

/** A header as one string (Node gives a repeated one as an array; two Origins are as suspicious as a wrong one). */
function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Keeps a hostile header value short and on one line in the reply. */
function quoted(value: string): string {
  const oneLine = value.replace(/[\r\n\t]/g, ' ');
  return oneLine.length > 200 ? `${oneLine.slice(0, 200)}…` : oneLine;
}

/**
 * Null when the request may go on, else the 403 to answer. `origin` and `host` are the
 * request's headers as node:http hands them over.
 */
export function checkOrigin(headers: { origin?: string | string[]; host?: string | string[] }, policy: OriginPolicy): OriginRejection | null {
  const origin = single(headers.origin);
  if (origin !== undefined) {
    const parsed = normalizeOrigin(origin);
    const allowed = parsed.ok && (isLoopbackHostname(new URL(parsed.origin).hostname) || policy.allowedOrigins.includes(parsed.origin));
    if (!allowed) {
      const shown = quoted(origin);
      return {
        status: 403,
        body: {
          error: `origin "${shown}" is not allowed`,
          details: { origin: shown, hint: `only loopback origins and those in ${ALLOWED_ORIGINS_VARIABLE} may call mcpd from a browser` },
        },
      };
    }
  }
  const host = single(headers.host);
  if (policy.checkHost && host !== undefined && !PLAIN_LOOPBACK_HOST.test(host)) {
    const hostname = hostnameOf(host);
    const allowed =
      hostname !== undefined && (isLoopbackHostname(hostname) || policy.allowedOrigins.some((o) => new URL(o).hostname === hostname.toLowerCase()));
    if (!allowed) {
      const shown = quoted(host);
      return {
        status: 403,
        body: {
          error: `host "${shown}" is not allowed`,
          details: {
            host: shown,
            hint: `mcpd listens on loopback: requests must name a loopback host, or a host of ${ALLOWED_ORIGINS_VARIABLE} (e.g. behind a reverse proxy)`,
          },
        },
      };
    }
  }
  return null;
}
