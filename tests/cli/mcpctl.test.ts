/**
 * mcpctl as a user types it, against a real mcpd process (startMcpd) on npm
 * test's stack: apply, get, describe, scale 1 -> 3 -> 1, edit with an EDITOR
 * script, logs, secrets, call, config, delete, and every kind of bad input
 * ending in a meaningful exit code and one line on stderr.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { InstanceView } from '../../src/contracts/instance';
import { startMcpd, waitFor, type McpdProcess } from '../support/stack';
import { MCPCTL, runMcpctl } from '../support/clients';
import { REPLICAS } from '../../src/contracts/spec';

/** Over the spec's cap: the edit that must be refused. */
const TOO_MANY_REPLICAS = REPLICAS.max + 1;

describe('mcpctl (end to end)', function () {
  this.timeout(240_000);
  const suffix = randomBytes(2).toString('hex');
  const name = `t-cli-cli-${suffix}`;
  let mcpd: McpdProcess;
  let work: string;

  const mcpctl = (args: string[], env: NodeJS.ProcessEnv = {}) => runMcpctl(mcpd, args, { cwd: work, env });

  async function ok(args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
    const run = await mcpctl(args, env);
    assert.equal(run.code, 0, `mcpctl ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
    return run.stdout;
  }

  /** A failing command: the expected exit code and exactly one line on stderr. */
  async function fails(args: string[], code: number, message: RegExp, env?: NodeJS.ProcessEnv): Promise<void> {
    const run = await mcpctl(args, env);
    assert.equal(run.code, code, `mcpctl ${args.join(' ')}: expected exit ${code}, got ${run.code} (stderr: ${run.stderr})`);
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line on stderr, got:\n${run.stderr}`);
    assert.match(lines[0], message);
  }

  async function instances(): Promise<InstanceView[]> {
    return JSON.parse(await ok(['get', 'instances', name, '-o', 'json'])).items;
  }

  async function waitHealthy(count: number): Promise<void> {
    await waitFor(
      async () => {
        const items = await instances();
        return items.length === count && items.every((i) => i.status === 'RUNNING' && i.health === 'healthy');
      },
      { timeoutMs: 120_000, intervalMs: 1000, what: `${count} healthy instance(s) of ${name}` },
    );
  }

  /** A long-running mcpctl (get -w, logs -f): its output so far, and a stop by its pid. */
  function streaming(args: string[]) {
    const child = spawn(process.execPath, [MCPCTL, ...args], {
      cwd: work,
      env: { PATH: process.env.PATH, HOME: os.homedir(), MCPD_URL: mcpd.url, MCPD_DATA_DIR: mcpd.dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (c) => (stdout += c));
    return { stdout: () => stdout, exitCode: () => child.exitCode, stop: () => child.kill('SIGTERM') };
  }

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-cli-'));
    mcpd = await startMcpd({ env: { MCPD_SEED_EXAMPLES: 'false' } });
  });

  after(async () => {
    if (mcpd) {
      await mcpctl(['delete', 'server', name]).catch(() => undefined);
      await mcpd.stop();
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  describe('a user session', () => {
    it('applies a YAML spec and starts it', async () => {
      fs.writeFileSync(
        path.join(work, 'server.yaml'),
        [
          '# a user-written spec',
          `name: ${name}`,
          'image: mcpd/server-everything:dev',
          'args: [stdio]',
          'replicas: 1',
          'healthCheck:',
          '  tool: echo',
          '  arguments: { message: probe }',
          '  intervalSeconds: 2',
          '',
        ].join('\n'),
      );
      assert.equal(await ok(['apply', '-f', 'server.yaml']), `server/${name} created\n`);
      await waitHealthy(1);
      assert.equal(await ok(['apply', '-f', 'server.yaml']), `server/${name} unchanged\n`);
      // Starting a running server changes nothing; --wait reports each instance once its start has an outcome.
      assert.equal(await ok(['start', 'server', name, '--wait']), `mcp-instance:${name}:0\tRUNNING\thealthy\nserver/${name} running (1 instance)\n`);
    });

    it('gets servers and instances as tables, json and yaml', async () => {
      const table = await ok(['get', 'servers']);
      assert.match(table.split('\n')[0], /^NAME\s+READY\s+STATE/);
      assert.match(table, new RegExp(`^${name}\\s+1/1\\s+Running\\s+stdio\\s+mcpd/server-everything:dev`, 'm'));
      const rows = await ok(['get', 'instances', name]);
      assert.match(rows, new RegExp(`^mcp-instance:${name}:0\\s+RUNNING\\s+healthy\\s+1\\s`, 'm'));
      assert.match(await ok(['get', 'instances', name, '-o', 'wide']), /CONTAINER/);
      assert.match(await ok(['get', 'server', name, '-o', 'yaml']), new RegExp(`^name: ${name}$`, 'm'));
    });

    it('describes a server and an instance', async () => {
      const server = await ok(['describe', 'server', name]);
      assert.match(server, /Ready:\s+1\/1/);
      assert.match(server, /Health check:\s+tools\/call echo every 2s/);
      const instance = await ok(['describe', 'instance', `${name}:0`]);
      for (const field of ['Status:\\s+RUNNING', 'Health:\\s+healthy', 'attemptCount:\\s+1', 'lastAttemptAt:', 'nextRetryAt:\\s+-', 'error:\\s+-', 'Events:']) {
        assert.match(instance, new RegExp(field));
      }
    });

    it('scales 1 -> 3 -> 1', async () => {
      assert.equal(await ok(['scale', 'server', name, '--replicas', '3']), `server/${name} scaled to 3\n`);
      await waitHealthy(3);
      await ok(['scale', 'server', name, '--replicas', '1']);
      await waitFor(async () => (await instances()).length === 1, { timeoutMs: 60_000, what: 'one instance left' });
      assert.equal((await instances())[0].id, `mcp-instance:${name}:0`);
    });

    it('edits a server in $EDITOR, reopening with the error until it is valid', async () => {
      // The "user": first saves an invalid replicas, then, seeing the error at the top, fixes it.
      const editor = path.join(work, 'editor.js');
      const seen = path.join(work, 'editor-runs.txt');
      fs.writeFileSync(
        editor,
        `const fs = require('fs');
  const file = process.argv[2];
  const text = fs.readFileSync(file, 'utf8');
  fs.appendFileSync(${JSON.stringify(seen)}, text + '\\n=====\\n');
  const runs = fs.readFileSync(${JSON.stringify(seen)}, 'utf8').split('=====').length - 1;
  fs.writeFileSync(file, text.replace(/^replicas: \\d+$/m, runs === 1 ? 'replicas: ${TOO_MANY_REPLICAS}' : 'replicas: 2'));
  `,
      );
      const run = await mcpctl(['edit', 'server', name], { EDITOR: `${process.execPath} ${editor}` });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `server/${name} edited\n`);
      assert.match(run.stderr, /^error: invalid spec: replicas: /);
      const opened = fs.readFileSync(seen, 'utf8').split('=====');
      assert.match(opened[0], /^replicas: 1$/m);
      assert.match(opened[1], /^# error: invalid spec: replicas: /m, 'the file is reopened with the error at the top');
      assert.match(opened[1], new RegExp(`^replicas: ${TOO_MANY_REPLICAS}$`, 'm'), 'with the user’s last edit, not the original');
      const spec = JSON.parse(await ok(['get', 'server', name, '-o', 'json'])).spec;
      assert.equal(spec.replicas, 2);
      await waitHealthy(2);
    });

    it('leaves a server alone when the edit changes nothing', async () => {
      const run = await mcpctl(['edit', 'server', name], { EDITOR: 'true' });
      assert.equal(run.code, 0);
      assert.match(run.stdout, /Edit cancelled, no changes made/);
    });

    it('watches instances with get -w and follows logs with logs -f', async () => {
      const watcher = streaming(['get', 'instances', name, '-w']);
      const follower = streaming(['logs', 'instance', `${name}:0`, '-f']);
      try {
        await waitFor(() => /^ID\s+STATUS/.test(watcher.stdout()) && watcher.stdout().includes(`mcp-instance:${name}:0`), { what: 'the first table' });
        await waitFor(() => follower.stdout().includes('Starting default'), { what: 'followed logs' });
        await ok(['scale', 'server', name, '--replicas', '3']);
        // Only rows that change are printed again: the new instance appears without a new header.
        await waitFor(() => new RegExp(`^mcp-instance:${name}:2\\s+RUNNING\\s+healthy`, 'm').test(watcher.stdout()), {
          timeoutMs: 90_000,
          what: 'the new instance row',
        });
        assert.equal(watcher.stdout().match(/^ID\s/gm)?.length, 1, 'one header');
        assert.equal(follower.exitCode(), null, 'logs -f keeps streaming');
        await ok(['scale', 'server', name, '--replicas', '2']);
        await waitFor(() => new RegExp(`^mcp-instance:${name}:2\\s+<deleted>`, 'm').test(watcher.stdout()), { timeoutMs: 60_000, what: 'the removed row' });
      } finally {
        watcher.stop();
        follower.stop();
      }
    });

    it('prints an instance’s stderr', async () => {
      assert.match(await ok(['logs', 'instance', `${name}:0`]), /Starting default \(STDIO\) server/);
    });

    it('calls a tool through the gateway', async () => {
      const out = await ok(['call', name, 'echo', '--args', '{"message":"hello from mcpctl"}']);
      assert.match(out, /hello from mcpctl/);
    });

    it('creates, lists and deletes a secret without ever printing a value', async () => {
      const file = path.join(work, 'password.txt');
      fs.writeFileSync(file, 'file-value-should-stay-hidden');
      const created = await ok([
        'create',
        'secret',
        `${name}-s`,
        '--from-literal',
        'token=literal-value-should-stay-hidden',
        '--from-file',
        `password=${file}`,
      ]);
      assert.match(created, new RegExp(`^secret/${name}-s created \\(keys: password, token; version 1\\)`));
      const list = await ok(['get', 'secrets']);
      assert.match(list, new RegExp(`^${name}-s\\s+password,token\\s+1\\s`, 'm'));
      const json = await ok(['get', 'secrets', '-o', 'json']);
      for (const out of [created, list, json]) assert.ok(!out.includes('should-stay-hidden'));
      assert.equal(await ok(['delete', 'secret', `${name}-s`]), `secret/${name}-s deleted\n`);
    });

    it('prints the MCP client snippet', async () => {
      const config = JSON.parse(await ok(['config']));
      assert.deepEqual(config, { mcpServers: { mcpd: { type: 'http', url: `${mcpd.url}/mcp`, headers: { Authorization: `Bearer ${mcpd.token}` } } } });
    });

    it('deletes the server', async () => {
      assert.equal(await ok(['delete', 'server', name]), `server/${name} deleted\n`);
      await fails(['get', 'server', name], 3, /not found/);
      assert.equal((await instances()).length, 0);
    });
  });

  describe('bad input: exit code and one line on stderr', () => {
    it('unknown server or instance -> 3', async () => {
      await fails(['describe', 'server', 't-cli-nope'], 3, /^error: server "t-cli-nope" not found$/);
      await fails(['get', 'server', 't-cli-nope'], 3, /not found/);
      await fails(['scale', 'server', 't-cli-nope', '--replicas', '2'], 3, /not found/);
      await fails(['delete', 'server', 't-cli-nope'], 3, /not found/);
      await fails(['edit', 'server', 't-cli-nope'], 3, /not found/, { EDITOR: 'true' });
      await fails(['describe', 'instance', 't-cli-nope:0'], 3, /not found/);
      await fails(['logs', 'instance', 't-cli-nope:0'], 3, /no container/);
      await fails(['retry', 'instance', 't-cli-nope:0'], 3, /not found/);
      await fails(['call', 't-cli-nope', 'echo'], 3, /t-cli-nope/);
    });

    it('invalid YAML, invalid spec, unreadable file -> 2', async () => {
      fs.writeFileSync(path.join(work, 'broken.yaml'), `name: ${name}\n  image: [oops\n`);
      await fails(['apply', '-f', 'broken.yaml'], 2, /^error: broken\.yaml: invalid YAML at line \d+, column \d+: /);
      fs.writeFileSync(path.join(work, 'invalid.yaml'), `name: ${name}-x\nimage: x\nreplicas: -1\n---\nname: Bad\n`);
      await fails(['apply', '-f', 'invalid.yaml'], 2, /^error: invalid\.yaml \(document 1\): invalid spec: replicas: /);
      await fails(['apply', '-f', 'missing.yaml'], 2, /cannot read missing\.yaml: ENOENT/);
      await fails(['call', name, 'echo', '--args', '{not json'], 2, /--args is not valid JSON/);
      await fails(['retry', 'instance', 'not-an-id'], 2, /invalid instance id/);
    });

    it('missing flags, arguments or commands -> 2', async () => {
      await fails(['scale', 'server', name], 2, /required option '--replicas <n>' not specified/);
      await fails(['scale', 'server', name, '--replicas', 'lots'], 2, /--replicas must be an integer/);
      await fails(['start', 'server', name, '--wait', '--timeout', '0'], 2, /--timeout must be whole seconds from 1 to 3600, got "0"/);
      await fails(['apply'], 2, /required option '-f, --filename <file...>' not specified/);
      await fails(['create', 'secret', 't-cli-x'], 2, /needs at least one --from-literal/);
      await fails(['create', 'secret', 't-cli-x', '--from-literal', 'novalue'], 2, /expects KEY=VALUE/);
      await fails(['describe', 'server'], 2, /missing required argument 'name'/);
      await fails(['get', 'pods'], 2, /unknown resource type "pods"/);
      await fails(['get', 'servers', '-o', 'xml'], 2, /argument 'xml' is invalid/);
      await fails(['frobnicate'], 2, /unknown command 'frobnicate'/);
    });

    it('wrong or missing token -> 4; unreachable mcpd -> 1', async () => {
      await fails(['get', 'servers'], 4, /^error: forbidden: invalid bearer token \(token from MCPD_TOKEN\)$/, { MCPD_TOKEN: 'f'.repeat(64) });
      await fails(['get', 'servers', '--token', 'wrong-wrong-wrong'], 4, /forbidden/);
      await fails(['get', 'servers'], 4, /^error: unauthorized: missing bearer token/, { MCPD_DATA_DIR: path.join(work, 'no-data-dir') });
      await fails(['call', name, 'echo'], 4, /gateway refused the token/, { MCPD_TOKEN: 'f'.repeat(64) });
      await fails(['get', 'servers'], 1, /^error: cannot reach mcpd at http:\/\/127\.0\.0\.1:22999: ECONNREFUSED$/, { MCPD_URL: 'http://127.0.0.1:22999' });
    });
  });
});
