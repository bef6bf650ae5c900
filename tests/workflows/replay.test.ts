/**
 * Replays recorded histories (tests/workflows/histories/*.json) against the
 * current workflow code: a change that would break running workflows (a
 * reordered command, a new activity in the middle of a run) fails here.
 * Re-record after an intended, versioned change:
 *   MCPD_RECORD_HISTORIES=1 npm test -- tests/workflows/probe.devserver.test.ts tests/workflows/server.test.ts tests/workflows/instance.test.ts
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { HISTORIES_DIR, loadHistory } from './fixtures/env';

describe('workflow replay over recorded histories', function () {
  this.timeout(120_000);
  const files = readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();

  it('has histories of every workflow type it guards', () => {
    const types = new Set(files.map((f) => f.split('-')[0]));
    for (const type of ['instance', 'probe', 'server', 'node']) assert.ok(types.has(type), `no recorded ${type} history in ${HISTORIES_DIR}`);
  });

  it('replays every recorded history without a determinism error', async () => {
    const histories = files.map((file) => {
      return loadHistory(path.join(HISTORIES_DIR, file));
    });
    const results = Worker.runReplayHistories({ workflowsPath: require.resolve('../../workflows/index') }, histories);
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of results) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    assert.equal(replayed, histories.length);
    assert.deepEqual(failures, []);
  });
});
