/**
 * Server spans of mcpd's HTTP port: a request's W3C `traceparent` (and `tracestate`) is
 * taken as the parent, so a client's trace continues through the API or the gateway; the
 * span is active while the request is handled and ends with the response.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, propagation, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';

/** Runs `handle` inside a server span named `name`; without a tracer it just runs it. */
export function withServerSpan(tracer: Tracer | undefined, req: IncomingMessage, res: ServerResponse, name: string, handle: () => void): void {
  if (!tracer) return handle();
  const parent = propagation.extract(context.active(), req.headers);
  const path = (req.url ?? '/').split('?')[0];
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method ?? '', 'url.path': path } }, parent);
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  };
  res.once('finish', end);
  res.once('close', end);
  context.with(trace.setSpan(parent, span), handle);
}

/**
 * A fetch for HTTP upstream transports that sends the active trace along (traceparent),
 * so an MCP server that traces continues the client's trace.
 */
export function tracePropagatingFetch(base: typeof fetch = fetch): typeof fetch {
  return (input, init) => {
    const headers = new Headers(init?.headers);
    propagation.inject(context.active(), headers, { set: (carrier, key, value) => carrier.set(key, value) });
    return base(input, { ...init, headers });
  };
}
