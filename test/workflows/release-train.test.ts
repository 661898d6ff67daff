/**
 * The release train on the real time-skipping Temporal server: four clusters, each a worker of
 * its own on its own task queue with the recording double as its platform, and the train as the
 * parent of one deployment per stage and cluster. Each scenario asserts every cluster's state
 * after the train (the slot traffic is on and its image), the train's stages and decisions, and
 * its end: a train through a soak, an approval and a wave; a breach with rollbackCompleted (the
 * earlier stage undone) and with hold (it keeps the new version); an abort while a stage awaits
 * approval; a stage that waits for its window.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { parseTrainSpec } from '../../src/train/train-spec.js';
import type { TrainSpecInput } from '../../src/train/train-spec.js';
import { TrainClient, trainResult } from '../../src/client/train-client.js';
import { renderTrain } from '../../src/client/train-cli.js';
import { WEEKDAYS } from '../../src/shared/train.js';
import type { TrainStatus } from '../../src/shared/train.js';
import { captureHistory, DETECTION_API_PRESET, withWorker } from '../helpers/deployment-harness.js';
import { eventually } from '../helpers/eventually.js';
import { RecordingPlatformDouble } from '../helpers/recording-platform-double.js';
import type { DoubleBehaviour } from '../helpers/recording-platform-double.js';
import { startTimeSkippingServer } from '../helpers/temporal-servers.js';

const NEW_IMAGE = 'registry.internal/detection-api:v2.2.0';
const LIVE_IMAGE = 'registry.internal/detection-api:v2.1.0';
const CLUSTERS = ['staging', 'prod-a', 'prod-b', 'prod-c'] as const;
type Cluster = (typeof CLUSTERS)[number];

const BASE = {
  app: 'detection-api',
  namespace: 'default',
  smoke: { suite: DETECTION_API_PRESET.smoke.suite },
  monitor: { slos: DETECTION_API_PRESET.monitor.slos, durationSeconds: 60, intervalSeconds: 10, window: '1m' },
  canary: { requestsQuery: DETECTION_API_PRESET.canary.requestsQuery },
  scaleDownDelaySeconds: 30,
};

function trainSpec(queues: Record<Cluster, string>, overrides: Partial<TrainSpecInput> = {}): TrainSpecInput {
  return {
    name: `train-${queues.staging.slice(-8)}`,
    image: NEW_IMAGE,
    base: BASE,
    clusters: Object.fromEntries(CLUSTERS.map((c) => [c, { taskQueue: queues[c] }])),
    stages: [
      { name: 'staging', cluster: 'staging', soakSeconds: 120 },
      {
        name: 'prod-a',
        cluster: 'prod-a',
        overrides: {
          strategy: 'canary',
          traffic: { router: 'gateway-api' },
          canary: {
            steps: [
              { weight: 25, holdSeconds: 60 },
              { weight: 100, holdSeconds: 60 },
            ],
            minRequests: 100,
          },
        },
      },
      { name: 'prod-wave', clusters: ['prod-b', 'prod-c'], maxParallel: 2 },
    ],
    ...overrides,
  };
}

/**
 * Runs `body` while each cluster's worker polls its own queue (the train runs on staging's), with
 * a double per cluster; `behaviour` makes one cluster misbehave.
 */
async function withClusters<T>(
  env: TestWorkflowEnvironment,
  behaviour: Partial<Record<Cluster, DoubleBehaviour>>,
  body: (queues: Record<Cluster, string>, doubles: Record<Cluster, RecordingPlatformDouble>) => Promise<T>,
): Promise<T> {
  const doubles = Object.fromEntries(
    CLUSTERS.map((c) => [c, new RecordingPlatformDouble({ behaviour: behaviour[c] ?? {} })]),
  ) as Record<Cluster, RecordingPlatformDouble>;
  const queues = {} as Record<Cluster, string>;
  const nest = async (i: number): Promise<T> => {
    if (i === CLUSTERS.length) return await body(queues, doubles);
    const cluster = CLUSTERS[i]!;
    return await withWorker(env, doubles[cluster], async (queue) => {
      queues[cluster] = queue;
      return await nest(i + 1);
    });
  };
  return await nest(0);
}

/** Where each cluster's traffic is, and the image of that slot. */
function liveOf(doubles: Record<Cluster, RecordingPlatformDouble>): Record<Cluster, string> {
  return Object.fromEntries(
    CLUSTERS.map((c) => [c, `${doubles[c].selector} ${doubles[c].slots[doubles[c].selector].image}`]),
  ) as Record<Cluster, string>;
}

