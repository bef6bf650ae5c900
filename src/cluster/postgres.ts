/**
 * PostgreSQL for the cluster: Debian's `postgresql` package (installed with apt when
 * missing), run as a private cluster under the state dir on a loopback port, never the
 * system service. initdb once; the password of its `temporal` superuser lives in a 0600
 * file. Temporal's schema is applied and upgraded by Temporal's own temporal-sql-tool.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFile, spawnSync } from 'node:child_process';
import { POSTGRES_PLUGIN, TEMPORAL_DATABASES, postgresArgs } from './config';
import { isPortOpen, runQuiet, startProcess, waitUntil, type ManagedProcess } from '../embedded/process';

const HOST = '127.0.0.1';

/** The directory of initdb/postgres: the newest major version Debian installed, apt-installing the package when none is. */
export function ensurePostgresBinaries(log: (msg: string) => void): string {
  const find = () => {
    const root = '/usr/lib/postgresql';
    if (!fs.existsSync(root)) return null;
    const versions = fs
      .readdirSync(root)
      .filter((v) => /^\d+$/.test(v) && fs.existsSync(path.join(root, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    return versions.length ? path.join(root, versions[0], 'bin') : null;
  };
  const found = find();
  if (found) return found;
  log("PostgreSQL is not installed: installing Debian's postgresql package with apt-get");
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'postgresql']]) {
    const result = spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (result.status !== 0)
      throw new Error(`apt-get ${args.join(' ')} failed (exit ${result.status ?? result.signal}); install the postgresql package and run again`);
  }
  const installed = find();
  if (!installed) throw new Error('apt-get installed postgresql but no /usr/lib/postgresql/<version>/bin/postgres exists');
  return installed;
}

/** PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user the package creates. */
function asPostgresUser(command: string, args: string[]): { command: string; args: string[] } {
  if (process.getuid?.() !== 0) return { command, args };
  return { command: 'setpriv', args: ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', command, ...args] };
}

function chownToPostgres(target: string): void {
  if (process.getuid?.() !== 0) return;
  const result = spawnSync('chown', ['-R', 'postgres:postgres', target], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`chown postgres ${target} failed: ${result.stderr}`);
}

export interface PostgresServer {
  address: string;
  password: string;
  process: ManagedProcess;
  /** True when this start ran initdb. */
  initialized: boolean;
  stop(): Promise<void>;
}

export async function startPostgres(options: {
  binDir: string;
  dataDir: string;
  passwordFile: string;
  port: number;
  logFile: string;
}): Promise<PostgresServer> {
  if (await isPortOpen(HOST, options.port)) throw new Error(`port ${HOST}:${options.port} (PostgreSQL) is already in use`);
  const parent = path.dirname(options.dataDir);
  // Every directory above the data must be traversable by the postgres user.
  fs.mkdirSync(parent, { recursive: true });
  let initialized = false;
  if (!fs.existsSync(path.join(options.dataDir, 'PG_VERSION'))) {
    fs.rmSync(options.dataDir, { recursive: true, force: true });
    const password = crypto.randomBytes(24).toString('base64url');
    fs.writeFileSync(options.passwordFile, password, { mode: 0o600 });
    // initdb reads the password from a file the postgres user can read; it is removed right after.
    const pwfile = path.join(parent, 'initdb-password');
    fs.writeFileSync(pwfile, password, { mode: 0o600 });
    fs.mkdirSync(options.dataDir, { mode: 0o700 });
    chownToPostgres(options.dataDir);
    chownToPostgres(pwfile);
    fs.chmodSync(parent, 0o755);
    const initdb = asPostgresUser(path.join(options.binDir, 'initdb'), [
      '-D',
      options.dataDir,
      '-U',
      'temporal',
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
    ]);
    const result = runQuiet(initdb.command, initdb.args);
    fs.rmSync(pwfile, { force: true });
    if (!result.ok) throw new Error(`initdb failed:\n${result.output}`);
    initialized = true;
  }
  fs.chmodSync(parent, 0o755);
  const password = fs.readFileSync(options.passwordFile, 'utf8').trim();
  const cmd = asPostgresUser(path.join(options.binDir, 'postgres'), postgresArgs(options.dataDir, options.port));
  const proc = startProcess({ name: 'PostgreSQL', command: cmd.command, args: cmd.args, logFile: options.logFile });
  try {
    await waitUntil(
      `PostgreSQL on ${HOST}:${options.port}`,
      async () => runQuiet(path.join(options.binDir, 'pg_isready'), ['-h', HOST, '-p', String(options.port)]).ok,
      {
        timeoutMs: 60_000,
        intervalMs: 200,
        proc,
      },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  // SIGINT is PostgreSQL's fast shutdown: it ends open sessions instead of waiting for them.
  const stop = async () => {
    if (proc.hasExited()) return;
    try {
      process.kill(proc.pid, 'SIGINT');
    } catch {
      // already gone
    }
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 20_000))]);
    await proc.stop();
  };
  return { address: `${HOST}:${options.port}`, password, process: proc, initialized, stop };
}

