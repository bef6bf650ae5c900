/**
 * The command line as the README documents it: `npx mcpctl ...` typed in a shell at
 * the root of the checkout, against a real mcpd. And the failure a fresh checkout had
 * with npm 11 ("sh: 1: mcpctl: not found" for good once `npx mcpctl` had run before the
 * first build): in a checkout of its own, with an npm cache of its own, npx before the
 * build says what to do, and after the build it works.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { callApi } from '../support/clients';
import { REPO_ROOT, startMcpd, type McpdProcess } from '../support/stack';

interface ShellRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `sh -c <line>` in `cwd`, as a user types it; `env` points mcpctl at the test mcpd. */
function shell(line: string, cwd: string, env: NodeJS.ProcessEnv): Promise<ShellRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', line], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The `npx mcpctl get ...` lines of the README's shell blocks, without their comments. */
function readmeGetCommands(): string[] {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks
    .flatMap((block) => block.split('\n'))
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => /^npx mcpctl get /.test(line));
}

/** The virtual server the README's examples name. */
const README_VIRTUAL_SERVER = 'triage';

describe('npx mcpctl, as the README writes it', function () {
  this.timeout(180_000);
  let mcpd: McpdProcess;
  const server = `t-npx-${randomBytes(2).toString('hex')}`;

  before(async () => {
    mcpd = await startMcpd();
    // No replicas: a server to list, without containers.
    const applied = await callApi(mcpd, 'PUT', `/api/v1/servers/${server}`, { name: server, image: 'mcpd/gitea-like:dev', transport: 'stdio', replicas: 0 });
    assert.ok(applied.status < 300, `apply ${server}: ${applied.status} ${applied.text}`);
    // The virtual server the README shows by name (`npx mcpctl get virtualserver triage -o yaml`).
    const virtual = await callApi(mcpd, 'PUT', `/api/v1/virtualservers/${README_VIRTUAL_SERVER}`, { name: README_VIRTUAL_SERVER, servers: [{ name: server }] });
    assert.ok(virtual.status < 300, `apply ${README_VIRTUAL_SERVER}: ${virtual.status} ${virtual.text}`);
  });

  after(async () => {
    await callApi(mcpd, 'DELETE', `/api/v1/virtualservers/${README_VIRTUAL_SERVER}`).catch(() => undefined);
    await callApi(mcpd, 'DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
    await mcpd?.stop();
  });

  it('runs every `npx mcpctl get ...` line of the README from the repository root', async () => {
    const lines = readmeGetCommands();
    assert.ok(lines.includes('npx mcpctl get servers'), `the README documents \`npx mcpctl get servers\`; found ${JSON.stringify(lines)}`);
    for (const line of lines) {
      const run = await shell(line, REPO_ROOT, { MCPD_URL: mcpd.url, MCPD_DATA_DIR: mcpd.dataDir });
      assert.equal(run.code, 0, `${line} exited ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
      assert.doesNotMatch(run.stderr, /not found/, line);
      if (line === 'npx mcpctl get servers') assert.match(run.stdout, new RegExp(`^${server}\\s`, 'm'), `${line} lists ${server}:\n${run.stdout}`);
    }
  });

  describe('in a fresh checkout, run before and after its first build', () => {
    let checkout: string;
    let npmCache: string;

    before(() => {
      // The files a clone has before `npm start` builds: package.json and the launcher
      // (node_modules as npm ci leaves it, borrowed from this checkout), no dist/.
      checkout = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-t-checkout-'));
      npmCache = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-t-npm-cache-'));
      for (const file of ['package.json', 'package-lock.json', '.npmrc']) fs.copyFileSync(path.join(REPO_ROOT, file), path.join(checkout, file));
      fs.cpSync(path.join(REPO_ROOT, 'bin'), path.join(checkout, 'bin'), { recursive: true });
      fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(checkout, 'node_modules'));
    });

    after(() => {
      fs.rmSync(checkout, { recursive: true, force: true });
      fs.rmSync(npmCache, { recursive: true, force: true });
    });

    it('says to build first, then works once built, with the same npx cache', async () => {
      // Its own npm cache: the npx cache entry made by the first run is the one the second reuses.
      const env = { MCPD_URL: mcpd.url, MCPD_DATA_DIR: mcpd.dataDir, npm_config_cache: npmCache, npm_config_yes: 'true' };
      const before = await shell('npx mcpctl get servers', checkout, env);
      assert.notEqual(before.code, 0);
      assert.doesNotMatch(before.stderr, /not found/);
      assert.match(before.stderr, /mcpctl is not built yet \(dist\/src\/cli\/mcpctl\.js is missing\): run `npm start` or `npm run build`/);

      // The build: dist/ appears (this checkout's own, compiled from the same sources).
      fs.symlinkSync(path.join(REPO_ROOT, 'dist'), path.join(checkout, 'dist'));
      const after = await shell('npx mcpctl get servers', checkout, env);
      assert.equal(after.code, 0, `after the build: exit ${after.code}\nstderr: ${after.stderr}`);
      assert.match(after.stdout, new RegExp(`^${server}\\s`, 'm'));
    });
  });
});
