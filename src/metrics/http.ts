/**
 * GET /metrics on the API port. The caller (src/mcpd.ts) has checked the bearer token
 * first: metrics name servers and nodes, so they are served to the same callers as
 * the API (Prometheus sends the token with `authorization.credentials_file`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { McpdMetrics } from './registry';

export const METRICS_PATH = '/metrics';

/** Whether a request URL names /metrics (a query string is allowed and ignored). */
export function isMetricsPath(url: string | undefined): boolean {
  if (!url) return false;
  const queryAt = url.indexOf('?');
  return (queryAt === -1 ? url : url.slice(0, queryAt)) === METRICS_PATH;
}

/** Answers with the exposition; never throws (a failure is a 500 with one line). */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, metrics: McpdMetrics | undefined): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed: /metrics answers GET\n');
    return;
  }
  if (!metrics) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics are off (MCPD_METRICS=false)\n');
    return;
  }
  try {
    const body = await metrics.exposition();
    res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (err) {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`collecting metrics failed: ${(err as Error).message}\n`);
  }
}
