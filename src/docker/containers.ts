/**
 * The Docker side of an instance: one container per instance, named after the
 * instance id and labelled with its server, instance and generation, so a retried
 * start finds the container it made instead of creating a second one. mcpd owns
 * restarts: Docker's restart policy is always "no".
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import type { McpServerSpec } from '../contracts/spec';
import { containerName, parseInstanceId } from '../contracts/instance';
import { LABELS } from '../contracts/labels';


export const DEFAULT_BASE_IMAGE = 'mcpd/node-base:20';

export interface ContainerRuntimeOptions {
  node: string;
  owner: string;
  /** Image for `command` specs. */
  baseImage?: string;
  /** How long a fresh container must stay up before start counts as done. */
  startGraceMs?: number;
  stopTimeoutSeconds?: number;
}

export interface StartContainerRequest {
  instanceId: string;
  generation: number;
  spec: McpServerSpec;
  /** The full environment, secret values included; only Docker ever sees it. */
  env: Record<string, string>;
  /** Values masked with *** in anything this module reports. */
  secretValues: string[];
  /** The built image of a packageName spec and the executable to run (src/docker/packageImages.ts). */
  packageImage?: { image: string; entrypoint: string[] };
}

export interface StartedContainer {
  containerId: string;
  name: string;
  /** Loopback port of an http/sse server. */
  port?: number;
  /** True when a retried start found the container it had made. */
  reused: boolean;
}

export interface ContainerState {
  containerId: string;
  running: boolean;
  status: string;
  exitCode: number | null;
  generation: number | null;
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

export function exitReason(exitCode: number | null, oomKilled = false): string {
  if (oomKilled) return `container exited with code ${exitCode} (out of memory)`;
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

/** Splits Docker's multiplexed log stream (Tty false: 8-byte frame headers) into stdout and stderr. */
export function demuxLogs(buffer: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const stream = buffer[offset];
    const size = buffer.readUInt32BE(offset + 4);
    const frame = buffer.subarray(offset + 8, offset + 8 + size);
    (stream === 2 ? err : out).push(frame);
    offset += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** Substitutes $(PORT) and ${PORT} in args, so an http server can be told where to listen. */
export function substitutePort(args: string[], port: number | undefined): string[] {
  if (port === undefined) return args;
  return args.map((a) => a.replace(/\$\(PORT\)|\$\{PORT\}/g, String(port)));
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: number })?.statusCode;
  return typeof code === 'number' ? code : undefined;
}


export class DockerContainers {
  private readonly baseImage: string;
  private readonly startGraceMs: number;
  private readonly stopTimeoutSeconds: number;

  constructor(
    private readonly docker: Dockerode,
    private readonly options: ContainerRuntimeOptions,
  ) {
    this.baseImage = options.baseImage ?? DEFAULT_BASE_IMAGE;
    // Short: the MCP initialize during attach is the real proof of life; this only catches instant exits with a clear message.
    this.startGraceMs = options.startGraceMs ?? 300;
    this.stopTimeoutSeconds = options.stopTimeoutSeconds ?? 10;
  }

