/**
 * The seed's manual verification, typed through mcpctl: while OpenBao cannot give
 * the gitea token, `describe instance` shows the attempts and the next retry;
 * `edit server` (an editor script) adds the get_me healthCheck; with the token
 * empty, `get instances` shows the instance unhealthy; a real token and a retry
 * make it healthy.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LABELS } from '../../src/contracts/labels';
import { removeContainers, startMcpd, waitFor, type McpdProcess } from '../support/stack';
import { runMcpctl } from '../support/clients';

describe('the gitea story through mcpctl (end to end)', function () {
  this.timeout(240_000);
  const server = `t-e2e-ctl-${randomBytes(2).toString('hex')}`;
  const secret = server;
  const id = `${server}:0`;
  let mcpd: McpdProcess;
  let work: string;

  const mcpctl = (args: string[], env: NodeJS.ProcessEnv = {}) => runMcpctl(mcpd, args, { cwd: work, env });
  async function ok(args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
    const run = await mcpctl(args, env);
    assert.equal(run.code, 0, `mcpctl ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
    return run.stdout;
  }
  /** The row of our instance in `mcpctl get instances` (a table for people). */
  async function row(): Promise<string> {
    const table = await ok(['get', 'instances', server]);
    return table.split('\n').find((line) => line.includes(id)) ?? '';
  }

  before(async () => {
    mcpd = await startMcpd();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpctl-gitea-'));
  });
  after(async () => {
    if (mcpd) {
      await mcpctl(['delete', 'server', server]).catch(() => undefined);
      await mcpctl(['delete', 'secret', secret]).catch(() => undefined);
      await mcpd.stop();
    }
    await removeContainers({ label: `${LABELS.server}=${server}` });
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('describe instance shows attemptCount and nextRetryAt while OpenBao cannot give the secret', async () => {
    const file = path.join(work, 'gitea.yaml');
    fs.writeFileSync(
      file,
      [
        `name: ${server}`,
        'image: mcpd/gitea-like:dev',
        'env:',
        '  - name: GITEA_TOKEN',
        `    secretRef: { name: ${secret}, key: token }`,
        'retry: { fastDelaySeconds: 3, fastAttempts: 5, slowDelaySeconds: 300 }',
        '',
      ].join('\n'),
    );
    await ok(['apply', '-f', file]);
    await waitFor(async () => /attemptCount:\s+[2-9]/.test(await ok(['describe', 'instance', id])), { timeoutMs: 30_000, what: 'a second attempt' });
    const described = await ok(['describe', 'instance', id]);
    assert.match(described, /Status:\s+ERROR/);
    assert.match(described, /nextRetryAt:\s+\d{4}-/);
    assert.match(described, /lastAttemptAt:\s+\d{4}-/);
    assert.match(described, new RegExp(`secret resolution failed: secret "${secret}" not found`));
    assert.match(await row(), /ERROR/);
  });

  it('edit server adds the healthCheck; with the token missing, get instances shows it unhealthy', async () => {
    // The token exists but is empty, as when someone created the secret without a value.
    await ok(['create', 'secret', secret, '--from-literal', 'token=']);
    await ok(['retry', 'instance', id]);
    await waitFor(async () => /RUNNING/.test(await row()), { timeoutMs: 30_000, what: 'RUNNING with an empty token' });

    const editor = path.join(work, 'add-health-check.js');
    // intervalSeconds 5 instead of the seed's 60 keeps the test short; the rest is the seed's healthCheck.
    fs.writeFileSync(
      editor,
      `const fs = require('fs');
const file = process.argv[2];
fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/^name: .*$/m, (line) => line + '\\nhealthCheck: { tool: get_me, intervalSeconds: 5, timeoutSeconds: 10, failureThreshold: 3 }'));
`,
    );
    const edited = await mcpctl(['edit', 'server', server], { EDITOR: `${process.execPath} ${editor}` });
    assert.equal(edited.code, 0, edited.stderr);
    assert.match(edited.stdout, /edited/);
    const spec = JSON.parse(await ok(['get', 'server', server, '-o', 'json'])).spec;
    assert.deepEqual(spec.healthCheck, { tool: 'get_me', arguments: {}, intervalSeconds: 5, timeoutSeconds: 10, failureThreshold: 3 });

    await waitFor(async () => /RUNNING\s+unhealthy/.test(await row()), { timeoutMs: 60_000, intervalMs: 1000, what: 'unhealthy in get instances' });
    assert.match(await ok(['describe', 'instance', id]), /token is required/);
  });

  it('a real token and a retry make it healthy', async () => {
    await ok(['create', 'secret', secret, '--from-literal', `token=${randomBytes(20).toString('hex')}`]);
    await ok(['retry', 'instance', id]);
    await waitFor(async () => /RUNNING\s+healthy/.test(await row()), { timeoutMs: 60_000, intervalMs: 1000, what: 'healthy in get instances' });
  });
});
