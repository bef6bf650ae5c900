/**
 * What the gateway answers to malformed JSON-RPC: frames and client-request
 * params are checked with the MCP SDK's own schemas. A frame that is not JSON-RPC
 * 2.0 is an HTTP 400 with -32600; a request whose params do not fit its method is
 * answered -32602 with one line naming the bad field, on /mcp and on
 * /mcp/servers/<name> alike, and the session keeps serving.
 */
import assert from 'node:assert/strict';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { LATEST_PROTOCOL_VERSION, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { Gateway } from '../../src/gateway/gateway';
import { invalidParamsReply, mountGateway, type GatewayHttp } from '../../src/gateway/http';
import { removeContainers, runtime, startContainer } from './containers';

const PREFIX = 't-jsonrpc-';
const SERVER = `${PREFIX}gitea`;
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

type Reply = { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string } };

describe('gateway: invalid params are checked with the SDK schemas (pure)', () => {
  const request = (method: string, params?: unknown) => ({ jsonrpc: '2.0', id: 7, method, ...(params === undefined ? {} : { params }) }) as JSONRPCMessage;

  it('answers -32602 naming the bad field, in one line', () => {
    const reply = invalidParamsReply(request('tools/call', { arguments: {} })) as Reply;
    assert.equal(reply.id, 7);
    assert.equal(reply.error?.code, -32602);
    assert.match(reply.error.message, /^Invalid params for tools\/call: params\.name: /);
    assert.doesNotMatch(reply.error.message, /\n/);
    assert.match((invalidParamsReply(request('resources/read', { uri: 5 })) as Reply).error!.message, /params\.uri/);
    assert.match((invalidParamsReply(request('prompts/get', {})) as Reply).error!.message, /params\.name/);
  });

  it('passes valid requests, notifications, replies and methods the SDK does not know', () => {
    assert.equal(invalidParamsReply(request('tools/call', { name: 'echo', arguments: { message: 'hi' } })), null);
    assert.equal(invalidParamsReply(request('tools/list')), null);
    assert.equal(invalidParamsReply(request('x-vendor/anything', { whatever: [1] })), null);
    assert.equal(invalidParamsReply({ jsonrpc: '2.0', method: 'notifications/initialized' }), null);
    assert.equal(invalidParamsReply({ jsonrpc: '2.0', id: 3, result: {} }), null);
  });
});

describe('gateway: malformed JSON-RPC over HTTP (real container)', function () {
  this.timeout(120_000);
  let gateway: Gateway;
  let http: GatewayHttp;
  let listener: HttpServer;
  let base: string;

  async function post(path: string, body: unknown, session?: string): Promise<{ status: number; session: string | null; body: Reply }> {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { ...HEADERS, ...(session ? { 'mcp-session-id': session } : {}) },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, session: res.headers.get('mcp-session-id'), body: text ? (JSON.parse(text) as Reply) : {} };
  }

  async function openSession(path: string): Promise<string> {
    const init = await post(path, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'jsonrpc-test', version: '1' } },
    });
    assert.equal(init.status, 200, JSON.stringify(init.body));
    assert.ok(init.session);
    await post(path, { jsonrpc: '2.0', method: 'notifications/initialized' }, init.session);
    return init.session;
  }

  before(async () => {
    await removeContainers(PREFIX);
    const gitea = await startContainer({ server: SERVER, image: 'mcpd/gitea-like:dev', env: { GITEA_TOKEN: '0123456789abcdef0123456789abcdef01234567' } });
    gateway = new Gateway({ runtime });
    await gateway.attach(gitea);
    const app = express();
    http = mountGateway(app, gateway);
    await new Promise<void>((resolve, reject) => {
      listener = app.listen(0, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve()));
    });
    base = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
  });

  after(async () => {
    await http?.close();
    await gateway?.close();
    await new Promise((resolve) => listener?.close(resolve));
    await removeContainers(PREFIX);
  });

  it('refuses a frame that is not JSON-RPC 2.0 with 400 / -32600 naming the field', async () => {
    const wrongVersion = await post('/mcp', { jsonrpc: '1.0', id: 1, method: 'initialize', params: {} });
    assert.equal(wrongVersion.status, 400);
    assert.equal(wrongVersion.body.error?.code, -32600);
    assert.match(wrongVersion.body.error.message, /^Invalid Request: not a JSON-RPC 2\.0 message: jsonrpc: /);
    const badId = await post('/mcp', { jsonrpc: '2.0', id: { nested: true }, method: 'initialize', params: {} });
    assert.equal(badId.status, 400);
    assert.match(badId.body.error!.message, /: id: /);
    const notObject = await post('/mcp', [42]);
    assert.equal(notObject.status, 400);
    assert.match(notObject.body.error!.message, /must be a JSON object/);
  });

  for (const path of ['/mcp', `/mcp/servers/${SERVER}`]) {
    it(`${path}: answers bad params with -32602 naming the field, and keeps serving`, async () => {
      const session = await openSession(path);
      const tool = path === '/mcp' ? `${SERVER}__echo` : 'echo';

      const noName = await post(path, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { arguments: {} } }, session);
      assert.equal(noName.status, 200);
      assert.equal(noName.body.id, 2);
      assert.equal(noName.body.error?.code, -32602);
      assert.match(noName.body.error.message, /^Invalid params for tools\/call: params\.name: [^\n]+$/);

      const badArguments = await post(path, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: tool, arguments: 'hi' } }, session);
      assert.equal(badArguments.body.error?.code, -32602);
      assert.match(badArguments.body.error.message, /params\.arguments/);

      const badPrompt = await post(path, { jsonrpc: '2.0', id: 4, method: 'prompts/get', params: { name: 7 } }, session);
      assert.equal(badPrompt.body.error?.code, -32602, 'not -32603 with a zod dump');
      assert.match(badPrompt.body.error.message, /params\.name/);

      const good = await post(path, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: tool, arguments: { message: 'still here' } } }, session);
      assert.deepEqual((good.body.result?.content as { text: string }[])[0].text, 'still here');
    });
  }
});
