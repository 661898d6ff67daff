/**
 * The test control plane with the project's own manifests applied (`kubectl apply -k deploy/`):
 * the detection API's blue-green pair in `default`, and the worker's ServiceAccount and Role.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { useControlPlane } from '../k8s-harness/control-plane.js';
import type { ControlPlane } from '../k8s-harness/control-plane.js';
import { DETECTION_API_TARGET } from '../../src/embedded/stack.js';
import { KubernetesPlatform } from '../../src/platforms/kubernetes-platform.js';
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
 * The suite's control plane (or a new one) with deploy/ applied, which also resets the objects an
 * earlier test file changed; waits until blue's three replicas of v2.1.0 serve and green has none.
 */
export async function startClusterWithManifests(): Promise<Cluster> {
  const plane = await useControlPlane({ dir: mkdtempSync(join(tmpdir(), 'k8s-cluster-')) });
  try {
    await run('kubectl', ['--kubeconfig', plane.kubeconfigPath, 'apply', '-k', join(ROOT, 'deploy')]);
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
    await platform.waitForSlotReady({ target: DETECTION_API_TARGET, slot: 'blue', replicas: 3, timeoutSeconds: 60 }, progress);
    await platform.scaleSlot({ target: DETECTION_API_TARGET, slot: 'green', replicas: 0 }, progress);
    await eventually(async () => JSON.stringify(await endpointPods(cluster, 'detection-api-service')) === JSON.stringify(await slotPods(cluster, 'blue')), 'endpoints on blue');
    return cluster;
  } catch (error) {
    await plane.stop();
    throw error;
  }
}

/** Names of the ready pods in the Service's EndpointSlices, sorted. */
export async function endpointPods(cluster: Cluster, service: string, namespace = 'default'): Promise<string[]> {
  const slices = await cluster.discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` });
  return slices.items
    .flatMap((s) => s.endpoints ?? [])
    .filter((e) => e.conditions?.ready)
    .map((e) => e.targetRef?.name ?? '?')
    .sort();
}

/** Names of a slot's pods, sorted. */
export async function slotPods(cluster: Cluster, slot: string, namespace = 'default'): Promise<string[]> {
  const pods = await cluster.core.listNamespacedPod({ namespace, labelSelector: `app=detection-api,slot=${slot}` });
  return pods.items.map((p) => p.metadata!.name!).sort();
}
