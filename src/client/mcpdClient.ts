/**
 * A small REST client for mcpd's API, used by mcpctl and by mcpd's own seeding
 * of the examples (so the API never imports the CLI). It reads the server URL from --server /
 * MCPD_URL and the token from --token / MCPD_TOKEN / `mcpctl login` / <data dir>/api-token, and
 * turns every failure into an McpdError carrying the exit code mcpctl uses.
 */
import fs from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import path from 'node:path';
import type { McpServerSpec } from '../contracts/spec';
import type { InstanceView } from '../contracts/instance';
import type { ServerResource, ApplyOutcome, TokenRole, TokenView } from '../contracts/api';
import type { NodeView } from '../contracts/node';
import type { SecretSummary } from '../secrets/types';
import type { VirtualServerResource } from '../contracts/virtualServer';
import type { AuditRecord } from '../contracts/audit';
import type { PolicyView } from '../contracts/policy';
import { credentialsPath, readLogin } from './credentials';

export const DEFAULT_URL = 'http://127.0.0.1:7400';

/** mcpctl's exit codes. */
export const EXIT = { ok: 0, error: 1, usage: 2, notFound: 3, auth: 4 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class McpdError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly status?: number,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'McpdError';
  }
}

export function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 400 || status === 413 || status === 415) return EXIT.usage;
  return EXIT.error;
}

export interface ConnectionOptions {
  server?: string;
  token?: string;
  env?: NodeJS.ProcessEnv;
}

export interface Connection {
  url: string;
  token: string | undefined;
  /** Where the token came from, for error hints. */
  tokenSource: string;
}

/**
 * Resolves URL and token: flags win over the environment, which wins over the login
 * (`mcpctl login`), which wins over the token file. An expired login is not passed over
 * for the token file: who acts must not change behind the user's back.
 */
