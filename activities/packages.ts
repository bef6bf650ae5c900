/**
 * Node activity (task queue `mcpd-node-<node>`): the image of a `packageName` server,
 * found or built on this node before its container starts. It heartbeats with a
 * progress line ("building image for pypi:mcp-server-time@2026.10.19 12 s: installing")
 * that `temporal workflow describe` and the Web UI show on the pending activity.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { parseInstanceId } from '../src/contracts/instance';
import type { ContainerRuntime } from '../src/docker/runtime';
import type { McpdMetrics } from '../src/metrics/registry';
import { PackageImageBuilder, type PackageImage, type PackageImageBuilderOptions, type PackageImageRequest } from '../src/docker/packageImages';
import { PackageInstallError } from '../src/packages/installers';
import { progressLine, type BuildPhase } from '../src/packages/naming';

const HEARTBEAT_EVERY_MS = 2_000;

export const PACKAGE_FAILURE_TYPE = 'PackageImageFailed';

export type PreparePackageImageInput = PackageImageRequest;

/** The prepared image, as the builder reports it (nothing secret: names, versions, a lock hash). */
export type PreparePackageImageResult = PackageImage;

/** What a pending preparePackageImage reports in its heartbeat details. */
export interface PackageBuildProgress {
  phase: BuildPhase;
  package: string;
  elapsedSeconds: number;
  message: string;
}

export interface PackageActivityDeps {
  runtime: ContainerRuntime;
  builder?: PackageImageBuilderOptions;
  /** Counts a failed build as a start failure of reason image (none: nothing is recorded). */
  metrics?: McpdMetrics;
}

export function createPackageActivities({ runtime, builder: options, metrics }: PackageActivityDeps) {
  const builder = new PackageImageBuilder(runtime, options);
  return {
    async preparePackageImage(input: PreparePackageImageInput): Promise<PreparePackageImageResult> {
      const started = Date.now();
      let context: Context | null = null;
      try {
        context = Context.current();
      } catch {
        // outside an activity (tests call it directly): no heartbeats
      }
      let current: { phase: BuildPhase; display: string } = { phase: 'resolving the version', display: input.packageName };
      const beat = () => {
        const elapsed = Date.now() - started;
        const details: PackageBuildProgress = {
          phase: current.phase,
          package: current.display,
          elapsedSeconds: Math.round(elapsed / 1000),
          message: progressLine(current.display, current.phase, elapsed),
        };
        context?.heartbeat(details);
      };
      beat();
      const timer = setInterval(beat, HEARTBEAT_EVERY_MS);
      try {
        return await builder.prepare(
          input,
          (phase, display) => {
            current = { phase, display };
            beat();
          },
          context?.cancellationSignal,
        );
      } catch (err) {
        const workflowId = context?.info.workflowExecution?.workflowId;
        const server = workflowId ? parseInstanceId(workflowId)?.server : undefined;
        if (server) metrics?.startFailed(server, 'image');
        if (err instanceof PackageInstallError) {
          // A missing package or version is the spec's problem: the instance's own backoff retries, not Temporal's.
          throw ApplicationFailure.create({ message: err.message, type: PACKAGE_FAILURE_TYPE, nonRetryable: err.userError });
        }
        throw ApplicationFailure.create({
          message: `building the image of ${input.packageName} failed: ${(err as Error)?.message ?? String(err)}`,
          type: 'DockerError',
        });
      } finally {
        clearInterval(timer);
      }
    },
  };
}

export type PackageActivities = ReturnType<typeof createPackageActivities>;
