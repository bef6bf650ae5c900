/**
 * The Docker side of an instance: one container per instance, named after the
 * instance id and labelled with its server, instance and generation, so a retried
 * start finds the container it made instead of creating a second one. mcpd owns
 * restarts: Docker's restart policy is always "no".
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { text } from 'node:stream/consumers';
import type { McpServerSpec } from '../contracts/spec';
import { containerName, parseInstanceId } from '../contracts/instance';
import { LABELS } from '../contracts/labels';
import { createLimiter } from '../concurrency';
import { DEFAULT_START_CONCURRENCY } from '../config/settings';
import { engineMessage, statusCodeOf, type ContainerDetails, type ContainerRuntime, type ContainerSpec } from './runtime';

export const DEFAULT_BASE_IMAGE = 'mcpd/node-base:20';

export interface InstanceContainerOptions {
  node: string;
  owner: string;
  /** Image for `command` specs. */
  baseImage?: string;
  /** How long a fresh container must stay up before start counts as done. */
  startGraceMs?: number;
  stopTimeoutSeconds?: number;
  /** Container creates and starts sent to the engine at once (default DEFAULT_START_CONCURRENCY); the rest wait. */
  startConcurrency?: number;
  /**
   * The ids of the containers being stopped here, while they are (shared with the
   * ExitWatcher: the exit of a container its own workflow asked to stop is no news to it).
   */
  stopping?: Set<string>;
}

export interface StartContainerRequest {
  instanceId: string;
  generation: number;
  spec: McpServerSpec;
  /** The full environment, secret values included; only Docker ever sees it. */
  env: Record<string, string>;
  /** Values masked with *** in anything this module reports. */
  secretValues: string[];
  /** The names of the env variables filled from secrets (labelled on the container, values never). */
  secretEnvNames?: string[];
  /** The built image of a packageName spec and the executable to run (src/docker/packageImages.ts). */
  packageImage?: { image: string; entrypoint: string[] };
  /**
   * Return as soon as Docker started the container, without the start grace: for a
   * caller that MCP-initializes it right away (that reply is the proof of life) and
   * asks exitedAfterStart() why when the handshake fails.
   */
  skipGrace?: boolean;
}

export interface StartedContainer {
  containerId: string;
  name: string;
  /** Loopback port of an http/sse server. */
  port?: number;
  /** True when a retried start found the container it had made. */
  reused: boolean;
}

/** A start that failed; `userError` failures are the spec's or the image's problem and retrying the activity cannot help. */
export class ContainerStartError extends Error {
  constructor(
    message: string,
    readonly userError: boolean,
  ) {
    super(message);
    this.name = 'ContainerStartError';
  }
}

/** How the gateway reaches an instance's server; kept on the container so a restarted mcpd can re-attach. */
export interface UpstreamEndpoint {
  transport: McpServerSpec['transport'];
  port?: number;
  path?: string;
}

export function upstreamEndpoint(spec: McpServerSpec, port: number | undefined): UpstreamEndpoint {
  if (spec.transport === 'stdio') return { transport: 'stdio' };
  return { transport: spec.transport, port, path: spec.path ?? (spec.transport === 'sse' ? '/sse' : '/mcp') };
}

/** The endpoint label of a container made by this module; null when absent or unreadable. */
export function endpointFromLabels(labels: Record<string, string> | undefined): UpstreamEndpoint | null {
  const raw = labels?.[LABELS.endpoint];
  if (!raw) return null;
  try {
    const parsed = JSON.parse(raw) as UpstreamEndpoint;
    return ['stdio', 'http', 'sse'].includes(parsed.transport) ? parsed : null;
  } catch {
    return null;
  }
}

/** http/sse replicas share the host network, so each ordinal listens on its own port: spec.port + ordinal. */
export function instancePort(spec: McpServerSpec, instanceId: string): number | undefined {
  if (spec.transport === 'stdio' || spec.port === undefined) return undefined;
  const parsed = parseInstanceId(instanceId);
  const port = spec.port + (parsed?.ordinal ?? 0);
  if (port > 65_535) throw new ContainerStartError(`port ${spec.port} + ordinal ${parsed?.ordinal} exceeds 65535`, true);
  return port;
}