const stagesOf = (status: TrainStatus) => status.stages.map((s) => `${s.name} ${s.state}`);

/**
 * Waits until the train's stage `index` is in `state`, skipping the server's time 10 s at a time
 * meanwhile (time skips by itself only while a client waits for a result).
 */
async function untilStage(
  env: TestWorkflowEnvironment,
  trains: TrainClient,
  name: string,
  index: number,
  state: string,
) {
  for (let round = 0; round < 300; round++) {
    const status = await trains.status(name);
    if (status.stages[index]!.state === state) return status;
    await env.sleep(10_000);
  }
  assert.fail(`stage ${index} never reached ${state}: ${JSON.stringify(await trains.status(name))}`);
}

describe('releaseTrainWorkflow on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;

  beforeEach(async () => {
    env = await startTimeSkippingServer();
  });

  afterEach(async () => {
    await env?.teardown();
  });

  it('takes a version through staging (soaked), prod-a (approved) and a wave of two, each cluster by its own worker', async () => {
    const { status, doubles } = await withClusters(env, {}, async (queues, doubles) => {
      const plan = parseTrainSpec(
        trainSpec(queues, {
          stages: [
            ...trainSpec(queues).stages.slice(0, 1),
            { ...trainSpec(queues).stages[1]!, approval: 'required' },
            ...trainSpec(queues).stages.slice(2),
          ],
        }),
      );
      const trains = new TrainClient(env.client, queues.staging);
      const handle = await trains.start(plan);
      // staging's soak is its deployment's observe window: `train status` says how long is left.
      let soaking: TrainStatus | null = null;
      for (let round = 0; round < 100 && soaking === null; round++) {
        const status = await trains.status(plan.name);
        if (status.stages[0]!.targets[0]!.phase === 'Observing') soaking = status;
        else await env.sleep(5_000);
      }
      const soakLeft = soaking?.stages[0]!.targets[0]!.soakLeftSeconds;
      assert.ok(soakLeft != null && soakLeft > 0 && soakLeft <= 120, `soak left: ${soakLeft}`);
      assert.match(renderTrain(soaking!), new RegExp(`staging Running \\(Observing, soak ${soakLeft} s left\\)`));
      await untilStage(env, trains, plan.name, 1, 'AwaitingApproval');
      assert.deepEqual(liveOf(doubles), {
        staging: `green ${NEW_IMAGE}`,
        'prod-a': `blue ${LIVE_IMAGE}`,
        'prod-b': `blue ${LIVE_IMAGE}`,
        'prod-c': `blue ${LIVE_IMAGE}`,
      });
      const refused = await trains.approve(plan.name, { stage: 'prod-wave', by: 'alice' }).catch((e: Error) => e);
      assert.match(String(refused), /stage prod-a waits for approval, not prod-wave/);
      assert.equal((await trains.approve(plan.name, { stage: 'prod-a', by: 'alice' })).delivery, 'accepted');
      const status = await trainResult(handle);
      // Its deployments outlast the train's 120-s worker notice: it asks for their queues' pollers
      // (this server cannot tell, so it asks once). train-succeeded.json is the run from before it asked.
      await captureHistory(handle, 'train-succeeded-asked-for-pollers');
      return { status, doubles };
    });
    assert.equal(status.state, 'Succeeded', status.message);
    assert.deepEqual(stagesOf(status), ['staging Succeeded', 'prod-a Succeeded', 'prod-wave Succeeded']);
    assert.deepEqual(liveOf(doubles), {
      staging: `green ${NEW_IMAGE}`,
      'prod-a': `green ${NEW_IMAGE}`,
      'prod-b': `green ${NEW_IMAGE}`,
      'prod-c': `green ${NEW_IMAGE}`,
    });
    assert.deepEqual(
      status.decisions.map((d) => `${d.by}: ${d.what}`),
      ['alice: approved stage prod-a'],
    );
    assert.equal(status.stages[1]!.approvedBy, 'alice');
    assert.ok(
      doubles.staging.calls.some((c) => c.name === 'tick:evaluateSlos'),
      'staging was observed',
    );
    assert.ok(
      doubles['prod-a'].calls.some((c) => c.name === 'setTrafficWeight'),
      "prod-a's override made it a canary",
    );
  });

  it('undoes staging, newest first, when prod-a breaches with rollbackCompleted', async () => {
    const breach: DoubleBehaviour = { sloValues: (tick) => (tick === 2 ? { 'error-rate': 0.05 } : {}) };
    const { status, doubles } = await withClusters(env, { 'prod-a': breach }, async (queues, doubles) => {
      const plan = parseTrainSpec(trainSpec(queues, { onFailure: 'rollbackCompleted' }));
      const handle = await new TrainClient(env.client, queues.staging).start(plan);
      const status = await trainResult(handle);
      await captureHistory(handle, 'train-rolled-back-undone');
      return { status, doubles };
    });
    assert.equal(status.state, 'RolledBack', status.message);
    assert.deepEqual(stagesOf(status), ['staging Undone', 'prod-a Failed', 'prod-wave Skipped']);
    assert.match(
      status.message,
      /stage prod-a: 1 of 1 deployments failed \(budget 0\): prod-a RolledBack \(SloBreach\)/,
    );
    assert.match(status.message, /undone, newest first: staging/);
    assert.deepEqual(liveOf(doubles), {
      staging: `blue ${LIVE_IMAGE}`,
      'prod-a': `blue ${LIVE_IMAGE}`,
      'prod-b': `blue ${LIVE_IMAGE}`,
      'prod-c': `blue ${LIVE_IMAGE}`,
    });
    assert.equal(doubles['prod-b'].calls.length, 0, 'the wave never started');
  });

  it('keeps staging on the new version with hold, and says so', async () => {
    const breach: DoubleBehaviour = { sloValues: (tick) => (tick === 2 ? { 'error-rate': 0.05 } : {}) };
    const { status, doubles } = await withClusters(env, { 'prod-a': breach }, async (queues, doubles) => {
      const plan = parseTrainSpec(trainSpec(queues, { onFailure: 'hold' }));
      const handle = await new TrainClient(env.client, queues.staging).start(plan);
      const status = await trainResult(handle);
      await captureHistory(handle, 'train-held');
      // What the Temporal UI shows of the train: its end and a table of its stages.
      const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      assert.match(metadata.currentDetails ?? '', /^\*\*Held\*\*: stage prod-a: 1 of 1 deployments failed/);
      assert.match(metadata.currentDetails ?? '', /\| staging \| Succeeded \| staging Succeeded \|/);
      assert.match(metadata.currentDetails ?? '', /\| prod-a \| Failed \| prod-a RolledBack \|/);
      return { status, doubles };
    });
    assert.equal(status.state, 'Held', status.message);
    assert.deepEqual(stagesOf(status), ['staging Succeeded', 'prod-a Failed', 'prod-wave Skipped']);
    assert.match(status.message, /held: staging keep v2\.2\.0/);
    assert.equal(liveOf(doubles).staging, `green ${NEW_IMAGE}`);
    assert.equal(liveOf(doubles)['prod-a'], `blue ${LIVE_IMAGE}`);
  });

  it('goes on from prod-a with train retry once the cause is gone, leaving staging as it was', async () => {
    // prod-a breaches on its first run only (a cause outside the release: the double's second tick).
    const breach: DoubleBehaviour = { sloValues: (tick) => (tick === 2 ? { 'error-rate': 0.05 } : {}) };
    const { held, retried, doubles, stagingCalls } = await withClusters(
      env,
      { 'prod-a': breach },
      async (queues, doubles) => {
        const plan = parseTrainSpec(trainSpec(queues, { onFailure: 'hold' }));
        const trains = new TrainClient(env.client, queues.staging);
        const held = await trainResult(await trains.start(plan));
        const stagingCalls = doubles.staging.calls.length;
        const refused = await trains.retry(plan.name, { stage: 'staging', by: 'carol' }).catch((e: Error) => e);
        assert.match(String(refused), /stage staging is Succeeded; only a failed stage is retried/);
        const handle = await trains.retry(plan.name, { stage: 'prod-a', by: 'carol' });
        const retried = await trainResult(handle);
        await captureHistory(handle, 'train-retried');
        return { held, retried, doubles, stagingCalls };
      },
    );
    assert.equal(held.state, 'Held', held.message);
    assert.equal(retried.state, 'Succeeded', retried.message);
    assert.deepEqual(stagesOf(retried), ['prod-a Succeeded', 'prod-wave Succeeded']);
    assert.match(retried.decisions[0]!.what, /^retried from stage prod-a \(run /);
    assert.equal(retried.decisions[0]!.by, 'carol');
    assert.equal(doubles.staging.calls.length, stagingCalls, 'staging was not deployed again');
    assert.deepEqual(liveOf(doubles), {
      staging: `green ${NEW_IMAGE}`,
      'prod-a': `green ${NEW_IMAGE}`,
      'prod-b': `green ${NEW_IMAGE}`,
      'prod-c': `green ${NEW_IMAGE}`,
    });
  });

  it('holds when a stage can never start: a freeze longer than the 14 days looked ahead', async () => {
    const { status, doubles } = await withClusters(env, {}, async (queues, doubles) => {
      const now = await env.currentTimeMs();
      const freeze = {
        from: new Date(now + 600_000).toISOString(),
        to: new Date(now + 30 * 86_400_000).toISOString(),
        reason: 'year-end',
      };
      const spec = trainSpec(queues, { onFailure: 'hold', freezes: [freeze] });
      // staging deploys before the freeze begins; prod-a's hour of soak would reach into it.
      spec.stages[0] = { ...spec.stages[0]!, soakSeconds: 0 };
      spec.stages[1] = { ...spec.stages[1]!, soakSeconds: 3600 };
      const plan = parseTrainSpec(spec);
      const handle = await new TrainClient(env.client, queues.staging).start(plan);
      return { status: await trainResult(handle), doubles };
    });
    assert.equal(status.state, 'Held', status.message);
    assert.match(status.message, /^stage prod-a: no window opens within 14 days .*; held: staging keep v2\.2\.0$/);
    assert.deepEqual(stagesOf(status), ['staging Succeeded', 'prod-a Skipped', 'prod-wave Skipped']);
    assert.equal(doubles['prod-a'].calls.length, 0, 'prod-a never started');
  });

  it('stops the line on abort while prod-a awaits approval, and undoes staging', async () => {
    const { status, doubles } = await withClusters(env, {}, async (queues, doubles) => {
      const spec = trainSpec(queues, { onFailure: 'rollbackCompleted' });
      spec.stages[1] = { ...spec.stages[1]!, approval: 'required' };
      const plan = parseTrainSpec(spec);
      const trains = new TrainClient(env.client, queues.staging);
      const handle = await trains.start(plan);
      await untilStage(env, trains, plan.name, 1, 'AwaitingApproval');
      assert.equal((await trains.abort(plan.name, { reason: 'bad build', by: 'bob' })).delivery, 'accepted');
      const status = await trainResult(handle);
      await captureHistory(handle, 'train-aborted-undone');
      return { status, doubles };
    });
    assert.equal(status.state, 'RolledBack', status.message);
    assert.match(status.message, /^aborted by bob: bad build; undone, newest first: staging$/);
    assert.deepEqual(stagesOf(status), ['staging Undone', 'prod-a Skipped', 'prod-wave Skipped']);
    assert.deepEqual(
      status.decisions.map((d) => `${d.by}: ${d.what}`),
      ['bob: aborted the train: bad build'],
    );
    assert.equal(liveOf(doubles).staging, `blue ${LIVE_IMAGE}`);
    assert.equal(doubles['prod-a'].calls.length, 0, 'prod-a never started');
  });

  it('waits on a durable timer for the next window, says until when, then deploys', async () => {
    const { status, waiting } = await withClusters(env, {}, async (queues) => {
      const now = new Date(await env.currentTimeMs());
      const today = WEEKDAYS[now.getUTCDay()]!;
      const tomorrow = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
      const windows = [{ days: WEEKDAYS.filter((d) => d !== today), from: '00:00', to: '24:00', timeZone: 'UTC' }];
      const plan = parseTrainSpec(
        trainSpec(queues, {
          stages: [
            { name: 'staging', cluster: 'staging', windows },
            { name: 'prod-a', cluster: 'prod-a', windows },
          ],
        }),
      );
      const trains = new TrainClient(env.client, queues.staging);
      const handle = await trains.start(plan);
      let waiting: TrainStatus | null = null;
      await eventually(async () => {
        waiting = await trains.status(plan.name);
        return waiting.stages[0]!.state === 'WaitingForWindow';
      }, 'staging waits for its window');
      assert.equal(waiting!.stages[0]!.waitingUntil, tomorrow.toISOString());
      // A stage not begun says when its next window opens.
      assert.equal(waiting!.stages[1]!.nextWindow, tomorrow.toISOString());
      assert.match(renderTrain(waiting!), new RegExp(`prod-a +Pending \\(next window ${tomorrow.toISOString()}\\)`));
      const status = await trainResult(handle);
      await captureHistory(handle, 'train-waited-for-window');
      return { status, waiting: waiting! };
    });
    assert.match(waiting.message, /stage staging waits until .* \(its next window\)/);
    assert.equal(status.state, 'Succeeded', status.message);
  });
});
