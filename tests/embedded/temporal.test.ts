/**
 * The embedded Temporal dev server registers mcpd's search attributes (usable by the
 * first workflow), keeps its state in SQLite when given a file, and stop() ends it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SEARCH_ATTRIBUTES } from '../../src/contracts/searchAttributes';
import { isPortOpen } from '../../src/embedded/process';
import { startTemporalDevServer, type TemporalDevServer } from '../../src/embedded/temporal';
import { freePort, testEnv, waitForValue } from '../support/stack';

const run = promisify(execFile);

describe('embedded Temporal dev server', function () {
  this.timeout(120_000);
  const env = testEnv();
  let dir: string;
  let server: TemporalDevServer | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-t-temporal-'));
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const start = async (port: number) =>
    startTemporalDevServer({
      temporalBin: env.temporalCli,
      port,
      uiPort: null,
      dbFile: path.join(dir, 'temporal', 'temporal.db'),
      logFile: path.join(dir, 'temporal.log'),
    });
  const temporal = (address: string, ...args: string[]) =>
    run(env.temporalCli, [...args, '--address', address, '--namespace', 'default'], { maxBuffer: 16 << 20 });

  it('registers the search attributes and keeps workflows across a restart', async () => {
    const port = await freePort();
    server = await start(port);
    const { stdout: attributes } = await temporal(server.address, 'operator', 'search-attribute', 'list', '--output', 'json');
    for (const name of Object.values(SEARCH_ATTRIBUTES)) assert.match(attributes, new RegExp(`"${name}"`), `${name} is registered`);

    // The server reads its search attributes once a minute (not on every use): the very first
    // workflow must still be able to carry them, and be found by them, as mcpd's first instance is.
    const attribute = `${SEARCH_ATTRIBUTES.server}="t-first"`;
    await temporal(
      server.address,
      'workflow',
      'start',
      '--type',
      't-nothing',
      '--task-queue',
      't-nobody',
      '--workflow-id',
      't-persisted',
      '--search-attribute',
      attribute,
    );
    const query = `${SEARCH_ATTRIBUTES.server} = 't-first'`;
    const address = server.address;
    const listed = await waitForValue(
      async () => (await temporal(address, 'workflow', 'list', '--query', query, '--output', 'json')).stdout,
      (stdout) => stdout.includes('t-persisted'),
    );
    assert.match(listed, /t-persisted/);
    await server.stop();
    assert.equal(await isPortOpen('127.0.0.1', port), false, 'stop() ended the server');

    server = await start(port);
    const { stdout: described } = await temporal(server.address, 'workflow', 'describe', '--workflow-id', 't-persisted', '--output', 'json');
    assert.match(described, /t-persisted/);
    await temporal(server.address, 'workflow', 'terminate', '--workflow-id', 't-persisted', '--reason', 'test done');
  });
});
