/**
 * The composition root: createMcpd assembles one mcpd process from its settings
 * (Temporal client, secret store, container runtime, gateway, workers, REST API
 * and the node:http server in front of them) and hands back what is needed to
 * reach and stop it. src/main.ts (the CLI entry), the API tests and the gateway
 * benchmark all start mcpd through here, so they exercise the same parts and the
 * same request path, bearer-token check included.
 */
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { context } from '@opentelemetry/api';
import type pino from 'pino';
import { createApi } from './api/app';
import { ControlPlaneMonitor } from './api/controlPlane';
import { authorizeRequest, ensureApiToken, sendRejection, type AuthOutcome, type Credentials } from './api/auth';
import { OidcResourceServer, serveProtectedResourceMetadata } from './api/oidc';
import { TokenStore } from './api/tokens';
import { seedExamples } from './api/seed';
import type { Settings } from './config/settings';
import { checkOrigin, originPolicy } from './config/origins';
import { DockerRuntime, type ContainerRuntime } from './docker/runtime';
import { Gateway } from './gateway/gateway';
import { GatewayHttp, linkInstanceUrl, matchGatewayPath, matchLinkPath, type LinkPath } from './gateway/http';
import { engineLogSource, linkedNodeLogSource, serveLinkedLogs } from './api/logs';
import { ensureGatewaySecret, GatewayKeys } from './gateway/linkKeys';
import { RemoteNodes } from './gateway/remoteNodes';
import { readNodeStates } from './nodes/registry';
import { createLogger } from './logger';
import { readClusterView } from './metrics/clusterView';
import { isMetricsPath, serveMetrics } from './metrics/http';
import { McpdMetrics } from './metrics/registry';
import { requestTraceIds, startServerSpan } from './tracing/http';
import { tracedRuntime } from './tracing/runtime';
import { createTracing } from './tracing/tracing';
import { OpenBaoSecretStore } from './secrets/openbao';
import { resolveBaoToken } from './secrets/rootToken';
import type { SecretStore } from './secrets/types';
import { createWorkers, type McpdWorkers } from './worker';
import { VirtualServerControl } from './api/virtualServers';
import { VirtualServerCache, virtualServerClashes } from './gateway/virtualServers';
import { AUDIT_DIR, AuditLog, auditFileName } from './audit/log';
import { PolicyEngine } from './policy/engine';
import { PolicySync } from './policy/sync';

// For src/main.ts, which installs the Temporal SDK's runtime before anything connects.
export { temporalSdkMetricsAddress, temporalSdkMetricsExporter } from './metrics/temporalSdk';

/** What a caller may supply instead of what the settings describe. */
export interface McpdOverrides {
  /** Default: Docker at settings.dockerSocket (or DOCKER_HOST, or the local socket). */
  runtime?: ContainerRuntime;
  /** Default: OpenBao at settings.baoAddress, under settings.secretsMount / secretsPrefix. */
  secrets?: SecretStore;
  /**
   * The owner label of this control plane's containers; its exit watcher and reaper
   * touch no other. Default `<temporal address>/<namespace>`.
   */
  owner?: string;
  /** Default: createLogger(settings.logLevel). */
  logger?: pino.Logger;
  /** Apply the example servers on the first start (default true; MCPD_SEED_EXAMPLES=false also skips it). */
  seedExamples?: boolean;
  /** Called when a worker fails after the start; the process should stop then (main.ts exits with 1). */
  onFatal?: (error: Error) => void;
  /**
   * The Temporal SDK's Prometheus exporter of this process (http://host:port/metrics), which
   * /metrics appends; only the process entry can set it up (src/main.ts, Runtime.install).
   */
  temporalSdkMetricsUrl?: string;
  /** Spans go here (each as it ends) instead of to OTEL_EXPORTER_OTLP_ENDPOINT; tests pass an in-memory exporter. */
  traceExporter?: SpanExporter;
}

