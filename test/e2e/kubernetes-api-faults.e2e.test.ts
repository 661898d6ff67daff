/**
 * Drill: faults of the Kubernetes API. The worker (as deploy/'s ServiceAccount) reaches the real
 * control plane only through FaultInjectingKubeProxy, the one test double the project allows: it
 * causes faults the real server will not produce on demand.
 *
 * - 20 % transient faults (500, 429, 409, resets and lost answers) on every request, plus the
 *   first try of every write faulted: deployments still succeed, and the cluster ends as it would
 *   without faults.
 * - A permanent fault (403, 404, 422) on one request of a deployment: the deployment fails on the
 *   first answer, with the API's words, without a retry (the proxy answers the faulted request
 *   exactly once), and the compensation leaves the cluster serving the old slot.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import { blueGreenDeploymentWorkflow } from '../../src/workflows/blue-green-deployment.js';
import { statusQuery } from '../../src/workflows/definitions.js';
import { testSpec } from '../helpers/deployment-harness.js';
import { FaultInjectingKubeProxy } from '../helpers/fault-injecting-kube-proxy-double.js';
import { endpointPods, fileNamespace, slotPods, startClusterWithManifests } from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startKubernetesWorker } from '../helpers/kubernetes-worker.js';
import type { KubernetesWorker } from '../helpers/kubernetes-worker.js';
import { startDevServer } from '../helpers/temporal-servers.js';
import { deploymentResult } from '../../src/client/deployment-client.js';

/** This file's namespace on the shared control plane. */
const NS = fileNamespace(import.meta.url);

const TASK_QUEUE = 'bluegreen-kubernetes-faults';
const IMAGE = (tag: string) => `registry.internal/detection-api:${tag}`;

