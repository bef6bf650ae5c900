/**
 * An instance's logs are its container's stderr: stdout carries the MCP
 * protocol, so it is never shown (the container runtime separates the two).
 *
 * The container is on whichever node runs the instance. A node reads its own engine;
 * any other process asks the node gateways of the cluster over the gateway link
 * (`<link>/<id>/logs`, with the link token), so `mcpctl logs` works against any API
 * process without knowing where an instance runs.
 */
import type { ServerResponse } from 'node:http';
import { Readable, type Writable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { containerName } from '../contracts/instance';
import type { ContainerRuntime } from '../docker/runtime';
import { logQuerySchema, type LogOptions } from '../contracts/api';
import { ApiError, notFound } from './errors';
import { normalizeInstanceId, parseWith } from './validation';

/** One place an instance's container may be: its stderr, or null when that place has no such container. */
export type LogSource = (instanceId: string, options: LogOptions, signal: AbortSignal) => Promise<Readable | null>;

/** The Docker engine of this process's node. */
export function engineLogSource(runtime: ContainerRuntime): LogSource {
  return async (instanceId, options, signal) => {
    const output = await runtime
      .logs(containerName(instanceId), { stdout: false, stderr: true, timestamps: options.timestamps, tail: options.tail, follow: options.follow, signal })
      .catch((err: Error) => {
        throw new Error(`docker: ${err.message}`);
      });
    return output?.stderr ?? null;
  };
}

/** The link endpoint of an instance's logs on a node gateway, with the query of GET /instances/:id/logs. */
function linkLogsUrl(instanceUrl: string, options: LogOptions): string {
  const query = new URLSearchParams({ tail: String(options.tail ?? 'all'), follow: String(options.follow), timestamps: String(options.timestamps) });
  return `${instanceUrl}/logs?${query.toString()}`;
}

/** Another node's gateway, reached over the gateway link at `instanceUrl(id)`; `authorization` carries the link token. */
export function linkedNodeLogSource(node: string, instanceUrl: (instanceId: string) => string, authorization: string): LogSource {
  return async (instanceId, options, signal) => {
    const res = await fetch(linkLogsUrl(instanceUrl(instanceId), options), { headers: { authorization }, signal }).catch((err: Error) => {
      throw new Error(`node ${node}: ${err.message}`);
    });
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok || !res.body) {
      const body = await res.text().catch(() => '');
      throw new Error(`node ${node}: HTTP ${res.status} ${body.slice(0, 200)}`.trim());
    }
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  };
}

async function stderrStream(sources: readonly LogSource[], rawId: string, options: LogOptions, signal: AbortSignal): Promise<Readable> {
  const id = normalizeInstanceId(rawId);
  const failures: string[] = [];
  for (const source of sources) {
    try {
      const stderr = await source(id, options, signal);
      if (stderr) return stderr;
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  // 502 only when no place answered; places that did not answer are named either way.
  if (failures.length > 0 && failures.length === sources.length) throw new ApiError(502, failures.join('; '));
  const unanswered = failures.length > 0 ? `; not answering: ${failures.join('; ')}` : '';
  throw notFound(`instance "${id}" has no container (not started yet, or removed)${unanswered}`);
}

/**
 * Streams the instance's stderr into `out` (an HTTP response) from the first source that
 * has its container; resolves when the stream ends or the client leaves.
 */
export async function pipeInstanceLogs(
  sources: readonly LogSource[],
  rawId: string,
  options: LogOptions,
  out: Writable & { setHeader?(name: string, value: string): unknown; flushHeaders?(): void },
  closed: AbortSignal,
): Promise<void> {
  const stderr = await stderrStream(sources, rawId, options, closed);
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

/**
 * A node's link endpoint `<link>/<id>/logs`: its own engine only (the asking process
 * tries the other nodes itself). Bad options answer 400, a missing container (or a
 * process that runs no node) 404,
 * as GET /instances/:id/logs does.
 */
export async function serveLinkedLogs(runtime: ContainerRuntime | undefined, url: string, instanceId: string, res: ServerResponse): Promise<void> {
  const closed = new AbortController();
  res.on('close', () => closed.abort());
  try {
    if (!runtime) throw notFound('this process runs no node: it has no container logs');
    const options = parseWith(logQuerySchema, Object.fromEntries(new URL(url, 'http://link').searchParams), 'log options');
    await pipeInstanceLogs([engineLogSource(runtime)], instanceId, options, res, closed.signal);
  } catch (err) {
    if (res.headersSent) return void res.end();
    res.writeHead(err instanceof ApiError ? err.status : 500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: (err as Error).message }));
  }
}
