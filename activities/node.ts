/**
 * Node activities (task queue `mcpd-node-<node>`): they run next to a Docker
 * engine and the gateway that owns the containers' upstream connections.
 */
import { ApplicationFailure } from '@temporalio/common';
import { mapLimit } from '../src/concurrency';
import { DEFAULT_START_CONCURRENCY } from '../src/config/settings';
import { ContainerStartError, InstanceContainers, upstreamEndpoint, type InstanceContainerOptions } from '../src/docker/containers';
import type { ContainerRuntime } from '../src/docker/runtime';
import type { InstanceRouting, ProxyExecutor, UpstreamTarget } from '../src/contracts/routing';
import { secretFailureReason, startFailureReason } from '../src/metrics/classify';
import { secondsSince, type McpdMetrics } from '../src/metrics/registry';
import type { SecretStore } from '../src/secrets/types';
import { instanceActivityCall, secretFailure } from './control';
import { withHeartbeat } from './heartbeat';
import { probeAttached, type ProbeLoops } from './probe';
import {
  FAILURE_TYPES,
  type AttachUpstreamInput,
  type StartContainerInput,
  type StartContainerResult,
  type StopContainerInput,
  type StopContainersInput,
} from './types';

export interface NodeActivityDeps {
  runtime: ContainerRuntime;
  secrets: SecretStore;
  routing: InstanceRouting;
  /** The gateway's request path, for the probe a start may ask for (StartContainerInput.probe). */
  proxy?: ProxyExecutor;
  /** The node's probe loops: stopping an instance's container ends its loop. */
  probeLoops?: ProbeLoops;
  /** node and owner labels, base image, start grace. */
  containers: InstanceContainerOptions;
  /** Counts container starts, start failures, secret reads and the start's probe (none: nothing is recorded). */
  metrics?: McpdMetrics;
}

