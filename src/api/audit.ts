/**
 * The API's part of the audit trail: a record of every change (PUT, POST, PATCH, DELETE
 * under /api/v1, refused ones included) and GET /api/v1/audit, which reads the trail.
 * Bodies are never recorded (a secret's data, a token's value).
 */
import type { RequestHandler } from 'express';
import type { Principal } from '../contracts/api';
import type { AuditSink } from '../audit/log';
import { apiServerOf, roundedMs, serverOfInstance } from '../audit/record';

const CHANGES = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);

/** The server a change is about: /servers/<name>… or /instances/<server>:<n>…. */
function serverOfPath(path: string): string | null {
  const server = apiServerOf(path);
  if (server) return server;
  const instance = /^\/instances\/([^/]+)/.exec(path);
  if (!instance) return null;
  let id: string;
  try {
    id = decodeURIComponent(instance[1]);
  } catch {
    return null;
  }
  return serverOfInstance(id.startsWith('mcp-instance:') ? id : `mcp-instance:${id}`);
}

/** What refused a request, from its status and the WWW-Authenticate header the bearer check set. */
function refusedBy(status: number, wwwAuthenticate: string): string {
  if (wwwAuthenticate.includes('insufficient_scope')) return 'role';
  if (status === 401 || wwwAuthenticate.includes('invalid_token')) return 'authentication';
  return 'role';
}

/** Mount before the bearer check, so refused changes are recorded too. `prefix` is where the router is mounted. */
export function auditApiChanges(sink: AuditSink, prefix: string): RequestHandler {
  return (req, res, next) => {
    if (!CHANGES.has(req.method)) return next();
    const time = new Date().toISOString();
    const startedAt = performance.now();
    const path = req.path;
    res.once('finish', () => {
      const principal = res.locals.principal as Principal | undefined;
      const status = res.statusCode;
      const refused = !principal && (status === 401 || status === 403);
      const role = principal ? `role ${principal.role}` : 'authentication';
      sink.write({
        time,
        kind: 'api',
        principal: principal ? { name: principal.name, source: principal.source } : null,
        server: serverOfPath(path),
        instance: null,
        method: `${req.method} ${prefix}${path}`,
        target: null,
        decision: refused || (principal && status === 403) ? 'denied' : 'allowed',
        decidedBy: refused ? refusedBy(status, String(res.getHeader('www-authenticate') ?? '')) : role,
        outcome: status < 400 ? 'ok' : 'error',
        ...(status >= 400 ? { code: status } : {}),
        latencyMs: roundedMs(performance.now() - startedAt),
        redactions: 0,
      });
    });
    next();
  };
}
