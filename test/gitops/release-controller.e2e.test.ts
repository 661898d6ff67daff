/**
 * The GitOps controller on the real control plane and the Temporal dev server, with a worker as
 * the worker ServiceAccount: applying a Release runs a deployment and the status follows it to
 * Succeeded; a new image during monitoring rolls the old generation back and deploys the new one;
 * a controller that restarts before writing its status adopts the run it started (nothing starts
 * twice); a spec the API server takes but the spec's rules refuse is reported, and nothing starts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DeploymentClient, deploymentResult } from '../../src/client/deployment-client.js';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import { RELEASE_GROUP, RELEASE_PLURAL, RELEASE_VERSION } from '../../src/gitops/release-crd.js';
import { ReleaseController } from '../../src/gitops/release-controller.js';
import type { Release } from '../../src/gitops/release-controller.js';
import { deploymentWorkflowId } from '../../src/shared/workflow-id.js';
import { eventually } from '../helpers/eventually.js';
import { assertFirstDeploymentState, createBlueGreenApp, startClusterWithManifests } from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startKubernetesWorker } from '../helpers/kubernetes-worker.js';
import type { KubernetesWorker } from '../helpers/kubernetes-worker.js';
import { startDevServer } from '../helpers/temporal-servers.js';

const CRD = fileURLToPath(new URL('../../deploy/gitops/release-crd.yaml', import.meta.url));
const TASK_QUEUE = 'bluegreen-release-controller';
const NAMESPACE = 'default';
const run = promisify(execFile);
const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

describe('the Release controller, on a real control plane and Temporal', () => {
  let env: TestWorkflowEnvironment;
  let cluster: Cluster;
  let worker: KubernetesWorker;
  let api: k8s.CustomObjectsApi;
  let client: DeploymentClient;
  let controller: ReleaseController;
  const apps = ['rel-a', 'rel-b', 'rel-c', 'rel-d'];

  const release = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: `${RELEASE_GROUP}/${RELEASE_VERSION}`,
    kind: 'Release',
    metadata: { name, namespace: NAMESPACE },
    spec: { replicas: 1, readinessTimeoutSeconds: 60, smoke: { endpoint: worker.referenceUrl }, scaleDownDelaySeconds: 0, ...spec },
  });
  const read = async (name: string) => (await api.getNamespacedCustomObject({ group: RELEASE_GROUP, version: RELEASE_VERSION, namespace: NAMESPACE, plural: RELEASE_PLURAL, name })) as Release;
  const create = async (body: ReturnType<typeof release>) =>
    (await api.createNamespacedCustomObject({ group: RELEASE_GROUP, version: RELEASE_VERSION, namespace: NAMESPACE, plural: RELEASE_PLURAL, body })) as Release;
  const runsOf = async (app: string) => {
    const runs: string[] = [];
    for await (const execution of env.client.workflow.list({ query: `WorkflowId = '${deploymentWorkflowId(NAMESPACE, app)}'` })) runs.push(execution.runId);
    return runs;
  };

  before(async () => {
    [env, cluster] = await Promise.all([startDevServer(), startClusterWithManifests()]);
    await run('kubectl', ['--kubeconfig', cluster.plane.kubeconfigPath, 'apply', '-f', CRD]);
    await run('kubectl', ['--kubeconfig', cluster.plane.kubeconfigPath, 'wait', '--for', 'condition=Established', 'crd/releases.bluegreen.dev', '--timeout=60s']);
    for (const app of apps) await createBlueGreenApp(cluster.apps, cluster.core, app);
    const token = await cluster.plane.mintToken(NAMESPACE, 'bluegreen-worker');
    worker = await startKubernetesWorker(env, cluster.plane.configForToken(token), TASK_QUEUE);
    const admin = cluster.plane.adminConfig();
    api = admin.makeApiClient(k8s.CustomObjectsApi);
    client = new DeploymentClient(env.client, TASK_QUEUE);
    controller = new ReleaseController(admin, client, { namespace: NAMESPACE, resyncMs: 1000 });
    await controller.start();
  });

  after(async () => {
    await controller?.stop();
    await worker?.stop();
    if (cluster) {
      await run('kubectl', ['--kubeconfig', cluster.plane.kubeconfigPath, 'delete', '-f', CRD, '--ignore-not-found', '--wait=false']).catch(() => undefined);
      for (const app of apps) {
        await cluster.core.deleteNamespacedService({ name: `${app}-service`, namespace: NAMESPACE }).catch(() => undefined);
        for (const slot of ['blue', 'green']) await cluster.apps.deleteNamespacedDeployment({ name: `${app}-${slot}`, namespace: NAMESPACE }).catch(() => undefined);
      }
      await cluster.plane.stop();
    }
    await env?.teardown();
  });

  it('runs a deployment when a Release is applied, its status following the phases to Succeeded', async () => {
    await create(release('rel-a', { image: 'registry.internal/rel-a:v2.0.0', monitor: { durationSeconds: 6, intervalSeconds: 2, slos: [] } }));
    const phases: string[] = [];
    await eventually(async () => {
      const status = (await read('rel-a')).status;
      if (status?.phase && phases.at(-1) !== status.phase) phases.push(status.phase);
      return status?.outcome === 'Succeeded';
    }, 'rel-a Succeeded', 120_000);
    const { status } = await read('rel-a');
    assert.ok(phases.includes('Monitoring'), `the phases went by: ${phases.join(', ')}`);
    assert.equal(status!.observedGeneration, 1);
    assert.equal(status!.workflowId, deploymentWorkflowId(NAMESPACE, 'rel-a'));
    assert.deepEqual([status!.image, status!.liveSlot], ['registry.internal/rel-a:v2.0.0', 'green']);
    const conditions = Object.fromEntries(status!.conditions!.map((c) => [c.type, c.status]));
    assert.deepEqual(conditions, { Progressing: 'False', Healthy: 'True', Degraded: 'False', Ready: 'True', Reconciling: 'False', Stalled: 'False' });
    await assertFirstDeploymentState(cluster, 'rel-a', 'registry.internal/rel-a:v2.0.0', 'Succeeded', 'rel-a');
    assert.equal((await runsOf('rel-a')).length, 1, 'one run for the one generation');
  });

  it('rolls the old generation back and deploys the new one when the image changes during monitoring', async () => {
    await create(release('rel-b', { image: 'registry.internal/rel-b:v2.0.0', monitor: { durationSeconds: 120, intervalSeconds: 2, slos: [] } }));
    await eventually(async () => (await read('rel-b')).status?.phase === 'Monitoring', 'rel-b generation 1 monitoring', 120_000);
    const first = (await read('rel-b')).status!.runId!;
    await api.patchNamespacedCustomObject(
      { group: RELEASE_GROUP, version: RELEASE_VERSION, namespace: NAMESPACE, plural: RELEASE_PLURAL, name: 'rel-b', body: { spec: { image: 'registry.internal/rel-b:v3.0.0', monitor: { durationSeconds: 4 } } } },
      MERGE_PATCH,
    );
    await eventually(async () => {
      const status = (await read('rel-b')).status;
      return status?.observedGeneration === 2 && status.outcome === 'Succeeded';
    }, 'rel-b generation 2 Succeeded', 180_000);
    const older = await deploymentResult(client.handle(NAMESPACE, 'rel-b', first));
    assert.deepEqual([older.outcome, older.reason], ['RolledBack', 'Aborted']);
    assert.match(older.status.abort!.reason, /superseded by generation 2 of Release rel-b/);
    const { status } = await read('rel-b');
    assert.notEqual(status!.runId, first);
    // v2.0.0 went to green and back; v3.0.0 then went to green from blue.
    const green = await cluster.apps.readNamespacedDeployment({ name: 'rel-b-green', namespace: NAMESPACE });
    assert.equal(green.spec!.template.spec!.containers[0]!.image, 'registry.internal/rel-b:v3.0.0');
    const service = await cluster.core.readNamespacedService({ name: 'rel-b-service', namespace: NAMESPACE });
    assert.equal(service.spec!.selector!['slot'], 'green');
    assert.equal((await runsOf('rel-b')).length, 2, 'one run per generation');
  });

  it('adopts, after a restart, the run it started before it could write the status: nothing starts twice', async () => {
    await controller.stop();
    // The controller is gone: its start of generation 1 happens now, by hand, as it would have.
    const created = await create(release('rel-c', { image: 'registry.internal/rel-c:v2.0.0', monitor: { durationSeconds: 6, intervalSeconds: 2, slos: [] } }));
    const spec = parseDeploymentSpec({ ...created.spec, app: 'rel-c', namespace: NAMESPACE });
    const started = await client.start(spec, { release: { uid: created.metadata!.uid!, name: 'rel-c', generation: 1 } });
    assert.equal((await read('rel-c')).status, undefined, 'no status was written');
    controller = new ReleaseController(cluster.plane.adminConfig(), client, { namespace: NAMESPACE, resyncMs: 1000 });
    await controller.start();
    await eventually(async () => (await read('rel-c')).status?.outcome === 'Succeeded', 'rel-c Succeeded', 120_000);
    assert.equal((await read('rel-c')).status!.runId, started.firstExecutionRunId, 'the run it started was adopted');
    assert.deepEqual(await runsOf('rel-c'), [started.firstExecutionRunId], 'and no other started');
  });

  it('reports a spec the API server takes but the spec rules refuse, and starts nothing', async () => {
    // Canary steps must end at 100 %: a rule of the spec, not of the schema.
    await create(release('rel-d', { image: 'registry.internal/rel-d:v2.0.0', strategy: 'canary', canary: { steps: [{ weight: 25, holdSeconds: 30 }] } }));
    await eventually(async () => (await read('rel-d')).status?.conditions?.some((c) => c.type === 'Degraded' && c.status === 'True') === true, 'rel-d Degraded', 30_000);
    const { status } = await read('rel-d');
    const degraded = status!.conditions!.find((c) => c.type === 'Degraded')!;
    assert.equal(degraded.reason, 'InvalidSpec');
    assert.match(degraded.message, /spec\.canary\.steps/);
    assert.deepEqual(await runsOf('rel-d'), []);
  });
});
