#!/usr/bin/env node
/**
 * The mcpd process. By default one process plays every role: the REST API, the
 * MCP gateway and the Temporal workers (control queue `mcpd` and this node's
 * queue `mcpd-node-<node>`). MCPD_ROLES=api,gateway,worker picks a subset, so
 * scaling out is configuration. `npm start` runs it on the embedded stack.
 */
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import express from 'express';
import Docker from 'dockerode';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type LogLevel } from '@temporalio/worker';
import { loadSettings, type Settings } from './config/settings';
import { createLogger } from './logger';
import { OpenBaoSecretStore } from './secrets/openbao';
import { rootTokenFile } from './embedded/openbao';
import { Gateway } from './gateway/gateway';
import { GatewayHttp, matchGatewayPath } from './gateway/http';
import { createApi } from './api/app';
import { checkBearer, ensureApiToken, sendRejection } from './api/auth';
import { seedExamples } from './api/seed';
import { createWorkers, type McpdWorkers } from './worker';

function baoToken(settings: Settings): string {
  if (settings.baoToken) return settings.baoToken;
  const file = rootTokenFile(path.join(settings.dataDir, 'openbao'));
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  throw new Error(`no OpenBao token: set BAO_TOKEN, or run the embedded stack (npm start) which keeps one in ${file}`);
}

async function main(): Promise<void> {
  const settings = loadSettings();
  const log = createLogger(settings.logLevel);
  fs.mkdirSync(settings.dataDir, { recursive: true, mode: 0o700 });
  // The SDK's own messages (bundling, worker state) go through pino too, from warn up unless asked.
  const sdkLog = log.child({ component: 'temporal-sdk' });
  const sdkLevel = (process.env.MCPD_TEMPORAL_LOG_LEVEL ?? 'WARN') as LogLevel;
  Runtime.install({
    logger: new DefaultLogger(sdkLevel, ({ level, message, meta }) => {
      const method = level === 'ERROR' ? 'error' : level === 'WARN' ? 'warn' : level === 'INFO' ? 'info' : 'debug';
      sdkLog[method]({ ...meta }, message);
    }),
  });

  const docker = settings.dockerSocket ? new Docker({ socketPath: settings.dockerSocket }) : new Docker();
  const secrets = new OpenBaoSecretStore({
    address: settings.baoAddress,
    token: baoToken(settings),
    mount: settings.secretsMount,
    prefix: settings.secretsPrefix,
  });
  const connection = await Connection.connect({ address: settings.temporalAddress });
  const client = new Client({ connection, namespace: settings.temporalNamespace });
  const gateway = settings.roles.gateway ? new Gateway({ docker, logger: log.child({ component: 'gateway' }) }) : undefined;

  let workers: McpdWorkers | undefined;
  let workerConnection: NativeConnection | undefined;
  let workerFailure: Error | undefined;
  if (settings.roles.worker) {
    if (!gateway) throw new Error('MCPD_ROLES: the worker role needs the gateway role in the same process (node activities attach upstreams to it)');
    workerConnection = await NativeConnection.connect({ address: settings.temporalAddress });
    workers = await createWorkers({
      connection: workerConnection,
      namespace: settings.temporalNamespace,
      node: settings.node,
      docker,
      secrets,
      routing: gateway,
      proxy: gateway,
      client,
      owner: `${settings.temporalAddress}/${settings.temporalNamespace}`,
      packageImages: { nodeBaseImage: settings.packageBaseImages.node, pythonBaseImage: settings.packageBaseImages.python },
      log: log.child({ component: 'worker' }),
    });
    workers.run().catch((err: Error) => {
      workerFailure = err;
      log.error({ err: err.message }, 'worker failed');
      void shutdown(1);
    });
  }

  const token = ensureApiToken(settings.dataDir);
  const app = express();
  app.disable('x-powered-by');
  if (settings.roles.api) {
    app.use(
      createApi({
        client,
        secrets,
        docker,
        settings,
        token,
        node: settings.node,
        // Ready once the running instances are back in the gateway, so clients arriving after a restart find them.
        ready: () => !workerFailure && (workers?.reattached() ?? true),
        gateway,
        logger: log.child({ component: 'api' }),
      }),
    );
  }
  const gatewayHttp: GatewayHttp | undefined = gateway ? new GatewayHttp(gateway) : undefined;

  // MCP traffic skips express: its routing and response helpers cost more CPU per call than the whole proxy hop.
  const httpServer = http.createServer((req, res) => {
    const route = gatewayHttp ? matchGatewayPath(req.url) : undefined;
    if (!route) return app(req, res);
    const rejection = checkBearer(req.headers.authorization, token);
    if (rejection) return sendRejection(res, rejection);
    gatewayHttp!.handle(req, res, route.server).catch((err: Error) => {
      log.error({ err: err.message, url: req.url }, 'gateway request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(settings.apiPort, settings.apiHost, () => resolve());
  });
  const url = `http://${settings.apiHost}:${settings.apiPort}`;
  log.info({ url, node: settings.node, roles: settings.roles, dataDir: settings.dataDir }, 'mcpd ready');

  if (settings.roles.api) {
    void seedExamples({ url, token, dataDir: settings.dataDir, logger: log.child({ component: 'seed' }) });
  }

  let stopping = false;
  async function shutdown(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    log.info('mcpd stopping');
    // Containers keep running: their workflows own them, and the next mcpd re-attaches.
    httpServer.close();
    httpServer.closeAllConnections();
    await gatewayHttp?.close().catch(() => undefined);
    await workers?.shutdown().catch(() => undefined);
    await workerConnection?.close().catch(() => undefined);
    await connection.close().catch(() => undefined);
    process.exit(code);
  }
  process.once('SIGINT', () => void shutdown(0));
  process.once('SIGTERM', () => void shutdown(0));
}

main().catch((err: Error) => {
  // One line a person can act on; the stack only with MCPD_LOG_LEVEL=debug.
  process.stderr.write(`mcpd: ${err.message}\n`);
  if (process.env.MCPD_LOG_LEVEL === 'debug') process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
