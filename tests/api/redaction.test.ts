/**
 * No secret leaves through a result, against a real mcpd process: a gitea-like server
 * whose `env` tool hands out its environment (GITEA_LIKE_CHAOS_TOOLS) gets a secret by
 * secretRef; whatever way the value comes back (a result as JSON or raw, an isError
 * result, a logging notification, a progress message, a JSON-RPC error), through
 * /mcp/servers/<name> and /mcp, the client sees the marker and never the value, also
 * after an mcpd restart. GET /api/v1/gateway counts the redactions. The value is never
 * printed by this test: failures describe the text with the value hidden.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import { REDACTION_MARKER } from '../../src/gateway/redaction';
import { removeContainers, startMcpd, waitForValue, type McpdProcess } from '../support/stack';
import { callApi } from '../support/clients';
import { CHAOS_TOOLS_ENV } from '../chaos/support';

type TextResult = { isError?: boolean; content: { type: string; text: string }[] };

describe('secret redaction on a real mcpd', function () {
  this.timeout(180_000);

  const server = `t-redact-${randomBytes(3).toString('hex')}`;
  const instance = `mcp-instance:${server}:0`;
  // Quotes, a backslash, a newline and a non-ASCII letter: JSON escapes each of them.
  const secret = `tok-${randomBytes(12).toString('hex')}"q"\\b\nline-2-é`;
  const pieces = [secret.slice(0, 20), 'line-2-é', 'line-2-\\u00e9'];
  let mcpd: McpdProcess;
  const api = (method: string, path: string, body?: unknown) => callApi(mcpd, method, path, body);

  /** The text with the secret (in any spelling this test knows) hidden, for failure messages. */
  const hidden = (text: string) => pieces.reduce((t, p) => t.split(p).join('<SECRET PIECE>'), text);
  function assertRedacted(text: string, where: string): void {
    for (const piece of pieces) assert.ok(!text.includes(piece), `${where} leaks the secret: ${hidden(text)}`);
    assert.ok(text.includes(REDACTION_MARKER), `${where} carries no redaction marker: ${hidden(text)}`);
  }

  async function connect(path: string): Promise<Client> {
    const client = new Client({ name: 'redaction-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}${path}`), { requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } } }),
    );
    return client;
  }

  async function redactions(): Promise<number> {
    const res = await api('GET', '/api/v1/gateway');
    assert.equal(res.status, 200, res.text);
    const entry = (res.json.instances as { id: string; redactions: number }[]).find((i) => i.id === instance);
    assert.ok(entry, `the gateway does not list ${instance}`);
    return entry.redactions;
  }

  async function waitHealthy(): Promise<void> {
    await waitForValue(
      async () => (await api('GET', `/api/v1/instances?server=${server}`)).json.items as InstanceView[],
      (items) => items.length === 1 && items[0].status === 'RUNNING' && items[0].health === 'healthy',
      { timeoutMs: 90_000, what: `${server} RUNNING and healthy`, describe: (items) => JSON.stringify(items.map((v) => [v.status, v.health])) },
    );
  }

  before(async () => {
    mcpd = await startMcpd();
    const put = await api('PUT', `/api/v1/secrets/${server}`, { data: { token: secret } });
    assert.equal(put.status, 200);
    const applied = await api('PUT', `/api/v1/servers/${server}`, {
      name: server,
      image: 'mcpd/gitea-like:dev',
      env: [CHAOS_TOOLS_ENV, { name: 'LEAKY', secretRef: { name: server, key: 'token' } }],
      healthCheck: { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: 5, timeoutSeconds: 10 },
    });
    assert.ok([200, 201].includes(applied.status), hidden(applied.text));
    assert.equal((await api('POST', `/api/v1/servers/${server}/start`)).status, 200);
    await waitHealthy();
  });

  after(async () => {
    if (mcpd) {
      await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
      await api('DELETE', `/api/v1/secrets/${server}`).catch(() => undefined);
      await mcpd.stop();
    }
    await removeContainers({ label: `${LABELS.server}=${server}` });
  });

  it('/mcp/servers/<name>: results (JSON and raw), isError results, logging and progress notifications, JSON-RPC errors', async () => {
    const client = await connect(`/mcp/servers/${server}`);
    const logged: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logged.push(String(n.params.data)));
    try {
      const before = await redactions();
      const raw = (await client.callTool({ name: 'env', arguments: { name: 'LEAKY', format: 'raw' } })) as TextResult;
      assert.ok(raw.content[0].text === `LEAKY=${REDACTION_MARKER}`, `the raw line is not exactly the marker: ${hidden(raw.content[0].text)}`);
      assert.equal(await redactions(), before + 1, 'one value replaced, one counted');

      const json = (await client.callTool({ name: 'env', arguments: { format: 'json' } })) as TextResult;
      assertRedacted(json.content[0].text, 'the JSON environment');
      assert.equal(JSON.parse(json.content[0].text).LEAKY, REDACTION_MARKER, 'the JSON stays valid, with the marker as the value');
      assert.equal(JSON.parse(json.content[0].text).GITEA_LIKE_CHAOS_TOOLS, '1', 'the rest of the environment is untouched');

      const failed = (await client.callTool({ name: 'env', arguments: { name: 'LEAKY', via: 'error' } })) as TextResult;
      assert.equal(failed.isError, true);
      assertRedacted(failed.content[0].text, 'the isError result');

      const sent = (await client.callTool({ name: 'env', arguments: { name: 'LEAKY', via: 'notification' } })) as TextResult;
      assert.ok(!sent.isError, `the env tool failed to send its notification: ${hidden(sent.content[0].text)}`);
      await waitForValue(
        async () => logged.length,
        (n) => n > 0,
        { timeoutMs: 5_000, what: 'the logging notification' },
      );
      assertRedacted(logged.join('\n'), 'the logging notification');

      const progress: string[] = [];
      await client.callTool({ name: 'env', arguments: { name: 'LEAKY', via: 'progress' } }, undefined, {
        onprogress: (p) => void progress.push(String(p.message)),
      });
      assert.equal(progress.length, 1);
      assertRedacted(progress[0], 'the progress message');

      const error = await client.readResource({ uri: 'env-error://LEAKY' }).then(
        () => assert.fail('reading env-error:// should fail'),
        (err: Error) => err,
      );
      assertRedacted(error.message, 'the JSON-RPC error');
      assert.ok((await redactions()) >= before + 6);
    } finally {
      await client.close();
    }
  });

  it('/mcp: the aggregate tool answers redacted too', async () => {
    const client = await connect('/mcp');
    try {
      const json = (await client.callTool({ name: `${server}__env`, arguments: { format: 'json' } })) as TextResult;
      assertRedacted(json.content[0].text, 'the JSON environment through /mcp');
      const raw = (await client.callTool({ name: `${server}__env`, arguments: { name: 'LEAKY', format: 'raw' } })) as TextResult;
      assert.ok(raw.content[0].text === `LEAKY=${REDACTION_MARKER}`, `the raw line through /mcp: ${hidden(raw.content[0].text)}`);
    } finally {
      await client.close();
    }
  });

  it('after an mcpd restart the re-attached instance is still redacted (the values read back from its container)', async () => {
    mcpd = await mcpd.restart();
    await waitHealthy();
    const client = await connect(`/mcp/servers/${server}`);
    try {
      const raw = (await client.callTool({ name: 'env', arguments: { name: 'LEAKY', format: 'raw' } })) as TextResult;
      assert.ok(raw.content[0].text === `LEAKY=${REDACTION_MARKER}`, `after the restart: ${hidden(raw.content[0].text)}`);
      assert.equal(await redactions(), 1, 'counted from zero by the new process');
    } finally {
      await client.close();
    }
  });

  it('the value shows nowhere else: not in the API, not in mcpd’s logs', async () => {
    for (const path of [`/api/v1/instances/${encodeURIComponent(instance)}`, `/api/v1/servers/${server}`, `/api/v1/secrets/${server}`, '/api/v1/gateway']) {
      const res = await api('GET', path);
      assert.equal(res.status, 200, path);
      for (const piece of pieces) assert.ok(!res.text.includes(piece), `${path} leaks the secret: ${hidden(res.text)}`);
    }
    for (const piece of pieces) assert.ok(!mcpd.output().includes(piece), 'mcpd logged the secret');
  });
});