export interface Mcpd {
  /** http://<host>:<port> of the API and the gateway (the real port when settings.apiPort is 0). */
  url: string;
  /** The bearer token of the API and the gateway (<dataDir>/api-token). */
  token: string;
  settings: Settings;
  client: Client;
  runtime: ContainerRuntime;
  secrets: SecretStore;
  /** Present with the gateway role. */
  gateway?: Gateway;
  /** This process's metrics (GET /metrics); absent with MCPD_METRICS=false. */
  metrics?: McpdMetrics;
  /** This process's audit trail (GET /api/v1/audit); absent with MCPD_AUDIT=false. */
  audit?: AuditLog;
  /** Stops serving and polling and closes every connection; containers keep running (their workflows own them). */
  close(): Promise<void>;
}

export async function createMcpd(settings: Settings, overrides: McpdOverrides = {}): Promise<Mcpd> {
  const log = overrides.logger ?? createLogger(settings.logLevel);
  fs.mkdirSync(settings.dataDir, { recursive: true, mode: 0o700 });

  // Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (or a test passes an exporter): no spans, no headers, nothing in the workflow bundle.
  const tracing = createTracing({
    node: settings.node,
    otlpEndpoint: settings.otlpEndpoint,
    exporter: overrides.traceExporter,
    activeContext: settings.roles.api || settings.roles.worker,
  });
  const engine = overrides.runtime ?? new DockerRuntime({ socketPath: settings.dockerSocket });
  const runtime = tracing ? tracedRuntime(engine, tracing.tracer) : engine;
  const secrets =
    overrides.secrets ??
    new OpenBaoSecretStore({ address: settings.baoAddress, token: resolveBaoToken(settings), mount: settings.secretsMount, prefix: settings.secretsPrefix });
  const connection = await Connection.connect({ address: settings.temporalAddress });
  const client = new Client({
    connection,
    namespace: settings.temporalNamespace,
    ...(tracing ? { interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer: tracing.tracer })] } } : {}),
  });
  const controlPlane = new ControlPlaneMonitor(connection, settings.temporalAddress);
  const roles = Object.entries(settings.roles).flatMap(([role, on]) => (on ? [role] : []));
  const metrics = settings.metrics ? new McpdMetrics({ node: settings.node, roles: roles.join(',') }) : undefined;
  // Cluster-wide figures come from the API processes only, so a cluster of node workers does not report them many times over.
  if (metrics && settings.roles.api) metrics.observeCluster(() => readClusterView(client));
  if (metrics && overrides.temporalSdkMetricsUrl) metrics.includeTemporalSdk(overrides.temporalSdkMetricsUrl);
  const gateway = settings.roles.gateway
    ? new Gateway({ runtime, logger: log.child({ component: 'gateway' }), stdioMaxLineBytes: settings.stdioMaxLineBytes, metrics, tracer: tracing?.tracer })
    : undefined;

  // One secret per cluster: the link between gateways and the signature of session ids (never logged).
  const keys = gateway ? new GatewayKeys(ensureGatewaySecret(settings.dataDir, settings.gatewaySecret)) : undefined;
  // Known once the server listens; the node registers it so front gateways can forward to this one.
  let announceGatewayUrl: (url: string | undefined) => void = () => undefined;
  const gatewayUrl = new Promise<string | undefined>((resolve) => (announceGatewayUrl = resolve));
  let remoteNodes: RemoteNodes | undefined;

  let workers: McpdWorkers | undefined;
  let workerConnection: NativeConnection | undefined;
  let workerFailure: Error | undefined;
  let httpServer: http.Server | undefined;
  let gatewayHttp: GatewayHttp | undefined;
  const audit = settings.audit.enabled
    ? new AuditLog({
        dir: path.join(settings.dataDir, AUDIT_DIR),
        name: auditFileName(settings.node, settings.apiPort),
        maxBytes: settings.audit.maxBytes,
        keepFiles: settings.audit.keepFiles,
        logger: log.child({ component: 'audit' }),
      })
    : undefined;
  // The gateway holds client sessions to the Cedar policies in force, read from Temporal and followed.
  const policies = gateway ? new PolicySync(client, new PolicyEngine(), log.child({ component: 'policies' })) : undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      log.info('mcpd stopping');
      if (httpServer) {
        httpServer.close();
        httpServer.closeAllConnections();
      }
      controlPlane.stop();
      policies?.stop();
      announceGatewayUrl(undefined);
      remoteNodes?.stop();
      await gatewayHttp?.close().catch(() => undefined);
      await workers?.shutdown().catch(() => undefined);
      await gateway?.close().catch(() => undefined);
      await workerConnection?.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
      await tracing?.shutdown().catch(() => undefined);
      await audit?.close().catch(() => undefined);
    })());

  try {
    if (settings.roles.worker) {
      if (!gateway) throw new Error('MCPD_ROLES: the worker role needs the gateway role in the same process (node activities attach upstreams to it)');
      workerConnection = await NativeConnection.connect({ address: settings.temporalAddress });
      workers = await createWorkers({
        connection: workerConnection,
        namespace: settings.temporalNamespace,
        node: settings.node,
        runtime,
        secrets,
        routing: gateway,
        proxy: gateway,
        knows: (instanceId) => gateway.connectionOf(instanceId) !== undefined,
        client,
        owner: overrides.owner ?? `${settings.temporalAddress}/${settings.temporalNamespace}`,
        container: { startConcurrency: settings.startConcurrency },
        workflowCacheSize: settings.workflowCacheSize,
        packageImages: { nodeBaseImage: settings.packageBaseImages.node, pythonBaseImage: settings.packageBaseImages.python },
        registration: { labels: settings.nodeLabels, capacity: settings.nodeCapacity, engineHost: settings.engineHost, gatewayUrl: () => gatewayUrl },
        log: log.child({ component: 'worker' }),
        metrics,
        tracing,
      });
      workers.run().catch((err: Error) => {
        workerFailure = err;
        log.error({ err: err.message }, 'worker failed');
        overrides.onFatal?.(err);
      });
    }

    const token = ensureApiToken(settings.dataDir);
    const virtualControl = new VirtualServerControl(client);
    // Specs of virtual servers as the gateway reads them: a few seconds stale at most on other processes; this one's API refreshes them at once.
    const virtualDirectory = new VirtualServerCache((name) => virtualControl.find(name).then((found) => found?.spec), { ttlMs: 3_000 });
    const tokens = new TokenStore(settings.dataDir);
    // With an issuer, mcpd is an OAuth resource server too (MCPD_OIDC_ISSUER; src/api/oidc.ts).
    const oidc = settings.oidc ? new OidcResourceServer(settings.oidc) : undefined;
    const credentials: Credentials = { adminToken: token, tokens, oidc };
    const app = express();
    app.disable('x-powered-by');
    if (settings.roles.api) {
      app.use(
        createApi({
          client,
          secrets,
          logSources: (instanceId) => [
            // A front process of a cluster runs no containers; any other reads the engine it is configured with.
            ...(settings.roles.worker || !keys ? [engineLogSource(runtime)] : []),
            ...(remoteNodes?.gateways(instanceId) ?? []).map((node) =>
              linkedNodeLogSource(node.name, (id) => linkInstanceUrl(node.gatewayUrl, id), `Bearer ${keys!.linkToken}`),
            ),
          ],
          settings,
          token,
          tokens,
          oidc,
          node: settings.node,
          // Ready once the running instances are back in the gateway, so clients arriving after a restart find them.
          // …and the policies in force are known, so no client is let through before they are.
          ready: () => !workerFailure && (workers?.reattached() ?? true) && (policies?.engine.loaded ?? true),
          gateway,
          virtualServers: virtualControl,
          onVirtualServerChanged: (name) => {
            virtualDirectory.invalidate(name);
            gatewayHttp?.virtualServerChanged(name);
          },
          virtualServerClashes: gateway ? (spec) => virtualServerClashes(gateway, spec) : undefined,
          controlPlane,
          logger: log.child({ component: 'api' }),
          audit,
          policiesChanged: policies ? () => policies.refresh() : undefined,
        }),
      );
    }
    controlPlane.start();
    // The first read before serving, so the first client is not refused for want of it; Temporal answered just now,
    // but a slow one must not hold mcpd's start (then requests that policies govern wait for the next poll).
    if (policies) {
      let waited: NodeJS.Timeout | undefined;
      await Promise.race([policies.refresh(), new Promise((resolve) => (waited = setTimeout(resolve, 5_000)))]);
      clearTimeout(waited);
    }
    const mcpHttp = gateway
      ? new GatewayHttp(gateway, {
          keys,
          node: settings.roles.worker ? settings.node : undefined,
          virtualServers: virtualDirectory,
          onVirtualServerClash: (message) => log.warn({ component: 'gateway' }, message),
          audit,
          policy: policies?.engine,
        })
      : undefined;
    gatewayHttp = mcpHttp;

    const origins = originPolicy(settings);
    // MCP traffic skips express: its routing and response helpers cost more CPU per call than the whole proxy hop.
    const serve = (req: http.IncomingMessage, res: http.ServerResponse, mcpPath: McpPath | undefined): void => {
      const link = mcpHttp && keys ? mcpPath?.link : undefined;
      if (link) {
        // The gateway link: other gateways of the cluster only, with the link token (not the API token).
        if (!keys!.linkAuthorized(req.headers.authorization)) {
          return sendRejection(res, {
            status: 401,
            wwwAuthenticate: 'Bearer realm="mcpd-gateway-link"',
            body: { error: 'missing or invalid gateway link token' },
          });
        }
        if ('logsOf' in link) return void serveLinkedLogs(settings.roles.worker ? runtime : undefined, req.url!, link.logsOf, res);
        const handled = 'listing' in link ? mcpHttp!.handleListing(req, res) : mcpHttp!.handleInstance(req, res, link.instanceId);
        return void handled.catch((err: Error) => {
          log.error({ err: err.message, ...requestTraceIds(req) }, 'gateway link request failed');
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null }));
        });
      }
      const resourceMetadata = oidc && req.method === 'GET' ? oidc.metadataFor((req.url ?? '/').split('?')[0]) : undefined;
      if (resourceMetadata) return serveProtectedResourceMetadata(res, resourceMetadata);
      if (isMetricsPath(req.url)) {
        // Behind the API token like everything else on this port: the series name servers and nodes.
        return whenAuthorized(authorizeRequest(req.headers.authorization, credentials, { kind: 'api', method: 'GET', path: '/metrics' }), (rejection) => {
          if (rejection) return sendRejection(res, rejection);
          void serveMetrics(req, res, metrics);
        });
      }
      const route = mcpHttp ? mcpPath?.gateway : undefined;
      if (!mcpHttp || !route) return void app(req, res);
      // DNS-rebinding protection before the token: the link above carries no Origin and has its own token.
      const forbidden = checkOrigin(req.headers, origins);
      if (forbidden) {
        const body = JSON.stringify({
          jsonrpc: '2.0',
          error: { code: -32000, message: `Forbidden: ${forbidden.body.error}`, data: forbidden.body.details },
          id: null,
        });
        res.writeHead(forbidden.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        return void res.end(body);
      }
      void (async () => {
        const access = {
          kind: 'gateway' as const,
          server: route.server,
          virtual: route.virtual !== undefined ? { name: route.virtual, servers: [] } : undefined,
        };
        let { rejection, principal } = await settledAuthorization(authorizeRequest(req.headers.authorization, credentials, access));
        if (!rejection && route.virtual !== undefined && principal?.servers) {
          // A token limited to some servers may use a virtual server that draws from those only: its spec says which (read only once the token is known good).
          const spec = await virtualDirectory.get(route.virtual);
          ({ rejection, principal } = await settledAuthorization(
            authorizeRequest(req.headers.authorization, credentials, {
              ...access,
              virtual: { name: route.virtual, servers: spec?.servers.map((s) => s.name) ?? [] },
            }),
          ));
        }
        if (rejection) return sendRejection(res, rejection);
        await mcpHttp.handle(req, res, route.server, principal, route.virtual);
      })().catch((err: Error) => {
        log.error({ err: err.message, url: req.url, ...requestTraceIds(req) }, 'gateway request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null }));
      });
    };
    const server = http.createServer((req, res) => {
      const mcpPath = matchMcpPath(req.url);
      if (!tracing) return serve(req, res, mcpPath);
      const name = serverSpanName(req, mcpPath);
      // Scrapes and health checks every few seconds would bury the traces worth reading.
      if (name === undefined) return serve(req, res, mcpPath);
      const traced = startServerSpan(tracing.tracer, req, res, name);
      // MCP traffic carries its trace explicitly (src/tracing/http.ts says why); the API's Temporal client reads the active one.
      if (mcpPath) serve(req, res, mcpPath);
      else context.with(traced, () => serve(req, res, mcpPath));
    });
    httpServer = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(settings.apiPort, settings.apiHost, () => resolve());
    });
    const url = `http://${settings.apiHost}:${(server.address() as AddressInfo).port}`;
    oidc?.listeningAt(url);
    announceGatewayUrl(gateway ? (settings.gatewayUrl ?? url) : undefined);
    if (gateway && keys) {
      remoteNodes = new RemoteNodes({
        gateway,
        listNodes: async () =>
          (await readNodeStates(client)).flatMap((n) =>
            n.status === 'Ready' && n.registration?.gatewayUrl ? [{ name: n.name, gatewayUrl: n.registration.gatewayUrl }] : [],
          ),
        selfNode: settings.roles.worker ? settings.node : undefined,
        linkToken: keys.linkToken,
        logger: log.child({ component: 'gateway-link' }),
      });
      remoteNodes.start();
    }
    log.info({ url, node: settings.node, roles: settings.roles, dataDir: settings.dataDir }, 'mcpd ready');
    if (oidc) {
      log.info({ issuer: oidc.issuer, audience: oidc.audience }, 'accepting OAuth access tokens');
      // Early word in the log when the issuer cannot be reached; requests try again on their own.
      oidc.discover().catch((err: Error) => log.warn({ issuer: oidc.issuer, err: err.message }, 'OAuth issuer metadata unavailable'));
    }

    if (settings.roles.api && overrides.seedExamples !== false) {
      void seedExamples({ url, token, dataDir: settings.dataDir, logger: log.child({ component: 'seed' }) });
    }
    return { url, token, settings, client, runtime, secrets, gateway, metrics, audit, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Runs `then` with the outcome of an authorization: at once when it is known (mcpd's own
 * tokens), after the verification when it is a promise (an OAuth access token).
 */
function whenAuthorized(
  outcome: AuthOutcome | Promise<AuthOutcome>,
  then: (rejection: AuthOutcome['rejection'], principal: AuthOutcome['principal']) => void,
): void {
  if (!('then' in outcome)) return then(outcome.rejection, outcome.principal);
  void settledAuthorization(outcome).then((settled) => then(settled.rejection, settled.principal));
}

/** An authorization whose verification could not run (the issuer's keys unreachable) is a 503. */
async function settledAuthorization(outcome: AuthOutcome | Promise<AuthOutcome>): Promise<AuthOutcome> {
  try {
    return await outcome;
  } catch (err) {
    return { rejection: { status: 503, wwwAuthenticate: 'Bearer realm="mcpd"', body: { error: `cannot check the access token: ${(err as Error).message}` } } };
  }
}

/** An MCP endpoint a request names: the gateway link between nodes, or a gateway path; matched once per request. */
type McpPath = { link: LinkPath; gateway?: undefined } | { gateway: NonNullable<ReturnType<typeof matchGatewayPath>>; link?: undefined };

function matchMcpPath(url: string | undefined): McpPath | undefined {
  const link = matchLinkPath(url);
  if (link) return { link };
  const gateway = matchGatewayPath(url);
  return gateway ? { gateway } : undefined;
}

/** The name of a request's server span (bounded: no ids or names in it); undefined for requests not traced. */
function serverSpanName(req: http.IncomingMessage, mcpPath: McpPath | undefined): string | undefined {
  const method = req.method ?? 'GET';
  if (mcpPath) return `${method} ${mcpPath.link ? '/mcp-link' : '/mcp'}`;
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/metrics' || path === '/healthz' || path === '/readyz') return undefined;
  return path.startsWith('/api/') ? `${method} /api/v1` : `${method} ${path === '/' ? '/' : 'other'}`;
}
