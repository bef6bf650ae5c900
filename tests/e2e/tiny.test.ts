/**
 * mcpd/tiny:dev (images/tiny, the static Go MCP server the scale benchmark runs by the
 * hundred) behind a real mcpd: its replicas become RUNNING and healthy on a readiness
 * probe that calls its echo tool, and its tool answers through both gateway endpoints.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LABELS } from '../../src/contracts/labels';
import type { InstanceView } from '../../src/contracts/instance';
import { removeContainers, startMcpd, waitForValue, type McpdProcess } from '../support/stack';
import { callApi } from '../support/clients';

describe('the tiny Go MCP server image through the gateway', function () {
  this.timeout(120_000);

  const server = `t-tiny-${randomBytes(3).toString('hex')}`;
  let mcpd: McpdProcess;
  const api = (method: string, path: string, body?: unknown) => callApi(mcpd, method, path, body);
  const connect = async (path: string) => {
    const client = new Client({ name: 'tiny-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${mcpd.url}${path}`), { requestInit: { headers: { authorization: `Bearer ${mcpd.token}` } } }),
    );
    return client;
  };

  before(async () => {
    mcpd = await startMcpd();
  });

  after(async () => {
    if (mcpd) {
      await api('DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
      await mcpd.stop();
    }
    await removeContainers({ label: `${LABELS.server}=${server}` });
  });

  it('two replicas turn healthy on an echo probe and serve echo on /mcp and /mcp/servers/<name>', async () => {
    const applied = await api('PUT', `/api/v1/servers/${server}`, {
      name: server,
      image: 'mcpd/tiny:dev',
      replicas: 2,
      healthCheck: { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: 5, timeoutSeconds: 5 },
    });
    assert.ok([200, 201].includes(applied.status), applied.text);
    assert.equal((await api('POST', `/api/v1/servers/${server}/start`)).status, 200);
    await waitForValue(
      async () => (await api('GET', `/api/v1/instances?server=${server}`)).json.items as InstanceView[],
      (items) => items.length === 2 && items.every((v) => v.status === 'RUNNING' && v.health === 'healthy'),
      {
        timeoutMs: 60_000,
        intervalMs: 250,
        what: 'both replicas RUNNING and healthy',
        describe: (items) => JSON.stringify(items.map((v) => [v.status, v.health, v.error])),
      },
    );

    const aggregate = await connect('/mcp');
    try {
      assert.ok((await aggregate.listTools()).tools.some((t) => t.name === `${server}__echo`));
      const reply = (await aggregate.callTool({ name: `${server}__echo`, arguments: { message: 'through /mcp' } })) as { content: { text: string }[] };
      assert.equal(reply.content[0].text, 'through /mcp');
    } finally {
      await aggregate.close();
    }

    const direct = await connect(`/mcp/servers/${server}`);
    try {
      assert.deepEqual(
        (await direct.listTools()).tools.map((t) => t.name),
        ['echo'],
      );
      const reply = (await direct.callTool({ name: 'echo', arguments: { message: 'through /mcp/servers' } })) as { content: { text: string }[] };
      assert.equal(reply.content[0].text, 'through /mcp/servers');
      const missing = (await direct.callTool({ name: 'echo', arguments: {} })) as { isError?: boolean; content: { text: string }[] };
      assert.equal(missing.isError, true);
      assert.match(missing.content[0].text, /needs a string argument "message"/);
    } finally {
      await direct.close();
    }
  });
});
