import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { apiServerOf, mcpTarget, replyOutcome, shortError, MAX_ERROR_CHARS } from '../../src/audit/record';
import { auditQuerySchema, parseSince, type AuditRecord } from '../../src/contracts/audit';
import { SessionAudit } from '../../src/gateway/requestAudit';
import { AuditLog } from '../../src/audit/log';
import { loadSettings } from '../../src/config/settings';
import type { Principal } from '../../src/contracts/api';

describe('audit: record shaping', () => {
  it('names the tool, resource URI or prompt a request is about, never an argument value', () => {
    assert.equal(mcpTarget('tools/call', { name: 'echo', arguments: { message: 'hidden' } }), 'echo');
    assert.equal(mcpTarget('prompts/get', { name: 'greet', arguments: { who: 'hidden' } }), 'greet');
    assert.equal(mcpTarget('resources/read', { uri: 'file:///a' }), 'file:///a');
    assert.equal(mcpTarget('completion/complete', { ref: { type: 'ref/prompt', name: 'greet' }, argument: { name: 'x', value: 'hidden' } }), 'greet');
    assert.equal(mcpTarget('tools/list', {}), null);
    assert.equal(mcpTarget('tools/call', { name: 42 }), null);
  });

  it('tells ok, isError and JSON-RPC errors apart, with the code and a short message', () => {
    assert.deepEqual(replyOutcome({ result: { content: [] } }), { outcome: 'ok' });
    assert.deepEqual(replyOutcome({ result: { isError: true, content: [] } }), { outcome: 'isError' });
    assert.deepEqual(replyOutcome({ error: { code: -32602, message: 'Unknown tool:\n x' } }), { outcome: 'error', code: -32602, error: 'Unknown tool: x' });
    assert.equal(shortError('x'.repeat(1000)).length, MAX_ERROR_CHARS);
  });

  it('finds the server of an API path', () => {
    assert.equal(apiServerOf('/servers/gitea/scale'), 'gitea');
    assert.equal(apiServerOf('/secrets/gitea'), null);
  });

  it('parses --since as a duration back from now or an RFC 3339 time, and nothing else', () => {
    const now = Date.parse('2026-11-27T06:00:00Z');
    assert.equal(parseSince('10m', now)?.toISOString(), '2026-11-27T05:50:00.000Z');
    assert.equal(parseSince('2d', now)?.toISOString(), '2026-11-25T06:00:00.000Z');
    assert.equal(parseSince('2026-11-27T05:00:00+01:00', now)?.toISOString(), '2026-11-27T04:00:00.000Z');
    for (const bad of ['yesterday', '10', '10 m', '2026-11-27', '2026-13-45T00:00:00Z']) assert.equal(parseSince(bad, now), undefined, bad);
    const parsed = auditQuerySchema.safeParse({ limit: '0' });
    assert.ok(!parsed.success);
  });

  it('a session audit: one record per request with what its handler noted; cancellation and session end close the rest', () => {
    const written: AuditRecord[] = [];
    const principal: Principal = { name: 'alice', role: 'client', servers: null, source: 'scoped-token', groups: ['dev'] };
    const audit = new SessionAudit({ write: (r) => written.push(r) }, principal, undefined);
    audit.received({ jsonrpc: '2.0', id: 0, method: 'initialize', params: {} } as never);
    audit.received({ id: 1, method: 'tools/call', params: { name: 'a__echo', arguments: { message: 'hidden' } } });
    Object.assign(audit.note(1)!, { server: 'a', instance: 'mcp-instance:a:0', target: 'echo', redactions: 2 });
    audit.sent({ id: 1, result: { content: [] } });
    audit.received({ id: 2, method: 'tools/call', params: { name: 'a__x' } });
    Object.assign(audit.note(2)!, { decision: 'denied', decidedBy: 'policy' });
    audit.sent({ id: 2, error: { code: -32003, message: 'denied by policy' } });
    audit.received({ id: 3, method: 'tools/call', params: { name: 'a__sleep' } });
    audit.received({ method: 'notifications/cancelled', params: { requestId: 3 } });
    audit.received({ id: 4, method: 'resources/read', params: { uri: 'x:/y' } });
    audit.closed();
    assert.deepEqual(
      written.map((r) => [r.method, r.server, r.instance, r.target, r.decision, r.decidedBy, r.outcome, r.code ?? null, r.redactions]),
      [
        ['tools/call', 'a', 'mcp-instance:a:0', 'echo', 'allowed', 'role client', 'ok', null, 2],
        ['tools/call', null, null, 'a__x', 'denied', 'policy', 'error', -32003, 0],
        ['tools/call', null, null, 'a__sleep', 'allowed', 'role client', 'cancelled', null, 0],
        ['resources/read', null, null, 'x:/y', 'allowed', 'role client', 'cancelled', null, 0],
      ],
    );
    assert.deepEqual(written[0].principal, { name: 'alice', source: 'scoped-token' });
    assert.ok(!JSON.stringify(written).includes('hidden'));
  });

  it('the log: buffered JSON lines, rotated by size, queried newest first across files', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-audit-unit-'));
    try {
      const log = new AuditLog({ dir, name: 'n-1', maxBytes: 2048, keepFiles: 2 });
      const base = Date.parse('2026-11-27T06:00:00Z');
      for (let i = 0; i < 40; i++) {
        log.write({
          time: new Date(base + i * 1000).toISOString(),
          kind: 'mcp',
          principal: { name: i % 2 ? 'alice' : 'bob', source: 'scoped-token' },
          server: 'a',
          instance: null,
          method: 'tools/call',
          target: `t${i}`,
          decision: 'allowed',
          decidedBy: 'role client',
          outcome: 'ok',
          latencyMs: 1,
          redactions: 0,
        });
        if (i % 5 === 4) await log.flush();
      }
      const found = await log.query({ principal: 'alice', server: undefined, since: new Date(base + 30_000), limit: 3 });
      assert.deepEqual(
        found.map((r) => r.target),
        ['t39', 't37', 't35'],
      );
      await log.close();
      const files = fs.readdirSync(dir).sort();
      assert.deepEqual(files, ['n-1.jsonl', 'n-1.jsonl.1', 'n-1.jsonl.2']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('settings: MCPD_AUDIT, MCPD_AUDIT_MAX_BYTES and MCPD_AUDIT_KEEP_FILES with defaults and clear errors', () => {
    assert.deepEqual(loadSettings({}).audit, { enabled: true, maxBytes: 10 * 1024 * 1024, keepFiles: 5 });
    assert.deepEqual(loadSettings({ MCPD_AUDIT: 'false', MCPD_AUDIT_MAX_BYTES: '4096', MCPD_AUDIT_KEEP_FILES: '2' }).audit, {
      enabled: false,
      maxBytes: 4096,
      keepFiles: 2,
    });
    assert.throws(() => loadSettings({ MCPD_AUDIT_KEEP_FILES: '0' }), /MCPD_AUDIT_KEEP_FILES: must be a whole number of files from 1 to 1000/);
  });
});
