/**
 * The Temporal dev server (`temporal server start-dev`) as the embedded default:
 * loopback only, SQLite under the data dir (or in memory for tests), the Web UI, and
 * the search attributes mcpd's workflows set, registered at start.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SEARCH_ATTRIBUTES } from '../contracts/searchAttributes';
import { isPortOpen, runQuiet, startProcess, waitUntil, type ManagedProcess } from './process';

export interface TemporalDevServerOptions {
  temporalBin: string;
  /** gRPC port on 127.0.0.1. */
  port: number;
  /** Web UI port on 127.0.0.1; null runs headless. */
  uiPort: number | null;
  /** SQLite file for persistence; null keeps everything in memory. */
  dbFile: string | null;
  logFile: string;
  namespace?: string;
  timeoutMs?: number;
}

export interface TemporalDevServer {
  address: string;
  uiUrl: string | null;
  process: ManagedProcess;
  stop: () => Promise<void>;
}

export const HOST = '127.0.0.1';

/**
 * A write-ahead log, synced at checkpoints rather than at every commit: SQLite's default
 * (a rollback journal, synced per commit) made the embedded server the slowest part of
 * starting hundreds of instances (bench/scale: 300 healthy after 80-91 s, 62-66 s with these).
 * A crash of any process loses nothing; a power cut may lose the last commits, never the
 * file's consistency.
 */
const SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];

/**
 * Two of the dev server's defaults, set back to what a single host wants:
 *  - It re-reads the search attributes from its database on every use, so one registered
 *    while it runs is usable at once. mcpd registers its own at start (below, written to
 *    the database before the server serves), and each upsert, visibility write and
 *    visibility query then cost one more read on the database's single connection: in a
 *    start of 300 instances, 31,000 of them. With the server's own default they are read
 *    once a minute.
 *  - It splits every task queue in four partitions, which spread a queue over matching
 *    hosts; here there is one, and a task waits in its partition until a poller lands
 *    there, which with the few pollers of a quiet node worker can take a long poll or more.
 */
const DYNAMIC_CONFIG = [
  'system.forceSearchAttributesCacheRefreshOnRead=false',
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
];

export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const address = `${HOST}:${options.port}`;
  if (await isPortOpen(HOST, options.port)) {
    throw new Error(`port ${address} is already in use; free it, or set TEMPORAL_ADDRESS=${address} to use the Temporal server listening there`);
  }
  if (options.uiPort !== null && (await isPortOpen(HOST, options.uiPort))) {
    throw new Error(`port ${HOST}:${options.uiPort} (Temporal Web UI) is already in use`);
  }
  const args = ['server', 'start-dev', '--ip', HOST, '--port', String(options.port), '--log-level', 'warn'];
  for (const setting of DYNAMIC_CONFIG) args.push('--dynamic-config-value', setting);
  if (options.uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(options.uiPort), '--ui-disable-news-fetch');
  if (options.dbFile) {
    fs.mkdirSync(path.dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile, ...SQLITE_PRAGMAS.flatMap((pragma) => ['--sqlite-pragma', pragma]));
  }
  if (options.namespace && options.namespace !== 'default') args.push('--namespace', options.namespace);
  for (const name of Object.values(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=Keyword`);

  const proc = startProcess({ name: 'temporal dev server', command: options.temporalBin, args, logFile: options.logFile });
  const server: TemporalDevServer = {
    address,
    uiUrl: options.uiPort === null ? null : `http://${HOST}:${options.uiPort}`,
    process: proc,
    stop: () => proc.stop(),
  };
  try {
    await waitUntil(
      `Temporal at ${address} to report SERVING`,
      async () => runQuiet(options.temporalBin, ['operator', 'cluster', 'health', '--address', address]).ok,
      { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 300, proc },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return server;
}

/** The SQLite file of the persistent embedded server under a data dir. */
export function temporalDbFile(dataDir: string): string {
  return path.join(dataDir, 'temporal', 'temporal.db');
}
