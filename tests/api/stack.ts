/**
 * An mcpd assembled in the test process from its real parts (Temporal client and
 * workers with the real workflows and activities, OpenBao secret store, Docker,
 * gateway, API), against npm test's Temporal and OpenBao. It lets the API tests
 * reach into the pieces (e.g. the Temporal client) and runs even where
 * dist/src/main.js does not exist yet.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import Dockerode from 'dockerode';
import { createApi } from '../../src/api/app';
import { bearerAuth, ensureApiToken } from '../../src/api/auth';
import { loadSettings } from '../../src/config/settings';
import { Gateway } from '../../src/gateway/gateway';
import { mountGateway } from '../../src/gateway/http';
import { OpenBaoSecretStore } from '../../src/secrets/openbao';
import { createWorkers } from '../../src/worker';
import { removeContainers, testEnv } from '../support/stack';

export interface ApiStack {
  url: string;
  token: string;
  dataDir: string;
  node: string;
  client: Client;
  docker: Dockerode;
  secrets: OpenBaoSecretStore;
  stop(): Promise<void>;
}

export async function startApiStack(): Promise<ApiStack> {
  const env = testEnv();
  const node = `t-h4-${randomBytes(3).toString('hex')}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-h4-'));
  const settings = loadSettings({ ...process.env, MCPD_DATA_DIR: dataDir, TEMPORAL_ADDRESS: env.temporalAddress, BAO_ADDR: env.baoAddress, MCPD_NODE: node });
  const connection = await Connection.connect({ address: env.temporalAddress });
  const client = new Client({ connection, namespace: settings.temporalNamespace });
  const nativeConnection = await NativeConnection.connect({ address: env.temporalAddress });
  const docker = new Dockerode();
  // Each stack keeps its secrets under its own prefix, so parallel runs never see each other's.
  const secrets = new OpenBaoSecretStore({ address: env.baoAddress, token: env.baoToken, mount: settings.secretsMount, prefix: `mcpd-${node}` });
  const gateway = new Gateway({ docker });
  const workers = await createWorkers({ connection: nativeConnection, namespace: settings.temporalNamespace, node, docker, secrets, routing: gateway, client, proxy: gateway, owner: node });
  const running = workers.run();
  running.catch((err) => console.error('test workers failed', err));
  const token = ensureApiToken(dataDir);
  const app = createApi({ client, secrets, docker, settings, token, node, ready: () => true, gateway: { instances: () => gateway.instances() } });
  const gatewayHttp = mountGateway(app, gateway, { authenticate: bearerAuth(token) });
  const server = await listenInRange(app);
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    dataDir,
    node,
    client,
    docker,
    secrets,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await gatewayHttp.close();
      await workers.shutdown();
      await gateway.close();
      await nativeConnection.close();
      await connection.close();
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


/** h4's port range is 22000-22999; 22300+ is left for API servers started by tests. */
export async function listenInRange(app: import('express').Express): Promise<http.Server> {
  for (let attempt = 0; ; attempt++) {
    const port = 22300 + Math.floor(Math.random() * 700);
    try {
      return await new Promise<http.Server>((resolve, reject) => {
        const s = app.listen(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 20) throw err;
    }
  }
}
