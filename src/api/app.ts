/**
 * The REST API (express): users, mcpctl and tests drive mcpd through it without
 * knowing Temporal. Routes are thin: validate (validation.ts, with the schemas
 * of contracts/api.ts), call ServerControl / InstanceControl / the SecretStore /
 * the container runtime, answer JSON. Errors are JSON
 * `{ error, details }` (see errors.ts).
 */
import express, { type Request, type Response } from 'express';
import type { Client } from '@temporalio/client';
import type { Settings } from '../config/settings';
import { checkOrigin, originPolicy } from '../config/origins';
import type { Logger } from '../logger';
import type { SecretStore } from '../secrets/types';
import { bearerAuth } from './auth';
import type { TokenStore } from './tokens';
import type { OidcResourceServer } from './oidc';
import { createTokenBodySchema, instanceFiltersSchema, logQuerySchema, scaleRequestSchema, secretBodySchema, startQuerySchema } from '../contracts/api';
import { API_CALL_DEADLINE_MS, temporalUnreachable, type ControlPlaneMonitor, type ControlPlaneState } from './controlPlane';
import { badRequest, errorHandler, notFound, toApiError } from './errors';
import { parseVirtualServerBody, type VirtualServerControl } from './virtualServers';
import type { VirtualServerSpec } from '../contracts/virtualServer';
import { InstanceControl } from './instances';
import { pipeInstanceLogs, type LogSource } from './logs';
import { buildOpenApiDocument } from './openapi';
import { parseSpecBody, ServerControl } from './servers';
import { bodyOf, instanceIdParam, jsonBody, nodeNameParam, queryOf, secretNameParam, serverNameParam, tokenNameParam } from './validation';
import { readNodes } from '../nodes/registry';
import { auditApiChanges } from './audit';
import type { AuditLog } from '../audit/log';
import { auditQuerySchema } from '../contracts/audit';
import { policyPathSchema } from '../contracts/policy';
import { parsePolicyBody, PolicyControl } from './policies';
import { parseWith } from './validation';

export const API_PREFIX = '/api/v1';
export const JSON_BODY_LIMIT = '1mb';

export interface ApiDependencies {
  client: Client;
  secrets: SecretStore;
  /** Where an instance's logs may be, in the order they are asked (this node's engine, then the other nodes). */
  logSources: (instanceId: string) => LogSource[];
  settings: Settings;
  /** The bearer token every /api/v1 request must carry (see ensureApiToken). */
  token: string;
  /** Scoped tokens (roles), besides the first-start admin token. */
  tokens?: TokenStore;
  /** With an issuer configured (MCPD_OIDC_ISSUER): its JWT access tokens are accepted too. */
  oidc?: OidcResourceServer;
  /** This process's Docker node; new server workflows schedule their containers on it. */
  node: string;
  /** /readyz answers 200 only when this returns true (worker and gateway up). */
  ready: () => boolean;
  /** When the gateway runs in this process: what it routes to, for GET /api/v1/gateway. */
  gateway?: { instances(): unknown };
  /** Virtual servers (stored in virtualServerWorkflow); without it /virtualservers answers 404. */
  virtualServers?: VirtualServerControl;
  /** Called after a virtual server is applied or deleted (the gateway of this process re-reads it). */
  onVirtualServerChanged?: (name: string) => void;
  /** The clashes a virtual server would have with the tools served now (naming none): an apply with any is refused. */
  virtualServerClashes?: (spec: VirtualServerSpec) => Promise<string[]>;
  /** Temporal's health: /readyz reports it, and API calls answer 503 fast while it does not answer. */
  controlPlane?: ControlPlaneMonitor;
  logger?: Logger;
  /** The audit trail: API changes are recorded in it, GET /audit reads it (absent: MCPD_AUDIT=false). */
  audit?: AuditLog;
  /** Called after a policy changed, so this process's gateway enforces it at once (others follow within seconds). */
  policiesChanged?: () => Promise<void>;
}

function policyNameParam(req: Request): string {
  const name = String(req.params.name);
  return parseWith(policyPathSchema, { name }, `policy name "${name}"`).name;
}

