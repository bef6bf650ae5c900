/**
 * SecretStore over OpenBao KV v2 through node-vault. Secrets live at
 * <mount>/data/<prefix>/<name> (values) and <mount>/metadata/<prefix>/<name>
 * (versions). Every error leaving this module is rebuilt from a status code or
 * an errno, never from a response body, so no value can leak through it.
 */
import vault from 'node-vault';
import { SECRET_NAME_PATTERN } from '../contracts/spec';
import type { PinnedSecretRef, SecretStore, SecretSummary } from './types';

export interface OpenBaoSecretStoreOptions {
  address: string;
  token: string;
  /** KV v2 mount, e.g. "secret". */
  mount: string;
  /** Path prefix under the mount, e.g. "mcpd". */
  prefix: string;
  /** Per-request timeout; an unreachable OpenBao must fail an attempt, not hang it. */
  timeoutMs?: number;
}

/** Failures of the store itself (not of a lookup): unreachable, permission denied, bad name. */
export class SecretStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretStoreError';
  }
}

// The KV v2 response bodies this store reads (node-vault types every response as `any`).
interface KvWriteResponse {
  data?: { version?: number; created_time?: string };
}
interface KvListResponse {
  data?: { keys?: string[] };
}
interface KvMetadata {
  current_version?: number;
  updated_time?: string;
  versions?: Record<string, { deletion_time?: string; destroyed?: boolean }>;
}
interface KvReadResponse {
  data?: { data?: Record<string, unknown> | null; metadata?: { version?: number; deletion_time?: string; destroyed?: boolean } };
}

interface VaultLikeError {
  response?: { statusCode?: number };
  code?: string;
  message?: string;
}

export class OpenBaoSecretStore implements SecretStore {
  private readonly client: vault.client;

  constructor(private readonly options: OpenBaoSecretStoreOptions) {
    this.client = vault({
      apiVersion: 'v1',
      endpoint: options.address,
      token: options.token,
      rpDefaults: { timeout: options.timeoutMs ?? 5_000 },
    } as vault.VaultOptions);
  }

  async put(name: string, data: Record<string, string>): Promise<SecretSummary> {
    this.checkName(name);
    const keys = Object.keys(data);
    if (keys.length === 0) throw new SecretStoreError(`secret "${name}" needs at least one key`);
    for (const [key, value] of Object.entries(data)) {
      if (typeof value !== 'string') throw new SecretStoreError(`secret "${name}" key "${key}" must be a string`);
    }
    const body = await this.call(`write secret "${name}"`, () => this.client.write(this.dataPath(name), { data }) as Promise<KvWriteResponse | undefined>);
    const version = Number(body?.data?.version ?? 0);
    return { name, keys: keys.sort(), version, updatedAt: body?.data?.created_time ?? null };
  }

  async list(): Promise<SecretSummary[]> {
    let names: string[];
    try {
      const body = (await this.client.list(`${this.options.mount}/metadata/${this.options.prefix}`)) as KvListResponse | undefined;
      names = (body?.data?.keys ?? []).filter((k) => !k.endsWith('/'));
    } catch (err) {
      if (statusOf(err) === 404) return [];
      throw this.storeError('list secrets', err);
    }
    const summaries = await Promise.all(names.sort().map((n) => this.describe(n)));
    return summaries.filter((s): s is SecretSummary => s !== null);
  }

  async describe(name: string): Promise<SecretSummary | null> {
    this.checkName(name);
    let metadata: KvMetadata;
    try {
      metadata = ((await this.client.read(this.metadataPath(name))) as { data?: KvMetadata } | undefined)?.data ?? {};
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw this.storeError(`describe secret "${name}"`, err);
    }
    const version = Number(metadata.current_version ?? 0);
    const current = metadata.versions?.[String(version)];
    if (!version || !current || current.destroyed || current.deletion_time) {
      return { name, keys: [], version, updatedAt: metadata.updated_time ?? null };
    }
    // Only the key names are kept; the values are dropped right here.
    const data = await this.call(
      `describe secret "${name}"`,
      () => this.client.read(`${this.dataPath(name)}?version=${version}`) as Promise<KvReadResponse | undefined>,
    );
    return { name, keys: Object.keys(data?.data?.data ?? {}).sort(), version, updatedAt: metadata.updated_time ?? null };
  }

