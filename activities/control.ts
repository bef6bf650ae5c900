/**
 * Control activities (task queue `mcpd`): they need OpenBao, not a Docker engine.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { EnvEntry } from '../src/contracts/spec';
import type { SecretStore } from '../src/secrets/types';
import { FAILURE_TYPES, type ResolvedEnvEntry } from './types';

export interface ControlActivityDeps {
  secrets: SecretStore;
}

export function createControlActivities({ secrets }: ControlActivityDeps) {
  return {
    /**
     * Pins every secretRef to its current KV v2 version, so the container start
     * reads exactly what was checked here and history never holds a value. A
     * secret that cannot be read fails the whole attempt: a server must never
     * start with whatever env survived.
     */
    async resolveEnv(env: EnvEntry[]): Promise<ResolvedEnvEntry[]> {
      const resolved: ResolvedEnvEntry[] = [];
      for (const entry of env) {
        if (entry.secretRef === undefined) {
          resolved.push({ name: entry.name, value: entry.value ?? '' });
          continue;
        }
        try {
          resolved.push({ name: entry.name, secret: await secrets.pin(entry.secretRef) });
        } catch (err) {
          throw secretFailure(err, entry.name);
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

export type ControlActivities = ReturnType<typeof createControlActivities>;