/**
 * Creates Temporal's two databases when missing and brings their schemas to the version
 * this server expects, with temporal-sql-tool from the same module (idempotent: a
 * current schema is left as it is).
 */
export function applyTemporalSchema(options: { sqlTool: string; port: number; password: string; log: (msg: string) => void }): void {
  const env = { ...process.env, SQL_PASSWORD: options.password };
  const base = ['--plugin', POSTGRES_PLUGIN, '--endpoint', HOST, '--port', String(options.port), '--user', 'temporal'];
  const run = (args: string[], what: string, allowFailure = false) => {
    const result = runQuiet(options.sqlTool, [...base, ...args], env);
    if (!result.ok && !allowFailure) throw new Error(`temporal-sql-tool ${what} failed:\n${result.output.slice(-2000)}`);
    return result;
  };
  for (const [kind, database] of Object.entries(TEMPORAL_DATABASES)) {
    const db = ['--database', database];
    const created = run([...db, 'create-database'], `create-database ${database}`, true);
    if (!created.ok && !/already exists/.test(created.output))
      throw new Error(`temporal-sql-tool create-database ${database} failed:\n${created.output.slice(-2000)}`);
    const schema = `postgresql/v12/${kind === 'default' ? 'temporal' : 'visibility'}`;
    // Version tables first (a no-op when they exist), then every versioned step up to the latest.
    const setup = run([...db, 'setup-schema', '-v', '0.0'], `setup-schema ${database}`, true);
    if (!setup.ok && !/already exists/i.test(setup.output)) throw new Error(`temporal-sql-tool setup-schema ${database} failed:\n${setup.output.slice(-2000)}`);
    run([...db, 'update-schema', '--schema-name', schema], `update-schema ${database}`);
    options.log(`Temporal schema ${schema} in database ${database} is current`);
  }
}

/** Temporal's service roles as its cluster_membership table numbers them. */
const MEMBERSHIP_ROLES: Record<string, string> = { '1': 'frontend', '2': 'history', '3': 'matching', '4': 'worker' };

export interface ClusterMember {
  service: string;
  /** host:port of the member's ringpop (membership) listener. */
  address: string;
}

/**
 * The live members of the Temporal cluster's rings: each service of each node heartbeats
 * its ringpop address into cluster_membership, and ringpop joins through that table, so a
 * node listed here for a service is in that service's ring.
 */
export function clusterMembers(options: { binDir: string; port: number; password: string }): Promise<ClusterMember[]> {
  // Rows stay for 48 h after a node stops; a live member heartbeats about every 10 s.
  const query =
    "SELECT DISTINCT role, rpc_address, rpc_port FROM cluster_membership WHERE last_heartbeat > now() - interval '30 seconds' ORDER BY role, rpc_port";
  return new Promise((resolve, reject) => {
    execFile(
      path.join(options.binDir, 'psql'),
      ['-h', HOST, '-p', String(options.port), '-U', 'temporal', '-d', TEMPORAL_DATABASES.default, '-At', '-c', query],
      { env: { ...process.env, PGPASSWORD: options.password }, timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`reading cluster_membership failed: ${stderr || error.message}`));
        resolve(
          stdout
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((line) => {
              const [role, host, port] = line.split('|');
              return { service: MEMBERSHIP_ROLES[role] ?? `role ${role}`, address: `${host}:${port}` };
            }),
        );
      },
    );
  });
}