/** Routes that never call Temporal (Docker logs, OpenBao secrets): a Temporal outage must not cut them off. */
const WITHOUT_TEMPORAL = /^\/(secrets(\/|$)|instances\/[^/]+\/logs$|audit$)/;

/**
 * A silent Temporal (stopped, partitioned) never fails a call, it just never answers.
 * When the background monitor already knows Temporal is down, a fresh health check
 * runs at once and a failing one answers 503 "Temporal unreachable at …" (within about
 * 1 s). Otherwise a request still pending after API_CALL_DEADLINE_MS is answered from
 * the monitor's verdict if it has seen Temporal go silent meanwhile, or from a fresh
 * check (within about 4 s). Reads also carry a gRPC deadline, so their calls do not stay
 * pending; writes keep theirs, and complete when Temporal returns.
 */
function answerFastWhenTemporalIsSilent(controlPlane: ControlPlaneMonitor): express.RequestHandler {
  return (req, res, next) => {
    if (WITHOUT_TEMPORAL.test(req.path)) return next();
    const answerIfUnreachable = (state: ControlPlaneState) => {
      if (state.reachable || res.headersSent) return;
      const error = temporalUnreachable(controlPlane.address, state.reason);
      res.status(error.status).json({ error: error.message });
    };
    if (!controlPlane.current().reachable) void controlPlane.check().then(answerIfUnreachable);
    const timer = setTimeout(() => {
      const known = controlPlane.current();
      if (!known.reachable) answerIfUnreachable(known);
      else void controlPlane.check().then(answerIfUnreachable);
    }, API_CALL_DEADLINE_MS);
    res.once('close', () => clearTimeout(timer));
    if (req.method !== 'GET') return next();
    void controlPlane.withDeadline(
      Date.now() + 3 * API_CALL_DEADLINE_MS,
      () =>
        new Promise<void>((resolve) => {
          res.once('close', resolve);
          next();
        }),
    );
  };
}

async function readNodesOrApiError(client: Client) {
  try {
    return await readNodes(client);
  } catch (err) {
    throw toApiError(err);
  }
}

