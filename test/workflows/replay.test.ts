/**
 * Replays the histories captured from the scenario tests (test/histories, refreshed with
 * `UPDATE_HISTORIES=1 npm test`) against the current workflow code. A change that would break a
 * running deployment on upgrade fails here with a nondeterminism error.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import type { ReplayResult } from '@temporalio/worker';
import { HISTORIES_DIR } from '../helpers/deployment-harness.js';
import { workflowBundle } from '../helpers/temporal-servers.js';

// The current captures, and those recorded by earlier versions of the workflow (in subfolders):
// a deployment started before an upgrade must finish after it.
const files = (readdirSync(HISTORIES_DIR, { recursive: true }) as string[]).filter((f) => f.endsWith('.json')).sort();

describe('replay of captured deployment histories', () => {
  it('has histories for every outcome and every abort point', () => {
    const names = files.filter((f) => !f.includes('/')).map((f) => f.replace(/\.json$/, ''));
    for (const expected of [
      'succeeded-blue-to-green',
      'succeeded-green-to-blue',
      'succeeded-abort-rejected',
      'succeeded-through-ingress',
      'succeeded-unstable-active-allowed',
      'failed-active-slot-unstable',
      'succeeded-observe-breach-notified',
      'rolled-back-observe-warm-breach',
      'rolled-back-slo-breach-evidence',
      'rolled-back-readiness-timeout',
      'rolled-back-smoke-failed',
      'rolled-back-slo-breach',
      'rolled-back-measurement-errors',
      'rolled-back-no-decision',
      'rolled-back-abort-during-deploy',
      'rolled-back-abort-during-smoke',
      'rolled-back-abort-during-switch',
      'rolled-back-abort-during-monitor',
      'canary-succeeded',
      'canary-promoted',
      'canary-rolled-back-slo-breach',
      'canary-rolled-back-abort',
      'canary-inconclusive-low-traffic',
      'canary-shared-cause-aborted',
      'planned-blue-green',
      'failed-plan-stale',
      'train-succeeded',
      'train-rolled-back-undone',
      'train-held',
      'train-retried',
      'train-aborted-undone',
      'train-waited-for-window',
      'train-succeeded-asked-for-pollers',
      'train-worker-missing-notified',
    ]) {
      assert.ok(names.includes(expected), `test/histories/${expected}.json is missing`);
    }
  });

  // One replay worker for every history (a worker each took about 0.35 CPU-seconds to start,
  // 57 s for the lot); each history still passes or fails on its own below.
  const histories = new Map(
    files.map((file) => [file, historyFromJSON(JSON.parse(readFileSync(`${HISTORIES_DIR}${file}`, 'utf8')))]),
  );
  const replayed = new Map<string, ReplayResult>();
  before(async () => {
    const each = [...histories].map(([workflowId, history]) => ({ workflowId, history }));
    for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, each))
      replayed.set(result.workflowId, result);
  });

  for (const file of files) {
    it(`replays ${file} without nondeterminism`, () => {
      assert.ok((histories.get(file)!.events ?? []).length > 10, 'a captured history holds a whole deployment');
      const result = replayed.get(file);
      assert.ok(result, `${file} was replayed`);
      if (result.error) throw result.error;
    });
  }
});
