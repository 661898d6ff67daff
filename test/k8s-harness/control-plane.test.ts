/**
 * The test control plane is a real Kubernetes: Deployments become ReplicaSets and Ready pods,
 * EndpointSlices follow a Service's selector, scaling to zero removes pods, a test can raise a
 * pod's restartCount and make it unready, RBAC refuses a token without the permission, and the
 * host's kubectl works with the written kubeconfig.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../helpers/eventually.js';
import { KUBERNETES_VERSION, useControlPlane } from './control-plane.js';
import type { ControlPlane } from './control-plane.js';

const run = promisify(execFile);
const NS = 'harness-test';

describe(`the test control plane (Kubernetes ${KUBERNETES_VERSION})`, () => {
  let plane: ControlPlane;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let discovery: k8s.DiscoveryV1Api;

  before(async () => {
    plane = await useControlPlane({ dir: mkdtempSync(join(tmpdir(), 'k8s-harness-')) });
    const config = plane.adminConfig();
    core = config.makeApiClient(k8s.CoreV1Api);
    apps = config.makeApiClient(k8s.AppsV1Api);
    discovery = config.makeApiClient(k8s.DiscoveryV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await eventually(async () => Boolean(await core.readNamespacedServiceAccount({ name: 'default', namespace: NS }).catch(() => null)), 'default ServiceAccount');
  });

  after(async () => {
    await plane?.stop();
  });

  const deployment = (slot: string, replicas: number): k8s.V1Deployment => ({
    metadata: { name: `web-${slot}`, labels: { app: 'web', slot } },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web', slot } },
      template: {
        metadata: { labels: { app: 'web', slot } },
        spec: { containers: [{ name: 'web', image: 'registry.internal/web:v1', ports: [{ containerPort: 8000 }] }] },
      },
    },
  });

  const readyPods = async (slot: string) =>
    (await core.listNamespacedPod({ namespace: NS, labelSelector: `app=web,slot=${slot}` })).items.filter((p) =>
      p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );

  const endpointPods = async (service: string) => {
    const slices = await discovery.listNamespacedEndpointSlice({ namespace: NS, labelSelector: `kubernetes.io/service-name=${service}` });
    return slices.items
      .flatMap((s) => s.endpoints ?? [])
      .filter((e) => e.conditions?.ready)
      .map((e) => e.targetRef?.name ?? '?')
      .sort();
  };

  it('reports the release it is built from, to kubectl and to every client', async () => {
    const version = await plane.adminConfig().makeApiClient(k8s.VersionApi).getCode();
    assert.deepEqual([version.gitVersion, version.major, version.minor, version.gitTreeState], [KUBERNETES_VERSION, '1', KUBERNETES_VERSION.split('.')[1], 'clean']);
    const { stdout } = await promisify(execFile)('kubectl', ['--kubeconfig', plane.kubeconfigPath, 'version', '--output=json']);
    assert.equal((JSON.parse(stdout) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion, KUBERNETES_VERSION);
  });

  it('turns a Deployment into a ReplicaSet and Ready pods', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('blue', 2) });
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment('green', 2) });
    await eventually(async () => (await apps.readNamespacedDeployment({ name: 'web-blue', namespace: NS })).status?.readyReplicas === 2, 'web-blue ready', 60_000);
    const replicaSets = await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: 'app=web,slot=blue' });
    assert.equal(replicaSets.items.length, 1);
    assert.equal((await readyPods('blue')).length, 2);
    assert.ok((await readyPods('blue')).every((p) => p.spec?.nodeName?.startsWith('sim-node-')), 'scheduled onto simulated nodes');
  });

  it('keeps EndpointSlices on the pods the Service selects, through a selector patch', async () => {
    await core.createNamespacedService({
      namespace: NS,
      body: { metadata: { name: 'web' }, spec: { selector: { app: 'web', slot: 'blue' }, ports: [{ port: 8000, targetPort: 8000 }] } },
    });
    const blue = (await readyPods('blue')).map((p) => p.metadata!.name!).sort();
    await eventually(async () => JSON.stringify(await endpointPods('web')) === JSON.stringify(blue), 'endpoints on blue');
    await eventually(async () => (await readyPods('green')).length === 2, 'green ready', 60_000);
    await core.patchNamespacedService(
      { name: 'web', namespace: NS, body: { spec: { selector: { app: 'web', slot: 'green' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const green = (await readyPods('green')).map((p) => p.metadata!.name!).sort();
    await eventually(async () => JSON.stringify(await endpointPods('web')) === JSON.stringify(green), 'endpoints on green');
  });

  it('lets a test raise restartCount and make a pod unready; the endpoints drop it', async () => {
    const [pod] = await readyPods('green');
    const name = pod!.metadata!.name!;
    const status = pod!.status!;
    status.containerStatuses![0]!.restartCount = 3;
    status.containerStatuses![0]!.ready = false;
    status.conditions = status.conditions!.map((c) => (c.type === 'Ready' || c.type === 'ContainersReady' ? { ...c, status: 'False' } : c));
    await core.replaceNamespacedPodStatus({ name, namespace: NS, body: { ...pod!, status } });
    const read = await core.readNamespacedPod({ name, namespace: NS });
    assert.equal(read.status?.containerStatuses?.[0]?.restartCount, 3);
    await eventually(async () => !(await endpointPods('web')).includes(name), 'the unready pod leaves the endpoints');
    await eventually(async () => (await apps.readNamespacedDeployment({ name: 'web-green', namespace: NS })).status?.readyReplicas === 1, 'readyReplicas 1');
  });

  it('removes the pods when a Deployment is scaled to zero', async () => {
    await apps.patchNamespacedDeploymentScale(
      { name: 'web-blue', namespace: NS, body: { spec: { replicas: 0 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually(async () => (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=web,slot=blue' })).items.length === 0, 'blue pods gone', 60_000);
  });

  it('refuses with 403 a ServiceAccount token lacking the permission', async () => {
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'nobody' } } });
    const token = await plane.mintToken(NS, 'nobody');
    const asNobody = plane.configForToken(token).makeApiClient(k8s.CoreV1Api);
    const error = await asNobody.listNamespacedPod({ namespace: NS }).catch((e: unknown) => e);
    assert.ok(error instanceof k8s.ApiException, `expected an ApiException, got ${String(error)}`);
    assert.equal(error.code, 403);
    const { message } = JSON.parse(String(error.body)) as { message: string };
    assert.match(message, /User "system:serviceaccount:harness-test:nobody" cannot list resource "pods"/);
  });

  it('serves the host kubectl with the written kubeconfig', async () => {
    const { stdout } = await run('kubectl', ['--kubeconfig', plane.kubeconfigPath, 'get', 'deployments', '-n', NS, '-o', 'name']);
    assert.deepEqual(stdout.trim().split('\n').sort(), ['deployment.apps/web-blue', 'deployment.apps/web-green']);
  });
});
