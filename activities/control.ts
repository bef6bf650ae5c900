/**
 * Control activities (task queue `mcpd`): they need OpenBao, not a Docker engine.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { parseInstanceId } from '../src/contracts/instance';
import type { EnvEntry } from '../src/contracts/spec';
import { secretFailureReason } from '../src/metrics/classify';
import { secondsSince, type McpdMetrics } from '../src/metrics/registry';
import type { SecretStore } from '../src/secrets/types';
import { plainEnvEntry } from '../workflows/instanceMachine';
import { FAILURE_TYPES, type ResolvedEnvEntry } from './types';

export interface ControlActivityDeps {
  secrets: SecretStore;
  /** Counts start attempts with secrets and secret look-ups (none: nothing is recorded). */
  metrics?: McpdMetrics;
}

export function createControlActivities({ secrets, metrics }: ControlActivityDeps) {
  return {
    /**
     * Pins every secretRef to its current KV v2 version, so the container start
     * reads exactly what was checked here and history never holds a value. A
     * secret that cannot be read fails the whole attempt: a server must never
     * start with whatever env survived.
     */
    async resolveEnv(env: EnvEntry[]): Promise<ResolvedEnvEntry[]> {
      // An attempt with secrets begins here (one without begins at startContainer); Temporal's retries of it are the same attempt.
      const instance = metrics ? instanceActivityCall() : undefined;
      if (instance?.attempt === 1) metrics?.startAttempted(instance.server);
      const resolved: ResolvedEnvEntry[] = [];
      for (const entry of env) {
        if (entry.secretRef === undefined) {
          resolved.push(plainEnvEntry(entry));
          continue;
        }
        const startedAt = performance.now();
        try {
          resolved.push({ name: entry.name, secret: await secrets.pin(entry.secretRef) });
          metrics?.secretLookedUp('pin', secondsSince(startedAt));
        } catch (err) {
          const failure = secretFailure(err, entry.name);
          metrics?.secretLookedUp('pin', secondsSince(startedAt), secretFailureReason(failure.message));
          if (instance) metrics?.startFailed(instance.server, 'secret');
          throw failure;
        }
      }
      return resolved;
    },
  };
}

/** The store's messages name secret and key and never a value; anything else is reduced to a generic reason. */
export function secretFailure(err: unknown, envName: string): ApplicationFailure {
  const message = err instanceof Error && err.message.startsWith('secret resolution failed: ') ? err.message : 'secret resolution failed: secret store error';
  const unreachable = /unreachable|HTTP 5\d\d/.test(message);
  // Unreachable OpenBao is worth a few quick activity retries; a missing secret or key is the operator's to fix.
  return ApplicationFailure.create({
    message: `${message} (env ${envName})`,
    type: FAILURE_TYPES.secretResolution,
    nonRetryable: !unreachable,
  });
}

/** The server and try of the instance workflow that runs this activity; undefined outside one (unit tests). */
export function instanceActivityCall(): { server: string; attempt: number } | undefined {
  let info: Context['info'];
  try {
    info = Context.current().info;
  } catch {
    return undefined;
  }
  const parsed = info.workflowExecution ? parseInstanceId(info.workflowExecution.workflowId) : null;
  return parsed ? { server: parsed.server, attempt: info.attempt } : undefined;
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
