/**
 * The audit trail on disk: JSON lines in `<dataDir>/audit/`, one file per mcpd process
 * (processes of one cluster may share a data dir), rotated by size with
 * rotating-file-stream's logrotate mode (`<name>.jsonl`, `<name>.jsonl.1`, … up to the
 * number of files kept). Records are buffered and written in one write every
 * FLUSH_MS (or sooner once BUFFER_BYTES are waiting), so a gateway call costs a
 * JSON.stringify and an array push; a crash loses at most the last FLUSH_MS of records.
 * Queries flush first, then read every file of the folder (theirs and other processes').
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Options, RotatingFileStream } from 'rotating-file-stream' with { 'resolution-mode': 'import' };
import type { AuditQuery, AuditRecord } from '../contracts/audit';
import type { Logger } from '../logger';

export const AUDIT_DIR = 'audit';
const FILE_SUFFIX = '.jsonl';

// The package ships CommonJS for require, but its one type file sits in an ES module package, so
// TypeScript (module node16) refuses a plain import from this CommonJS file: types from the ESM view, code by require.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createStream } = require('rotating-file-stream') as { createStream: (filename: string, options: Options) => RotatingFileStream };
const FLUSH_MS = 200;
const BUFFER_BYTES = 64 * 1024;

export interface AuditLogOptions {
  /** The folder of the audit files (<dataDir>/audit). */
  dir: string;
  /** This process's file, without suffix (e.g. `<node>-<port>`). */
  name: string;
  /** A file is rotated once it would grow past this many bytes. */
  maxBytes: number;
  /** Rotated files kept besides the current one; older ones are removed. */
  keepFiles: number;
  logger?: Logger;
}

/** Where records go: the real log, or nothing (MCPD_AUDIT=false). */
export interface AuditSink {
  write(record: AuditRecord): void;
}

export const discardAudit: AuditSink = { write: () => undefined };

export class AuditLog implements AuditSink {
  private readonly stream: RotatingFileStream;
  private readonly fileName: string;
  private buffer: string[] = [];
  private bufferedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastWrite: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: AuditLogOptions) {
    fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    this.fileName = `${options.name}${FILE_SUFFIX}`;
    // A file name (not a generator) with `rotate`: logrotate's names, <file>.1 the newest rotated one.
    this.stream = createStream(this.fileName, {
      path: options.dir,
      size: `${options.maxBytes}B`,
      rotate: options.keepFiles,
      mode: 0o600,
    });
    // A full disk or a removed folder must not take the gateway down; it is logged instead.
    this.stream.on('error', (err) => options.logger?.error({ err: err.message, dir: options.dir }, 'audit: write failed'));
  }

  write(record: AuditRecord): void {
    if (this.closed) return;
    const line = `${JSON.stringify(record)}\n`;
    this.buffer.push(line);
    this.bufferedBytes += line.length;
    if (this.bufferedBytes >= BUFFER_BYTES) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS).unref();
  }

  /** Writes what is buffered; resolves once the stream took it. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length > 0 && !this.closed) {
      const chunk = this.buffer.join('');
      this.buffer = [];
      this.bufferedBytes = 0;
      this.lastWrite = this.lastWrite.then(() => new Promise<void>((resolve) => this.stream.write(chunk, () => resolve())));
    }
    return this.lastWrite;
  }

  /**
   * Records of every process writing to the folder, newest first, filtered. Each file is
   * read whole (files are bounded by the rotation size); files last written before
   * `since` are skipped.
   */
  async query(query: AuditQuery): Promise<AuditRecord[]> {
    await this.flush();
    const files = await fs.promises.readdir(this.options.dir).catch(() => [] as string[]);
    const since = query.since?.getTime();
    const found: AuditRecord[] = [];
    for (const file of files) {
      if (!/\.jsonl(\.\d+)?$/.test(file)) continue;
      const full = path.join(this.options.dir, file);
      const stat = await fs.promises.stat(full).catch(() => undefined);
      if (!stat?.isFile() || (since !== undefined && stat.mtimeMs < since)) continue;
      const text = await fs.promises.readFile(full, 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        if (line === '') continue;
        let record: AuditRecord;
        try {
          record = JSON.parse(line) as AuditRecord;
        } catch {
          continue; // a line cut short by a crash
        }
        if (matches(record, query, since)) found.push(record);
      }
    }
    found.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
    return found.slice(0, query.limit);
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await new Promise<void>((resolve) => this.stream.end(() => resolve()));
  }
}

function matches(record: AuditRecord, query: AuditQuery, since: number | undefined): boolean {
  if (query.principal !== undefined && record.principal?.name !== query.principal) return false;
  if (query.server !== undefined && record.server !== query.server) return false;
  if (since !== undefined && Date.parse(record.time) < since) return false;
  return true;
}

/** This process's audit file name: node and port, so processes sharing a data dir never write one file. */
export function auditFileName(node: string, port: number): string {
  return `${node}-${port}`.replace(/[^A-Za-z0-9._-]/g, '_');
}