/** "512Mi" -> bytes (Ki/Mi/Gi are powers of 1024, K/M/G of 1000, as in Kubernetes). */
export function parseMemory(memory: number | string | undefined): number | undefined {
  if (memory === undefined) return undefined;
  if (typeof memory === 'number') return memory;
  const m = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(memory);
  if (!m) throw new ContainerStartError(`resources.memory "${memory}" is not a size`, true);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, K: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

/** What an exit by the kernel's OOM killer means to the operator (Docker's State.OOMKilled). */
const OUT_OF_MEMORY = 'out of memory: OOM-killed, see resources.memory';

export function exitReason(exitCode: number | null, oomKilled = false): string {
  if (oomKilled) return `container exited with code ${exitCode} (${OUT_OF_MEMORY})`;
  const meaning = exitCode === 137 ? ' (killed)' : exitCode === 143 ? ' (terminated)' : exitCode === 139 ? ' (segmentation fault)' : '';
  return `container exited with code ${exitCode}${meaning}`;
}

/** Replaces every secret value in text with ***. Longest first, so a value containing another is masked whole. */
export function maskSecrets(text: string, secretValues: string[]): string {
  let masked = text;
  for (const value of [...secretValues].filter((v) => v.length > 0).sort((a, b) => b.length - a.length)) {
    masked = masked.split(value).join('***');
  }
  return masked;
}

/**
 * The values of the secrets a container was started with, read back from the engine
 * (the names come from its secret-env label): after a restart the gateway needs them to
 * go on redacting. Empty when the container has none, or is gone.
 */
export async function injectedSecretValues(runtime: ContainerRuntime, containerId: string, labels: Record<string, string>): Promise<string[]> {
  const names = (labels[LABELS.secretEnv] ?? '').split(',').filter(Boolean);
  if (names.length === 0 || !runtime.envOf) return [];
  const env = await runtime.envOf(containerId);
  return env ? names.flatMap((name) => (env[name] !== undefined ? [env[name]] : [])) : [];
}

/** Substitutes $(PORT) and ${PORT} in args, so an http server can be told where to listen. */
export function substitutePort(args: string[], port: number | undefined): string[] {
  if (port === undefined) return args;
  return args.map((a) => a.replace(/\$\(PORT\)|\$\{PORT\}/g, String(port)));
}

/**
 * The containers of instances, on a ContainerRuntime: name and labels derive from
 * the instance id, and a container is ours only when it carries our owner label.
 */
export class InstanceContainers {
  private readonly baseImage: string;
  private readonly startGraceMs: number;
  private readonly stopTimeoutSeconds: number;
  /** Bounds the engine calls of a start, so hundreds of instances starting at once queue here, not inside dockerd. */
  private readonly engineSlot: <R>(fn: () => Promise<R>) => Promise<R>;

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly options: InstanceContainerOptions,
  ) {
    this.baseImage = options.baseImage ?? DEFAULT_BASE_IMAGE;
    // Short: the MCP initialize during attach is the real proof of life; this only catches instant exits with a clear message.
    this.startGraceMs = options.startGraceMs ?? 300;
    this.stopTimeoutSeconds = options.stopTimeoutSeconds ?? 10;
    this.engineSlot = createLimiter(options.startConcurrency ?? DEFAULT_START_CONCURRENCY);
  }

  /** Idempotent: the container of this instance and generation is created and started at most once. */
  async start(request: StartContainerRequest): Promise<StartedContainer> {
    const name = containerName(request.instanceId);
    const port = instancePort(request.spec, request.instanceId);
    // Two independent engine calls at once (a start is mostly Docker round trips); the image's verdict is read after the name's.
    const [existing, imageOrError] = await Promise.all([
      this.runtime.inspect(name),
      this.imageFor(request.spec, request.packageImage).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
    ]);
    if (existing && this.isOurs(existing, request.instanceId) && Number(existing.labels[LABELS.generation]) === request.generation) {
      return this.resume(existing, request, port);
    }
    if (existing && !this.isOurs(existing, request.instanceId)) {
      // Container names are global to a Docker engine; another control plane's container is never ours to remove.
      const owner = existing.labels[LABELS.owner] ?? 'not mcpd';
      throw new ContainerStartError(`container name ${name} is in use by a container this mcpd does not own (owner: ${owner})`, true);
    }
    if (imageOrError instanceof Error) throw imageOrError;
    const image = imageOrError;
    if (existing) await this.runtime.remove(existing.id);
    let containerId: string;
    try {
      const spec = this.containerSpec(name, image, request, port);
      containerId = await this.engineSlot(() => this.runtime.create(spec));
    } catch (err) {
      const status = statusCodeOf(err);
      if (status === 409) {
        // A concurrent attempt created it between our inspect and create: use theirs if it is this generation.
        const raced = await this.runtime.inspect(name);
        if (raced && Number(raced.labels[LABELS.generation]) === request.generation && this.isOurs(raced, request.instanceId)) {
          return this.resume(raced, request, port);
        }
        throw new ContainerStartError(`container name ${name} is taken by another container`, false);
      }
      if (status === 404) throw new ContainerStartError(`image ${image} not found locally`, true);
      throw new ContainerStartError(`cannot create container: ${maskSecrets(engineMessage(err), request.secretValues)}`, status === 400);
    }
    return this.startAndSettle(containerId, name, request, port, false);
  }

  /** Stops (and optionally removes) this instance's container; no container is fine. Returns the id it acted on. */
  async stop(instanceId: string, options: { remove: boolean }): Promise<string | null> {
    const existing = await this.runtime.inspect(containerName(instanceId));
    if (!existing || !this.isOurs(existing, instanceId)) return null;
    this.options.stopping?.add(existing.id);
    try {
      if (existing.running) await this.runtime.stop(existing.id, this.stopTimeoutSeconds);
      if (options.remove) await this.runtime.remove(existing.id);
    } finally {
      this.options.stopping?.delete(existing.id);
    }
    return existing.id;
  }

  private isOurs(info: ContainerDetails, instanceId: string): boolean {
    const labels = info.labels;
    return labels[LABELS.managed] === 'true' && labels[LABELS.instance] === instanceId && labels[LABELS.owner] === this.options.owner;
  }

  private async resume(info: ContainerDetails, request: StartContainerRequest, port: number | undefined): Promise<StartedContainer> {
    const name = containerName(request.instanceId);
    if (info.running) return { containerId: info.id, name, port, reused: true };
    if (info.status === 'created') return this.startAndSettle(info.id, name, request, port, true);
    throw new ContainerStartError(await this.exitMessage(info.id, info.exitCode, info.oomKilled, request.secretValues, 'container exited'), true);
  }

  private async startAndSettle(
    containerId: string,
    name: string,
    request: StartContainerRequest,
    port: number | undefined,
    reused: boolean,
  ): Promise<StartedContainer> {
    try {
      await this.engineSlot(() => this.runtime.start(containerId));
    } catch (err) {
      const status = statusCodeOf(err);
      throw new ContainerStartError(`cannot start container: ${maskSecrets(engineMessage(err), request.secretValues)}`, status === 400 || status === 500);
    }
    if (request.skipGrace) return { containerId, name, port, reused };
    await sleep(this.startGraceMs);
    const info = await this.runtime.inspect(containerId);
    // Removed behind our back: an engine-side surprise, worth another attempt.
    if (!info) throw new Error(`container ${containerId.slice(0, 12)} disappeared right after start`);
    if (!info.running) {
      throw new ContainerStartError(
        await this.exitMessage(containerId, info.exitCode, info.oomKilled, request.secretValues, 'container exited right after start'),
        true,
      );
    }
    return { containerId, name, port, reused };
  }

  /**
   * Why a just-started container could not be MCP-initialized when it is because it
   * exited: waits up to the start grace for the exit, then the same message a start
   * with the grace gives. Null while it still runs (the handshake failed for another reason).
   */
  async exitedAfterStart(containerId: string, secretValues: string[]): Promise<ContainerStartError | null> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.startGraceMs);
    try {
      await this.runtime.wait(containerId, deadline.signal).catch(() => undefined);
    } finally {
      clearTimeout(timer);
    }
    const info = await this.runtime.inspect(containerId);
    if (!info || info.running) return null;
    return new ContainerStartError(
      await this.exitMessage(containerId, info.exitCode, info.oomKilled, secretValues, 'container exited right after start'),
      true,
    );
  }

  private async exitMessage(containerId: string, exitCode: number, oomKilled: boolean, secretValues: string[], prefix: string): Promise<string> {
    let tail = '';
    try {
      const output = await this.runtime.logs(containerId, { stdout: true, stderr: true, tail: 20, follow: false });
      if (output) {
        const [stdout, stderr] = await Promise.all([text(output.stdout), text(output.stderr)]);
        const lines = (stderr.trim() || stdout.trim()).split('\n').slice(-5).join(' | ');
        tail = maskSecrets(lines, secretValues).slice(0, 800);
      }
    } catch {
      // Logs are a courtesy; the exit code is the fact.
    }
    const meaning = oomKilled ? ` (${OUT_OF_MEMORY})` : '';
    return `${prefix} with code ${exitCode}${meaning}${tail ? `: ${tail}` : ''}`;
  }

  private async imageFor(spec: McpServerSpec, packageImage: StartContainerRequest['packageImage']): Promise<string> {
    let image: string;
    if (spec.image) image = spec.image;
    else if (spec.command) image = this.baseImage;
    else if (packageImage) image = packageImage.image;
    else throw new ContainerStartError(`packageName "${spec.packageName}" has no image yet: the preparePackageImage activity builds it before the start`, true);
    if (!(await this.runtime.imageExists(image))) throw new ContainerStartError(`image ${image} not found locally`, true);
    return image;
  }

  private containerSpec(name: string, image: string, request: StartContainerRequest, port: number | undefined): ContainerSpec {
    const { spec, instanceId } = request;
    const env = { ...request.env };
    if (port !== undefined) env.PORT = String(port);
    const args = substitutePort(spec.args, port);
    const memory = parseMemory(spec.resources.memory);
    return {
      name,
      image,
      ...(spec.command ? { entrypoint: spec.command } : request.packageImage ? { entrypoint: request.packageImage.entrypoint } : {}),
      ...(args.length ? { cmd: args } : {}),
      env,
      labels: {
        [LABELS.managed]: 'true',
        [LABELS.server]: spec.name,
        [LABELS.instance]: instanceId,
        [LABELS.generation]: String(request.generation),
        [LABELS.node]: this.options.node,
        [LABELS.owner]: this.options.owner,
        [LABELS.endpoint]: JSON.stringify(upstreamEndpoint(spec, port)),
        ...(request.secretEnvNames?.length ? { [LABELS.secretEnv]: request.secretEnvNames.join(',') } : {}),
      },
      // A STDIO server talks over the attach stream the gateway owns; stdin must stay open between clients.
      interactive: spec.transport === 'stdio',
      network: spec.transport === 'stdio' ? 'none' : 'host',
      init: true,
      memoryBytes: memory,
      nanoCpus: spec.resources.cpus !== undefined ? Math.round(spec.resources.cpus * 1e9) : undefined,
      pidsLimit: spec.resources.pids,
      capAdd: spec.security?.capabilities ?? [],
      readOnlyRootfs: spec.security?.readOnlyRootFilesystem === true,
      ...(spec.security?.user !== undefined ? { user: spec.security.user } : {}),
    };
  }
}
