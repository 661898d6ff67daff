/**
 * A release train on the Temporal dev server across two real Kubernetes API servers: "staging" is
 * the suite's shared control plane, "prod" a control plane of this file's own. Each cluster has its
 * own worker on its own task queue, authenticated with a token its cluster minted for deploy/'s
 * worker ServiceAccount, so neither worker can touch the other cluster; the train runs on
 * staging's queue and calls no activity. The smoke suites check a locally running reference
 * service (the clusters' pods are simulated; pods that run are tested on the real node).
 * 1. staging → prod succeeds: each cluster's Service selects green, whose pods run v2.2.0.
 * 2. v2.3.0 fails prod's smoke suite with rollbackCompleted: prod rolls back by itself, then the
 *    train undoes staging by deploying again what it replaced: each cluster ends on v2.2.0.
 * 3. A stage whose cluster's worker is not running waits, and `train status` names the queue no
 *    worker polls; once a worker starts on it, the stage deploys.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { TrainClient, trainResult } from '../../src/client/train-client.js';
import { renderTrain } from '../../src/client/train-cli.js';
import { eventually } from '../helpers/eventually.js';
import { parseTrainSpec } from '../../src/train/train-spec.js';
import type { TrainSpecInput } from '../../src/train/train-spec.js';
import { fileNamespace, startClusterWithManifests } from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startKubernetesWorker } from '../helpers/kubernetes-worker.js';
import type { KubernetesWorker } from '../helpers/kubernetes-worker.js';
import { startDevServer } from '../helpers/temporal-servers.js';

const NS = fileNamespace(import.meta.url);
const IMAGE = (tag: string) => `registry.internal/detection-api:${tag}`;
const QUEUES = { staging: 'train-e2e-staging', prod: 'train-e2e-prod' } as const;

describe('a release train across two real API servers, each cluster with its own worker and queue', () => {
  let env: TestWorkflowEnvironment;
  let staging: Cluster;
  let prod: Cluster;
  const workers: KubernetesWorker[] = [];

  before(async () => {
    [env, staging, prod] = await Promise.all([
      startDevServer(),
      startClusterWithManifests({ namespace: NS }),
      startClusterWithManifests({ own: true, namespace: NS }),
    ]);
    for (const [cluster, queue] of [
      [staging, QUEUES.staging],
      [prod, QUEUES.prod],
    ] as const) {
      const token = await cluster.plane.mintToken(NS, 'bluegreen-worker');
      workers.push(await startKubernetesWorker(env, cluster.plane.configForToken(token), queue));
    }
  });

  after(async () => {
    for (const worker of workers) await worker.stop();
    await prod?.plane.stop();
    await staging?.plane.stop();
    await env?.teardown();
  });

  /** What a cluster serves: the slot its Service selects, and that slot's image and replicas. */
  async function liveOn(cluster: Cluster): Promise<string> {
    const service = await cluster.core.readNamespacedService({ name: 'detection-api-service', namespace: NS });
    const slot = service.spec!.selector!['slot']!;
    const deployment = await cluster.apps.readNamespacedDeployment({ name: `detection-api-${slot}`, namespace: NS });
    return `${slot} ${deployment.spec!.template.spec!.containers[0]!.image} x${deployment.spec!.replicas}`;
  }

  function train(
    name: string,
    tag: string,
    prodSmoke: string,
    onFailure: 'hold' | 'rollbackCompleted',
  ): TrainSpecInput {
    return {
      name,
      image: IMAGE(tag),
      base: {
        app: 'detection-api',
        namespace: NS,
        replicas: 2,
        readinessTimeoutSeconds: 60,
        monitor: { durationSeconds: 4, intervalSeconds: 1, slos: [] },
        scaleDownDelaySeconds: 0,
      },
      clusters: { staging: { taskQueue: QUEUES.staging }, prod: { taskQueue: QUEUES.prod } },
      stages: [
        { name: 'staging', cluster: 'staging', overrides: { smoke: { endpoint: workers[0]!.referenceUrl } } },
        { name: 'prod', cluster: 'prod', overrides: { smoke: { endpoint: prodSmoke } } },
      ],
      onFailure,
    };
  }

  it('takes v2.2.0 through staging, then prod, each deployed by its own cluster’s worker', async () => {
    const trains = new TrainClient(env.client, QUEUES.staging);
    const handle = await trains.start(parseTrainSpec(train('e2e-first', 'v2.2.0', workers[1]!.referenceUrl, 'hold')));
    const status = await trainResult(handle);
    assert.equal(status.state, 'Succeeded', status.message);
    assert.deepEqual(
      status.stages.map((s) => `${s.name} ${s.state} ${s.targets.map((t) => `${t.cluster}:${t.liveSlot}`).join(',')}`),
      ['staging Succeeded staging:green', 'prod Succeeded prod:green'],
    );
    assert.equal(await liveOn(staging), `green ${IMAGE('v2.2.0')} x2`);
    assert.equal(await liveOn(prod), `green ${IMAGE('v2.2.0')} x2`);
  });

  it('undoes staging when prod fails its smoke suite with rollbackCompleted: both clusters end on v2.2.0', async () => {
    const trains = new TrainClient(env.client, QUEUES.staging);
    // Nothing answers on port 9: prod's smoke suite fails, and prod rolls back by itself.
    const handle = await trains.start(
      parseTrainSpec(train('e2e-second', 'v2.3.0', 'http://127.0.0.1:9', 'rollbackCompleted')),
    );
    const status = await trainResult(handle);
    assert.equal(status.state, 'RolledBack', status.message);
    assert.deepEqual(
      status.stages.map((s) => `${s.name} ${s.state}`),
      ['staging Undone', 'prod Failed'],
    );
    assert.match(status.message, /prod RolledBack \(SmokeFailed\).*undone, newest first: staging/);
    assert.equal(await liveOn(prod), `green ${IMAGE('v2.2.0')} x2`, 'prod never left v2.2.0');
    assert.equal(await liveOn(staging), `green ${IMAGE('v2.2.0')} x2`, 'staging is back on what it replaced');
  });

  it('waits for a cluster whose worker is missing, naming its queue, and deploys once one polls it', async () => {
    const late = 'train-e2e-late';
    const trains = new TrainClient(env.client, QUEUES.staging);
    const spec = train('e2e-late', 'v2.4.0', workers[1]!.referenceUrl, 'hold');
    spec.clusters = { ...spec.clusters, staging: { taskQueue: late } };
    spec.stages = [spec.stages[0]!];
    const plan = parseTrainSpec(spec);
    // The train itself runs on prod's worker's queue here: staging's has no worker yet.
    const handle = await new TrainClient(env.client, QUEUES.prod).start(plan);
    await eventually(
      async () => (await trains.status(plan.name)).stages[0]!.targets[0]!.workerSeen === false,
      'the status says no worker polls the late queue',
    );
    assert.match(renderTrain(await trains.status(plan.name)), /staging Running \(no worker polls train-e2e-late\)/);
    const token = await staging.plane.mintToken(NS, 'bluegreen-worker');
    workers.push(await startKubernetesWorker(env, staging.plane.configForToken(token), late));
    const status = await trainResult(handle);
    assert.equal(status.state, 'Succeeded', status.message);
    assert.equal(await liveOn(staging), `blue ${IMAGE('v2.4.0')} x2`);
  });
});