export function createApi(deps: ApiDependencies): express.Express {
  const servers = new ServerControl(deps.client, deps.node);
  const instances = new InstanceControl(deps.client);
  const policies = new PolicyControl(deps.client, deps.policiesChanged);
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // The status code is the gateway's readiness (what a load balancer in front of /mcp needs: the gateway serves
  // without Temporal); `controlPlane` says whether the API can act. `?controlPlane=required` makes a Temporal
  // outage a 503 too, for load balancers in front of the API.
  app.get('/readyz', (req, res) => {
    const gatewayReady = deps.ready();
    const cp = deps.controlPlane?.current() ?? { reachable: true as const };
    const body = {
      status: gatewayReady ? 'ready' : 'not ready',
      gateway: gatewayReady ? 'ok' : 'starting',
      controlPlane: cp.reachable ? 'ok' : 'unreachable',
      ...(cp.reachable ? {} : { controlPlaneError: temporalUnreachable(deps.controlPlane!.address, cp.reason).message }),
    };
    const required = req.query.controlPlane === 'required';
    res.status(gatewayReady && (cp.reachable || !required) ? 200 : 503).json(body);
  });

  const api = express.Router();
  // DNS-rebinding protection first: a browser page of a foreign site learns nothing, not even whether its token was right.
  const origins = originPolicy(deps.settings);
  api.use((req, res, next) => {
    const rejection = checkOrigin(req.headers, origins);
    if (rejection) {
      res.status(rejection.status).json(rejection.body);
      return;
    }
    next();
  });
  // The document describes the API; it holds nothing secret, so clients can read it before they have a token.
  let openApiDocument: object | undefined;
  api.get('/openapi.json', (_req, res) => {
    openApiDocument ??= buildOpenApiDocument();
    res.json(openApiDocument);
  });
  if (deps.audit) api.use(auditApiChanges(deps.audit, API_PREFIX));
  api.use(bearerAuth(deps.token, deps.tokens, deps.oidc));
  if (deps.controlPlane) api.use(answerFastWhenTemporalIsSilent(deps.controlPlane));
  api.use(express.json({ limit: JSON_BODY_LIMIT }));

  // ---- servers --------------------------------------------------------------
  api.get('/servers', async (_req, res) => {
    res.json({ items: await servers.list() });
  });
  api.get('/servers/:name', async (req, res) => {
    res.json(await servers.get(serverNameParam(req)));
  });
  api.put('/servers/:name', async (req, res) => {
    const name = serverNameParam(req);
    const spec = parseSpecBody(name, jsonBody(req));
    const { server, outcome } = await servers.apply(spec);
    res.status(outcome === 'created' ? 201 : 200).json({ ...server, outcome });
  });
  api.delete('/servers/:name', async (req, res) => {
    const name = serverNameParam(req);
    res.json({ name, deleted: true, instances: await servers.delete(name) });
  });
  api.post('/servers/:name/start', async (req, res) => {
    const name = serverNameParam(req);
    const { wait, timeout } = queryOf(req, startQuerySchema, 'start query');
    const ids = await servers.start(name);
    res.json({ name, running: true, instances: ids, ...(wait ? { views: await instances.awaitStarted(ids, timeout) } : {}) });
  });
  api.post('/servers/:name/stop', async (req, res) => {
    const name = serverNameParam(req);
    res.json({ name, running: false, instances: await servers.stop(name) });
  });
  api.post('/servers/:name/scale', async (req, res) => {
    const name = serverNameParam(req);
    const { replicas } = bodyOf(req, scaleRequestSchema, 'scale request');
    res.json(await servers.scale(name, replicas));
  });

  // ---- virtual servers ---------------------------------------------------------
  const virtuals = () => {
    if (!deps.virtualServers) throw notFound('virtual servers are not served by this process');
    return deps.virtualServers;
  };
  api.get('/virtualservers', async (_req, res) => {
    res.json({ items: await virtuals().list() });
  });
  api.get('/virtualservers/:name', async (req, res) => {
    res.json(await virtuals().get(serverNameParam(req)));
  });
  api.put('/virtualservers/:name', async (req, res) => {
    const name = serverNameParam(req);
    const spec = parseVirtualServerBody(name, jsonBody(req));
    const clashes = (await deps.virtualServerClashes?.(spec)) ?? [];
    if (clashes.length > 0)
      throw badRequest(
        `invalid virtual server spec: ${clashes.join('; ')}`,
        clashes.map((message) => ({ field: 'servers', message })),
      );
    const { virtualServer, outcome } = await virtuals().apply(spec);
    deps.onVirtualServerChanged?.(name);
    res.status(outcome === 'created' ? 201 : 200).json({ ...virtualServer, outcome });
  });
  api.delete('/virtualservers/:name', async (req, res) => {
    const name = serverNameParam(req);
    await virtuals().delete(name);
    deps.onVirtualServerChanged?.(name);
    res.json({ name, deleted: true });
  });

  // ---- instances ------------------------------------------------------------
  api.get('/instances', async (req, res) => {
    res.json({ items: await instances.list(queryOf(req, instanceFiltersSchema, 'instance filter')) });
  });
  api.get('/instances/:id', async (req, res) => {
    res.json(await instances.describe(instanceIdParam(req)));
  });
  api.get('/instances/:id/events', async (req, res) => {
    const view = await instances.describe(instanceIdParam(req));
    res.json({ id: view.id, items: view.events });
  });
  api.get('/instances/:id/logs', async (req, res) => {
    const id = instanceIdParam(req);
    const options = queryOf(req, logQuerySchema, 'log options');
    const closed = new AbortController();
    res.on('close', () => closed.abort());
    await pipeInstanceLogs(deps.logSources(id), id, options, res, closed.signal);
  });
  api.post('/instances/:id/retry', async (req, res) => {
    res.status(202).json({ id: await instances.retry(instanceIdParam(req)), signal: 'forceRetry' });
  });
  api.post('/instances/:id/restart', async (req, res) => {
    res.status(202).json({ id: await instances.restart(instanceIdParam(req)), signal: 'restart' });
  });

  // ---- secrets (write-only values) ----------------------------------------------
  api.get('/secrets', async (_req, res) => {
    const items = await deps.secrets.list();
    res.json({ items: items.map(({ name, keys, version, updatedAt }) => ({ name, keys, version, updatedAt })) });
  });
  api.get('/secrets/:name', async (req, res) => {
    const name = secretNameParam(req);
    const summary = await deps.secrets.describe(name);
    if (!summary) throw notFound(`secret "${name}" not found`);
    res.json({ name: summary.name, keys: summary.keys, version: summary.version, updatedAt: summary.updatedAt });
  });
  api.put('/secrets/:name', async (req, res) => {
    const name = secretNameParam(req);
    const { data } = bodyOf(req, secretBodySchema, 'secret');
    const { keys, version, updatedAt } = await deps.secrets.put(name, data);
    res.json({ name, keys, version, updatedAt });
  });
  api.delete('/secrets/:name', async (req, res) => {
    const name = secretNameParam(req);
    if (!(await deps.secrets.delete(name))) throw notFound(`secret "${name}" not found`);
    res.json({ name, deleted: true });
  });

  // ---- nodes ----------------------------------------------------------------
  api.get('/nodes', async (_req, res) => {
    res.json({ items: await readNodesOrApiError(deps.client) });
  });
  api.get('/nodes/:name', async (req, res) => {
    const name = nodeNameParam(req);
    const node = (await readNodesOrApiError(deps.client)).find((n) => n.name === name);
    if (!node) throw notFound(`node "${name}" not found`);
    res.json(node);
  });

  // ---- scoped tokens (admin only: see roleRefusal) ------------------------------------
  api.get('/tokens', (_req, res) => {
    if (!deps.tokens) throw notFound('scoped tokens are not kept by this process');
    res.json({ items: deps.tokens.list() });
  });
  api.post('/tokens', (req, res) => {
    if (!deps.tokens) throw notFound('scoped tokens are not kept by this process');
    const { name, role, expiresInSeconds, servers, groups } = bodyOf(req, createTokenBodySchema, 'token');
    const { view, token } = deps.tokens.create(name, role, expiresInSeconds, servers, groups);
    // The only time the value is shown: the caller hands it to whoever gets the role.
    res.status(201).json({ ...view, token });
  });
  api.delete('/tokens/:name', (req, res) => {
    if (!deps.tokens) throw notFound('scoped tokens are not kept by this process');
    const name = tokenNameParam(req);
    deps.tokens.revoke(name);
    res.json({ name, deleted: true });
  });

  // ---- policies (Cedar; changes: admin only, see roleRefusal) ---------------------------
  api.get('/policies', async (_req, res) => {
    res.json({ items: await policies.list() });
  });
  api.get('/policies/:name', async (req, res) => {
    res.json(await policies.get(policyNameParam(req)));
  });
  api.put('/policies/:name', async (req, res) => {
    const doc = parsePolicyBody(policyNameParam(req), jsonBody(req));
    // ?dryRun=true: only the checks (mcpctl checks every document of a file before it applies any).
    if (req.query.dryRun === 'true') {
      res.json({ name: doc.name, valid: true });
      return;
    }
    const { policy, outcome } = await policies.apply(doc);
    res.status(outcome === 'created' ? 201 : 200).json({ ...policy, outcome });
  });
  api.delete('/policies/:name', async (req, res) => {
    const name = policyNameParam(req);
    await policies.delete(name);
    res.json({ name, deleted: true });
  });

  // ---- audit trail (admin and operator: see roleRefusal) -------------------------------
  api.get('/audit', async (req, res) => {
    if (!deps.audit) throw notFound('the audit trail is off in this process (MCPD_AUDIT=false)');
    res.json({ items: await deps.audit.query(queryOf(req, auditQuerySchema, 'audit query')) });
  });

  // ---- gateway --------------------------------------------------------------
  api.get('/gateway', (_req, res) => {
    if (!deps.gateway) throw notFound('the gateway does not run in this process');
    res.json({ instances: deps.gateway.instances() });
  });

  api.use((req: Request, _res: Response) => {
    throw notFound(`no route ${req.method} ${API_PREFIX}${req.path}`);
  });
  api.use(errorHandler(deps.logger));
  app.use(API_PREFIX, api);
  return app;
}
