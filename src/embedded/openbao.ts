/**
 * OpenBao for the embedded stack. Persistent mode runs a real `bao server` with file
 * storage under <dataDir>/openbao: initialised once with one unseal key, whose key and
 * root token are kept in 0600 files next to the data, unsealed on every start, KV v2 at
 * secret/. (OpenBao 2.x dropped the file backend, so the store is single-node Raft.) Dev mode (tests) keeps everything in memory with a given root token.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { rootTokenFile } from '../secrets/rootToken';
import { isPortOpen, startProcess, waitUntil, type ManagedProcess } from './process';

export { rootTokenFile };

const HOST = '127.0.0.1';

export interface OpenBaoOptions {
  baoBin: string;
  port: number;
  logFile: string;
  timeoutMs?: number;
}

export interface PersistentOpenBaoOptions extends OpenBaoOptions {
  /** <dataDir>/openbao: config, storage, unseal-key and root-token live here. */
  dir: string;
}

export interface DevOpenBaoOptions extends OpenBaoOptions {
  /** Root token; random when omitted. */
  rootToken?: string;
}

export interface OpenBaoServer {
  address: string;
  /** Root token: handed to mcpd through the environment, never printed. */
  token: string;
  process: ManagedProcess;
  stop: () => Promise<void>;
}

export function unsealKeyFile(dir: string): string {
  return path.join(dir, 'unseal-key');
}

