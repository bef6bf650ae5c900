/**
 * The local images exist with their source hash, and the gitea-like image behaves like
 * gitea-mcp-server over `docker run -i`: tools/list works with any token, get_me fails
 * with an MCP tool error without a valid one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { removeContainers } from '../support/stack';

const IMAGES = ['mcpd/node-base:20', 'mcpd/python-base:3', 'mcpd/gitea-like:dev', 'mcpd/server-everything:dev', 'mcpd/tiny:dev'];

describe('local images', function () {
  this.timeout(120_000);
  const names: string[] = [];
  const clients: Client[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
    await removeContainers({ name: names.splice(0) }).catch(() => undefined);
  });

  async function connect(image: string, env: Record<string, string> = {}, args: string[] = []): Promise<Client> {
    const name = `t-images-${randomBytes(4).toString('hex')}`;
    names.push(name);
    const envArgs = Object.keys(env).flatMap((key) => ['-e', key]);
    const transport = new StdioClientTransport({
      command: 'docker',
      args: ['run', '-i', '--rm', '--name', name, '--network', 'none', ...envArgs, image, ...args],
      // Values go through the environment, not the command line.
      env: { ...(process.env as Record<string, string>), ...env },
      stderr: 'ignore',
    });
    const client = new Client({ name: 'mcpd-test', version: '1.0.0' });
    clients.push(client);
    await client.connect(transport);
    return client;
  }

  it('are all built and labelled with their source hash', () => {
    for (const image of IMAGES) {
      const hash = execFileSync('docker', ['image', 'inspect', '--format', '{{ index .Config.Labels "io.mcpd.source-hash" }}', image], {
        encoding: 'utf8',
      }).trim();
      assert.match(hash, /^[0-9a-f]{64}$/, `${image} carries io.mcpd.source-hash`);
    }
  });

  it("python-base: the host's Python with the stdlib modules servers use, without the host's site-packages or a shell", () => {
    const name = `t-images-${randomBytes(4).toString('hex')}`;
    names.push(name);
    const script = [
      'import ssl, sqlite3, ctypes, zoneinfo, asyncio, json, lzma, bz2, decimal, uuid, sys',
      'import importlib.util as u',
      // pip and setuptools live in the host's site-packages, which the base leaves out.
      'print(sys.version.split()[0], u.find_spec("pip") is None)',
    ].join('; ');
    const out = execFileSync('docker', ['run', '--rm', '--name', name, '--network', 'none', 'mcpd/python-base:3', 'python3', '-c', script], {
      encoding: 'utf8',
    }).trim();
    const version = execFileSync('docker', ['image', 'inspect', '--format', '{{ index .Config.Labels "io.mcpd.python.version" }}', 'mcpd/python-base:3'], {
      encoding: 'utf8',
    }).trim();
    assert.equal(out, `${version} True`);
    assert.throws(
      () => execFileSync('docker', ['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', 'mcpd/python-base:3', '-c', 'true'], { stdio: 'ignore' }),
      'no shell in the image',
    );
  });

  it('tiny: the static Go server speaks MCP to the SDK client (echo, a tool error, an unknown tool) and its image has no shell', async () => {
    const client = await connect('mcpd/tiny:dev');
    assert.equal(client.getServerVersion()?.name, 'mcpd-tiny');
    assert.deepEqual(
      (await client.listTools()).tools.map((t) => t.name),
      ['echo'],
    );
    assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: 'hello' } })).content, [{ type: 'text', text: 'hello' }]);
    assert.equal((await client.callTool({ name: 'echo', arguments: {} })).isError, true);
    await assert.rejects(client.callTool({ name: 'nope', arguments: {} }), /unknown tool "nope" \(this server has: echo\)/);
    await client.ping();
    assert.throws(
      () => execFileSync('docker', ['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', 'mcpd/tiny:dev', '-c', 'true'], { stdio: 'ignore' }),
      'no shell in the image',
    );
  });

  it('gitea-like: get_me answers "token is required" without a token, yet tools/list works', async () => {
    const client = await connect('mcpd/gitea-like:dev');
    assert.equal(client.getServerVersion()?.name, 'gitea-like');
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.deepEqual(tools, ['echo', 'get_me', 'hang', 'sleep']);
    const result = await client.callTool({ name: 'get_me', arguments: {} });
    assert.equal(result.isError, true);
    assert.deepEqual(result.content, [{ type: 'text', text: 'token is required' }]);
  });

  it('gitea-like: get_me rejects a malformed token and returns the user for a valid one', async () => {
    const bad = await connect('mcpd/gitea-like:dev', { GITEA_TOKEN: 'not-forty-hex' });
    const rejected = await bad.callTool({ name: 'get_me', arguments: {} });
    assert.equal(rejected.isError, true);
    assert.deepEqual(rejected.content, [{ type: 'text', text: 'invalid token' }]);

    const good = await connect('mcpd/gitea-like:dev', { GITEA_TOKEN: randomBytes(20).toString('hex') });
    const me = await good.callTool({ name: 'get_me', arguments: {} });
    assert.notEqual(me.isError, true);
    const user = JSON.parse((me.content as Array<{ text: string }>)[0].text);
    assert.equal(user.login, 'mcpd-test');
  });

  it('gitea-like: sleep reports progress when asked', async () => {
    const client = await connect('mcpd/gitea-like:dev');
    const progress: number[] = [];
    const result = await client.callTool({ name: 'sleep', arguments: { ms: 350 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    assert.deepEqual(result.content, [{ type: 'text', text: 'slept 350 ms' }]);
    assert.ok(progress.length >= 2, `progress notifications arrived (${progress.join(',')})`);
    // The SDK client may drop the final notification when the result overtakes it.
    assert.ok(
      progress.every((p, i) => p <= 350 && (i === 0 || p > progress[i - 1])),
      'progress only grows, up to the total',
    );
  });

  it('server-everything: serves its tools and its bundled docs resources over stdio', async () => {
    const client = await connect('mcpd/server-everything:dev', {}, ['stdio']);
    const echo = await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
    assert.deepEqual(echo.content, [{ type: 'text', text: 'Echo: hi' }]);
    const resources = (await client.listResources()).resources.map((r) => r.name);
    assert.ok(resources.includes('architecture.md'), `the docs are in the image (${resources.join(', ')})`);
  });
});
