/**
 * An instance's logs are its container's stderr: stdout carries the MCP
 * protocol, so it is never shown. Containers run without a TTY, so Docker
 * multiplexes the streams and dockerode's demuxer separates them.
 */
import type Dockerode from 'dockerode';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { containerName } from '../contracts/instance';
import type { LogOptions } from '../contracts/api';
import { ApiError, notFound } from './errors';
import { normalizeInstanceId } from './validation';

async function stderrStream(docker: Dockerode, rawId: string, options: LogOptions, signal: AbortSignal): Promise<Readable> {
  const id = normalizeInstanceId(rawId);
  const container = docker.getContainer(containerName(id));
  const common = { stdout: false, stderr: true, timestamps: options.timestamps, tail: options.tail, abortSignal: signal };
  try {
    const raw = options.follow ? await container.logs({ ...common, follow: true }) : Readable.from([await container.logs({ ...common, follow: false })]);
    const stderr = new PassThrough();
    docker.modem.demuxStream(raw, new PassThrough().resume(), stderr);
    raw.on('end', () => stderr.end());
    raw.on('error', (err) => stderr.destroy(err));
    return stderr;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) {
      throw notFound(`instance "${id}" has no container (not started yet, or removed)`);
    }
    throw new ApiError(502, `docker: ${(err as Error).message}`);
  }
}

/** Streams the instance's stderr into `out` (an HTTP response); resolves when the stream ends or the client leaves. */
export async function pipeInstanceLogs(
  docker: Dockerode,
  rawId: string,
  options: LogOptions,
  out: Writable & { setHeader?(name: string, value: string): unknown; flushHeaders?(): void },
  closed: AbortSignal,
): Promise<void> {
  const stderr = await stderrStream(docker, rawId, options, closed);
  out.setHeader?.('Content-Type', 'text/plain; charset=utf-8');
  out.setHeader?.('Cache-Control', 'no-cache');
  out.setHeader?.('X-Content-Type-Options', 'nosniff');
  out.flushHeaders?.();
  await new Promise<void>((resolve) => {
    stderr.on('data', (chunk: Buffer) => out.write(chunk));
    stderr.on('end', resolve);
    stderr.on('error', resolve);
    closed.addEventListener('abort', () => {
      stderr.destroy();
      resolve();
    });
  });
  out.end();
}