async function api(
  address: string,
  method: string,
  urlPath: string,
  token?: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${address}/v1/${urlPath}`, {
    method,
    headers: { ...(token ? { 'X-Vault-Token': token } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { raw: text.slice(0, 200) };
  }
  return { status: response.status, json };
}

/** The JSON body of a successful call, as the OpenBao API documents it for that path. */
async function expectOk<T>(what: string, call: Promise<{ status: number; json: unknown }>): Promise<T> {
  const { status, json } = await call;
  if (status >= 300) throw new Error(`OpenBao ${what} failed: HTTP ${status} ${JSON.stringify((json as { errors?: unknown } | null)?.errors ?? json)}`);
  return json as T;
}

interface SecretsMount {
  type: string;
  options?: { version?: string } | null;
}

async function assertPortFree(port: number): Promise<void> {
  if (await isPortOpen(HOST, port)) {
    throw new Error(`port ${HOST}:${port} is already in use; free it, or set BAO_ADDR and BAO_TOKEN to use the OpenBao listening there`);
  }
}

/** Waits until the listener answers /sys/health at all (sealed and uninitialised count). */
async function waitForListener(address: string, proc: ManagedProcess, timeoutMs: number): Promise<void> {
  await waitUntil(
    `OpenBao at ${address} to listen`,
    async () => {
      const response = await fetch(`${address}/v1/sys/health`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      return true;
    },
    { timeoutMs, intervalMs: 200, proc },
  );
}

function writeSecretFile(file: string, value: string): void {
  fs.writeFileSync(file, value, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

function writeConfig(dir: string, port: number, address: string): string {
  const configFile = path.join(dir, 'config.hcl');
  fs.writeFileSync(
    configFile,
    [
      // OpenBao 2.x has no "file" backend; a single-node Raft store keeps the data on disk.
      `storage "raft" {`,
      `  path    = ${JSON.stringify(path.join(dir, 'data'))}`,
      `  node_id = "mcpd-embedded"`,
      `}`,
      `listener "tcp" {`,
      `  address         = "${HOST}:${port}"`,
      `  cluster_address = "${HOST}:${port + 1}"`,
      `  tls_disable     = true`,
      `}`,
      `api_addr     = "${address}"`,
      `cluster_addr = "http://${HOST}:${port + 1}"`,
      `ui           = false`,
      '',
    ].join('\n'),
  );
  return configFile;
}

export async function startPersistentOpenBao(options: PersistentOpenBaoOptions): Promise<OpenBaoServer> {
  await assertPortFree(options.port);
  await assertPortFree(options.port + 1);
  const address = `http://${HOST}:${options.port}`;
  const dataDir = path.join(options.dir, 'data');
  // Present while an init is under way: if it is still here on the next start, that init
  // never handed us its keys, so the store holds nothing usable and starts afresh.
  const initMarker = path.join(options.dir, 'init-in-progress');
  if (fs.existsSync(initMarker)) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(initMarker);
  }
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const configFile = writeConfig(options.dir, options.port, address);
  const timeoutMs = options.timeoutMs ?? 90_000;
  const proc = startProcess({ name: 'OpenBao', command: options.baoBin, args: ['server', `-config=${configFile}`], logFile: options.logFile });
  try {
    await waitForListener(address, proc, timeoutMs);
    const status = await expectOk<{ initialized: boolean }>('init status', api(address, 'GET', 'sys/init'));
    if (!status.initialized) {
      fs.writeFileSync(initMarker, '');
      // Raft init writes and elects; on a busy machine it takes several seconds.
      const init = await expectOk<{ keys_base64: string[]; root_token: string }>(
        'init',
        api(address, 'PUT', 'sys/init', undefined, { secret_shares: 1, secret_threshold: 1 }, timeoutMs),
      );
      writeSecretFile(unsealKeyFile(options.dir), init.keys_base64[0]);
      writeSecretFile(rootTokenFile(options.dir), init.root_token);
      fs.rmSync(initMarker);
    }
    if (!fs.existsSync(unsealKeyFile(options.dir)) || !fs.existsSync(rootTokenFile(options.dir))) {
      throw new Error(
        `OpenBao under ${options.dir} is initialised but ${unsealKeyFile(options.dir)} or ${rootTokenFile(options.dir)} is missing; ` +
          `restore them, or remove ${options.dir} to start afresh (losing its secrets)`,
      );
    }
    const key = fs.readFileSync(unsealKeyFile(options.dir), 'utf8').trim();
    const token = fs.readFileSync(rootTokenFile(options.dir), 'utf8').trim();
    const seal = await expectOk<{ sealed: boolean }>('seal status', api(address, 'GET', 'sys/seal-status'));
    if (seal.sealed) {
      const unsealed = await expectOk<{ sealed: boolean }>('unseal', api(address, 'PUT', 'sys/unseal', undefined, { key }, timeoutMs));
      if (unsealed.sealed) throw new Error('OpenBao is still sealed after unseal with the stored key');
    }
    // Active once unsealed and the Raft node has elected itself; until then 503/429.
    await waitUntil('OpenBao to become active', async () => (await api(address, 'GET', 'sys/health')).status === 200, {
      timeoutMs,
      intervalMs: 200,
      proc,
    });
    // Newer servers list the mounts under `data`, older ones at the top level.
    const mounts = await expectOk<Record<string, SecretsMount | undefined> & { data?: Record<string, SecretsMount | undefined> }>(
      'list mounts',
      api(address, 'GET', 'sys/mounts', token),
    );
    const secretMount = mounts['secret/'] ?? mounts.data?.['secret/'];
    if (!secretMount) {
      await expectOk('enable KV v2 at secret/', api(address, 'POST', 'sys/mounts/secret', token, { type: 'kv', options: { version: '2' } }));
    } else if (secretMount.type !== 'kv' || secretMount.options?.version !== '2') {
      throw new Error(`OpenBao has secret/ mounted as ${secretMount.type} v${secretMount.options?.version ?? '1'}; mcpd needs KV v2 there`);
    }
    return { address, token, process: proc, stop: () => proc.stop() };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** In-memory dev server: fast, KV v2 at secret/, everything gone when it stops. */
export async function startDevOpenBao(options: DevOpenBaoOptions): Promise<OpenBaoServer> {
  await assertPortFree(options.port);
  const address = `http://${HOST}:${options.port}`;
  const token = options.rootToken ?? `t-${crypto.randomBytes(18).toString('hex')}`;
  const proc = startProcess({
    name: 'OpenBao (dev)',
    command: options.baoBin,
    args: ['server', '-dev', `-dev-root-token-id=${token}`, `-dev-listen-address=${HOST}:${options.port}`],
    logFile: options.logFile,
    // Dev mode writes the token to ~/.vault-token; keep that out of the user's home.
    env: { ...process.env, HOME: path.dirname(options.logFile) },
  });
  try {
    await waitUntil(`OpenBao (dev) at ${address} to become active`, async () => (await api(address, 'GET', 'sys/health')).status === 200, {
      timeoutMs: options.timeoutMs ?? 30_000,
      intervalMs: 200,
      proc,
    });
    return { address, token, process: proc, stop: () => proc.stop() };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}
