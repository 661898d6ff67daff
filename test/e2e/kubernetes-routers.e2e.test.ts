/**
 * Whole deployments through the gateway-api and ingress routers, on the Temporal dev server
 * against the real control plane, the worker authenticated as deploy/'s ServiceAccount with the
 * routers' components applied (test/e2e/routers-overlay): a canary through an HTTPRoute's weights,
 * 5 → 25 → 50 → 100, the route read at every step; an abort at 25 % that leaves the route at
 * 100/0 for the stable slot, verified; and a blue-green through the Ingress's backend switch.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import * as k8s from '@kubernetes/client-node';
import { deploymentResult } from '../../src/client/deployment-client.js';
import type { DeploymentSpecInput } from '../../src/deployment-spec/deployment-spec.js';
import { GATEWAY_GROUP } from '../../src/routers/gateway-api/kubernetes.js';
import { otherSlot } from '../../src/shared/slots.js';
import type { Slot } from '../../src/shared/slots.js';
import { blueGreenDeploymentWorkflow } from '../../src/workflows/blue-green-deployment.js';
import { canaryDeploymentWorkflow } from '../../src/workflows/canary-deployment.js';
import { statusQuery } from '../../src/workflows/definitions.js';
import { testSpec } from '../helpers/deployment-harness.js';
import { eventually } from '../helpers/eventually.js';
import { applyInNamespace, fileNamespace, slotPods, startClusterWithManifests } from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startKubernetesWorker } from '../helpers/kubernetes-worker.js';
import type { KubernetesWorker } from '../helpers/kubernetes-worker.js';
import { startDevServer } from '../helpers/temporal-servers.js';

/** This file's namespace on the shared control plane. */
const NS = fileNamespace(import.meta.url);

const TASK_QUEUE = 'bluegreen-routers-e2e';
const IMAGE = (tag: string) => `registry.internal/detection-api:${tag}`;
const OVERLAY = fileURLToPath(new URL('./routers-overlay', import.meta.url));

interface Route {
  spec: { rules: { backendRefs: { name: string; weight?: number }[] }[] };
}

