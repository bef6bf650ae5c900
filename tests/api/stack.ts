/**
 * An mcpd started in the test process by the production composition root
 * (createMcpd: Temporal client and workers with the real workflows and activities,
 * OpenBao secret store, Docker, gateway, API behind the node:http server with its
 * bearer-token check), against npm test's Temporal and OpenBao. In-process, so the
 * API tests can reach into the parts (e.g. the Temporal client).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import Dockerode from 'dockerode';
import { loadSettings, type Settings } from '../../src/config/settings';
import { createLogger } from '../../src/logger';
import { createMcpd } from '../../src/mcpd';
import type { SecretStore } from '../../src/secrets/types';
import { removeContainers, testEnv, waitFor } from '../support/stack';

export interface ApiStack {
  url: string;
  token: string;
  dataDir: string;
  node: string;
  client: Client;
  /** For assertions about containers (tests look at Docker directly). */
  docker: Dockerode;
  secrets: SecretStore;
  stop(): Promise<void>;
}

/** Settings of an in-process mcpd on npm test's stack, as node `node` with its data in `dataDir`. */
export function stackSettings(node: string, dataDir: string): Settings {
  const env = testEnv();
  return loadSettings({
    ...process.env,
    MCPD_DATA_DIR: dataDir,
    TEMPORAL_ADDRESS: env.temporalAddress,
    BAO_ADDR: env.baoAddress,
    BAO_TOKEN: env.baoToken,
    // Each stack keeps its secrets under its own prefix, so parallel runs never see each other's.
    MCPD_SECRETS_PREFIX: `mcpd-${node}`,
    MCPD_NODE: node,
    MCPD_HOST: '127.0.0.1',
  });
}

export async function startApiStack(): Promise<ApiStack> {
  const node = `t-api-${randomBytes(3).toString('hex')}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-api-'));
  const settings = stackSettings(node, dataDir);
  const mcpd = await createMcpd(
    // Port 0: the system picks a free one, and mcpd.url names it.
    { ...settings, apiPort: 0 },
    {
      // The owner label is this stack's own, so stop() removes exactly its containers.
      owner: node,
      logger: createLogger(process.env.MCPD_LOG_LEVEL ?? 'silent'),
      // The examples' fixed server names would collide with other suites on the shared engine.
      seedExamples: false,
      onFatal: (err) => console.error('test workers failed', err),
    },
  );
  // Ready as a client would see it: the workers polling and the node's running instances re-attached.
  await waitFor(async () => (await fetch(`${mcpd.url}/readyz`)).status === 200, { timeoutMs: 60_000, intervalMs: 100, what: `${mcpd.url}/readyz` }).catch(
    async (err) => {
      await mcpd.close();
      throw err;
    },
  );
  const docker = new Dockerode();
  return {
    url: mcpd.url,
    token: mcpd.token,
    dataDir,
    node,
    client: mcpd.client,
    docker,
    secrets: mcpd.secrets,
    async stop() {
      await mcpd.close();
      await removeContainers({ label: `io.mcpd.owner=${node}` }, docker);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** fetch against the stack with the token (or another one, or none). */
export function api(stack: Pick<ApiStack, 'url' | 'token'>) {
  return async (method: string, apiPath: string, body?: unknown, options: { token?: string | null; rawBody?: string; contentType?: string } = {}) => {
    const token = options.token === undefined ? stack.token : options.token;
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined || options.rawBody !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    const res = await fetch(`${stack.url}${apiPath}`, { method, headers, body: options.rawBody ?? (body === undefined ? undefined : JSON.stringify(body)) });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };
}

/** Serves an express app on a free loopback port (for unit tests of single handlers). */
export async function listenInRange(app: import('express').Express): Promise<http.Server> {
  return new Promise<http.Server>((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
    server.once('error', reject);
  });
}
