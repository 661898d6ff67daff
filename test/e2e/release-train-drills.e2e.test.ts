/**
 * Release-train drills on the embedded stack (test/helpers/train-stack.ts): two local clusters,
 * each with its own worker process, and the train on a worker process of its own, with the dev
 * server keeping its history in a file.
 * 1. The train's worker is SIGKILLed during staging's soak. The soak (staging's deployment) goes
 *    on without it and ends; nothing more happens while no worker runs the train; once one does,
 *    the train goes on to prod. Both clusters end on the new version.
 * 2. The Temporal server restarts while a wave deploys to both clusters. Every process reconnects,
 *    both deployments finish, and the train succeeds.
 * 3. An abort during a wave stops the line: both running deployments roll back, and both clusters
 *    serve what they served before the train.
 * 4. A train's deployment and a direct one of the same app on the same cluster never run at once:
 *    the train started beside a direct deployment stops, saying why, and leaves it be; a direct
 *    deployment started beside a train's is refused, naming it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deploymentResult, DeploymentAlreadyRunningError } from '../../src/client/deployment-client.js';
import { parseTrainSpec } from '../../src/train/train-spec.js';
import { testSpec } from '../helpers/deployment-harness.js';
import { eventually } from '../helpers/eventually.js';
import { localTrain, TRAIN_IMAGE, TrainStack } from '../helpers/train-stack.js';
import type { LocalCluster } from '../helpers/train-stack.js';

describe('release-train drills: the train’s worker SIGKILLed, the server restarted, an abort mid-wave', () => {
  const train = new TrainStack();

  before(async () => {
    await train.start();
  });

  after(async () => {
    await train.stop();
  });

  /** Waits until the train's deployment on `cluster` in `stage` is in `phase`. */
  async function untilPhase(stage: string, cluster: LocalCluster, phase: string) {
    await eventually(
      async () => (await train.deploymentStatus(cluster))?.phase === phase,
      `${stage} on ${cluster} reaches ${phase}`,
      90_000,
    );
  }

  /** Starts a train of one wave over both clusters, and waits until both deployments monitor. */
  async function waveMonitoring(name: string, tag: string, monitorSeconds: number): Promise<string> {
    const wave = [{ name: 'wave', clusters: ['local', 'local-2'], maxParallel: 2 }];
    const plan = parseTrainSpec(localTrain(name, tag, wave, { monitorSeconds }));
    await train.trains.start(plan);
    await untilPhase('wave', 'local', 'Monitoring');
    await untilPhase('wave', 'local-2', 'Monitoring');
    return plan.name;
  }

  it('goes on to prod after its worker was SIGKILLed during staging’s soak and a new one started', async () => {
    const plan = parseTrainSpec(
      localTrain('drill-soak', 'v2.2.0', [
        { name: 'staging', cluster: 'local', soakSeconds: 12 },
        { name: 'prod', cluster: 'local-2' },
      ]),
    );
    await train.trains.start(plan);
    await untilPhase('staging', 'local', 'Observing');
    await train.killTrainWorker();
    // The soak is staging's deployment: it ends by itself, on its own cluster's worker.
    const staging = train.deployment('local');
    await staging.result();
    const prodBefore = await train.served('local-2');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(await train.served('local-2'), prodBefore, 'no train worker, no next stage');
    assert.equal((await train.trains.handle(plan.name).describe()).status.name, 'RUNNING');
    await train.startTrainWorker();
    const status = await train.result(plan.name);
    assert.equal(status.state, 'Succeeded', status.message);
    assert.deepEqual(
      status.stages.map((s) => `${s.name} ${s.state}`),
      ['staging Succeeded', 'prod Succeeded'],
    );
    assert.equal(await train.served('local'), `green ${TRAIN_IMAGE('v2.2.0')} x2, blue x0`);
    assert.equal(await train.served('local-2'), `green ${TRAIN_IMAGE('v2.2.0')} x2, blue x0`);
  });

  it('finishes a wave across both clusters when the Temporal server restarts during it', async () => {
    const name = await waveMonitoring('drill-restart', 'v2.4.0', 15);
    await train.stack.restartTemporal();
    assert.equal((await train.trains.handle(name).describe()).status.name, 'RUNNING', 'restarted mid-wave');
    const status = await train.result(name);
    assert.equal(status.state, 'Succeeded', status.message);
    assert.deepEqual(
      status.stages[0]!.targets.map((t) => `${t.cluster} ${t.state} ${t.liveSlot}`),
      ['local Succeeded blue', 'local-2 Succeeded blue'],
    );
    assert.equal(await train.served('local'), `blue ${TRAIN_IMAGE('v2.4.0')} x2, green x0`);
    assert.equal(await train.served('local-2'), `blue ${TRAIN_IMAGE('v2.4.0')} x2, green x0`);
  });

  it('stops the line on abort during a wave: both deployments roll back, both clusters serve what they did', async () => {
    const before = [await train.served('local'), await train.served('local-2')];
    const name = await waveMonitoring('drill-abort', 'v2.5.0', 60);
    const answer = await train.trains.abort(name, { reason: 'drill', by: 'drills' });
    assert.equal(answer.delivery, 'accepted');
    assert.match(answer.message, /2 running deployment\(s\) told to abort/);
    const status = await train.result(name);
    assert.equal(status.state, 'Aborted', status.message);
    assert.deepEqual(
      status.stages[0]!.targets.map((t) => `${t.cluster} ${t.state} ${t.reason}`),
      ['local RolledBack Aborted', 'local-2 RolledBack Aborted'],
    );
    assert.deepEqual([await train.served('local'), await train.served('local-2')], before);
  });

  it('never runs a train’s deployment beside a direct one of the same app on the same cluster, either way round', async () => {
    const before = await train.served('local');
    // A direct deployment on local first: the train's, started meanwhile, is refused, and the train stops.
    const direct = await train.stack.deployments!.start(
      testSpec({
        image: TRAIN_IMAGE('v2.6.0'),
        replicas: 2,
        readinessTimeoutSeconds: 60,
        monitor: { durationSeconds: 60, intervalSeconds: 1, slos: [] },
        scaleDownDelaySeconds: 1,
      }),
    );
    await untilPhase('direct', 'local', 'Monitoring');
    const refused = parseTrainSpec(localTrain('drill-busy', 'v2.6.1', [{ name: 'staging', cluster: 'local' }]));
    await train.trains.start(refused);
    const stopped = await train.result(refused.name);
    assert.notEqual(stopped.state, 'Succeeded', stopped.message);
    const [target] = stopped.stages[0]!.targets;
    assert.equal(target!.state, 'Failed');
    assert.match(target!.message ?? '', /already runs on local \(bluegreen\/train-local\/default\/detection-api\)/);
    assert.match(stopped.message, /already runs on local/, 'the train says why it stopped');
    assert.equal((await direct.describe()).status.name, 'RUNNING', 'the direct deployment goes on, untouched');
    await train.stack.deployments!.abort('default', 'detection-api', { reason: 'drill', by: 'drills' });
    assert.equal((await deploymentResult(direct)).outcome, 'RolledBack');
    assert.equal(await train.served('local'), before);

    // A train's deployment on local first: a direct one is refused, naming it.
    const running = parseTrainSpec(
      localTrain('drill-busy-2', 'v2.6.2', [{ name: 'staging', cluster: 'local' }], { monitorSeconds: 60 }),
    );
    await train.trains.start(running);
    await untilPhase('staging', 'local', 'Monitoring');
    await assert.rejects(
      train.stack.deployments!.start(testSpec({ image: TRAIN_IMAGE('v2.6.3'), replicas: 2 })),
      (error: Error) =>
        error instanceof DeploymentAlreadyRunningError &&
        error.workflowId === 'bluegreen/train-local/default/detection-api' &&
        /v2\.6\.2/.test(error.message),
    );
    await train.trains.abort(running.name, { reason: 'drill', by: 'drills' });
    assert.equal((await train.result(running.name)).state, 'Aborted');
    assert.equal(await train.served('local'), before);
  });
});
