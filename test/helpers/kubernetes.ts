/**
 * The test control plane with the project's own manifests applied (`kubectl apply -k deploy/`):
 * the detection API's blue-green pair, and the worker's ServiceAccount and Role, in a namespace of
 * the test file's own.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane, useControlPlane } from '../k8s-harness/control-plane.js';
import type { ControlPlane } from '../k8s-harness/control-plane.js';
import type { Target } from '../../src/activities/contract.js';
import { DETECTION_API_TARGET } from '../../src/demo/stack.js';
import { KubernetesPlatform } from '../../src/platforms/kubernetes-platform.js';
import { targetOf } from '../../src/shared/target.js';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import { eventually } from './eventually.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Cluster {
  plane: ControlPlane;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  discovery: k8s.DiscoveryV1Api;
  rbac: k8s.RbacAuthorizationV1Api;
}

/**
 * The namespace a test file keeps to on the shared control plane, from its path under test/
 * (`test/e2e/kubernetes-deployments.e2e.test.ts` → `e2e-kubernetes-deployments`): files that run
 * side by side (test/suite.ts) never touch each other's objects.
 */
export function fileNamespace(metaUrl: string): string {
  const path = relative(join(ROOT, 'test'), fileURLToPath(metaUrl));
  return path
    .replace(/(\.e2e)?\.test\.ts$/, '')
    .replace(/[^a-z0-9]+/gi, '-')
    .toLowerCase()
    .slice(0, 63)
    .replace(/-+$/, '');
}

/** The detection API's objects (deploy/'s) in `namespace`. */
export function detectionApiTarget(namespace: string): Target {
  return { ...DETECTION_API_TARGET, namespace };
}

/**
 * The suite's control plane (or a new one) with deploy/ applied in `namespace` (made if missing),
 * which also resets the objects an earlier run of the same file changed; waits until blue's three
 * replicas of v2.1.0 serve and green has none.
 */
export async function startClusterWithManifests({
  own = false,
  namespace,
}: {
  own?: boolean;
  namespace: string;
}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-cluster-'));
  // `own`: a control plane of this file's alone, for a drill that stops its API server.
  const plane = own ? await startControlPlane({ dir }) : await useControlPlane({ dir });
  try {
    await applyInNamespace(plane, join(ROOT, 'deploy'), namespace);
    const config = plane.adminConfig();
    const cluster = {
      plane,
      core: config.makeApiClient(k8s.CoreV1Api),
      apps: config.makeApiClient(k8s.AppsV1Api),
      discovery: config.makeApiClient(k8s.DiscoveryV1Api),
      rbac: config.makeApiClient(k8s.RbacAuthorizationV1Api),
    };
    const platform = new KubernetesPlatform(config);
    const progress = { heartbeat: () => undefined, signal: new AbortController().signal };
    const target = detectionApiTarget(namespace);
    await platform.waitForSlotReady({ target, slot: 'blue', replicas: 3, timeoutSeconds: 60 }, progress);
    await platform.scaleSlot({ target, slot: 'green', replicas: 0 }, progress);
    const onBlue = async () =>
      JSON.stringify(await endpointPods(cluster, 'detection-api-service', namespace)) ===
      JSON.stringify(await slotPods(cluster, 'blue', namespace));
    await eventually(onBlue, 'endpoints on blue');
    return cluster;
  } catch (error) {
    await plane.stop();
    throw error;
  }
}

/**
 * `kubectl apply -k dir` with every namespaced object (and each RoleBinding's ServiceAccount
 * subject) moved to `namespace`, which is made if missing: an overlay of kustomize's own.
 */