  async delete(name: string): Promise<boolean> {
    this.checkName(name);
    if ((await this.describe(name)) === null) return false;
    await this.call(`delete secret "${name}"`, () => this.client.delete(this.metadataPath(name)));
    return true;
  }

  async pin(ref: { name: string; key: string }): Promise<PinnedSecretRef> {
    const fail = (reason: string) => new SecretStoreError(`secret resolution failed: ${reason}`);
    if (!SECRET_NAME_PATTERN.test(ref.name)) throw fail(`"${ref.name}" is not a valid secret name`);
    let body: KvReadResponse | undefined;
    try {
      body = (await this.client.read(this.dataPath(ref.name))) as KvReadResponse | undefined;
    } catch (err) {
      if (statusOf(err) === 404) throw fail(`secret "${ref.name}" not found (wanted key "${ref.key}")`);
      throw fail(`secret "${ref.name}" key "${ref.key}": ${this.reason(err)}`);
    }
    const version = Number(body?.data?.metadata?.version ?? 0);
    const data = body?.data?.data;
    if (!data || !version) throw fail(`secret "${ref.name}" not found (its current version is deleted; wanted key "${ref.key}")`);
    if (!Object.prototype.hasOwnProperty.call(data, ref.key)) throw fail(`secret "${ref.name}" has no key "${ref.key}"`);
    return { name: ref.name, key: ref.key, version };
  }

  async readPinned(ref: PinnedSecretRef): Promise<string> {
    const fail = (reason: string) => new SecretStoreError(`secret resolution failed: ${reason}`);
    if (!SECRET_NAME_PATTERN.test(ref.name)) throw fail(`"${ref.name}" is not a valid secret name`);
    let body: KvReadResponse | undefined;
    try {
      body = (await this.client.read(`${this.dataPath(ref.name)}?version=${ref.version}`)) as KvReadResponse | undefined;
    } catch (err) {
      if (statusOf(err) === 404) throw fail(`secret "${ref.name}" version ${ref.version} not found (wanted key "${ref.key}")`);
      throw fail(`secret "${ref.name}" key "${ref.key}": ${this.reason(err)}`);
    }
    const value = body?.data?.data?.[ref.key];
    if (value === undefined) throw fail(`secret "${ref.name}" version ${ref.version} has no key "${ref.key}"`);
    if (typeof value !== 'string') throw fail(`secret "${ref.name}" key "${ref.key}" is not a string`);
    return value;
  }

  private dataPath(name: string): string {
    return `${this.options.mount}/data/${this.options.prefix}/${name}`;
  }

  private metadataPath(name: string): string {
    return `${this.options.mount}/metadata/${this.options.prefix}/${name}`;
  }

  private checkName(name: string): void {
    if (!SECRET_NAME_PATTERN.test(name)) {
      throw new SecretStoreError(`"${name}" is not a valid secret name: lowercase letters, digits, ".", "_" or "-"`);
    }
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.storeError(what, err);
    }
  }

  private storeError(what: string, err: unknown): SecretStoreError {
    return new SecretStoreError(`${what} failed: ${this.reason(err)}`);
  }

  /** A reason built only from a status code or an errno: response bodies may echo values. */
  private reason(err: unknown): string {
    const status = statusOf(err);
    if (status === 403) return 'permission denied (check the OpenBao token and its policy)';
    if (status === 503 && isSealedAnswer(err)) return `OpenBao at ${this.options.address} is sealed (HTTP 503): unseal it`;
    if (status !== undefined) return `OpenBao answered HTTP ${status}`;
    const code = (err as VaultLikeError)?.code;
    // A stalled OpenBao accepts the connection and never answers: say so, not just the errno.
    if (code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') {
      return `OpenBao unreachable at ${this.options.address}: no answer within ${this.options.timeoutMs ?? 5_000} ms (${code})`;
    }
    if (code) return `OpenBao unreachable at ${this.options.address}: ${code}`;
    return `OpenBao request failed at ${this.options.address}`;
  }
}

/** Whether OpenBao's errors say it is sealed ("Vault is sealed"); only tested against that word, never repeated. */
function isSealedAnswer(err: unknown): boolean {
  const errors = (err as { response?: { body?: { errors?: unknown } } })?.response?.body?.errors;
  return Array.isArray(errors) && errors.some((e) => typeof e === 'string' && /\bsealed\b/i.test(e));
}

function statusOf(err: unknown): number | undefined {
  const status = (err as VaultLikeError)?.response?.statusCode;
  return typeof status === 'number' ? status : undefined;
}
