/**
 * Fuzzed HTTP against a real mcpd (startMcpd on npm test's stack) with a real upstream
 * (the gitea-like image, one STDIO replica):
 * - every API route with fuzzed path parameters, queries and bodies (JSON of any
 *   shape, spec-like, truncated, oversized, wrong content type, missing or wrong token);
 * - JSON-RPC frames on /mcp and /mcp/servers/<name> (valid, truncated, oversized, wrong
 *   types, batches, unknown ids, odd headers) inside real sessions and without one.
 * Properties: no 5xx; every 4xx carries a message saying what was wrong; every request
 * is answered within a bound (no hung session); mcpd still answers afterwards.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { REPLICAS, SERVER_NAME_PATTERN, SECRET_NAME_PATTERN } from '../../src/contracts/spec';
import { callApi } from '../support/clients';
import { removeContainers, startMcpd, waitForValue, type McpdProcess } from '../support/stack';
import { FUZZ_SEED, fuzzRuns, junk, pathSegment, specLike } from './arbitraries';

const suffix = randomBytes(2).toString('hex');
/** Every server or secret the fuzz may create starts with this, so cleanup finds them. */
const FUZZ_PREFIX = `t-fz-${suffix}-`;
const UPSTREAM = `t-fz-${suffix}`;
const TOKEN = '0123456789abcdef0123456789abcdef01234567';
/** Longest a request may take before it counts as hung. */
const ANSWER_WITHIN_MS = 10_000;

/** Messages that say nothing about what was wrong. */
const GENERIC = /^(error|bad request|not found|invalid|internal server error|unknown error|failed)\.?$/i;

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

/** A finding: what was sent and what came back, so a failure reads as a bug report. */
function describeExchange(request: unknown, answer?: Answer | string): string {
  const sent = JSON.stringify(request, (_k, v) => (typeof v === 'string' && v.length > 300 ? `${v.slice(0, 300)}…(${v.length} chars)` : v));
  const got = typeof answer === 'string' ? answer : answer ? `${answer.status} ${answer.contentType} ${answer.text.slice(0, 500)}` : 'nothing';
  return `sent ${sent}\n  got ${got}`;
}

async function send(url: string, init: RequestInit): Promise<Answer> {
  const signal = AbortSignal.timeout(ANSWER_WITHIN_MS);
  const res = await fetch(url, { ...init, signal });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text };
}

/** Keeps fuzzed names that the API would accept inside the fuzz prefix; others stay as generated. */
function confine(name: string, pattern: RegExp): string {
  return pattern.test(name) && !name.startsWith('t-fz-') ? `${FUZZ_PREFIX}${name}`.slice(0, 40).replace(/-+$/, '') || `${FUZZ_PREFIX}x` : name;
}

