/**
 * The Docker engine calls of a start and a stop as spans (`docker create`, `docker start`,
 * ...), children of whatever span is active (the startContainer activity's), so a trace
 * reaches from an API call down to the engine. Long-lived calls (attach, wait, logs,
 * events) are passed through untraced: a span of hours explains nothing.
 */
import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { ContainerRuntime } from '../docker/runtime';

const TRACED = new Set(['create', 'start', 'stop', 'remove', 'inspect', 'imageExists', 'inspectImage', 'buildImage', 'listOwned']);

export function tracedRuntime(runtime: ContainerRuntime, tracer: Tracer): ContainerRuntime {
  return new Proxy(runtime, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== 'string' || !TRACED.has(property) || typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      return (...args: unknown[]) => {
        const span = tracer.startSpan(`docker ${property}`, { kind: SpanKind.CLIENT, attributes: { 'mcpd.docker.operation': property } });
        if (property === 'create') span.setAttribute('mcpd.container.name', String((args[0] as { name?: string })?.name ?? ''));
        return context
          .with(trace.setSpan(context.active(), span), () => method.apply(target, args))
          .then(
            (result) => {
              span.end();
              return result;
            },
            (error: unknown) => {
              span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
              span.end();
              throw error;
            },
          );
      };
    },
  });
}
