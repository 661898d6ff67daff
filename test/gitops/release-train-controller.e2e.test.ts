/**
 * The ReleaseTrain controller on the real control plane and the Temporal dev server, with the
 * Role deploy/gitops grants it (its ServiceAccount's own token) and a cluster worker on its queue:
 * - a ReleaseTrain applied starts a train, and its status mirrors the train to Succeeded, stage by
 *   stage, while the cluster's Service selects the new slot;
 * - a new image while the train of the generation before runs: that train is aborted (the line
 *   stops, nothing went live), and the new generation's train starts once it has ended;
 * - a spec the train's rules refuse (an unknown cluster) is reported Invalid, naming the field,
 *   and no train starts.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { TrainClient, trainResult } from '../../src/client/train-client.js';
import { ReleaseTrainController } from '../../src/gitops/release-train-controller.js';
import {
  RELEASE_TRAIN_GROUP,
  RELEASE_TRAIN_PLURAL,
  RELEASE_TRAIN_VERSION,
} from '../../src/gitops/release-train-resource.js';
import type { ReleaseTrain } from '../../src/gitops/release-train-resource.js';
import { trainWorkflowId } from '../../src/shared/train.js';
import { eventually } from '../helpers/eventually.js';
import {
  applyInNamespace,
  createBlueGreenApp,
  deleteBlueGreenApp,
  fileNamespace,
  startClusterWithManifests,
} from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startKubernetesWorker } from '../helpers/kubernetes-worker.js';
import type { KubernetesWorker } from '../helpers/kubernetes-worker.js';
import { startDevServer } from '../helpers/temporal-servers.js';

const GITOPS = fileURLToPath(new URL('../../deploy/gitops', import.meta.url));
const NAMESPACE = fileNamespace(import.meta.url);
const CLUSTER_QUEUE = 'release-train-controller-cluster';
const TRAIN_QUEUE = 'release-train-controller';
const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const IMAGE = (app: string, tag: string) => `registry.internal/${app}:${tag}`;

describe('the ReleaseTrain controller, on a real control plane and Temporal', () => {
  let env: TestWorkflowEnvironment;
  let cluster: Cluster;
  let worker: KubernetesWorker;
  let api: k8s.CustomObjectsApi;
  let trains: TrainClient;
  let controller: ReleaseTrainController;
  const apps = ['rt-a', 'rt-b', 'rt-c'];
  const address = { group: RELEASE_TRAIN_GROUP, version: RELEASE_TRAIN_VERSION, plural: RELEASE_TRAIN_PLURAL };

  const resource = (name: string, tag: string, monitorSeconds: number, cluster = 'staging') => ({
    apiVersion: `${RELEASE_TRAIN_GROUP}/${RELEASE_TRAIN_VERSION}`,
    kind: 'ReleaseTrain',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      image: IMAGE(name, tag),
      base: {
        app: name,
        namespace: NAMESPACE,
        replicas: 1,
        readinessTimeoutSeconds: 60,
        smoke: { endpoint: worker.referenceUrl },
        monitor: { durationSeconds: monitorSeconds, intervalSeconds: 1, slos: [] },
        scaleDownDelaySeconds: 0,
      },
      clusters: { staging: { taskQueue: CLUSTER_QUEUE } },
      stages: [{ name: 'staging', cluster }],
    },
  });
  const read = async (name: string) =>
    (await api.getNamespacedCustomObject({ ...address, namespace: NAMESPACE, name })) as ReleaseTrain;
  const runsOf = async (name: string) => {
    const runs: string[] = [];
    for await (const execution of env.client.workflow.list({ query: `WorkflowId = '${trainWorkflowId(name)}'` }))
      runs.push(execution.runId);
    return runs.reverse();
  };
  /** The image the app's Service sends traffic to. */
  const served = async (app: string) => {
    const service = await cluster.core.readNamespacedService({ name: `${app}-service`, namespace: NAMESPACE });
    const slot = service.spec!.selector!['slot']!;
    const deployment = await cluster.apps.readNamespacedDeployment({ name: `${app}-${slot}`, namespace: NAMESPACE });
    return `${slot} ${deployment.spec!.template.spec!.containers[0]!.image}`;
  };

  before(async () => {
    [env, cluster] = await Promise.all([startDevServer(), startClusterWithManifests({ namespace: NAMESPACE })]);
    // What a team applies: the CRDs, the controller's Roles and ServiceAccount.
    await applyInNamespace(cluster.plane, GITOPS, NAMESPACE);
    const admin = cluster.plane.adminConfig().makeApiClient(k8s.ApiextensionsV1Api);
    await eventually(
      async () =>
        (
          await admin.readCustomResourceDefinition({ name: `${RELEASE_TRAIN_PLURAL}.${RELEASE_TRAIN_GROUP}` })
        ).status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') === true,
      'the ReleaseTrain CRD Established',
    );
    for (const app of apps) await createBlueGreenApp(cluster.apps, cluster.core, app, { namespace: NAMESPACE });
    const token = await cluster.plane.mintToken(NAMESPACE, 'bluegreen-worker');
    worker = await startKubernetesWorker(env, cluster.plane.configForToken(token), CLUSTER_QUEUE);
    // The train itself runs on the controller's queue: here the cluster's worker polls that too.
    trainWorkers.push(await startKubernetesWorker(env, cluster.plane.configForToken(token), TRAIN_QUEUE));
    api = cluster.plane.adminConfig().makeApiClient(k8s.CustomObjectsApi);
    trains = new TrainClient(env.client, TRAIN_QUEUE);
    const config = cluster.plane.configForToken(
      await cluster.plane.mintToken(NAMESPACE, 'bluegreen-release-controller'),
    );
    controller = new ReleaseTrainController(config, trains, { namespace: NAMESPACE, resyncMs: 1000 });
    await controller.start();
  });
  const trainWorkers: KubernetesWorker[] = [];

  after(async () => {
    await controller?.stop();
    for (const w of [worker, ...trainWorkers]) await w?.stop();
    if (cluster) {
      for (const app of apps) await deleteBlueGreenApp(cluster, app, NAMESPACE);
      await cluster.plane.stop();
    }
    await env?.teardown();
  });

  it('starts a train for a ReleaseTrain and mirrors it into the status, stage by stage, to Succeeded', async () => {
    await api.createNamespacedCustomObject({ ...address, namespace: NAMESPACE, body: resource('rt-a', 'v2.0.0', 3) });
    await eventually(async () => (await read('rt-a')).status?.state === 'Succeeded', 'rt-a Succeeded', 120_000);
    const { status } = await read('rt-a');
    assert.deepEqual(
      {
        observedGeneration: status!.observedGeneration,
        image: status!.image,
        workflowId: status!.workflowId,
        stages: status!.stages,
      },
      {
        observedGeneration: 1,
        image: IMAGE('rt-a', 'v2.0.0'),
        workflowId: trainWorkflowId('rt-a'),
        stages: [{ name: 'staging', state: 'Succeeded', clusters: 'staging Succeeded (green)' }],
      },
    );
    assert.match(status!.message, /v2\.0\.0 is live through every stage/);
    assert.equal(await served('rt-a'), `green ${IMAGE('rt-a', 'v2.0.0')}`);
    assert.deepEqual(await runsOf('rt-a'), [status!.runId], 'one train for the one generation');
  });

  it('aborts the train of the generation before when the image changes, then runs the new one', async () => {
    await api.createNamespacedCustomObject({ ...address, namespace: NAMESPACE, body: resource('rt-b', 'v2.0.0', 120) });
    await eventually(
      async () => (await read('rt-b')).status?.stages?.[0]?.clusters === 'staging Running',
      'rt-b generation 1 deploying',
      120_000,
    );
    const first = (await read('rt-b')).status!.runId!;
    await api.patchNamespacedCustomObject(
      {
        ...address,
        namespace: NAMESPACE,
        name: 'rt-b',
        body: { spec: { image: IMAGE('rt-b', 'v3.0.0'), base: { monitor: { durationSeconds: 3 } } } },
      },
      MERGE_PATCH,
    );
    await eventually(
      async () => {
        const status = (await read('rt-b')).status;
        return status?.observedGeneration === 2 && status.state === 'Succeeded';
      },
      'rt-b generation 2 Succeeded',
      180_000,
    );
    const superseded = await trainResult(trains.handle('rt-b', first));
    assert.equal(superseded.state, 'Aborted', superseded.message);
    assert.match(
      superseded.message,
      /^aborted by release-train-controller: superseded by generation 2 of ReleaseTrain rt-b; no stage went live$/,
    );
    const runs = await runsOf('rt-b');
    assert.equal(runs.length, 2);
    assert.equal(runs[0], first);
    assert.equal((await read('rt-b')).status!.runId, runs[1]);
    assert.equal(await served('rt-b'), `green ${IMAGE('rt-b', 'v3.0.0')}`);
  });

  it('reports a spec the train rules refuse, naming the field, and starts nothing', async () => {
    await api.createNamespacedCustomObject({
      ...address,
      namespace: NAMESPACE,
      body: resource('rt-c', 'v2.0.0', 3, 'stagign'),
    });
    await eventually(async () => (await read('rt-c')).status?.state === 'Invalid', 'rt-c Invalid', 30_000);
    assert.equal(
      (await read('rt-c')).status!.message,
      "spec.stages.0.cluster: unknown cluster 'stagign' (clusters: staging)",
    );
    assert.deepEqual(await runsOf('rt-c'), []);
    assert.equal(await served('rt-c'), `blue ${IMAGE('rt-c', 'v1.0.0')}`, 'the app as it was created');
  });
});
