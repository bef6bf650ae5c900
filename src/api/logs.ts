/**
 * An instance's logs are its container's stderr: stdout carries the MCP
 * protocol, so it is never shown (the container runtime separates the two).
 */
import type { Readable, Writable } from 'node:stream';
import { containerName } from '../contracts/instance';
import type { ContainerRuntime } from '../docker/runtime';
import type { LogOptions } from '../contracts/api';
import { ApiError, notFound } from './errors';
import { normalizeInstanceId } from './validation';

async function stderrStream(runtime: ContainerRuntime, rawId: string, options: LogOptions, signal: AbortSignal): Promise<Readable> {
  const id = normalizeInstanceId(rawId);
  let output;
  try {
    output = await runtime.logs(containerName(id), {
      stdout: false,
      stderr: true,
      timestamps: options.timestamps,
      tail: options.tail,
      follow: options.follow,
      signal,
    });
  } catch (err) {
    throw new ApiError(502, `docker: ${(err as Error).message}`);
  }
  if (!output) throw notFound(`instance "${id}" has no container (not started yet, or removed)`);
  return output.stderr;
}

/** Streams the instance's stderr into `out` (an HTTP response); resolves when the stream ends or the client leaves. */
export async function pipeInstanceLogs(
  runtime: ContainerRuntime,
  rawId: string,
  options: LogOptions,
  out: Writable & { setHeader?(name: string, value: string): unknown; flushHeaders?(): void },
  closed: AbortSignal,
): Promise<void> {
  const stderr = await stderrStream(runtime, rawId, options, closed);
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
