/**
 * Server spans of mcpd's HTTP port, and the trace a request carries on to upstreams.
 *
 * A request's W3C `traceparent` (and `tracestate`) is taken as the parent, so a
 * client's trace continues through the API or the gateway; the span ends with the
 * response.
 *
 * MCP traffic carries its trace explicitly rather than in the active context: the
 * active context is an AsyncLocalStorage, and on Node 20 entering one makes every
 * promise of the process pay a hook, which cost the gateway more than a quarter of
 * its calls per second. So the gateway hands each message the server span as
 * trace headers (the `requestInfo.headers` the MCP SDK gives its handlers), reads
 * them back with traceContextOf, and upstream requests carry the call's own span.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Tracer } from '@opentelemetry/api';
import { spanLogFields } from '../logger';

const serverSpans = new WeakMap<IncomingMessage, Context>();
/** The context each headers object of traceHeadersOf was made from: reading it back needs no parsing. */
const headerContexts = new WeakMap<object, Context>();

/** Starts the server span of a request (the context it is active in is returned, and kept for traceHeadersOf). */
export function startServerSpan(tracer: Tracer, req: IncomingMessage, res: ServerResponse, name: string): Context {
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const span = tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
  // Attributes only for the spans sampled: most are not, and each costs the gateway's calls.
  if (span.isRecording()) span.setAttributes({ 'http.request.method': req.method ?? '', 'url.path': (req.url ?? '/').split('?')[0] });
  // 'close' follows 'finish' on every response, and ends one whose client went away as well.
  res.once('close', () => {
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  const traced = trace.setSpan(parent, span);
  serverSpans.set(req, traced);
  return traced;
}

/** The server span of a request as W3C trace headers; undefined when it has none (tracing off, or an untraced path). */
export function traceHeadersOf(req: IncomingMessage): Record<string, string> | undefined {
  const traced = serverSpans.get(req);
  if (!traced) return undefined;
  const headers: Record<string, string> = {};
  propagation.inject(traced, headers);
  headerContexts.set(headers, traced);
  return headers;
}

/** The request's server span as log fields (what the logger's mixin gives lines written in the active context). */
export function requestTraceIds(req: IncomingMessage): { trace_id?: string; span_id?: string } {
  const traced = serverSpans.get(req);
  return spanLogFields(traced && trace.getSpan(traced));
}

/** The trace that W3C trace headers name, as a parent context; undefined without a traceparent. */
export function traceContextOf(headers: Record<string, string | string[] | undefined> | undefined): Context | undefined {
  if (headers === undefined) return undefined;
  return headerContexts.get(headers) ?? (headers.traceparent === undefined ? undefined : propagation.extract(ROOT_CONTEXT, headers));
}

/**
 * A fetch for HTTP upstream transports that sends a request's trace along
 * (traceparent), so an MCP server that traces continues the client's trace.
 * `traceOf` finds the trace of a JSON-RPC request by its id; requests it does not
 * know (the handshake, notifications) carry the active context's, if any.
 */
export function tracePropagatingFetch(traceOf: (id: unknown) => Context | undefined, base: typeof fetch = fetch): typeof fetch {
  return (input, init) => {
    const headers = new Headers(init?.headers);
    const traced = (typeof init?.body === 'string' && traceOf(requestIdOf(init.body))) || context.active();
    propagation.inject(traced, headers, { set: (carrier, key, value) => carrier.set(key, value) });
    return base(input, { ...init, headers });
  };
}

function requestIdOf(body: string): unknown {
  try {
    return (JSON.parse(body) as { id?: unknown }).id;
  } catch {
    return undefined;
  }
}
