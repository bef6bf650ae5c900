/**
 * What the chaos tests share: a one-replica gitea-like server with a secret token,
 * a client call through the gateway, and the checks every chaos test ends with
 * (no lost instance, no duplicate or orphan container, no secret in any output).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LABELS } from '../../src/contracts/labels';
import { startTemporalDevServer, type TemporalDevServer } from '../../src/embedded/temporal';
import type { InstanceView } from '../../src/contracts/instance';
import { callApi } from '../support/clients';
import { freePort, removeContainers, testEnv, waitForValue, type McpdProcess } from '../support/stack';

export interface ChaosServer {
  name: string;
  instance: string;
  /** The secret token's value: it must appear in no output. */
  token: string;
}

type Api = Pick<McpdProcess, 'url' | 'token'>;

/** The spec fields a chaos test adds: `env` entries are appended to the server's own, the rest replace. */
export type SpecExtras = Record<string, unknown> & { env?: Record<string, unknown>[] };

/** The gitea-like image's misbehaving tools (allocate, flood) are there only with this in the env. */
export const CHAOS_TOOLS_ENV = { name: 'GITEA_LIKE_CHAOS_TOOLS', value: '1' };

/** Writes the secret, applies and starts a one-replica gitea-like server (short retry delays for tests). */
export async function applyServer(
  mcpd: Api,
  prefix: string,
  retry: Record<string, number> = { fastDelaySeconds: 30, fastAttempts: 5, slowDelaySeconds: 300, stableSeconds: 60 },
  extras: SpecExtras = {},
  options: { start?: boolean } = {},
): Promise<ChaosServer> {
  const suffix = randomBytes(3).toString('hex');
  const name = `t-chaos-${prefix}-${suffix}`;
  const token = randomBytes(20).toString('hex');
  const put = await callApi(mcpd, 'PUT', `/api/v1/secrets/${name}`, { data: { token } });
  assert.equal(put.status, 200, put.text);
  const applied = await callApi(mcpd, 'PUT', `/api/v1/servers/${name}`, {
    name,
    image: 'mcpd/gitea-like:dev',
    transport: 'stdio',
    retry,
    ...extras,
    env: [{ name: 'GITEA_HOST', value: 'http://127.0.0.1:3000' }, { name: 'GITEA_TOKEN', secretRef: { name, key: 'token' } }, ...(extras.env ?? [])],
  });
  assert.ok([200, 201].includes(applied.status), applied.text);
  const server = { name, instance: `mcp-instance:${name}:0`, token };
  if (options.start !== false) await startServer(mcpd, server);
  return server;
}

export async function startServer(mcpd: Api, server: ChaosServer): Promise<void> {
  const started = await callApi(mcpd, 'POST', `/api/v1/servers/${server.name}/start`);
  assert.equal(started.status, 200, started.text);
}

export async function instanceView(mcpd: Api, server: ChaosServer): Promise<InstanceView> {
  const res = await callApi(mcpd, 'GET', `/api/v1/instances/${encodeURIComponent(server.instance)}`);
  assert.equal(res.status, 200, res.text);
  return res.json as InstanceView;
}

export function waitForInstance(
  mcpd: Api & Partial<Pick<McpdProcess, 'output'>>,
  server: ChaosServer,
  what: string,
  ok: (v: InstanceView) => boolean,
  timeoutMs: number,
): Promise<InstanceView> {
  return waitForValue(() => instanceView(mcpd, server), ok, {
    timeoutMs,
    intervalMs: 200,
    what,
    describe: (v) =>
      JSON.stringify({ ...v, events: v.events.slice(-6) }) + (mcpd.output ? `\n--- mcpd ---\n${mcpd.output().trim().split('\n').slice(-15).join('\n')}` : ''),
  });
}

export const runningAndHealthy = (v: InstanceView) => v.status === 'RUNNING' && v.health === 'healthy';

/** Replica `ordinal` of a chaos server (applyServer's ChaosServer is replica 0). */
export function replica(server: ChaosServer, ordinal: number): ChaosServer {
  return { ...server, instance: `mcp-instance:${server.name}:${ordinal}` };
}

export interface ToolResult {
  isError?: boolean;
  content: { type: string; text: string }[];
}

/**
 * One tools/call through /mcp/servers/<name>, as a client would make it, in a session of
 * its own. Resolves with the result (also a tool error), rejects with the JSON-RPC error
 * or the client's timeout.
 */
