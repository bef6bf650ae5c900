/**
 * Loaded by mocha before any test (see scripts/test.mjs): the Temporal SDK logs
 * only errors during tests, so the output shows test results rather than
 * workflow-bundle listings and the time-skipping server's capability warnings.
 * MCPD_TEST_TEMPORAL_LOG_LEVEL=DEBUG brings them back when debugging.
 */
import { DefaultLogger, Runtime, makeTelemetryFilterString, type LogLevel } from '@temporalio/worker';

const level = (process.env.MCPD_TEST_TEMPORAL_LOG_LEVEL ?? 'ERROR') as LogLevel;
Runtime.install({
  logger: new DefaultLogger(level),
  telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: level }), forward: {} } },
});
