/**
 * The Temporal SDK's own metrics (workflow and activity task latencies, poller and slot
 * counts, sticky cache, request failures to the Temporal frontend) come from its Rust
 * core, which exports Prometheus on an HTTP port of its own. It is configured once per
 * process, in Runtime.install before any NativeConnection or Worker exists (src/main.ts
 * does that); mcpd's /metrics then scrapes that port on loopback and appends its series
 * (all named temporal_*), so Prometheus needs one target and one token per mcpd.
 */
import type { MetricsExporterConfig } from '@temporalio/worker';
import type { Settings } from '../config/settings';
import { freePort } from '../embedded/process';

/** The address the SDK's exporter binds to for a setting of MCPD_TEMPORAL_METRICS; undefined when off. */
export async function temporalSdkMetricsAddress(setting: Settings['temporalMetrics']): Promise<string | undefined> {
  if (setting === 'off') return undefined;
  if (setting === 'auto') return `127.0.0.1:${await freePort()}`;
  return `${setting.host}:${setting.port}`;
}

/**
 * telemetryOptions.metrics for Runtime.install: Prometheus naming (counters end in
 * _total, durations are histograms in seconds with the unit in the name), so the
 * appended series pass `promtool check metrics` like mcpd's own.
 */
export function temporalSdkMetricsExporter(bindAddress: string): MetricsExporterConfig {
  return { prometheus: { bindAddress, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true } };
}

/** The SDK exporter's exposition; rejects when it does not answer within timeoutMs. */
export async function scrapeTemporalSdk(url: string, timeoutMs = 2_000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`the Temporal SDK's metrics exporter at ${url} answered HTTP ${res.status}`);
  return res.text();
}
