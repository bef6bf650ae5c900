#!/usr/bin/env node
/**
 * The mcpd process. By default one process plays every role: the REST API, the
 * MCP gateway and the Temporal workers (control queue `mcpd` and this node's
 * queue `mcpd-node-<node>`). MCPD_ROLES=api,gateway,worker picks a subset, so
 * scaling out is configuration. `npm start` runs it on the embedded stack.
 * This file is the command-line entry only: createMcpd (src/mcpd.ts) assembles the process.
 */
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type pino from 'pino';
import { loadSettings, type Settings } from './config/settings';
import { createLogger } from './logger';
import { createMcpd, temporalSdkMetricsAddress, temporalSdkMetricsExporter, type Mcpd } from './mcpd';

/**
 * The Temporal SDK's runtime, once per process and before any connection: its own messages
 * (bundling, worker state) go through pino, from warn up unless asked, and its metrics to a
 * Prometheus exporter on loopback that mcpd's /metrics appends. Returns that exporter's URL.
 */
async function installSdkRuntime(settings: Settings, log: pino.Logger): Promise<string | undefined> {
  const sdkLog = log.child({ component: 'temporal-sdk' });
  const sdkLevel = (process.env.MCPD_TEMPORAL_LOG_LEVEL ?? 'WARN') as LogLevel;
  const metricsAddress = settings.metrics ? await temporalSdkMetricsAddress(settings.temporalMetrics) : undefined;
  Runtime.install({
    logger: new DefaultLogger(sdkLevel, ({ level, message, meta }) => {
      const method = level === 'ERROR' ? 'error' : level === 'WARN' ? 'warn' : level === 'INFO' ? 'info' : 'debug';
      sdkLog[method]({ ...meta }, message);
    }),
    ...(metricsAddress ? { telemetryOptions: { metrics: temporalSdkMetricsExporter(metricsAddress) } } : {}),
  });
  return metricsAddress ? `http://${metricsAddress}/metrics` : undefined;
}

async function main(): Promise<void> {
  const settings = loadSettings();
  const log = createLogger(settings.logLevel);
  const temporalSdkMetricsUrl = await installSdkRuntime(settings, log);

  let starting: Promise<Mcpd> | undefined;
  let stopping = false;
  const shutdown = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // Containers keep running: their workflows own them, and the next mcpd re-attaches.
    await (await starting?.catch(() => undefined))?.close();
    process.exit(code);
  };
  starting = createMcpd(settings, { logger: log, onFatal: () => void shutdown(1), temporalSdkMetricsUrl });
  await starting;
  process.once('SIGINT', () => void shutdown(0));
  process.once('SIGTERM', () => void shutdown(0));
}

main().catch((err: Error) => {
  // One line a person can act on; the stack only with MCPD_LOG_LEVEL=debug.
  process.stderr.write(`mcpd: ${err.message}\n`);
  if (process.env.MCPD_LOG_LEVEL === 'debug') process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
