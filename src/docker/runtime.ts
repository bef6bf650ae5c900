/**
 * The container runtime: everything mcpd asks of a container engine, as one
 * interface. DockerRuntime implements it over dockerode and is the only code that
 * talks to Docker; the gateway, the API, the activities and the node's exit
 * watcher, reaper and re-attach pass use the interface, so a test can see (or a
 * later engine can replace) every container operation in one place.
 *
 * Errors the caller must tell apart carry the engine's HTTP status (statusCodeOf):
 * create answers 404 for a missing image, 409 for a name in use, 400 for bad options.
 * The cases every caller treats the same (a container already started, stopped or
 * gone) are absorbed here.
 */
import type { Duplex, Readable } from 'node:stream';
import { PassThrough, Readable as ReadableStream, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import readline from 'node:readline';
import Dockerode from 'dockerode';
import { LABELS } from '../contracts/labels';

/** What a container is created with; mcpd owns restarts, so there is never a restart policy. */
export interface ContainerSpec {
  name: string;
  image: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
  labels: Record<string, string>;
  /** A STDIO server: stdin stays open and attachable between clients. */
  interactive: boolean;
  network: 'none' | 'host';
  /** Run an init process as PID 1 (reaps zombies, forwards signals). */
  init: boolean;
  memoryBytes?: number;
  nanoCpus?: number;
  pidsLimit?: number;
  /**
   * Capabilities added back: every container runs with all capabilities dropped and
   * no-new-privileges, whatever else it asks for.
   */
  capAdd?: string[];
  /** The image's filesystem read-only, with a tmpfs on /tmp. */
  readOnlyRootfs?: boolean;
  /** "uid[:gid]" or "name[:group]"; unset: the image's user. */
  user?: string;
}

/** The /tmp of a read-only container: writable, not executable, bounded. */
export const READ_ONLY_TMPFS = { '/tmp': 'rw,noexec,nosuid,nodev,size=64m' };

export interface ContainerDetails {
  id: string;
  running: boolean;
  /** created, running, exited, ... */
  status: string;
  /** The engine's last exit code (0 while it never exited). */
  exitCode: number;
  oomKilled: boolean;
  labels: Record<string, string>;
  /** When it last stopped (ISO time; absent while it never stopped). */
  finishedAt?: string;
}

export interface ContainerSummary {
  id: string;
  labels: Record<string, string>;
  /** The engine's human status, e.g. "Exited (3) 2 minutes ago". */
  status: string;
}

export interface ContainerEvent {
  /** e.g. "die" */
  action: string;
  containerId: string;
  /** The container's labels plus the event's own attributes (a "die" carries exitCode). */
  attributes: Record<string, string>;
}

export interface EventSubscription {
  /** Resolves when the stream ends for any reason (engine restart, abort). */
  ended: Promise<void>;
}

export interface LogRequest {
  stdout: boolean;
  stderr: boolean;
  /** The last n lines; all when undefined. */
  tail?: number;
  /** Keep streaming until the container stops or the signal aborts. */
  follow: boolean;
  timestamps?: boolean;
  signal?: AbortSignal;
}

/** A container's output, stdout and stderr apart (each ends when the logs do). */
export interface ContainerOutput {
  stdout: Readable;
  stderr: Readable;
}

/** Receives an attached container's output, demultiplexed, chunk by chunk. */
export interface OutputSink {
  // Function properties, not methods: they are handed on as bare write callbacks.
  stdout: (chunk: Buffer) => void;
  stderr: (chunk: Buffer) => void;
}

export interface OwnedFilter {
  /** e.g. ["running"] or ["exited", "dead"]; any state when omitted. */
  status?: string[];
  /** Only the containers of this node. */
  node?: string;
}

export interface ImageDetails {
  id: string;
  labels: Record<string, string>;
}

export interface ContainerRuntime {
  /** Creates a container and returns its id. */
  create(spec: ContainerSpec): Promise<string>;
  /** Starts a container; one already running is fine. */
  start(id: string): Promise<void>;
  /** Stops with a grace period before SIGKILL; one already stopped or gone is fine. */
  stop(id: string, timeoutSeconds: number): Promise<void>;
  /** Removes, running or not; one already gone (or being removed) is fine. */
  remove(id: string): Promise<void>;
  /** A container by id or name; null when there is none. */
  inspect(idOrName: string): Promise<ContainerDetails | null>;
  imageExists(image: string): Promise<boolean>;
  /** An image's id and labels; null when there is no such image. */
  inspectImage(image: string): Promise<ImageDetails | null>;
  /**
   * Builds `files` of the folder `context` (a Dockerfile among them) into `tag`, with the
   * classic builder, which uses local images as they are (there may be no registry).
   * Rejects with the engine's own message when the build fails.
   */
  buildImage(context: string, files: string[], tag: string, labels: Record<string, string>): Promise<void>;
  tagImage(image: string, repository: string, tag: string): Promise<void>;
  /** Removes an image tag; one already gone is fine. */
  removeImage(image: string): Promise<void>;
  /**
   * Attaches to stdin, stdout and stderr (the container runs without a TTY, so the
   * engine multiplexes both outputs on one connection; they arrive apart in
   * `output`). Write stdin to the returned stream; it ends with the connection.
   */
  attach(id: string, output: OutputSink): Promise<Duplex>;
  /** Resolves with the exit code when the container stops (null when the engine does not say); rejects when aborted. */
  wait(id: string, signal?: AbortSignal): Promise<number | null>;
  /** The container's logs, demultiplexed (an output not requested is an empty stream); null when there is no such container. */
  logs(idOrName: string, request: LogRequest): Promise<ContainerOutput | null>;
  /** The mcpd containers that carry this owner's label. */
  listOwned(owner: string, filter?: OwnedFilter): Promise<ContainerSummary[]>;
  /** Calls onEvent for each of these events of this owner's containers, from now until the stream ends or the signal aborts. */
  events(owner: string, actions: string[], onEvent: (event: ContainerEvent) => void, signal: AbortSignal): Promise<EventSubscription>;
  /**
   * The environment a container was created with, by name; null when there is no such container.
   * It holds secret values: only the gateway's redaction after a restart reads it.
   */
  envOf?(idOrName: string): Promise<Record<string, string> | null>;
  /** The engine's version (e.g. "26.1.5"), for the node's registration; optional for runtimes that have none. */
  engineVersion?(): Promise<string>;
}

/** The engine's HTTP status of a failed call (404, 409, ...), if it has one. */
export function statusCodeOf(err: unknown): number | undefined {
  const code = (err as { statusCode?: number })?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** The engine's own message (e.g. "invalid reference format") rather than the client's wrapper. */
export function engineMessage(err: unknown): string {
  return (err as { json?: { message?: string } })?.json?.message ?? (err as Error)?.message ?? String(err);
}

/** The label filter of an owner's containers: the only place it is spelled. */
function ownerLabels(owner: string): string[] {
  return [`${LABELS.managed}=true`, `${LABELS.owner}=${owner}`];
}

function ignoring<T>(codes: number[], value: T): (err: unknown) => T {
  return (err) => {
    const code = statusCodeOf(err);
    if (code !== undefined && codes.includes(code)) return value;
    throw err;
  };
}

export interface DockerRuntimeOptions {
  /** Unset: dockerode's default (DOCKER_HOST, else the local socket). */
  socketPath?: string;
}

export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Dockerode;

  constructor(options: DockerRuntimeOptions = {}) {
    this.docker = options.socketPath ? new Dockerode({ socketPath: options.socketPath }) : new Dockerode();
  }

  async engineVersion(): Promise<string> {
    return (await this.docker.version()).Version;
  }

  async create(spec: ContainerSpec): Promise<string> {
    const container = await this.docker.createContainer({
      name: spec.name,
      Image: spec.image,
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
      Labels: spec.labels,
      ...(spec.user !== undefined ? { User: spec.user } : {}),
      Tty: false,
      OpenStdin: spec.interactive,
      StdinOnce: false,
      AttachStdin: spec.interactive,
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: {
        Init: spec.init,
        RestartPolicy: { Name: 'no' },
        NetworkMode: spec.network,
        // MemorySwap equal to Memory: the limit is the limit, not twice it in swap.
        ...(spec.memoryBytes !== undefined ? { Memory: spec.memoryBytes, MemorySwap: spec.memoryBytes } : {}),
        ...(spec.nanoCpus !== undefined ? { NanoCpus: spec.nanoCpus } : {}),
        ...(spec.pidsLimit !== undefined ? { PidsLimit: spec.pidsLimit } : {}),
        // Hardened by default: a compromised server cannot gain privileges through setuid binaries or use root's capabilities.
        SecurityOpt: ['no-new-privileges:true'],
        CapDrop: ['ALL'],
        ...(spec.capAdd?.length ? { CapAdd: spec.capAdd } : {}),
        ...(spec.readOnlyRootfs ? { ReadonlyRootfs: true, Tmpfs: READ_ONLY_TMPFS } : {}),
      },
    });
    return container.id;
  }

  async start(id: string): Promise<void> {
    // 304: already started.
    await this.docker
      .getContainer(id)
      .start()
      .catch(ignoring([304], undefined));
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    // 304: already stopped; 404: already gone.
    await this.docker
      .getContainer(id)
      .stop({ t: timeoutSeconds })
      .catch(ignoring([304, 404], undefined));
  }

  async remove(id: string): Promise<void> {
    // 404: gone; 409: removal already in progress.
    await this.docker
      .getContainer(id)
      .remove({ force: true })
      .catch(ignoring([404, 409], undefined));
  }

  async inspect(idOrName: string): Promise<ContainerDetails | null> {
    const info = await this.docker
      .getContainer(idOrName)
      .inspect()
      .catch(ignoring([404], null));
    if (!info) return null;
    return {
      id: info.Id,
      running: info.State.Running,
      status: info.State.Status,
      exitCode: info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
      labels: info.Config.Labels ?? {},
      ...(info.State.FinishedAt && !info.State.FinishedAt.startsWith('0001-') ? { finishedAt: info.State.FinishedAt } : {}),
    };
  }

  async envOf(idOrName: string): Promise<Record<string, string> | null> {
    const info = await this.docker
      .getContainer(idOrName)
      .inspect()
      .catch(ignoring([404], null));
    if (!info) return null;
    const env: Record<string, string> = {};
    for (const entry of info.Config.Env ?? []) {
      const at = entry.indexOf('=');
      if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
    }
    return env;
  }

  async imageExists(image: string): Promise<boolean> {
    return this.docker
      .getImage(image)
      .inspect()
      .then(() => true, ignoring([404], false));
  }

  async inspectImage(image: string): Promise<ImageDetails | null> {
    return this.docker
      .getImage(image)
      .inspect()
      .then((info) => ({ id: info.Id, labels: info.Config?.Labels ?? {} }), ignoring([404], null));
  }

  async buildImage(context: string, files: string[], tag: string, labels: Record<string, string>): Promise<void> {
    const stream = await this.docker.buildImage({ context, src: files }, {
      t: tag,
      labels,
      rm: true,
      forcerm: true,
      version: '1',
    } as Dockerode.ImageBuildOptions);
    const output = await new Promise<{ error?: string; errorDetail?: { message?: string } }[]>((resolve, reject) =>
      this.docker.modem.followProgress(stream, (err: Error | null, out: unknown[]) => (err ? reject(err) : resolve(out as never))),
    );
    const failure = output.find((o) => o.error || o.errorDetail);
    if (failure) throw new Error((failure.errorDetail?.message ?? failure.error ?? 'the build failed').trim());
  }

  async tagImage(image: string, repository: string, tag: string): Promise<void> {
    await this.docker.getImage(image).tag({ repo: repository, tag });
  }

  async removeImage(image: string): Promise<void> {
    await this.docker
      .getImage(image)
      .remove({ noprune: false })
      .catch(ignoring([404], undefined));
  }

  async attach(id: string, output: OutputSink): Promise<Duplex> {
    const stream = (await this.docker.getContainer(id).attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
    // Plain write callbacks rather than streams: on the proxy's hot path a stream per output costs more than the demultiplexing.
    this.docker.modem.demuxStream(
      stream,
      { write: output.stdout } as unknown as NodeJS.WritableStream,
      { write: output.stderr } as unknown as NodeJS.WritableStream,
    );
    return stream;
  }

  async wait(id: string, signal?: AbortSignal): Promise<number | null> {
    const data = (await this.docker.getContainer(id).wait({ abortSignal: signal })) as { StatusCode?: number } | undefined;
    return typeof data?.StatusCode === 'number' ? data.StatusCode : null;
  }

  async logs(idOrName: string, request: LogRequest): Promise<ContainerOutput | null> {
    const container = this.docker.getContainer(idOrName);
    const options = {
      stdout: request.stdout,
      stderr: request.stderr,
      timestamps: request.timestamps ?? false,
      tail: request.tail,
      abortSignal: request.signal,
    };
    let raw: NodeJS.ReadableStream;
    try {
      raw = request.follow ? await container.logs({ ...options, follow: true }) : ReadableStream.from([await container.logs({ ...options, follow: false })]);
    } catch (err) {
      if (statusCodeOf(err) === 404) return null;
      throw err;
    }
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    // An output that was not asked for is empty: its stream ends at once and never fails, so nobody has to listen to it.
    const wanted = [...(request.stdout ? [stdout] : []), ...(request.stderr ? [stderr] : [])];
    const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
    this.docker.modem.demuxStream(raw, request.stdout ? stdout : discard, request.stderr ? stderr : discard);
    if (!request.stdout) stdout.end();
    if (!request.stderr) stderr.end();
    raw.on('end', () => wanted.forEach((s) => s.end()));
    raw.on('error', (err: Error) => wanted.forEach((s) => s.destroy(err)));
    return { stdout, stderr };
  }

  async listOwned(owner: string, filter: OwnedFilter = {}): Promise<ContainerSummary[]> {
    const label = ownerLabels(owner);
    if (filter.node !== undefined) label.push(`${LABELS.node}=${filter.node}`);
    const containers = await this.docker.listContainers({ all: true, filters: { label, ...(filter.status ? { status: filter.status } : {}) } });
    return containers.map((c) => ({ id: c.Id, labels: c.Labels ?? {}, status: c.Status ?? '' }));
  }

  async events(owner: string, actions: string[], onEvent: (event: ContainerEvent) => void, signal: AbortSignal): Promise<EventSubscription> {
    const stream = (await this.docker.getEvents({
      filters: { type: ['container'], event: actions, label: ownerLabels(owner) },
      abortSignal: signal,
    } as Dockerode.GetEventsOptions)) as unknown as Readable;
    // One JSON document per line.
    const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
    // The stream's errors (an abort, an engine restart) end the subscription through `ended`; readline only re-emits them.
    lines.on('error', () => undefined);
    lines.on('line', (line) => {
      const event = parseEvent(line);
      if (event) onEvent(event);
    });
    const ended = finished(stream).then(
      () => undefined,
      () => undefined,
    );
    void ended.then(() => lines.close());
    return { ended };
  }
}

interface DockerEvent {
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

function parseEvent(line: string): ContainerEvent | null {
  if (!line.trim()) return null;
  let event: DockerEvent;
  try {
    event = JSON.parse(line) as DockerEvent;
  } catch {
    return null;
  }
  const containerId = event.Actor?.ID ?? event.id;
  if (!containerId) return null;
  return { action: event.Action ?? event.status ?? '', containerId, attributes: event.Actor?.Attributes ?? {} };
}