export async function callThroughGateway(
  mcpd: Api,
  server: Pick<ChaosServer, 'name'>,
  tool: string,
  args: Record<string, unknown>,
  timeoutMs = 10_000,
): Promise<ToolResult> {
  const session = await gatewaySession(mcpd, server);
  try {
    return await session.call(tool, args, timeoutMs);
  } finally {
    await session.close();
  }
}

export interface GatewaySession {
  call(tool: string, args: Record<string, unknown>, timeoutMs?: number): Promise<ToolResult>;
  /** Ends the session (DELETE), as a well-behaved client does. */
  close(): Promise<void>;
}

/** An MCP client session on /mcp/servers/<name>, for a test that makes many calls as one client. */
export async function gatewaySession(mcpd: Api, server: Pick<ChaosServer, 'name'>): Promise<GatewaySession> {
  const client = new Client({ name: 'chaos-test', version: '1' });
  const transport = new StreamableHTTPClientTransport(new URL(`${mcpd.url}/mcp/servers/${server.name}`), {
    requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } },
  });
  await client.connect(transport);
  return {
    call: async (tool, args, timeoutMs = 10_000) => (await client.callTool({ name: tool, arguments: args }, undefined, { timeout: timeoutMs })) as ToolResult,
    close: async () => {
      await transport.terminateSession().catch(() => undefined);
      await client.close().catch(() => undefined);
    },
  };
}

/** One tools/call of echo through /mcp/servers/<name>, as a client would make it; returns the text. */
export async function echoThroughGateway(mcpd: Api, server: Pick<ChaosServer, 'name'>, text: string): Promise<string> {
  const result = await callThroughGateway(mcpd, server, 'echo', { message: text });
  assert.ok(!result.isError, `echo failed: ${JSON.stringify(result.content)}`);
  return result.content.map((c) => c.text).join('');
}

/** How a call through the gateway ended and after how long: a chaos test asserts an error, not a hang. */
export async function settle<T>(call: Promise<T>): Promise<{ ok: true; value: T; ms: number } | { ok: false; error: Error; ms: number }> {
  const t0 = Date.now();
  try {
    const value = await call;
    return { ok: true, value, ms: Date.now() - t0 };
  } catch (error) {
    return { ok: false, error: error as Error, ms: Date.now() - t0 };
  }
}

/** Resident memory of a process on this machine, in MiB (Linux /proc). */
export function residentMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb[1]) / 1024;
}

/** Exactly one container carries the instance's label, and it is the one the instance says is current (no duplicate, no orphan). */
export async function assertOneCurrentContainer(docker: Docker, server: ChaosServer, view: InstanceView): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${server.instance}`] } });
  assert.equal(
    containers.length,
    1,
    `one container for ${server.instance}, found ${containers.map((c) => `${c.Id.slice(0, 12)} ${c.State}`).join(', ') || 'none'}`,
  );
  assert.equal(containers[0].Id, view.containerId, "the container is the instance's current one");
  assert.equal(containers[0].State, 'running');
}

/**
 * A Temporal dev server of the test's own (headless, on a free port unless given one, log in
 * workDir), for tests that stop or kill Temporal: npm test's shared one is never touched.
 * dbFile null keeps it in memory; a file lets a restart on the same port pick up where it was.
 */
export async function startOwnTemporal(workDir: string, options: { dbFile: string | null; port?: number }): Promise<TemporalDevServer> {
  return startTemporalDevServer({
    temporalBin: testEnv().temporalCli,
    port: options.port ?? (await freePort()),
    uiPort: null,
    dbFile: options.dbFile,
    logFile: path.join(workDir, 'temporal.log'),
  });
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * How every chaos test ends: its servers stopped through the API (so no workflow restarts
 * them), mcpd stopped, then whatever containers they left removed by label (on `docker`,
 * for a test with an engine of its own).
 */
export async function stopServersAndMcpd(mcpd: McpdProcess | undefined, servers: (ChaosServer | undefined)[], docker: Docker = new Docker()): Promise<void> {
  const applied = servers.filter((s): s is ChaosServer => s !== undefined);
  if (mcpd) {
    for (const server of applied) await callApi(mcpd, 'POST', `/api/v1/servers/${server.name}/stop`).catch(() => undefined);
    await mcpd.stop();
  }
  for (const server of applied) await removeContainers({ label: `${LABELS.server}=${server.name}` }, docker);
}

export function assertNoSecret(server: ChaosServer, outputs: Record<string, string>): void {
  for (const [where, text] of Object.entries(outputs)) assert.ok(!text.includes(server.token), `no secret value in ${where}`);
}
