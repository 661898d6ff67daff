/**
 * The release train's spec and its time rules: every stage's deployment merged and validated, a
 * bad train refused naming each field, and when a stage may start (windows in a time zone, the
 * soak inside the window, freezes).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { describe, it } from 'node:test';
import { parseTrainSpec, TrainSpecError } from '../../src/train/train-spec.js';
import type { TrainSpecInput } from '../../src/train/train-spec.js';
import { inWindow, nextStart } from '../../src/shared/train.js';

const BASE = { app: 'detection-api', namespace: 'detection', replicas: 3 };

function train(overrides: Partial<TrainSpecInput> = {}): TrainSpecInput {
  return {
    image: 'registry.internal/detection-api:v2.2.0',
    base: BASE,
    clusters: {
      staging: { taskQueue: 'bluegreen-staging' },
      'prod-a': { taskQueue: 'bluegreen-prod-a' },
      'prod-b': { taskQueue: 'bluegreen-prod-b' },
      'local-2': { taskQueue: 'bluegreen-local-2' },
    },
    stages: [
      { name: 'staging', cluster: 'staging', namespace: 'staging', soakSeconds: 600 },
      {
        name: 'prod-a',
        cluster: 'prod-a',
        approval: 'required',
        overrides: { strategy: 'canary', traffic: { router: 'gateway-api' } },
      },
      { name: 'prod-wave', clusters: ['prod-b', 'local-2'], maxParallel: 2 },
    ],
    ...overrides,
  };
}

function issuesOf(input: unknown): string[] {
  try {
    parseTrainSpec(input);
  } catch (error) {
    assert.ok(error instanceof TrainSpecError, String(error));
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('the train was accepted');
}

describe('parseTrainSpec', () => {
  it("merges each stage's deployment: the base, its overrides, the image, its namespace, its soak as a warm observe window", () => {
    const plan = parseTrainSpec(train({ onFailure: 'rollbackCompleted' }));
    assert.equal(plan.name, 'detection-api');
    assert.equal(plan.version, 'v2.2.0');
    assert.equal(plan.onFailure, 'rollbackCompleted');
    assert.equal(plan.workerNoticeSeconds, 120, 'people hear of a missing worker after 2 minutes by default');
    assert.deepEqual(
      plan.stages.map((s) => [s.name, s.targets.map((t) => `${t.cluster}@${t.taskQueue}`), s.maxParallel]),
      [
        ['staging', ['staging@bluegreen-staging'], 1],
        ['prod-a', ['prod-a@bluegreen-prod-a'], 1],
        ['prod-wave', ['prod-b@bluegreen-prod-b', 'local-2@bluegreen-local-2'], 2],
      ],
    );
    const staging = plan.stages[0]!.targets[0]!.spec as Record<string, unknown>;
    assert.equal(staging['namespace'], 'staging');
    assert.equal(staging['image'], 'registry.internal/detection-api:v2.2.0');
    assert.deepEqual(staging['observe'], { durationSeconds: 600, intervalSeconds: 60, keepOldSlotWarm: true });
    const prodA = plan.stages[1]!.targets[0]!.spec as Record<string, unknown>;
    assert.equal(prodA['strategy'], 'canary');
    assert.equal(prodA['namespace'], 'detection', 'the base namespace where the stage names none');
    assert.equal((prodA['traffic'] as { router: string }).router, 'gateway-api');
    assert.equal(plan.stages[1]!.approval, 'required');
  });

  it("merges a cluster's overrides before the stage's: a wave whose clusters differ in namespace and replicas", () => {
    const spec = train();
    spec.clusters['local-2'] = { taskQueue: 'bluegreen-local-2', overrides: { namespace: 'default', replicas: 2 } };
    spec.stages[2] = { ...spec.stages[2]!, overrides: { replicas: 4 } };
    const [prodB, local2] = parseTrainSpec(spec).stages[2]!.targets.map((t) => t.spec as Record<string, unknown>);
    assert.deepEqual([prodB!['namespace'], prodB!['replicas']], ['detection', 4]);
    assert.deepEqual([local2!['namespace'], local2!['replicas']], ['default', 4], "the stage's replicas win");
    spec.clusters['local-2'] = { taskQueue: 'bluegreen-local-2', overrides: { strategy: 'sideways' } };
    assert.match(issuesOf(spec).join('\n'), /^stages\.2 on local-2 \(base \+ overrides\)\.strategy: /);
  });

  it('refuses two clusters on one task queue: to Temporal they are one cluster, one deployment of the app at a time', () => {
    const spec = train();
    spec.clusters['local-2'] = { taskQueue: 'bluegreen-prod-a' };
    assert.deepEqual(issuesOf(spec), [
      "clusters.local-2.taskQueue: task queue 'bluegreen-prod-a' is cluster prod-a's too: each cluster polls a queue of its own",
    ]);
  });

  it('refuses a bad train before anything starts, naming every field: unknown cluster, empty wave, overlapping windows, a bad override', () => {
    const window = { days: ['mon' as const, 'tue' as const], from: '09:00', to: '12:00', timeZone: 'Europe/Berlin' };
    const stages: TrainSpecInput['stages'] = [
      { name: 'staging', cluster: 'stagign' },
      { name: 'wave', clusters: [] },
      {
        name: 'prod-a',
        cluster: 'prod-a',
        windows: [window, { ...window, days: ['tue' as const], from: '11:00', to: '13:00' }],
        overrides: { replicas: 0 },
      },
      { name: 'prod-a', cluster: 'prod-b' },
    ];
    const badZone = { ...stages[3]!, windows: [{ ...window, timeZone: 'Mars/Olympus' }] };
    assert.deepEqual(
      issuesOf(train({ stages: [...stages.slice(0, 3), badZone] })),
      ["stages.3.windows.0.timeZone: unknown time zone 'Mars/Olympus' (use an IANA name)"],
      'the schema refuses the time zone first',
    );
    const shortWindow = { ...window, from: '09:00', to: '09:30' };
    assert.deepEqual(
      issuesOf(train({ stages: [{ name: 'staging', cluster: 'staging', soakSeconds: 3600, windows: [shortWindow] }] })),
      ['stages.0.soakSeconds: a 3600 s soak does not fit in window 0 (09:00 to 09:30, 30 min)'],
    );
    assert.deepEqual(issuesOf(train({ workerNoticeSeconds: 5 })), [
      'workerNoticeSeconds: at least 10 s: a worker that is restarting is not missing',
    ]);
    assert.deepEqual(issuesOf(train({ stages })), [
      "stages.0.cluster: unknown cluster 'stagign' (clusters: staging, prod-a, prod-b, local-2)",
      'stages.1.clusters: a stage needs a cluster; a wave cannot be empty',
      'stages.2.windows.1: overlaps window 0: merge them',
      'stages.2 on prod-a (base + overrides).replicas: replicas must be at least 1',
      'stages.3.name: stage prod-a is named twice',
    ]);
  });
});

describe('the example train and the CLI', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));

  it('accepts examples/detection-api/train.yaml', () => {
    const plan = parseTrainSpec(parseYaml(readFileSync(`${root}examples/detection-api/train.yaml`, 'utf8')));
    assert.deepEqual(
      plan.stages.map((s) => `${s.name}: ${s.targets.map((t) => t.cluster).join(', ')}`),
      ['staging: staging', 'prod-a: prod-a', 'prod-wave: prod-b, local-2'],
    );
  });

  it('bluegreen train start refuses a bad train with exit 2, naming the field, before connecting anywhere', () => {
    const dir = mkdtempSync(join(tmpdir(), 'train-'));
    const file = join(dir, 'train.yaml');
    writeFileSync(file, JSON.stringify(train({ stages: [{ name: 'prod', cluster: 'nowhere' }] })));
    const run = spawnSync('node', [`${root}bin/bluegreen.js`, 'train', 'start', '-f', file], {
      encoding: 'utf8',
      // Nothing listens here: the refusal must come before any connection.
      env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' },
      timeout: 60_000,
    });
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /invalid train spec:\n {2}- stages\.0\.cluster: unknown cluster 'nowhere'/);
  });
});

describe('when a stage may start', () => {
  const window = { days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const, from: '09:00', to: '18:00' };
  const utc = { ...window, days: [...window.days], timeZone: 'UTC' };

  it('reads the window in its time zone', () => {
    // 08:30 UTC is 09:30 in Berlin in winter.
    const at = new Date('2026-12-07T08:30:00Z');
    assert.equal(inWindow(at, { ...utc, timeZone: 'Europe/Berlin' }), true);
    assert.equal(inWindow(at, utc), false);
  });

  it('waits for the next window when the soak would not fit: due at 17:55, window to 18:00, a 10-minute soak', () => {
    const at = new Date('2026-12-07T17:55:00Z');
    assert.equal(nextStart(at, [utc], [], 0)?.toISOString(), at.toISOString(), 'without a soak it may start now');
    assert.equal(nextStart(at, [utc], [], 600)?.toISOString(), '2026-12-08T09:00:00.000Z');
  });

  it('waits out a freeze, and says never when the windows and freezes leave no minute in 14 days', () => {
    const at = new Date('2026-12-24T10:00:00Z');
    const freeze = { from: '2026-12-24T00:00:00Z', to: '2026-12-27T00:00:00Z', reason: 'holidays' };
    assert.equal(nextStart(at, [utc], [freeze])?.toISOString(), '2026-12-27T09:00:00.000Z');
    // A freeze that begins inside the soak is waited out too: the stage would soak into it.
    const later = { from: '2026-12-24T10:05:00Z', to: '2026-12-24T12:00:00Z', reason: 'a board meeting' };
    assert.equal(nextStart(at, [utc], [later], 600)?.toISOString(), '2026-12-24T12:00:00.000Z');
    const long = { ...freeze, to: '2027-02-01T00:00:00Z' };
    assert.equal(nextStart(at, [utc], [long]), null);
  });
});
