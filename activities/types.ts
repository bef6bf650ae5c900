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
  /** The attempt began here, not in resolveEnv (its env has no secret to pin): this start counts it. */
  countsAttempt?: boolean;
  /**
   * Attach the gateway (MCP initialize) in the same activity instead of a separate
   * attachUpstream, with no start grace: the initialize reply is the proof of life.
   */
  attach?: boolean;
  /**
   * With attach: probe once right after the handshake, as the probe loop would. A pass
   * makes the instance RUNNING and healthy in one workflow task instead of after the
   * probe child's first loop, signal and readiness round trip.
   */
  probe?: ProbeInput;
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
  /** The probe of StartContainerInput.probe, when one was asked for. */
  probe?: ProbeResult;
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

/** A batch of instances stopping for good (a server's stop, scale-down or delete) whose containers the node removes at once. */
export interface StopContainersInput {
  instanceIds: string[];
  reason: string;
}

/** Failure types the workflow's own backoff governs (the activity is not retried). */
export const FAILURE_TYPES = {
  secretResolution: 'SecretResolutionFailed',
  containerStart: 'ContainerStartFailed',
} as const;

export interface ProbeInput {
  instanceId: string;
  /** liveness: tools/list; readiness: tools/call of `tool`. */
  kind: 'liveness' | 'readiness';
  tool?: string;
  arguments?: Record<string, unknown>;
  timeoutSeconds: number;
}

export interface ProbeResult {
  ok: boolean;
  /** Why the probe failed (null on success); upstream text, redacted and truncated. */
  reason: string | null;
  /**
   * false: not a verdict on the server's health, so it must not count. The node had not
   * re-attached its instances yet, or the gateway did not know an instance its workflow
   * calls RUNNING (a control-plane inconsistency, repaired here, not the server's failure).
   */
  counts?: false;
}