  /** Idempotent: the container of this instance and generation is created and started at most once. */
  async start(request: StartContainerRequest): Promise<StartedContainer> {
    const name = containerName(request.instanceId);
    const port = instancePort(request.spec, request.instanceId);
    const existing = await this.inspectByName(name);
    if (existing && this.isOurs(existing, request.instanceId) && Number(existing.Config.Labels?.[LABELS.generation]) === request.generation) {
      return this.resume(existing, request, port);
    }
    if (existing && !this.isOurs(existing, request.instanceId)) {
      // Container names are global to a Docker engine; another control plane's container is never ours to remove.
      const owner = existing.Config.Labels?.[LABELS.owner] ?? 'not mcpd';
      throw new ContainerStartError(`container name ${name} is in use by a container this mcpd does not own (owner: ${owner})`, true);
    }
    if (existing) await this.remove(existing.Id);

    const image = await this.imageFor(request.spec, request.packageImage);
    const options = this.createOptions(name, image, request, port);
    let containerId: string;
    try {
      containerId = (await this.docker.createContainer(options)).id;
    } catch (err) {
      if (statusCode(err) === 409) {
        // A concurrent attempt created it between our inspect and create: use theirs if it is this generation.
        const raced = await this.inspectByName(name);
        if (raced && Number(raced.Config.Labels?.[LABELS.generation]) === request.generation && this.isOurs(raced, request.instanceId)) {
          return this.resume(raced, request, port);
        }
        throw new ContainerStartError(`container name ${name} is taken by another container`, false);
      }
      if (statusCode(err) === 404) throw new ContainerStartError(`image ${image} not found locally`, true);
      throw new ContainerStartError(`cannot create container: ${this.dockerReason(err, request.secretValues)}`, statusCode(err) === 400);
    }
    return this.startAndSettle(containerId, name, request, port, false);
  }

  /** Stops (and optionally removes) this instance's container; no container is fine. Returns the id it acted on. */
  async stop(instanceId: string, options: { remove: boolean }): Promise<string | null> {
    const existing = await this.inspectByName(containerName(instanceId));
    if (!existing || !this.isOurs(existing, instanceId)) return null;
    const container = this.docker.getContainer(existing.Id);
    if (existing.State.Running) {
      try {
        await container.stop({ t: this.stopTimeoutSeconds });
      } catch (err) {
        // 304: already stopped; 404: already gone.
        if (statusCode(err) !== 304 && statusCode(err) !== 404) throw err;
      }
    }
    if (options.remove) await this.remove(existing.Id);
    return existing.Id;
  }

  async inspect(instanceId: string): Promise<ContainerState | null> {
    const existing = await this.inspectByName(containerName(instanceId));
    if (!existing || !this.isOurs(existing, instanceId)) return null;
    return {
      containerId: existing.Id,
      running: existing.State.Running,
      status: existing.State.Status,
      exitCode: existing.State.Running ? null : existing.State.ExitCode,
      generation: Number(existing.Config.Labels?.[LABELS.generation] ?? NaN) || null,
    };
  }

  /** Labels that select the containers this control plane owns. */
  ownerFilter(): string[] {
    return [`${LABELS.managed}=true`, `${LABELS.owner}=${this.options.owner}`];
  }

  private isOurs(info: Dockerode.ContainerInspectInfo, instanceId: string): boolean {
    const labels = info.Config.Labels ?? {};
    return labels[LABELS.managed] === 'true' && labels[LABELS.instance] === instanceId && labels[LABELS.owner] === this.options.owner;
  }

  private async resume(info: Dockerode.ContainerInspectInfo, request: StartContainerRequest, port: number | undefined): Promise<StartedContainer> {
    const name = containerName(request.instanceId);
    if (info.State.Running) return { containerId: info.Id, name, port, reused: true };
    if (info.State.Status === 'created') return this.startAndSettle(info.Id, name, request, port, true);
    throw new ContainerStartError(await this.exitMessage(info.Id, info.State.ExitCode, info.State.OOMKilled, request.secretValues, 'container exited'), true);
  }

  private async startAndSettle(containerId: string, name: string, request: StartContainerRequest, port: number | undefined, reused: boolean): Promise<StartedContainer> {
    const container = this.docker.getContainer(containerId);
    try {
      await container.start();
    } catch (err) {
      if (statusCode(err) !== 304) {
        throw new ContainerStartError(`cannot start container: ${this.dockerReason(err, request.secretValues)}`, statusCode(err) === 400 || statusCode(err) === 500);
      }
    }
    await sleep(this.startGraceMs);
    const info = await container.inspect();
    if (!info.State.Running) {
      throw new ContainerStartError(await this.exitMessage(containerId, info.State.ExitCode, info.State.OOMKilled, request.secretValues, 'container exited right after start'), true);
    }
    return { containerId, name, port, reused };
  }