export async function applyInNamespace(
  plane: ControlPlane,
  dir: string,
  namespace: string,
  ...options: string[]
): Promise<void> {
  const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', plane.kubeconfigPath, ...args]);
  const overlay = mkdtempSync(join(tmpdir(), 'overlay-'));
  const kustomization = [
    'kind: Kustomization',
    `namespace: ${namespace}`,
    'resources:',
    `  - ${relative(overlay, dir)}`,
  ];
  writeFileSync(
    join(overlay, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\n${kustomization.join('\n')}\n`,
  );
  await kubectl('create', 'namespace', namespace).catch((error: Error) => {
    if (!/AlreadyExists/.test(error.message)) throw error;
  });
  await kubectl('apply', ...options, '-k', overlay).finally(() => rmSync(overlay, { recursive: true, force: true }));
}

/** Names of the ready pods in the Service's EndpointSlices, sorted. */
export async function endpointPods(cluster: Cluster, service: string, namespace: string): Promise<string[]> {
  const slices = await cluster.discovery.listNamespacedEndpointSlice({
    namespace,
    labelSelector: `kubernetes.io/service-name=${service}`,
  });
  return slices.items
    .flatMap((s) => s.endpoints ?? [])
    .filter((e) => e.conditions?.ready)
    .map((e) => e.targetRef?.name ?? '?')
    .sort();
}

/** Names of a slot's pods, sorted. */
export async function slotPods(cluster: Cluster, slot: string, namespace: string): Promise<string[]> {
  const pods = await cluster.core.listNamespacedPod({ namespace, labelSelector: `app=detection-api,slot=${slot}` });
  return pods.items.map((p) => p.metadata!.name!).sort();
}

/** The objects a deployment of `app` drives, named as the spec's defaults name them. */
export function appTarget(app: string, namespace: string): Target {
  return targetOf(parseDeploymentSpec({ app, namespace, image: `registry.internal/${app}:v1.0.0` }));
}

/** Creates another app's Service (on blue) and its blue (`replicas`) and green (none) Deployments. */
export async function createBlueGreenApp(
  apps: k8s.AppsV1Api,
  core: k8s.CoreV1Api,
  app: string,
  { namespace, replicas = 1 }: { namespace: string; replicas?: number },
): Promise<Target> {
  const slotDeployment = (slot: 'blue' | 'green', count: number): k8s.V1Deployment => ({
    metadata: { name: `${app}-${slot}`, labels: { app, slot } },
    spec: {
      replicas: count,
      selector: { matchLabels: { app, slot } },
      template: {
        metadata: { labels: { app, slot, version: 'v1.0.0' } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [{ name: app, image: `registry.internal/${app}:v1.0.0`, ports: [{ containerPort: 8000 }] }],
        },
      },
    },
  });
  await core.createNamespacedService({
    namespace,
    body: {
      metadata: { name: `${app}-service` },
      spec: { selector: { app, slot: 'blue' }, ports: [{ port: 80, targetPort: 8000 }] },
    },
  });
  await apps.createNamespacedDeployment({ namespace, body: slotDeployment('blue', replicas) });
  await apps.createNamespacedDeployment({ namespace, body: slotDeployment('green', 0) });
  return appTarget(app, namespace);
}

/** Deletes what createBlueGreenApp made (a test on the shared control plane leaves it as it found it); absent objects are fine. */
export async function deleteBlueGreenApp(
  cluster: Pick<Cluster, 'apps' | 'core'>,
  app: string,
  namespace: string,
): Promise<void> {
  await cluster.core.deleteNamespacedService({ name: `${app}-service`, namespace }).catch(() => undefined);
  for (const slot of ['blue', 'green'])
    await cluster.apps.deleteNamespacedDeployment({ name: `${app}-${slot}`, namespace }).catch(() => undefined);
}

/**
 * Asserts an app made by createBlueGreenApp (blue live with one replica of v1.0.0) is as its first
 * deployment of `image` left it, once things settle: live on green with `image` after a success,
 * or back on blue with green restored as it was (v1.0.0, none) after a rollback; the Service's
 * endpoints exactly the live slot's one pod; one rollout per change, however often a write ran
 * (green at revision 2 after a success, 3 after a rollback: back on its first ReplicaSet).
 */
export async function assertFirstDeploymentState(
  cluster: Cluster,
  app: string,
  image: string,
  outcome: 'Succeeded' | 'RolledBack',
  context: string,
  namespace: string,
): Promise<void> {
  const first = `registry.internal/${app}:v1.0.0`;
  const idle = { image: first, replicas: 0, ready: 0, revision: '1' };
  const expected =
    outcome === 'Succeeded'
      ? { live: 'green', blue: idle, green: { image, replicas: 1, ready: 1, revision: '2' } }
      : {
          live: 'blue',
          blue: { image: first, replicas: 1, ready: 1, revision: '1' },
          green: { ...idle, revision: '3' },
        };
  const stateOf = async () => {
    const [service, blue, green] = await Promise.all([
      cluster.core.readNamespacedService({ name: `${app}-service`, namespace }),
      cluster.apps.readNamespacedDeployment({ name: `${app}-blue`, namespace }),
      cluster.apps.readNamespacedDeployment({ name: `${app}-green`, namespace }),
    ]);
    const slot = (d: k8s.V1Deployment) => ({
      image: d.spec!.template.spec!.containers[0]!.image,
      replicas: d.spec!.replicas,
      ready: d.status?.readyReplicas ?? 0,
      revision: d.metadata?.annotations?.['deployment.kubernetes.io/revision'],
    });
    return { live: service.spec!.selector!['slot'], blue: slot(blue), green: slot(green) };
  };
  await eventually(
    async () => JSON.stringify(await stateOf()) === JSON.stringify(expected),
    `${context}: ${JSON.stringify(expected)}`,
    30_000,
  ).catch(async () => {
    assert.deepEqual(await stateOf(), expected, context);
  });
  await eventually(
    async () => {
      const [endpoints, pods] = await Promise.all([
        endpointPods(cluster, `${app}-service`, namespace),
        cluster.core.listNamespacedPod({ namespace, labelSelector: `app=${app},slot=${expected.live}` }),
      ]);
      return (
        endpoints.length === 1 &&
        JSON.stringify(endpoints) === JSON.stringify(pods.items.map((p) => p.metadata!.name!).sort())
      );
    },
    `${context}: the Service's endpoints are ${expected.live}'s one pod`,
    30_000,
  );
}

/** Makes the pods labelled `version` crash-loop: their restartCount climbs every 2 s until stopped. */
export function crashLoop(cluster: Cluster, version: string, namespace: string): { stop(): Promise<void> } {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const pods = await cluster.core
        .listNamespacedPod({ namespace, labelSelector: `version=${version}` })
        .catch(() => null);
      for (const pod of pods?.items ?? []) {
        const container = pod.status?.containerStatuses?.[0];
        if (!container || pod.metadata?.deletionTimestamp) continue;
        container.restartCount += 1;
        await cluster.core
          .replaceNamespacedPodStatus({ name: pod.metadata!.name!, namespace, body: pod })
          .catch(() => undefined);
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
