/**
 * What the instance activities exchange through Temporal history. Nothing here
 * may carry a secret value: secret entries are pinned references.
 */
import type { McpServerSpec } from '../src/contracts/spec';
import type { PinnedSecretRef } from '../src/secrets/types';

export type ResolvedEnvEntry = { name: string; value: string } | { name: string; secret: PinnedSecretRef };

export interface StartContainerInput {
  instanceId: string;
  generation: number;
  spec: McpServerSpec;
  env: ResolvedEnvEntry[];
  /** For a packageName spec: the image preparePackageImage found or built, and the executable to run. */
  packageImage?: PackageImageRef;
  /**
   * Attach the gateway (MCP initialize) in the same activity instead of a separate
   * attachUpstream, with no start grace: the initialize reply is the proof of life.
   */
  attach?: boolean;
}

export interface PackageImageRef {
  image: string;
  entrypoint: string[];
}

export interface StartContainerResult {
  containerId: string;
  /** Loopback port of an http/sse server (spec.port + ordinal). */
  port?: number;
  reused: boolean;
}

export interface AttachUpstreamInput {
  instanceId: string;
  spec: McpServerSpec;
  containerId: string;
  port?: number;
}

export interface StopContainerInput {
  instanceId: string;
  /** Why, for the gateway's in-flight calls ("instance stopped", "container exited ..."). */
  reason: string;
  /** Remove the container too (stop, spec change); a failed one is kept for `docker logs` until the next attempt. */
  remove: boolean;
}

/** Failure types the workflow's own backoff governs (the activity is not retried). */
export const FAILURE_TYPES = {
  secretResolution: 'SecretResolutionFailed',
  containerStart: 'ContainerStartFailed',
} as const;
