/** Pure parts of the API: query building and escaping, body validation, auth, error mapping. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { apiTokenPath, bearerAuth, ensureApiToken, roleRefusal, serversRefusal, tokenMatches } from '../../src/api/auth';
import { TokenStore } from '../../src/api/tokens';
import { ApiError, toApiError } from '../../src/api/errors';
import { buildOpenApiDocument } from '../../src/api/openapi';
import { parseSpecBody } from '../../src/api/servers';
import { normalizeInstanceId, parseWith } from '../../src/api/validation';
import { INSTANCE_STATUSES, instanceFiltersSchema, logQuerySchema, scaleRequestSchema, secretBodySchema } from '../../src/contracts/api';
import { REPLICAS, SECRET_NAME_PATTERN } from '../../src/contracts/spec';
import { listenInRange } from './stack';
import { mapLimit } from '../../src/concurrency';
import { instanceListQuery, nodeInstancesQuery, nodeListQuery, quoteLiteral } from '../../src/contracts/visibility';

const parseInstanceFilters = (query: unknown) => parseWith(instanceFiltersSchema, query, 'instance filter');
const parseLogOptions = (query: unknown) => parseWith(logQuerySchema, query, 'log options');
const parseSecretBody = (body: unknown) => parseWith(secretBodySchema, body, 'secret').data;

function status(fn: () => unknown): { status: number; message: string; details: unknown } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected ApiError, got ${String(err)}`);
    return { status: err.status, message: err.message, details: err.details };
  }
  assert.fail('expected an error');
}

describe('api: visibility queries', () => {
  it('filters instances by server, status and health with quoted literals', () => {
    assert.equal(
      instanceListQuery({ server: 'gitea', status: 'ERROR', health: 'unhealthy' }),
      "WorkflowType = 'instanceWorkflow' AND ExecutionStatus = 'Running' AND McpServer = 'gitea' AND McpInstanceStatus = 'ERROR' AND McpHealth = 'unhealthy'",
    );
    assert.equal(instanceListQuery({ all: true }), "WorkflowType = 'instanceWorkflow'");
  });

  it('finds the instances placed on a node, and the node workflows', () => {
    assert.equal(
      instanceListQuery({ node: 'host-b.example' }),
      "WorkflowType = 'instanceWorkflow' AND ExecutionStatus = 'Running' AND McpNode = 'host-b.example'",
    );
    assert.equal(nodeInstancesQuery("b' OR 'x'='x"), "WorkflowType = 'instanceWorkflow' AND ExecutionStatus = 'Running' AND McpNode = 'b\\' OR \\'x\\'=\\'x'");
    assert.equal(nodeListQuery(), "WorkflowType = 'nodeWorkflow' AND ExecutionStatus = 'Running'");
    assert.equal(status(() => parseInstanceFilters({ node: 'a b' })).message, 'invalid instance filter: node: must be a node name');
  });

  it('escapes quotes and backslashes so a value cannot change the query', () => {
    assert.equal(quoteLiteral("a' OR 'x'='x"), "'a\\' OR \\'x\\'=\\'x'");
    assert.equal(quoteLiteral('back\\slash'), "'back\\\\slash'");
  });

  it('rejects filter values that are not a server name, status or health, naming the parameter', () => {
    assert.equal(status(() => parseInstanceFilters({ server: "x' OR 'a'='a" })).status, 400);
    const bad = status(() => parseInstanceFilters({ status: 'BROKEN' }));
    assert.match(bad.message, /^invalid instance filter: status: must be one of PENDING, /);
    assert.deepEqual((bad.details as { field: string }[])[0].field, 'status');
    assert.equal(status(() => parseInstanceFilters({ health: 'fine' })).status, 400);
    const repeated = status(() => parseInstanceFilters({ server: ['a', 'b'] }));
    assert.equal(repeated.status, 400);
    assert.deepEqual(repeated.details, [{ field: 'server', message: 'must be given once' }]);
  });

  it('accepts status and health in any case', () => {
    assert.deepEqual(parseInstanceFilters({ status: 'running', health: 'HEALTHY', all: 'true' }), { status: 'RUNNING', health: 'healthy', all: true });
    assert.deepEqual(parseInstanceFilters({ status: '' }).status, undefined, 'an empty value is no filter');
  });

  it('mapLimit keeps order and never runs more than the limit at once', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, n));
      inFlight--;
      return n * 10;
    });
    assert.deepEqual(out, [50, 10, 40, 20, 30]);
    assert.equal(peak, 2);
  });
});

describe('api: request validation', () => {
  it('names every bad field of a spec', () => {
    const err = status(() => parseSpecBody('demo', { name: 'demo', replicas: -1, transport: 'http' }));
    assert.equal(err.status, 400);
    const fields = (err.details as { field: string }[]).map((d) => d.field).sort();
    assert.deepEqual(fields, ['image', 'port', 'replicas']);
    assert.match(err.message, /^invalid spec: .*replicas/);
  });

  it('requires the URL name to equal spec.name', () => {
    const err = status(() => parseSpecBody('demo', { name: 'other', image: 'x' }));
    assert.equal(err.status, 400);
    assert.match(err.message, /spec.name "other" does not match the URL name "demo"/);
  });

  it('rejects a non-object body', () => {
    const notObject = status(() => parseSpecBody('demo', [1, 2]));
    assert.equal(notObject.status, 400);
    assert.deepEqual(
      (notObject.details as { field: string }[]).map((d) => d.field),
      ['(root)'],
    );
  });

  it('scale takes an integer number of replicas within the spec bounds', () => {
    assert.deepEqual(parseWith(scaleRequestSchema, { replicas: 3 }, 'scale request'), { replicas: 3 });
    for (const replicas of [-1, REPLICAS.max + 1, 1.5, '2', undefined]) {
      const bad = status(() => parseWith(scaleRequestSchema, { replicas }, 'scale request'));
      assert.deepEqual(bad.details, [{ field: 'replicas', message: `must be an integer from 0 to ${REPLICAS.max}` }], `replicas ${String(replicas)}`);
    }
  });

  it('secret data must be a non-empty object of strings, and errors never echo a value', () => {
    assert.deepEqual(parseSecretBody({ data: { token: 's3cret' } }), { token: 's3cret' });
    const notString = status(() => parseSecretBody({ data: { token: 12345678 } }));
    assert.equal(notString.status, 400);
    assert.match(notString.message, /data\.token: must be a string/);
    assert.doesNotMatch(JSON.stringify(notString), /12345678/);
    assert.equal(status(() => parseSecretBody({ data: {} })).status, 400);
    assert.equal(status(() => parseSecretBody({ data: 'x' })).status, 400);
    const unknown = status(() => parseSecretBody({ data: { a: 'b' }, value: 'leak' }));
    assert.deepEqual(unknown.details, [{ field: 'value', message: 'unknown field "value"' }]);
    assert.doesNotMatch(JSON.stringify(unknown), /leak/);
    const badKey = status(() => parseSecretBody({ data: { 'bad key': 'hunter2' } }));
    assert.doesNotMatch(JSON.stringify(badKey), /hunter2/);
  });

  it('accepts full and short instance ids, rejects others', () => {
    assert.equal(normalizeInstanceId('mcp-instance:gitea:0'), 'mcp-instance:gitea:0');
    assert.equal(normalizeInstanceId('gitea:2'), 'mcp-instance:gitea:2');
    const bad = status(() => normalizeInstanceId('gitea'));
    assert.equal(bad.status, 400);
    assert.match(bad.message, /^invalid instance id "gitea": id: must be an instance id/);
  });

  it('log options: tail number or "all", follow flag', () => {
    assert.deepEqual(parseLogOptions({}), { tail: 200, follow: false, timestamps: false });
    assert.deepEqual(parseLogOptions({ tail: 'all', follow: 'true' }), { tail: undefined, follow: true, timestamps: false });
    assert.deepEqual(parseLogOptions({ tail: '5', timestamps: '' }), { tail: 5, follow: false, timestamps: true });
    const bad = status(() => parseLogOptions({ tail: '-3' }));
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.details, [{ field: 'tail', message: 'must be a non-negative integer or "all"' }]);
  });
});

describe('api: error mapping', () => {
  it('maps Temporal errors to 404 / 409 and keeps ApiErrors', () => {
    assert.equal(toApiError(new WorkflowNotFoundError('nope', 'mcp-server:x', undefined), 'server "x"').message, 'server "x" not found');
    const rejected = toApiError(new WorkflowUpdateFailedError('update failed', new Error('server "x" is being deleted')), 'server "x"');
    assert.equal(rejected.status, 409);
    assert.match(rejected.message, /is being deleted/);
    assert.equal(toApiError(Object.assign(new Error('down'), { code: 14 })).status, 503);
    const mine = new ApiError(418, 'teapot');
    assert.equal(toApiError(mine), mine);
  });
});

describe('api: OpenAPI document', () => {
  it('describes every route and the spec schema', () => {
    const doc = buildOpenApiDocument() as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, any> } };
    assert.equal(doc.openapi, '3.1.0');
    const routes = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops)
        .filter((k) => k !== 'parameters')
        .map((m) => `${m.toUpperCase()} ${p}`),
    );
    for (const route of [
      'PUT /api/v1/servers/{name}',
      'GET /api/v1/servers',
      'GET /api/v1/servers/{name}',
      'DELETE /api/v1/servers/{name}',
      'POST /api/v1/servers/{name}/start',
      'POST /api/v1/servers/{name}/stop',
      'POST /api/v1/servers/{name}/scale',
      'GET /api/v1/instances',
      'GET /api/v1/instances/{id}',
      'GET /api/v1/instances/{id}/events',
      'GET /api/v1/instances/{id}/logs',
      'POST /api/v1/instances/{id}/retry',
      'POST /api/v1/instances/{id}/restart',
      'GET /api/v1/secrets',
      'GET /api/v1/secrets/{name}',
      'PUT /api/v1/secrets/{name}',
      'DELETE /api/v1/secrets/{name}',
      'GET /healthz',
      'GET /readyz',
    ]) {
      assert.ok(routes.includes(route), `missing ${route}`);
    }
    assert.ok(doc.components.schemas.McpServerSpec.properties.healthCheck, 'spec schema has healthCheck');
  });

  it('is generated from the schemas the routes validate with', () => {
    const doc = buildOpenApiDocument() as { paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } };
    const { replicas } = doc.components.schemas.ScaleRequest.properties;
    assert.deepEqual([replicas.minimum, replicas.maximum], [REPLICAS.min, REPLICAS.max]);
    assert.deepEqual(doc.components.schemas.McpServerSpec.properties.replicas.maximum, REPLICAS.max);
    const filters = doc.paths['/api/v1/instances'].get.parameters as { name: string; in: string; schema: { enum?: string[] } }[];
    assert.deepEqual(
      filters.map((p) => `${p.in}:${p.name}`),
      ['query:server', 'query:status', 'query:health', 'query:node', 'query:all'],
    );
    assert.deepEqual(filters[1].schema.enum, [...INSTANCE_STATUSES]);
    const logs = doc.paths['/api/v1/instances/{id}/logs'].get.parameters as { name: string }[];
    assert.deepEqual(
      logs.map((p) => p.name),
      ['id', 'tail', 'follow', 'timestamps'],
    );
    const secret = doc.paths['/api/v1/secrets/{name}'];
    assert.equal(secret.put.requestBody.content['application/json'].schema.$ref, '#/components/schemas/SecretWrite');
    assert.equal(doc.components.schemas.SecretWrite.additionalProperties, false);
    assert.equal(secret.get.parameters[0].schema.pattern, SECRET_NAME_PATTERN.source);
  });
});

describe('api: bearer token', () => {
  let dir: string;
  beforeEach(() => {
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-api-auth-')), 'data');
  });
  afterEach(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));

  it('is generated once, 64 hex chars, in a 0600 file in a 0700 dir', () => {
    const token = ensureApiToken(dir);
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.equal(fs.statSync(apiTokenPath(dir)).mode & 0o777, 0o600);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(ensureApiToken(dir), token, 'the second start reuses the token');
  });

  it('tightens a token file that was made world-readable', () => {
    const token = ensureApiToken(dir);
    fs.chmodSync(apiTokenPath(dir), 0o644);
    assert.equal(ensureApiToken(dir), token);
    assert.equal(fs.statSync(apiTokenPath(dir)).mode & 0o777, 0o600);
  });

  it('refuses a corrupt token file with a clear message', () => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(apiTokenPath(dir), 'x\n');
    assert.throws(() => ensureApiToken(dir), /does not hold a valid API token; delete it/);
  });

  it('compares tokens by content only', () => {
    assert.equal(tokenMatches('abc', 'abc'), true);
    assert.equal(tokenMatches('abc', 'abcd'), false);
  });

  it('answers 401 without a token, 403 with a wrong one, and passes the right one', async () => {
    const app = express();
    app.get('/x', bearerAuth('right-token-0123456789'), (_req, res) => {
      res.json({ ok: true });
    });
    const server = await listenInRange(app);
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/x`;
    try {
      const none = await fetch(url);
      assert.equal(none.status, 401);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.equal(((await none.json()) as { error: string }).error, 'missing bearer token');
      const wrong = await fetch(url, { headers: { authorization: 'Bearer wrong-token-0123456789' } });
      assert.equal(wrong.status, 403);
      assert.equal(((await wrong.json()) as { error: string }).error, 'invalid bearer token');
      const basic = await fetch(url, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
      assert.equal(basic.status, 401);
      const right = await fetch(url, { headers: { authorization: 'bearer right-token-0123456789' } });
      assert.equal(right.status, 200);
    } finally {
      server.close();
    }
  });
});

describe('api: scoped tokens', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-api-tokens-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('roles: viewer reads, operator changes all but tokens, client only the gateway, admin everything', () => {
    const api = (method: string, p: string) => ({ kind: 'api' as const, method, path: p });
    const gateway = { kind: 'gateway' as const };
    assert.equal(roleRefusal('viewer', api('GET', '/servers')), null);
    assert.match(roleRefusal('viewer', api('PUT', '/servers/a'))!, /may only read/);
    assert.match(roleRefusal('viewer', gateway)!, /may not use the gateway/);
    assert.match(roleRefusal('viewer', api('GET', '/tokens'))!, /only the admin role/);
    assert.equal(roleRefusal('operator', api('DELETE', '/secrets/a')), null);
    assert.equal(roleRefusal('operator', gateway), null);
    assert.match(roleRefusal('operator', api('DELETE', '/tokens/a'))!, /only the admin role/);
    assert.equal(roleRefusal('client', gateway), null);
    assert.match(roleRefusal('client', api('GET', '/servers'))!, /gateway \(\/mcp\) only/);
    for (const access of [api('POST', '/tokens'), gateway, api('DELETE', '/servers/a')]) assert.equal(roleRefusal('admin', access), null);
  });

  it('a token limited to servers reaches only their /mcp/servers/<name>', () => {
    assert.equal(serversRefusal(null, { kind: 'gateway' }), null);
    assert.equal(serversRefusal(['a'], { kind: 'gateway', server: 'a' }), null);
    assert.match(serversRefusal(['a'], { kind: 'gateway', server: 'b' })!, /limited to the servers a$/);
    assert.match(serversRefusal(['a', 'b'], { kind: 'gateway' })!, /connect to \/mcp\/servers\/<name>, not the \/mcp aggregate/);
    assert.equal(serversRefusal(['a'], { kind: 'api', method: 'GET', path: '/servers' }), null);
  });

  it('keeps only hashes, finds a token by its value, refuses an expired or unknown one, and revokes', () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const store = new TokenStore(dir, () => now);
    const { token, view } = store.create('ci', 'operator', 60);
    assert.deepEqual(view, { name: 'ci', role: 'operator', createdAt: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-01T00:01:00.000Z', servers: null });
    assert.ok(!fs.readFileSync(path.join(dir, 'tokens.json'), 'utf8').includes(token));
    assert.deepEqual(store.lookup(token), { ok: true, principal: { name: 'ci', role: 'operator', servers: null, source: 'scoped-token', groups: [] } });
    assert.deepEqual(store.lookup(`${token}x`), { ok: false, reason: 'unknown' });
    assert.throws(() => store.create('ci', 'viewer'), /token "ci" already exists/);
    // Another process sharing the data dir sees it, and its revocation.
    const other = new TokenStore(dir, () => now);
    assert.equal(other.lookup(token).ok, true);
    now += 61_000;
    assert.deepEqual(store.lookup(token), { ok: false, reason: 'expired' });
    store.revoke('ci');
    now += 1_000;
    assert.deepEqual(other.lookup(token), { ok: false, reason: 'unknown' });
    assert.throws(() => store.revoke('ci'), /token "ci" not found/);
  });
});