  private async exitMessage(containerId: string, exitCode: number, oomKilled: boolean, secretValues: string[], prefix: string): Promise<string> {
    let tail = '';
    try {
      const raw = (await this.docker.getContainer(containerId).logs({ stdout: true, stderr: true, tail: 20, follow: false })) as unknown as Buffer;
      const { stdout, stderr } = demuxLogs(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)));
      const lines = (stderr.trim() || stdout.trim()).split('\n').slice(-5).join(' | ');
      tail = maskSecrets(lines, secretValues).slice(0, 800);
    } catch {
      // Logs are a courtesy; the exit code is the fact.
    }
    const meaning = oomKilled ? ' (out of memory)' : '';
    return `${prefix} with code ${exitCode}${meaning}${tail ? `: ${tail}` : ''}`;
  }

  private async imageFor(spec: McpServerSpec, packageImage: StartContainerRequest['packageImage']): Promise<string> {
    let image: string;
    if (spec.image) image = spec.image;
    else if (spec.command) image = this.baseImage;
    else if (packageImage) image = packageImage.image;
    else throw new ContainerStartError(`packageName "${spec.packageName}" has no image yet: the preparePackageImage activity builds it before the start`, true);
    if (!(await this.imageExists(image))) throw new ContainerStartError(`image ${image} not found locally`, true);
    return image;
  }

  private async imageExists(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if (statusCode(err) === 404) return false;
      throw err;
    }
  }

  private createOptions(name: string, image: string, request: StartContainerRequest, port: number | undefined): Dockerode.ContainerCreateOptions {
    const { spec, instanceId } = request;
    const stdio = spec.transport === 'stdio';
    const env = { ...request.env };
    if (port !== undefined) env.PORT = String(port);
    const args = substitutePort(spec.args, port);
    const memory = parseMemory(spec.resources.memory);
    return {
      name,
      Image: image,
      ...(spec.command ? { Entrypoint: spec.command } : request.packageImage ? { Entrypoint: request.packageImage.entrypoint } : {}),
      ...(args.length ? { Cmd: args } : {}),
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [LABELS.managed]: 'true',
        [LABELS.server]: spec.name,
        [LABELS.instance]: instanceId,
        [LABELS.generation]: String(request.generation),
        [LABELS.node]: this.options.node,
        [LABELS.owner]: this.options.owner,
        [LABELS.endpoint]: JSON.stringify(upstreamEndpoint(spec, port)),
      },
      Tty: false,
      // A STDIO server talks over the attach stream the gateway owns; stdin must stay open between clients.
      OpenStdin: stdio,
      StdinOnce: false,
      AttachStdin: stdio,
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: {
        Init: true,
        RestartPolicy: { Name: 'no' },
        NetworkMode: stdio ? 'none' : 'host',
        ...(memory !== undefined ? { Memory: memory } : {}),
        ...(spec.resources.cpus !== undefined ? { NanoCpus: Math.round(spec.resources.cpus * 1e9) } : {}),
        ...(spec.resources.pids !== undefined ? { PidsLimit: spec.resources.pids } : {}),
      },
    };
  }

  private async inspectByName(name: string): Promise<Dockerode.ContainerInspectInfo | null> {
    try {
      return await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw err;
    }
  }

  private async remove(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).remove({ force: true });
    } catch (err) {
      // 404: gone; 409: removal already in progress.
      if (statusCode(err) !== 404 && statusCode(err) !== 409) throw err;
    }
  }

  /** Docker's message (e.g. "invalid reference format"), secrets masked. */
  private dockerReason(err: unknown, secretValues: string[]): string {
    const message = (err as { json?: { message?: string } })?.json?.message ?? (err as Error)?.message ?? String(err);
    return maskSecrets(message, secretValues);
  }
}
