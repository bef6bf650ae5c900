import pino from 'pino';

export type Logger = pino.Logger;

/**
 * One structured logger for the process. Secret values never reach it: the
 * redact paths are a second line of defence for env blocks and auth headers.
 */
export function createLogger(level = process.env.MCPD_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { service: 'mcpd' },
    redact: {
      paths: ['env', '*.env', 'Env', '*.Env', 'token', '*.token', 'headers.authorization', '*.headers.authorization', 'data', '*.data'],
      censor: '[redacted]',
    },
  });
}
