/**
 * OpenTelemetry traces of one mcpd process: a tracer provider of its own (not the global
 * one, so a test process can run several mcpds, each with its exporter), spans exported
 * over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (or to the exporter a test
 * passes), sampled as the standard OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG say
 * (default: every trace; `parentbased_traceidratio` with `0.1` keeps one in ten).
 *
 * What propagates a trace between processes is global in OpenTelemetry's API: the active
 * context (AsyncLocalStorage) and the W3C traceparent propagator, which the Temporal
 * interceptors use to carry it through workflow and activity headers. installOtelContext
 * sets them once per process and never replaces ones that are there; a gateway-only
 * process has no use for the active context and goes without it (see TracingOptions).
 */
import { context, propagation, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface TracingOptions {
  /** The node this process runs as (resource attribute mcpd.node). */
  node: string;
  /** An OTLP/HTTP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); spans go to <endpoint>/v1/traces. */
  otlpEndpoint?: string;
  /** Spans go here instead, each as it ends (tests pass an InMemorySpanExporter). */
  exporter?: SpanExporter;
  /**
   * Whether the process needs the active context (an AsyncLocalStorage): its API and its
   * worker hand traces to Temporal's interceptors through it. A gateway alone carries its
   * traces explicitly (src/tracing/http.ts), and without it no promise pays a hook.
   */
  activeContext: boolean;
}

export interface Tracing {
  tracer: Tracer;
  resource: Resource;
  /** What the Temporal worker's workflow span sink hands the workflows' spans to. */
  spanProcessor: SpanProcessor;
  /** Exports what is pending and stops. */
  shutdown(): Promise<void>;
}

export const TRACER_NAME = 'mcpd';

/** Tracing for this process, or undefined when neither an endpoint nor an exporter is given (tracing off). */
export function createTracing(options: TracingOptions): Tracing | undefined {
  if (!options.exporter && !options.otlpEndpoint) return undefined;
  installOtelContext(options.activeContext);
  const resource = new Resource({ 'service.name': 'mcpd', 'mcpd.node': options.node });
  const spanProcessor = options.exporter
    ? new SimpleSpanProcessor(options.exporter)
    : new BatchSpanProcessor(new OTLPTraceExporter({ url: `${options.otlpEndpoint!.replace(/\/+$/, '')}/v1/traces` }));
  // BasicTracerProvider reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG itself.
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  return {
    tracer: provider.getTracer(TRACER_NAME),
    resource,
    spanProcessor,
    shutdown: () => provider.shutdown(),
  };
}

/** The process-wide propagator and (when wanted) context manager the trace travels with; a second call changes nothing. */
export function installOtelContext(activeContext: boolean): void {
  // Each returns false (and leaves the first) when one is set already.
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  if (activeContext) context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}
