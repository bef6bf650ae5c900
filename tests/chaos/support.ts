/**
 * What the chaos tests share: a one-replica gitea-like server with a secret token,
 * a client call through the gateway, and the checks every chaos test ends with
 * (no lost instance, no duplicate or orphan container, no secret in any output).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Docker from 'dockerode';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LABELS } from '../../src/contracts/labels';
import { startTemporalDevServer, type TemporalDevServer } from '../../src/embedded/temporal';
import type { InstanceView } from '../../src/contracts/instance';
import { callApi } from '../support/clients';
import { freePort, testEnv, waitForValue, type McpdProcess } from '../support/stack';

export interface ChaosServer {
  name: string;
  instance: string;
  /** The secret token's value: it must appear in no output. */
  token: string;
}

type Api = Pick<McpdProcess, 'url' | 'token'>;

/** Writes the secret, applies and starts a one-replica gitea-like server (short retry delays for tests). */
export async function applyServer(
  mcpd: Api,
  prefix: string,
  retry: Record<string, number> = { fastDelaySeconds: 30, fastAttempts: 5, slowDelaySeconds: 300, stableSeconds: 60 },
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
    env: [
      { name: 'GITEA_HOST', value: 'http://127.0.0.1:3000' },
      { name: 'GITEA_TOKEN', secretRef: { name, key: 'token' } },
    ],
    retry,
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

/** One tools/call of echo through /mcp/servers/<name>, as a client would make it; returns the text. */
export async function echoThroughGateway(mcpd: Api, server: ChaosServer, text: string): Promise<string> {
  const client = new Client({ name: 'chaos-test', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${mcpd.url}/mcp/servers/${server.name}`), {
      requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } },
    }),
  );
  try {
    const result = (await client.callTool({ name: 'echo', arguments: { message: text } }, undefined, { timeout: 10_000 })) as {
      isError?: boolean;
      content: { type: string; text: string }[];
    };
    assert.ok(!result.isError, `echo failed: ${JSON.stringify(result.content)}`);
    return result.content.map((c) => c.text).join('');
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Exactly one container carries the instance's label, and it is the one the instance says is current (no duplicate, no orphan). */
export async function assertOneCurrentContainer(docker: Docker, server: ChaosServer, view: InstanceView): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${LABELS.server}=${server.name}`] } });
  assert.equal(
    containers.length,
    1,
    `one container for ${server.name}, found ${containers.map((c) => `${c.Id.slice(0, 12)} ${c.State}`).join(', ') || 'none'}`,
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

export function assertNoSecret(server: ChaosServer, outputs: Record<string, string>): void {
  for (const [where, text] of Object.entries(outputs)) assert.ok(!text.includes(server.token), `no secret value in ${where}`);
}
