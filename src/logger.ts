import { trace, type Span } from '@opentelemetry/api';
import pino from 'pino';

/**
 * What a component needs from a logger. The process's pino logger (createLogger)
 * is one; components take this, so a test can pass silentLogger or a recorder.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** The active span's trace and span id, as log fields; empty outside a span. */
export function traceIds(): { trace_id?: string; span_id?: string } {
  return spanLogFields(trace.getActiveSpan());
}

/** A span's trace and span id, as log fields; empty without a span. */
export function spanLogFields(span: Span | undefined): { trace_id?: string; span_id?: string } {
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/**
 * One structured logger for the process. Secret values never reach it: the
 * redact paths are a second line of defence for env blocks and auth headers.
 */
export function createLogger(level = process.env.MCPD_LOG_LEVEL ?? 'info'): pino.Logger {
  return pino({
    level,
    base: { service: 'mcpd' },
    // A line logged inside a traced request or activity names its trace (nothing without tracing).
    mixin: traceIds,
    redact: {
      paths: ['env', '*.env', 'Env', '*.Env', 'token', '*.token', 'headers.authorization', '*.headers.authorization', 'data', '*.data'],
      censor: '[redacted]',
    },
  });
}
