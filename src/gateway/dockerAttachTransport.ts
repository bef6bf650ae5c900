/**
 * An MCP transport over a container's attach stream: stdin carries requests,
 * stdout newline-delimited JSON-RPC, stderr logs (kept in a ring). Docker
 * multiplexes stdout and stderr on one hijacked connection when Tty is false;
 * the runtime separates them.
 * There must be exactly one of these per container (see Gateway).
 */
import type { Duplex } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ContainerRuntime } from '../docker/runtime';
import { DEFAULT_MAX_LINE_BYTES, LineDecoder, LineRing } from './lineDecoder';

export class DockerAttachTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  /** Why the stream ended, for the errors of calls that were in flight. */
  closeReason?: string;
  private stream?: Duplex;
  private closed = false;
  /** Lines sent during this turn of the event loop, written together by flush(). */
  private pendingLines: string[] = [];
  private flushScheduled = false;

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly containerId: string,
    readonly stderr: LineRing = new LineRing(),
    private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES,
  ) {}

  async start(): Promise<void> {
    const decoder = new LineDecoder(
      (message) => this.onmessage?.(message as JSONRPCMessage),
      (line) => this.stderr.push(`[stdout, not JSON-RPC] ${line}\n`),
      this.maxLineBytes,
      (max) => this.protocolError(`the server wrote a line of more than ${describeBytes(max)} to stdout: not JSON-RPC (protocol error)`),
    );
    const stream = await this.runtime.attach(this.containerId, {
      stdout: (chunk) => decoder.push(chunk),
      stderr: (chunk) => this.stderr.push(chunk),
    });
    this.stream = stream;
    stream.on('error', (error) => this.onerror?.(error));
    const ended = () => {
      this.closeReason ??= "the server's stdio stream ended (its process exited or the container stopped)";
      this.finish();
    };
    stream.on('end', ended);
    stream.on('close', ended);
  }

  /**
   * Queues the message and writes everything queued in this turn of the event loop
   * with one write (setImmediate runs right after the loop has handled every socket
   * that was readable). Under load the gateway receives many client requests per
   * turn; one write per message cost a syscall each here, and a read and a write
   * each in dockerd, the containerd shim and the server, which was most of the
   * proxy's CPU time. A lone call waits only for the end of the current turn.
   */
  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed || !this.stream) throw new Error('attach stream is closed');
    this.pendingLines.push(JSON.stringify(message) + '\n');
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  async close(): Promise<void> {
    // What was sent before close (a last cancellation) still goes out.
    this.flush();
    // Ending only our side of the hijacked connection: the container keeps its
    // stdin open (StdinOnce false), so a later owner can attach again.
    this.stream?.destroy();
    this.finish();
  }

  /**
   * The server broke the framing: the calls in flight cannot be answered any more, so the
   * connection ends with the reason (they fail at once instead of waiting out their
   * timeouts) and the gateway attaches afresh while the container runs.
   */
  private protocolError(reason: string): void {
    if (this.closed) return;
    this.stderr.push(`[mcpd] ${reason}\n`);
    this.closeReason = reason;
    this.stream?.destroy();
    this.finish();
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pendingLines.length === 0) return;
    const text = this.pendingLines.join('');
    this.pendingLines = [];
    if (!this.closed && this.stream && !this.stream.destroyed) this.stream.write(text);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.();
  }
}

function describeBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}