export function createNodeActivities({ runtime, secrets, routing, proxy, probeLoops, containers: options, metrics }: NodeActivityDeps) {
  const containers = new InstanceContainers(runtime, options);

  async function attach(input: AttachUpstreamInput): Promise<UpstreamTarget> {
    const target: UpstreamTarget = {
      instanceId: input.instanceId,
      server: input.spec.name,
      containerId: input.containerId,
      ...upstreamEndpoint(input.spec, input.port),
    };
    await routing.attach(target);
    return target;
  }

  /** The gateway's MCP initialize is the proof of life; when it fails because the container exited, that exit is the reason. */
  async function attachStarted(input: StartContainerInput, containerId: string, port: number | undefined, secretValues: string[]): Promise<void> {
    try {
      await attach({ instanceId: input.instanceId, spec: input.spec, containerId, ...(port !== undefined ? { port } : {}) });
    } catch (err) {
      const exited = await containers.exitedAfterStart(containerId, secretValues);
      // Otherwise the gateway's own error, retried like a failed attachUpstream.
      throw exited ? startFailure(exited) : err;
    }
  }

  function startFailure(err: unknown): ApplicationFailure {
    if (err instanceof ContainerStartError) {
      return ApplicationFailure.create({ message: err.message, type: FAILURE_TYPES.containerStart, nonRetryable: err.userError });
    }
    return ApplicationFailure.create({ message: `docker error: ${(err as Error)?.message ?? String(err)}`, type: 'DockerError' });
  }

  const activities = {
    /**
     * Reads the pinned secret versions only here, only to build the container's Env.
     * With `attach`, also hands the container to the gateway (what attachUpstream does),
     * saving the start grace and a round trip through Temporal.
     */
    async startContainer(input: StartContainerInput): Promise<StartContainerResult> {
      const env: Record<string, string> = {};
      const secretValues: string[] = [];
      const secretEnvNames: string[] = [];
      for (const entry of input.env) {
        if ('value' in entry) {
          env[entry.name] = entry.value;
          continue;
        }
        const startedAt = performance.now();
        try {
          const value = await secrets.readPinned(entry.secret);
          env[entry.name] = value;
          secretValues.push(value);
          metrics?.secretLookedUp('read', secondsSince(startedAt));
          secretEnvNames.push(entry.name);
        } catch (err) {
          const failure = secretFailure(err, entry.name);
          metrics?.secretLookedUp('read', secondsSince(startedAt), secretFailureReason(failure.message));
          throw failure;
        }
      }
      let started: Awaited<ReturnType<typeof containers.start>>;
      try {
        started = await containers.start({
          instanceId: input.instanceId,
          generation: input.generation,
          spec: input.spec,
          env,
          secretValues,
          secretEnvNames,
          packageImage: input.packageImage,
          skipGrace: input.attach === true,
        });
      } catch (err) {
        throw startFailure(err);
      }
      // In memory to this node's gateway, before anything the instance says can reach a client (or a probe's failure reason).
      routing.protectSecrets?.(input.instanceId, started.containerId, secretValues);
      if (input.attach) await attachStarted(input, started.containerId, started.port, secretValues);
      // The gateway attaches instances ready, so a passing probe needs no readiness change; a failing one is the probe loop's to count.
      const probe = input.attach && input.probe && proxy ? await probeAttached(proxy, input.probe, metrics) : undefined;
      return { containerId: started.containerId, port: started.port, reused: started.reused, ...(probe ? { probe } : {}) };
    },

    /** Idempotent: stopping a stopped or missing container is fine. The gateway forgets the upstream first. */
    async stopContainer(input: StopContainerInput): Promise<string | null> {
      probeLoops?.stop(input.instanceId, `its container is being stopped: ${input.reason}`);
      await routing.detach(input.instanceId, input.reason);
      return containers.stop(input.instanceId, { remove: input.remove });
    },

    /**
     * What stopContainer does (with remove), for a batch of instances stopping for good, as many
     * at once as the engine takes starts. Returns the container removed for each instance that had
     * one here; each instance is then told so with its stop and ends without a stop of its own
     * (one workflow task instead of two, which a fleet's delete felt). An instance left out (no
     * container here, or the engine refused) stops its container itself as before.
     */
    async stopContainers(input: StopContainersInput): Promise<Record<string, string>> {
      const removed: Record<string, string> = {};
      await mapLimit(input.instanceIds, options.startConcurrency ?? DEFAULT_START_CONCURRENCY, async (instanceId) => {
        const containerId = await activities.stopContainer({ instanceId, reason: input.reason, remove: true }).catch(() => null);
        if (containerId !== null) removed[instanceId] = containerId;
      });
      return removed;
    },

    async attachUpstream(input: AttachUpstreamInput): Promise<UpstreamTarget> {
      return attach(input);
    },

    async setReady(input: { instanceId: string; ready: boolean }): Promise<void> {
      routing.setReady(input.instanceId, input.ready);
    },
  };
  /** A start, counted: a fresh container started, or a failed try by reason class. */
  async function measuredStart(input: StartContainerInput): Promise<StartContainerResult> {
    if (!metrics) return activities.startContainer(input);
    if (input.countsAttempt && instanceActivityCall()?.attempt === 1) metrics.startAttempted(input.spec.name);
    const startedAt = performance.now();
    try {
      const started = await activities.startContainer(input);
      metrics.containerStarted(input.spec.name, !started.reused, secondsSince(startedAt));
      return started;
    } catch (err) {
      metrics.startFailed(input.spec.name, startFailureReason(err instanceof Error ? err.message : String(err)));
      throw err;
    }
  }

  // Docker calls and MCP handshakes can take a while on a busy node; heartbeats tell Temporal the worker is alive.
  return {
    startContainer: (input: StartContainerInput) => withHeartbeat(() => measuredStart(input)),
    stopContainer: (input: StopContainerInput) => withHeartbeat(() => activities.stopContainer(input)),
    stopContainers: (input: StopContainersInput) => withHeartbeat(() => activities.stopContainers(input)),
    attachUpstream: (input: AttachUpstreamInput) => withHeartbeat(() => activities.attachUpstream(input)),
    setReady: (input: { instanceId: string; ready: boolean }) => activities.setReady(input),
  };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;
