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
import { REPO_ROOT } from '../support/stack';

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
