/**
 * The MCP conformance suite as the tests run it: its package and the npm package
 * `node@22` (the suite needs Node.js 22) live in tests/conformance/package.json,
 * installed with `npm ci` on first use apart from mcpd's dependencies; it has no
 * option for a bearer token, so a loopback proxy adds mcpd's token to each request
 * while passing Host and Origin through unchanged, as a browser's request would arrive.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import assert from 'node:assert/strict';
import type { InstanceView } from '../../src/contracts/instance';
import { callApi } from '../support/clients';
import { REPO_ROOT, startMcpd, waitForValue, type McpdProcess } from '../support/stack';

const TOOLS_DIR = path.join(REPO_ROOT, 'tests', 'conformance');
export const NODE22 = path.join(TOOLS_DIR, 'node_modules', 'node', 'bin', 'node');
export const SUITE = path.join(TOOLS_DIR, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');

export function installSuite(): void {
  if (fs.existsSync(NODE22) && fs.existsSync(SUITE)) return;
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: TOOLS_DIR, stdio: 'ignore', timeout: 300_000 });
}

/** Forwards every request to `target` with the bearer token added; Host and Origin stay as the client sent them. */
export function tokenProxy(target: string, token: string): Promise<http.Server> {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const forwarded = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, authorization: `Bearer ${token}` } },
      (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
      },
    );
    forwarded.on('error', () => res.writeHead(502).end());
    req.pipe(forwarded);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** The suite installed, a real mcpd running one instance of `server` (image `image`), and the token proxy in front of it. */
export async function startSuiteTarget(server: string, image: string): Promise<{ mcpd: McpdProcess; proxy: http.Server }> {
  installSuite();
  const mcpd = await startMcpd();
  const proxy = await tokenProxy(mcpd.url, mcpd.token);
  const api = (method: string, urlPath: string) => callApi(mcpd, method, urlPath, method === 'PUT' ? { name: server, image } : undefined);
  const applied = await api('PUT', `/api/v1/servers/${server}`);
  assert.ok([200, 201].includes(applied.status), applied.text);
  assert.equal((await api('POST', `/api/v1/servers/${server}/start`)).status, 200);
  await waitForValue(
    async () => (await api('GET', `/api/v1/instances?server=${server}`)).json.items as InstanceView[],
    (items) => items.length === 1 && items[0].status === 'RUNNING',
    { timeoutMs: 60_000, what: `${server} RUNNING`, describe: (items) => JSON.stringify(items.map((v) => [v.status, v.error])) },
  );
  return { mcpd, proxy };
}