describe('fuzz: mcpd over HTTP', function () {
  this.timeout(240_000);
  let mcpd: McpdProcess;

  before(async () => {
    mcpd = await startMcpd();
    const applied = await callApi(mcpd, 'PUT', `/api/v1/servers/${UPSTREAM}`, {
      name: UPSTREAM,
      image: 'mcpd/gitea-like:dev',
      transport: 'stdio',
      replicas: 1,
      env: [{ name: 'GITEA_TOKEN', value: TOKEN }],
      healthCheck: { tool: 'get_me', intervalSeconds: 5 },
    });
    assert.ok(applied.status < 300, `apply ${UPSTREAM}: ${applied.status} ${applied.text}`);
    const started = await callApi(mcpd, 'POST', `/api/v1/servers/${UPSTREAM}/start`);
    assert.equal(started.status, 200, `start ${UPSTREAM}: ${started.text}`);
    await waitForValue(
      async () => (await callApi(mcpd, 'GET', `/api/v1/instances?server=${UPSTREAM}`)).json?.items ?? [],
      (items: { status: string; health: string }[]) => items.length === 1 && items[0].status === 'RUNNING' && items[0].health === 'healthy',
      { timeoutMs: 90_000, intervalMs: 500, what: `${UPSTREAM}:0 RUNNING and healthy` },
    );
  });

  after(async () => {
    if (!mcpd) return;
    const servers = await callApi(mcpd, 'GET', '/api/v1/servers').catch(() => undefined);
    for (const server of (servers?.json?.items ?? []) as { name: string }[]) {
      if (server.name.startsWith(`t-fz-${suffix}`)) await callApi(mcpd, 'DELETE', `/api/v1/servers/${server.name}`).catch(() => undefined);
    }
    const secrets = await callApi(mcpd, 'GET', '/api/v1/secrets').catch(() => undefined);
    for (const secret of (secrets?.json?.items ?? []) as { name: string }[]) {
      if (secret.name.startsWith(FUZZ_PREFIX)) await callApi(mcpd, 'DELETE', `/api/v1/secrets/${secret.name}`).catch(() => undefined);
    }
    await mcpd.stop();
    await removeContainers({ label: `io.mcpd.server=${UPSTREAM}` });
  });

  /** After the fuzz: mcpd answers, and a real client still gets tools through both endpoints. */
  async function stillServing(): Promise<void> {
    const ready = await send(`${mcpd.url}/readyz`, {});
    assert.equal(ready.status, 200, `mcpd stopped answering /readyz: ${ready.status} ${ready.text}`);
    for (const path of ['/mcp', `/mcp/servers/${UPSTREAM}`]) {
      const client = new Client({ name: 'fuzz-check', version: '1' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${mcpd.url}${path}`), { requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } } }),
      );
      try {
        const tools = await client.listTools();
        assert.ok(tools.tools.length > 0, `${path} lists tools after the fuzz`);
        const echo = tools.tools.find((t) => t.name.endsWith('echo'))!;
        const result = (await client.callTool({ name: echo.name, arguments: { message: 'still here' } })) as { content: { text: string }[] };
        assert.match(result.content[0].text, /still here/);
      } finally {
        await client.close();
      }
    }
  }

  describe('the API', () => {
    const route = fc.oneof(
      fc.constant({ method: 'GET', path: '/servers' }),
      pathSegment.map((n) => ({ method: 'GET', path: `/servers/${encodeURIComponent(n)}` })),
      pathSegment.map((n) => ({ method: 'PUT', path: `/servers/${encodeURIComponent(confine(n, SERVER_NAME_PATTERN))}`, spec: true })),
      pathSegment.map((n) => ({ method: 'DELETE', path: `/servers/${encodeURIComponent(confine(n, SERVER_NAME_PATTERN))}` })),
      fc
        .tuple(pathSegment, fc.constantFrom('start', 'stop'))
        .map(([n, verb]) => ({ method: 'POST', path: `/servers/${encodeURIComponent(confine(n, SERVER_NAME_PATTERN))}/${verb}` })),
      // Scale only servers that do not exist: a fuzzed valid count on a fuzz server would start real containers.
      pathSegment.map((n) => ({ method: 'POST', path: `/servers/${encodeURIComponent(SERVER_NAME_PATTERN.test(n) ? `${FUZZ_PREFIX}absent` : n)}/scale` })),
      fc.constant({ method: 'GET', path: '/instances' }),
      fc
        .tuple(pathSegment, fc.constantFrom('', '/events', '/logs'))
        .map(([n, tail]) => ({ method: 'GET', path: `/instances/${encodeURIComponent(n)}${tail}` })),
      fc.tuple(pathSegment, fc.constantFrom('retry', 'restart')).map(([n, verb]) => ({ method: 'POST', path: `/instances/${encodeURIComponent(n)}/${verb}` })),
      fc.constant({ method: 'GET', path: '/secrets' }),
      fc
        .tuple(fc.constantFrom('GET', 'PUT', 'DELETE'), pathSegment)
        .map(([method, n]) => ({ method, path: `/secrets/${encodeURIComponent(confine(n, SECRET_NAME_PATTERN))}` })),
      fc.constant({ method: 'GET', path: '/gateway' }),
      fc.constant({ method: 'GET', path: '/nodes' }),
      pathSegment.map((n) => ({ method: 'GET', path: `/nodes/${encodeURIComponent(n)}` })),
      fc
        .tuple(fc.constantFrom('GET', 'POST', 'PATCH', 'OPTIONS', 'DELETE'), fc.string({ maxLength: 20 }))
        .map(([method, p]) => ({ method, path: `/${encodeURIComponent(p)}/x` })),
    );
    const query = fc.array(
      fc.tuple(
        fc.oneof(fc.constantFrom('server', 'status', 'health', 'node', 'tail', 'follow', 'since', 'timestamps', 'q'), fc.string({ maxLength: 8 })),
        fc.string({ maxLength: 20 }),
      ),
      { maxLength: 4 },
    );
    const body = fc.oneof(
      { weight: 2, arbitrary: fc.constant({ kind: 'none' as const }) },
      { weight: 4, arbitrary: junk.map((value) => ({ kind: 'json' as const, value })) },
      {
        weight: 4,
        arbitrary: specLike({ replicas: fc.constantFrom(0, -1, REPLICAS.max + 1, 1.5, '1', null) }).map((value) => ({ kind: 'spec' as const, value })),
      },
      {
        weight: 2,
        arbitrary: fc.record({ data: fc.dictionary(fc.string({ maxLength: 8 }), junk, { maxKeys: 3 }) }).map((value) => ({ kind: 'json' as const, value })),
      },
      { weight: 2, arbitrary: fc.record({ replicas: junk }).map((value) => ({ kind: 'json' as const, value })) },
      {
        weight: 2,
        arbitrary: fc
          .tuple(junk, fc.nat())
          .map(([v, cut]) => ({ kind: 'raw' as const, text: JSON.stringify(v ?? {}).slice(0, cut % 40) + '{', type: 'application/json' })),
      },
      { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((text) => ({ kind: 'raw' as const, text, type: 'text/plain' })) },
      { weight: 1, arbitrary: fc.constant({ kind: 'raw' as const, text: `{"name":"${'x'.repeat(1_100_000)}"}`, type: 'application/json' }) },
    );
    const auth = fc.oneof({ weight: 12, arbitrary: fc.constant('token') }, { weight: 1, arbitrary: fc.constantFrom('none', 'wrong', 'malformed') });
    const request = fc.record({ route, query, body, auth });
    type ApiRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

    async function exchange(r: ApiRequest): Promise<void> {
      const search = new URLSearchParams(r.query).toString();
      const url = `${mcpd.url}/api/v1${r.route.path}${search ? `?${search}` : ''}`;
      const headers: Record<string, string> = {};
      if (r.auth === 'token') headers.authorization = `Bearer ${mcpd.token}`;
      if (r.auth === 'wrong') headers.authorization = `Bearer ${'0'.repeat(mcpd.token.length)}`;
      if (r.auth === 'malformed') headers.authorization = 'Basic Zm9vOmJhcg==';
      let payload: string | undefined;
      const sendsBody = r.route.method !== 'GET' && r.route.method !== 'OPTIONS';
      if (sendsBody && r.body.kind === 'json') payload = JSON.stringify(r.body.value ?? null);
      if (sendsBody && r.body.kind === 'spec') payload = JSON.stringify(r.body.value);
      if (sendsBody && r.body.kind === 'raw') payload = r.body.text;
      if (payload !== undefined) headers['content-type'] = r.body.kind === 'raw' ? r.body.type : 'application/json';
      let answer: Answer;
      try {
        answer = await send(url, { method: r.route.method, headers, body: payload });
      } catch (err) {
        assert.fail(`no answer within ${ANSWER_WITHIN_MS} ms (${(err as Error).message})\n  ${describeExchange({ ...r, url })}`);
      }
      const finding = describeExchange({ method: r.route.method, url, body: payload }, answer);
      assert.ok(answer.status < 500, `5xx from the API\n  ${finding}`);
      if (answer.status >= 400) {
        let message: unknown;
        try {
          message = JSON.parse(answer.text).error;
        } catch {
          assert.fail(`a ${answer.status} that is not JSON\n  ${finding}`);
        }
        assert.equal(typeof message, 'string', `a ${answer.status} without an error message\n  ${finding}`);
        assert.ok(
          (message as string).trim().length >= 8 && !GENERIC.test((message as string).trim()),
          `a ${answer.status} whose message does not say what was wrong\n  ${finding}`,
        );
      }
    }

    it('answers every fuzzed request within the bound, never with a 5xx, every 4xx with its reason', async () => {
      // Eight at once per run: concurrent requests are part of what mcpd must survive.
      await fc.assert(
        fc.asyncProperty(fc.array(request, { minLength: 8, maxLength: 8 }), async (batch) => {
          await Promise.all(batch.map(exchange));
        }),
        { seed: FUZZ_SEED, numRuns: fuzzRuns(250), endOnFailure: true },
      );
      await stillServing();
    });
  });

  describe('JSON-RPC on /mcp and /mcp/servers/<name>', () => {
    const id = fc.oneof(fc.integer(), fc.string({ maxLength: 8 }));
    const wrongId = fc.oneof(fc.constant(null), fc.boolean(), fc.double(), fc.object({ maxDepth: 1 }), fc.array(fc.integer(), { maxLength: 2 }));
    const method = fc.oneof(
      fc.constantFrom(
        'tools/list',
        'tools/call',
        'ping',
        'resources/list',
        'prompts/list',
        'resources/templates/list',
        'completion/complete',
        'logging/setLevel',
      ),
      fc.string({ maxLength: 15 }),
    );
    const toolCall = fc.record({
      name: fc.oneof(fc.constantFrom('echo', 'get_me', 'sleep', `${UPSTREAM}__echo`, `${UPSTREAM}__get_me`, 'nope', ''), fc.string({ maxLength: 10 })),
      arguments: fc.oneof(fc.record({ message: fc.string({ maxLength: 20 }) }), fc.record({ ms: fc.integer({ min: 0, max: 50 }) }), junk),
    });
    const params = fc.oneof(toolCall, junk, fc.constant(undefined));
    const validRequest = fc.record({ jsonrpc: fc.constant('2.0'), id, method, params }, { requiredKeys: ['jsonrpc', 'id', 'method'] });
    const message = fc.oneof(
      { weight: 6, arbitrary: validRequest },
      {
        weight: 1,
        arbitrary: fc.record({ jsonrpc: fc.constantFrom('2.0', '1.0', 2, undefined), id: wrongId, method: fc.oneof(method, fc.integer()), params }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          jsonrpc: fc.constant('2.0'),
          method: fc.constantFrom(
            'notifications/cancelled',
            'notifications/progress',
            'notifications/initialized',
            'notifications/roots/list_changed',
            'notifications/x',
          ),
          params: fc.oneof(fc.record({ requestId: id, reason: fc.string() }), junk),
        }),
      },
      { weight: 1, arbitrary: fc.record({ jsonrpc: fc.constant('2.0'), id, result: junk }) }, // a response to a request nobody sent
      { weight: 1, arbitrary: fc.record({ jsonrpc: fc.constant('2.0'), id, error: fc.record({ code: fc.integer(), message: fc.string() }) }) },
      { weight: 1, arbitrary: junk },
    );
    const frame = fc.oneof(
      { weight: 6, arbitrary: message.map((m) => ({ kind: 'one' as const, body: JSON.stringify(m ?? null) })) },
      { weight: 2, arbitrary: fc.array(message, { minLength: 0, maxLength: 5 }).map((ms) => ({ kind: 'batch' as const, body: JSON.stringify(ms) })) },
      {
        weight: 2,
        arbitrary: fc
          .tuple(validRequest, fc.nat())
          .map(([m, cut]) => ({ kind: 'truncated' as const, body: JSON.stringify(m).slice(0, cut % JSON.stringify(m).length) })),
      },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((body) => ({ kind: 'text' as const, body })) },
      {
        weight: 1,
        arbitrary: validRequest.map((m) => ({ kind: 'batch' as const, body: JSON.stringify(Array.from({ length: 101 }, (_, i) => ({ ...m, id: i }))) })),
      },
    );
    const oversized = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'echo', arguments: { message: 'x'.repeat(4 * 1024 * 1024 + 10) } },
    });
    const headerFuzz = fc.record({
      session: fc.oneof(
        { weight: 10, arbitrary: fc.constant('own' as const) },
        { weight: 1, arbitrary: fc.constantFrom('none' as const, 'random' as const, 'other-route' as const) },
      ),
      accept: fc.oneof(
        { weight: 10, arbitrary: fc.constant('application/json, text/event-stream') },
        { weight: 1, arbitrary: fc.constantFrom('application/json', '*/*', '') },
      ),
      contentType: fc.oneof(
        { weight: 10, arbitrary: fc.constant('application/json') },
        { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/json; charset=utf-8', '') },
      ),
      version: fc.oneof({ weight: 10, arbitrary: fc.constant(LATEST_PROTOCOL_VERSION) }, { weight: 1, arbitrary: fc.constantFrom('1999-01-01', '', 'x') }),
      // Not GET: with a session it opens the event stream, which stays open by design.
      method: fc.oneof({ weight: 20, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('PUT', 'PATCH') }),
    });
    const run = fc.record({
      route: fc.constantFrom('/mcp', `/mcp/servers/${UPSTREAM}`),
      exchanges: fc.array(
        fc.record({
          frame: fc.oneof({ weight: 60, arbitrary: frame }, { weight: 1, arbitrary: fc.constant({ kind: 'oversized' as const, body: oversized }) }),
          headers: headerFuzz,
        }),
        { minLength: 1, maxLength: 4 },
      ),
    });

    /** A fresh session on `route`, initialized the way a client does it. */
    async function openSession(route: string): Promise<string> {
      const init = await fetch(`${mcpd.url}${route}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${mcpd.token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 0,
          method: 'initialize',
          params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } },
        }),
        signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
      });
      await init.text();
      const session = init.headers.get('mcp-session-id');
      assert.ok(init.status === 200 && session, `initialize on ${route}: ${init.status}`);
      await send(`${mcpd.url}${route}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${mcpd.token}`,
          accept: 'application/json, text/event-stream',
          'content-type': 'application/json',
          'mcp-session-id': session,
          'mcp-protocol-version': LATEST_PROTOCOL_VERSION,
        },
        body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      });
      return session;
    }

    /** The JSON-RPC messages of an answer: a JSON body or the data lines of an SSE stream. */
    function messagesOf(answer: Answer): unknown[] {
      if (answer.contentType.includes('text/event-stream')) {
        return answer.text
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .filter(Boolean)
          .map((data) => JSON.parse(data));
      }
      if (!answer.text) return [];
      const parsed = JSON.parse(answer.text);
      return Array.isArray(parsed) ? parsed : [parsed];
    }

    /** Every error (HTTP or JSON-RPC) in an answer carries a message saying what was wrong. */
    function checkErrors(answer: Answer, finding: string): void {
      let messages: unknown[];
      try {
        messages = messagesOf(answer);
      } catch {
        assert.fail(`an answer that is neither JSON nor SSE\n  ${finding}`);
      }
      if (answer.status >= 400) assert.ok(messages.length > 0, `a ${answer.status} without a JSON-RPC error\n  ${finding}`);
      for (const m of messages as { error?: { code?: unknown; message?: unknown } }[]) {
        if (!m || typeof m !== 'object' || !('error' in m)) continue;
        assert.equal(typeof m.error?.code, 'number', `a JSON-RPC error without a numeric code\n  ${finding}`);
        const text = m.error?.message;
        assert.ok(
          typeof text === 'string' && text.trim().length >= 8 && !GENERIC.test(text.trim()),
          `a JSON-RPC error whose message does not say what was wrong\n  ${finding}`,
        );
      }
    }

    it('answers every fuzzed frame within the bound, never with a 5xx, every error with its reason', async () => {
      const other = { '/mcp': await openSession(`/mcp/servers/${UPSTREAM}`), [`/mcp/servers/${UPSTREAM}`]: await openSession('/mcp') } as Record<
        string,
        string
      >;
      let frames = 0;
      await fc.assert(
        fc.asyncProperty(run, async ({ route, exchanges }) => {
          const own = await openSession(route);
          try {
            for (const { frame, headers: h } of exchanges) {
              frames += 1;
              const headers: Record<string, string> = { authorization: `Bearer ${mcpd.token}` };
              if (h.accept) headers.accept = h.accept;
              if (h.contentType) headers['content-type'] = h.contentType;
              if (h.version) headers['mcp-protocol-version'] = h.version;
              if (h.session === 'own') headers['mcp-session-id'] = own;
              if (h.session === 'random') headers['mcp-session-id'] = randomBytes(8).toString('hex');
              if (h.session === 'other-route') headers['mcp-session-id'] = other[route];
              const request = { route, method: h.method, headers: { ...headers, authorization: 'Bearer …' }, kind: frame.kind, body: frame.body };
              let answer: Answer;
              try {
                answer = await send(`${mcpd.url}${route}`, { method: h.method, headers, body: frame.body });
              } catch (err) {
                assert.fail(`no answer within ${ANSWER_WITHIN_MS} ms (${(err as Error).message}): a hung request\n  ${describeExchange(request)}`);
              }
              const finding = describeExchange(request, answer);
              assert.ok(answer.status < 500, `5xx from the gateway\n  ${finding}`);
              checkErrors(answer, finding);
              if (answer.status === 200 && h.session === 'own' && frame.kind !== 'text' && frame.kind !== 'truncated') {
                // Every request in the frame is answered, by its own id.
                const sent = ([] as unknown[]).concat(JSON.parse(frame.body)) as { id?: unknown; method?: unknown }[];
                const asked = sent
                  .filter((m) => m && typeof m === 'object' && typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number'))
                  .map((m) => m.id);
                const answered = (messagesOf(answer) as { id?: unknown }[]).map((m) => m.id);
                for (const wanted of asked) assert.ok(answered.includes(wanted), `request id ${JSON.stringify(wanted)} got no answer\n  ${finding}`);
              }
            }
          } finally {
            await send(`${mcpd.url}${route}`, { method: 'DELETE', headers: { authorization: `Bearer ${mcpd.token}`, 'mcp-session-id': own } }).catch(
              () => undefined,
            );
          }
        }),
        { seed: FUZZ_SEED, numRuns: fuzzRuns(1000), endOnFailure: true },
      );
      assert.ok(frames >= 1000, `fuzzed ${frames} frames`);
      await stillServing();
    });
  });
});