describe('canary and blue-green deployments through the gateway-api and ingress routers, on a real control plane', () => {
  let env: TestWorkflowEnvironment;
  let cluster: Cluster;
  let worker: KubernetesWorker;
  let custom: k8s.CustomObjectsApi;
  let networking: k8s.NetworkingV1Api;
  let sequence = 0;

  before(async () => {
    [env, cluster] = await Promise.all([startDevServer(), startClusterWithManifests({ namespace: NS })]);
    await applyInNamespace(cluster.plane, OVERLAY, NS, '--server-side', '--force-conflicts');
    const config = cluster.plane.adminConfig();
    custom = config.makeApiClient(k8s.CustomObjectsApi);
    networking = config.makeApiClient(k8s.NetworkingV1Api);
    const token = await cluster.plane.mintToken(NS, 'bluegreen-worker');
    worker = await startKubernetesWorker(env, cluster.plane.configForToken(token), TASK_QUEUE);
  });

  after(async () => {
    await worker?.stop();
    await cluster?.plane.stop();
    await env?.teardown();
  });

  const routeWeights = async (): Promise<Record<Slot, number>> => {
    const route = (await custom.getNamespacedCustomObject({
      group: GATEWAY_GROUP,
      version: 'v1',
      namespace: NS,
      plural: 'httproutes',
      name: 'detection-api',
    })) as Route;
    const refs = route.spec.rules[0]!.backendRefs;
    return {
      blue: refs.find((r) => r.name === 'detection-api-blue')?.weight ?? 0,
      green: refs.find((r) => r.name === 'detection-api-green')?.weight ?? 0,
    };
  };
  const replicas = async (slot: Slot) =>
    (await cluster.apps.readNamespacedDeployment({ name: `detection-api-${slot}`, namespace: NS })).spec!.replicas;
  const ingressSlot = async () => {
    const ingress = await networking.readNamespacedIngress({ name: 'detection-api-ingress', namespace: NS });
    return ingress.spec!.rules![0]!.http!.paths[0]!.backend.service!.name.replace('detection-api-', '');
  };

  function start(tag: string, overrides: Partial<DeploymentSpecInput>) {
    sequence += 1;
    const spec = testSpec({
      namespace: NS,
      image: IMAGE(tag),
      replicas: 2,
      readinessTimeoutSeconds: 60,
      smoke: { endpoint: worker.referenceUrl },
      monitor: { durationSeconds: 3, intervalSeconds: 1, slos: [] },
      scaleDownDelaySeconds: 0,
      ...overrides,
    });
    return env.client.workflow.start(
      spec.strategy === 'canary' ? canaryDeploymentWorkflow : blueGreenDeploymentWorkflow,
      {
        taskQueue: TASK_QUEUE,
        workflowId: `routers-e2e-${sequence}`,
        args: [spec],
      },
    );
  }

  /** A canary through the example HTTPRoute, each step held `holds[i]` seconds (5, 25, 50, 100 %). */
  const gatewayCanary = (tag: string, holds: number[]) =>
    start(tag, {
      strategy: 'canary',
      traffic: { router: 'gateway-api', httpRoute: 'detection-api' },
      canary: { steps: [5, 25, 50, 100].map((weight, i) => ({ weight, holdSeconds: holds[i]! })), minRequests: 0 },
    });

  it('runs a canary through the HTTPRoute: 5 → 25 → 50 → 100, the route holding each weight during its hold, then the canary live', async () => {
    const stable: Slot = 'blue';
    const canary = otherSlot(stable);
    assert.deepEqual(await routeWeights(), { blue: 100, green: 0 });
    const handle = await gatewayCanary('v3.0.0', [3, 3, 3, 3]);
    const seen: Record<Slot, number>[] = [];
    for (const weight of [5, 25, 50, 100]) {
      await eventually(
        async () => {
          const status = await handle.query(statusQuery);
          return status.canary?.weight === weight && status.phase === 'Monitoring';
        },
        `the ${weight} % hold`,
        60_000,
      );
      seen.push(await routeWeights());
    }
    assert.deepEqual(
      seen,
      [5, 25, 50, 100].map((w) => ({ [stable]: 100 - w, [canary]: w })),
    );
    const result = await deploymentResult(handle);
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.deepEqual(
      result.status.canary?.completed.map((c) => c.weight),
      [5, 25, 50, 100],
    );
    assert.deepEqual(await routeWeights(), { [stable]: 0, [canary]: 100 });
    assert.deepEqual([await replicas(canary), await replicas(stable)], [2, 0]);
    assert.equal((await slotPods(cluster, stable, NS)).length, 0);
  });

  it('aborted at 25 %, leaves the HTTPRoute at 100/0 for the stable slot, verified, and the canary slot scaled back', async () => {
    const stable: Slot = 'green';
    const canary = otherSlot(stable);
    const handle = await gatewayCanary('v3.0.1', [2, 120, 2, 2]);
    await eventually(
      async () => {
        const status = await handle.query(statusQuery);
        return status.canary?.weight === 25 && status.phase === 'Monitoring';
      },
      'the 25 % hold',
      90_000,
    );
    assert.deepEqual(await routeWeights(), { [stable]: 75, [canary]: 25 });
    await handle.executeUpdate('abort', { args: [{ reason: 'e2e: abort at 25 %', by: 'test' }] });
    const result = await deploymentResult(handle);
    assert.equal(result.reason, 'Aborted');
    assert.deepEqual(await routeWeights(), { [stable]: 100, [canary]: 0 });
    assert.equal(await replicas(canary), 0);
    assert.equal(await replicas(stable), 2, 'the stable slot never shrank');
    // The reset was read back before the canary slot was touched: the history holds the verification at 0 %.
    const history = await handle.fetchHistory();
    const summaries = (history.events ?? [])
      .map((e) => e.userMetadata?.summary?.data && Buffer.from(e.userMetadata.summary.data).toString())
      .filter(Boolean);
    const verified = summaries.findIndex((s) => /verify httproute detection-api sends everything to green/.test(s!));
    const scaled = summaries.findIndex((s, i) => i > verified && /^"?restore blue to /.test(s!));
    assert.ok(verified >= 0, `the reset's verification is in the history: ${summaries.join(' | ')}`);
    assert.ok(scaled > verified, 'the canary slot is restored after the route is verified');
  });

  it('runs a blue-green through the Ingress backend switch, and switches it back on an abort during monitoring', async () => {
    // The team's Ingress routes to the slot that runs (the canaries above moved the Deployments).
    const live: Slot = (await replicas('blue'))! > 0 ? 'blue' : 'green';
    await networking.patchNamespacedIngress(
      {
        name: 'detection-api-ingress',
        namespace: NS,
        body: [
          { op: 'replace', path: '/spec/rules/0/http/paths/0/backend/service/name', value: `detection-api-${live}` },
        ],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    const idle = otherSlot(live);
    const ingress = { traffic: { router: 'ingress' as const } };
    const result = await deploymentResult(await start('v3.1.0', ingress));
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.equal(await ingressSlot(), idle);
    assert.deepEqual([await replicas(idle), await replicas(live)], [2, 0]);
    await assert.rejects(
      networking.readNamespacedIngress({ name: 'detection-api-ingress-canary', namespace: NS }),
      'blue-green makes no canary Ingress',
    );

    const handle = await start('v3.1.1', {
      ...ingress,
      monitor: { durationSeconds: 120, intervalSeconds: 1, slos: [] },
    });
    await eventually(async () => (await handle.query(statusQuery)).phase === 'Monitoring', 'monitoring', 60_000);
    assert.equal(await ingressSlot(), live);
    await handle.executeUpdate('abort', { args: [{ reason: 'e2e', by: 'test' }] });
    const aborted = await deploymentResult(handle);
    assert.equal(aborted.reason, 'Aborted');
    assert.equal(await ingressSlot(), idle, 'the backend is back on the slot that was live');
    assert.equal(await replicas(live), 0);
  });
});