export function resolveConnection(options: ConnectionOptions = {}): Connection {
  const env = options.env ?? process.env;
  const url = (options.server ?? env.MCPD_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  if (options.token) return { url, token: options.token, tokenSource: '--token' };
  if (env.MCPD_TOKEN) return { url, token: env.MCPD_TOKEN, tokenSource: 'MCPD_TOKEN' };
  let login: ReturnType<typeof readLogin>;
  try {
    login = readLogin(url, env);
  } catch (err) {
    throw new McpdError(`cannot read the mcpctl login: ${(err as Error).message}`, EXIT.error);
  }
  if (login) {
    const who = `the login of ${login.subject ?? 'unknown'} at ${login.issuer} (${credentialsPath(env)})`;
    if (Date.parse(login.expiresAt) > Date.now()) return { url, token: login.accessToken, tokenSource: who };
    return { url, token: undefined, tokenSource: `${who}, expired at ${login.expiresAt}: run mcpctl login again, or mcpctl logout` };
  }
  const file = path.join(path.resolve(env.MCPD_DATA_DIR ?? '.data'), 'api-token');
  try {
    return { url, token: fs.readFileSync(file, 'utf8').trim(), tokenSource: file };
  } catch {
    return { url, token: undefined, tokenSource: `none (no --token, no MCPD_TOKEN, no ${file})` };
  }
}

export type AppliedServer = ServerResource & { outcome: ApplyOutcome };
export interface SecretInfo extends Omit<SecretSummary, 'updatedAt'> {
  updatedAt: string | null;
}
export interface InstanceFilter {
  server?: string;
  status?: string;
  health?: string;
  node?: string;
  all?: boolean;
}

export class McpdClient {
  constructor(readonly connection: Connection) {}

  static fromOptions(options: ConnectionOptions = {}): McpdClient {
    return new McpdClient(resolveConnection(options));
  }

  // ---- servers
  listServers = () => this.request<{ items: ServerResource[] }>('GET', '/servers').then((r) => r.items);
  getServer = (name: string) => this.request<ServerResource>('GET', `/servers/${enc(name)}`);
  applyServer = (spec: unknown) => this.request<AppliedServer>('PUT', `/servers/${enc(specName(spec))}`, spec);
  deleteServer = (name: string) => this.request<{ name: string; instances: string[] }>('DELETE', `/servers/${enc(name)}`);
  startServer = (name: string) => this.request<{ name: string; instances: string[] }>('POST', `/servers/${enc(name)}/start`);
  /** Starts and waits (no polling) until each instance's start has an outcome, at most timeoutSeconds. */
  startServerAndWait = (name: string, timeoutSeconds: number) =>
    this.request<{ name: string; instances: string[]; views: InstanceView[] }>('POST', `/servers/${enc(name)}/start?wait=true&timeout=${timeoutSeconds}`);
  stopServer = (name: string) => this.request<{ name: string; instances: string[] }>('POST', `/servers/${enc(name)}/stop`);
  scaleServer = (name: string, replicas: number) => this.request<ServerResource>('POST', `/servers/${enc(name)}/scale`, { replicas });

  // ---- virtual servers
  listVirtualServers = () => this.request<{ items: VirtualServerResource[] }>('GET', '/virtualservers').then((r) => r.items);
  getVirtualServer = (name: string) => this.request<VirtualServerResource>('GET', `/virtualservers/${enc(name)}`);
  applyVirtualServer = (spec: unknown) =>
    this.request<VirtualServerResource & { outcome: 'created' | 'configured' | 'unchanged' }>('PUT', `/virtualservers/${enc(specName(spec))}`, spec);
  deleteVirtualServer = (name: string) => this.request<{ name: string; deleted: true }>('DELETE', `/virtualservers/${enc(name)}`);

  // ---- instances
  listInstances = (filter: InstanceFilter = {}) => {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== false) query.set(k, String(v));
    const qs = query.toString();
    return this.request<{ items: InstanceView[] }>('GET', `/instances${qs ? `?${qs}` : ''}`).then((r) => r.items);
  };
  getInstance = (id: string) => this.request<InstanceView>('GET', `/instances/${enc(id)}`);
  retryInstance = (id: string) => this.request<{ id: string }>('POST', `/instances/${enc(id)}/retry`);
  restartInstance = (id: string) => this.request<{ id: string }>('POST', `/instances/${enc(id)}/restart`);
  /** The container's stderr as a byte stream (follow keeps it open). */
  instanceLogs = async (id: string, options: { follow?: boolean; tail?: number | 'all'; signal?: AbortSignal }) => {
    const query = new URLSearchParams();
    if (options.follow) query.set('follow', 'true');
    if (options.tail !== undefined) query.set('tail', String(options.tail));
    return this.send('GET', `/instances/${enc(id)}/logs?${query.toString()}`, undefined, options.signal);
  };

  // ---- nodes
  listNodes = () => this.request<{ items: NodeView[] }>('GET', '/nodes').then((r) => r.items);
  getNode = (name: string) => this.request<NodeView>('GET', `/nodes/${enc(name)}`);

  // ---- secrets
  listSecrets = () => this.request<{ items: SecretInfo[] }>('GET', '/secrets').then((r) => r.items);
  getSecret = (name: string) => this.request<SecretInfo>('GET', `/secrets/${enc(name)}`);
  putSecret = (name: string, data: Record<string, string>) => this.request<SecretInfo>('PUT', `/secrets/${enc(name)}`, { data });
  deleteSecret = (name: string) => this.request<{ name: string }>('DELETE', `/secrets/${enc(name)}`);

  // ---- scoped tokens (admin)
  listTokens = () => this.request<{ items: TokenView[] }>('GET', '/tokens').then((r) => r.items);
  /** The answer holds the token's value: the only time mcpd shows it. */
  createToken = (name: string, role: TokenRole, options: { expiresInSeconds?: number; servers?: string[]; groups?: string[] } = {}) =>
    this.request<TokenView & { token: string }>('POST', '/tokens', { name, role, ...options });
  deleteToken = (name: string) => this.request<{ name: string }>('DELETE', `/tokens/${enc(name)}`);

  // ---- policies (Cedar; changes: admin)
  listPolicies = () => this.request<{ items: PolicyView[] }>('GET', '/policies').then((r) => r.items);
  getPolicy = (name: string) => this.request<PolicyView>('GET', `/policies/${enc(name)}`);
  /** dryRun: only the API's checks (Cedar parser and validator), nothing stored. */
  applyPolicy = (doc: { name: string }, dryRun = false) =>
    this.request<PolicyView & { outcome: ApplyOutcome }>('PUT', `/policies/${enc(doc.name)}${dryRun ? '?dryRun=true' : ''}`, doc);
  deletePolicy = (name: string) => this.request<{ name: string }>('DELETE', `/policies/${enc(name)}`);

  // ---- audit trail (admin, operator)
  /** Records newest first; `since` is a duration back from now (10m) or an RFC 3339 time, checked by the API. */
  listAudit = (filter: { principal?: string; server?: string; since?: string; limit?: number } = {}) => {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) query.set(k, String(v));
    const qs = query.toString();
    return this.request<{ items: AuditRecord[] }>('GET', `/audit${qs ? `?${qs}` : ''}`).then((r) => r.items);
  };

  async request<T>(method: string, apiPath: string, body?: unknown): Promise<T> {
    const res = await this.send(method, apiPath, body);
    return JSON.parse(await readText(res)) as T;
  }

  /**
   * One request with node:http rather than fetch: fetch's first call loads undici,
   * which costs mcpctl about 100 ms of start-up, more than the whole request.
   */
  private async send(method: string, apiPath: string, body?: unknown, signal?: AbortSignal): Promise<IncomingMessage> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.connection.token) headers.authorization = `Bearer ${this.connection.token}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    let res: IncomingMessage;
    try {
      const url = new URL(`${this.connection.url}/api/v1${apiPath}`);
      // https (and with it tls) is loaded only for an https URL.
      const { request } = url.protocol === 'https:' ? await import('node:https') : http;
      res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(url, { method, headers, signal }, resolve);
        req.on('error', reject);
        req.end(payload);
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new McpdError(`cannot reach mcpd at ${this.connection.url}: ${code && code !== 'ERR_INVALID_URL' ? code : (err as Error).message}`, EXIT.error);
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    let answer: { error?: string; details?: unknown } = {};
    try {
      answer = JSON.parse(await readText(res)) as typeof answer;
    } catch {
      // Not JSON (a proxy, or not mcpd at all): fall back to the status line.
    }
    let message = answer.error ?? `HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd();
    if (status === 401) message = `unauthorized: ${message} (token from ${this.connection.tokenSource})`;
    if (status === 403) message = `forbidden: ${message} (token from ${this.connection.tokenSource})`;
    throw new McpdError(message, exitCodeForStatus(status), status, answer.details);
  }
}

async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function specName(spec: unknown): string {
  const name = (spec as Partial<McpServerSpec> | null)?.name;
  if (typeof name !== 'string' || name === '') throw new McpdError('the spec has no "name"', EXIT.usage);
  return name;
}