describe('drill: Kubernetes API faults between the worker and the API server', () => {
  let env: TestWorkflowEnvironment;
  let cluster: Cluster;
  let proxy: FaultInjectingKubeProxy;
  let worker: KubernetesWorker;
  let sequence = 0;

  before(async () => {
    [env, cluster] = await Promise.all([startDevServer(), startClusterWithManifests({ namespace: NS })]);
    proxy = await FaultInjectingKubeProxy.inFrontOf(cluster.plane, 20);
    const token = await cluster.plane.mintToken(NS, 'bluegreen-worker');
    worker = await startKubernetesWorker(env, cluster.plane.configForToken(token, proxy.url), TASK_QUEUE);
  });

  after(async () => {
    await worker?.stop();
    await proxy?.close();
    await cluster?.plane.stop();
    await env?.teardown();
  });

  beforeEach(() => proxy.reset());

  const liveSlot = async () =>
    (await cluster.core.readNamespacedService({ name: 'detection-api-service', namespace: NS })).spec!.selector![
      'slot'
    ];
  const deployment = (slot: string) =>
    cluster.apps.readNamespacedDeployment({ name: `detection-api-${slot}`, namespace: NS });

  async function deploy(tag: string): Promise<{ result: DeploymentResult; seconds: number; phases: string[] }> {
    sequence += 1;
    const started = performance.now();
    const handle = await env.client.workflow.start(blueGreenDeploymentWorkflow, {
      taskQueue: TASK_QUEUE,
      workflowId: `k8s-faults-${sequence}`,
      args: [
        testSpec({
          namespace: NS,
          image: IMAGE(tag),
          replicas: 2,
          readinessTimeoutSeconds: 60,
          smoke: { endpoint: worker.referenceUrl },
          monitor: { durationSeconds: 3, intervalSeconds: 1, slos: [] },
          scaleDownDelaySeconds: 0,
        }),
      ],
    });
    const result: DeploymentResult = await deploymentResult(handle);
    const seconds = (performance.now() - started) / 1000;
    const phases = (await handle.query(statusQuery)).transitions.map((t) => t.phase);
    return { result, seconds, phases };
  }

  /** The old slot still live and serving, the idle one at zero with its image as before. */
  async function assertUntouched(live: string, idleImage: string | undefined): Promise<void> {
    const idle = live === 'blue' ? 'green' : 'blue';
    assert.equal(await liveSlot(), live);
    assert.deepEqual(await endpointPods(cluster, 'detection-api-service', NS), await slotPods(cluster, live, NS));
    const idleDeployment = await deployment(idle);
    assert.deepEqual(
      [idleDeployment.spec!.replicas, idleDeployment.spec!.template.spec!.containers[0]!.image],
      [0, idleImage],
    );
    assert.deepEqual(await slotPods(cluster, idle, NS), []);
  }

  it('succeeds through 20 % transient faults and a faulted first try of every write', async () => {
    proxy.transientRate = 0.2;
    proxy.faultFirstTryOfWrites = true;
    const first = await deploy('v2.2.0');
    assert.equal(first.result.outcome, 'Succeeded', first.result.message);
    const second = await deploy('v2.2.1');
    assert.equal(second.result.outcome, 'Succeeded', second.result.message);
    assert.equal(await liveSlot(), 'blue');
    assert.equal((await deployment('blue')).spec!.template.spec!.containers[0]!.image, IMAGE('v2.2.1'));
    assert.deepEqual(await endpointPods(cluster, 'detection-api-service', NS), await slotPods(cluster, 'blue', NS));
    assert.equal((await deployment('green')).spec!.replicas, 0);
    assert.deepEqual(await slotPods(cluster, 'green', NS), []);

    const injected = proxy.counts.transient;
    const requests = proxy.counts.requests;
    const faults = Object.values(injected).reduce((a, b) => a + b, 0);
    for (const kind of ['500', '429', '409', 'reset', 'lost-answer'])
      assert.ok((injected[kind] ?? 0) > 0, `no ${kind} was injected: ${JSON.stringify(injected)}`);
    assert.ok(faults / requests >= 0.2, `${faults} faults in ${requests} requests`);
    console.log(
      `transient faults: ${faults} of ${requests} requests (${JSON.stringify(injected)}); ` +
        `deployments took ${first.seconds.toFixed(1)} s and ${second.seconds.toFixed(1)} s`,
    );
  });

  it('fails at once on a 403 for the switch, and leaves the old slot live with the idle one scaled back', async () => {
    const live = await liveSlot();
    const idleImage = (await deployment(live === 'blue' ? 'green' : 'blue')).spec!.template.spec!.containers[0]!.image;
    proxy.permanent = [
      {
        method: 'PATCH',
        path: new RegExp(`\\/api\\/v1\\/namespaces\\/${NS}\\/services\\/detection-api-service$`),
        status: 403,
      },
    ];
    const { result, seconds, phases } = await deploy('v2.3.0');
    assert.equal(result.outcome, 'RolledBack', result.message);
    assert.match(
      result.message,
      /patch service detection-api-service: injected permanent fault: PATCH .* is answered 403/,
    );
    assert.equal(proxy.counts.permanent, 1, 'the 403 is not retried');
    assert.ok(phases.includes('RollingBack'), `phases: ${phases.join(', ')}`);
    await assertUntouched(live!, idleImage);
    console.log(`403 on the switch: rolled back in ${seconds.toFixed(1)} s from the start`);
  });

  it('fails at once on a 404 while waiting for readiness, and scales the new slot back', async () => {
    const live = await liveSlot();
    const idle = live === 'blue' ? 'green' : 'blue';
    const idleImage = (await deployment(idle)).spec!.template.spec!.containers[0]!.image;
    proxy.permanent = [
      { method: 'GET', path: new RegExp(`\\/apis\\/apps\\/v1\\/namespaces\\/${NS}\\/replicasets\\?`), status: 404 },
    ];
    const { result, phases } = await deploy('v2.3.1');
    assert.equal(result.outcome, 'RolledBack', result.message);
    assert.match(result.message, new RegExp(`list replicasets of detection-api-${idle}: not found in namespace ${NS}`));
    // The rollback's evidence capture lists them too, meets the same 404, and becomes a warning.
    assert.equal(
      proxy.counts.permanent,
      2,
      'the 404 is not retried: once for the readiness wait, once for the evidence',
    );
    const evidence = result.warnings.filter((w) => w.startsWith('evidence'));
    assert.equal(evidence.length, 1, result.warnings.join('\n'));
    assert.match(
      evidence[0]!,
      new RegExp(
        `^evidence of ${idle} not captured: list replicasets of detection-api-${idle}: not found in namespace ${NS} \\(injected permanent fault`,
      ),
    );
    assert.ok(phases.includes('RollingBack'), `phases: ${phases.join(', ')}`);
    await assertUntouched(live!, idleImage);
  });

  it('fails at once on a 422 for the idle slot’s patch, and changes nothing', async () => {
    const live = await liveSlot();
    const idle = live === 'blue' ? 'green' : 'blue';
    const idleBefore = await deployment(idle);
    proxy.permanent = [{ method: 'PATCH', path: new RegExp(`/deployments/detection-api-${idle}$`), status: 422 }];
    const { result, phases } = await deploy('v2.3.2');
    assert.equal(result.outcome, 'RolledBack', result.message);
    assert.match(result.message, new RegExp(`patch deployment detection-api-${idle}: injected permanent fault`));
    assert.equal(proxy.counts.permanent, 1, 'the 422 is not retried');
    assert.ok(phases.includes('RollingBack'), `phases: ${phases.join(', ')}`);
    await assertUntouched(live!, idleBefore.spec!.template.spec!.containers[0]!.image);
    // Its spec, not its resourceVersion: the controller manager may still be writing its status.
    const idleAfter = await deployment(idle);
    assert.equal(
      idleAfter.metadata!.generation,
      idleBefore.metadata!.generation,
      'the idle Deployment was not written',
    );
    assert.deepEqual(idleAfter.spec, idleBefore.spec, 'the idle Deployment was not written');
  });
});
