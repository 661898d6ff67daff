/**
 * The kubernetes adapter against the real control plane with deploy/ applied: every activity,
 * asserting the cluster state afterwards (selector, images, replicas, EndpointSlices), the
 * idempotent re-runs that write nothing, and each error mapping caused for real: a 403 from an
 * RBAC denial, a 404 from a missing object, a 422 from an invalid patch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import * as k8s from '@kubernetes/client-node';
import { KubernetesPlatform, transientDelay } from '../../src/platforms/kubernetes-platform.js';
import { ErrorType } from '../../src/shared/errors.js';
import { eventually } from '../helpers/eventually.js';
import { FaultInjectingKubeProxy } from '../helpers/fault-injecting-kube-proxy-double.js';
import { progress, rejection } from '../helpers/platform-calls.js';
import {
  detectionApiTarget,
  endpointPods,
  fileNamespace,
  slotPods,
  startClusterWithManifests,
} from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { trafficThrough } from '../../src/activities/traffic.js';

/** This file's namespace on the shared control plane. */
const NS = fileNamespace(import.meta.url);
const target = detectionApiTarget(NS);
const V1 = 'registry.internal/detection-api:v2.1.0';
const V2 = 'registry.internal/detection-api:v2.2.0';

describe('the kubernetes adapter against a real control plane', () => {
  let cluster: Cluster;
  let platform: KubernetesPlatform;

  const readDeployment = (name: string) => cluster.apps.readNamespacedDeployment({ name, namespace: NS });
  const readService = () => cluster.core.readNamespacedService({ name: 'detection-api-service', namespace: NS });

  before(async () => {
    cluster = await startClusterWithManifests({ namespace: NS });
    platform = new KubernetesPlatform(cluster.plane.adminConfig());
  });

  after(async () => {
    await cluster?.plane.stop();
  });

  it('describes the live state from the Service selector and both Deployments', async () => {
    const state = await platform.describe(target);
    assert.equal(state.activeSlot, 'blue');
    assert.deepEqual(state.slots.blue, {
      slot: 'blue',
      deployment: 'detection-api-blue',
      image: V1,
      version: 'v2.1.0',
      run: null,
      replicas: 3,
      readyReplicas: 3,
      updatedReplicas: 3,
      availableReplicas: 3,
    });
    assert.deepEqual(
      [state.slots.green.image, state.slots.green.replicas, state.slots.green.readyReplicas],
      [V1, 0, 0],
    );
  });

  it('deploys the idle slot in one patch, returns what was there, writes nothing when re-run, and rolls out new pods for a new run of the same image', async () => {
    const generation = (await readDeployment('detection-api-green')).metadata!.generation!;
    const before = await platform.deploySlot({
      target,
      slot: 'green',
      image: V2,
      version: 'v2.2.0',
      run: 'run-1',
      replicas: 2,
    });
    assert.deepEqual([before.image, before.replicas, before.run], [V1, 0, null]);
    const after = await readDeployment('detection-api-green');
    assert.equal(after.metadata!.generation, generation + 1, 'image, version and run labels and replicas in one write');
    assert.equal(after.spec!.replicas, 2);
    assert.equal(after.spec!.template.spec!.containers[0]!.image, V2);
    assert.equal(after.spec!.template.metadata!.labels!['version'], 'v2.2.0');
    assert.equal(after.spec!.template.metadata!.labels!['bluegreen.dev/run'], 'run-1');
    assert.ok(
      after.spec!.template.spec!.containers[0]!.readinessProbe,
      'the strategic merge kept the rest of the container',
    );

    const beats = progress();
    const ready = await platform.waitForSlotReady({ target, slot: 'green', replicas: 2, timeoutSeconds: 60 }, beats);
    assert.equal(ready.readyReplicas, 2);
    assert.ok(beats.beats.length >= 1);
    assert.equal((await slotPods(cluster, 'green', NS)).length, 2);

    const resourceVersion = (await readDeployment('detection-api-green')).metadata!.resourceVersion;
    const again = await platform.deploySlot({
      target,
      slot: 'green',
      image: V2,
      version: 'v2.2.0',
      run: 'run-1',
      replicas: 2,
    });
    assert.deepEqual([again.image, again.replicas, again.readyReplicas, again.run], [V2, 2, 2, 'run-1']);
    assert.equal(
      (await readDeployment('detection-api-green')).metadata!.resourceVersion,
      resourceVersion,
      'the re-run wrote nothing',
    );

    // The same image again, from another run (a redeploy after a rollback): new pods, labelled with it.
    const firstPods = await slotPods(cluster, 'green', NS);
    await platform.deploySlot({ target, slot: 'green', image: V2, version: 'v2.2.0', run: 'run-2', replicas: 2 });
    await platform.waitForSlotReady({ target, slot: 'green', replicas: 2, timeoutSeconds: 60 }, progress());
    const rolled = await cluster.core.listNamespacedPod({ namespace: NS, labelSelector: 'slot=green' });
    const running = rolled.items.filter((p) => !p.metadata!.deletionTimestamp);
    assert.deepEqual(
      running.map((p) => p.metadata!.labels!['bluegreen.dev/run']),
      ['run-2', 'run-2'],
    );
    assert.ok(
      running.every((p) => !firstPods.includes(p.metadata!.name!)),
      "none of the first run's pods serves the new run",
    );
    assert.equal((await platform.describe(target)).slots.green.run, 'run-2');
  });

  it('sets a canary weight by replica ratio: one Service over both slots, read back from the EndpointSlices; weight 0 selects the stable again', async () => {
    // Blue serves 3 replicas; green (the canary here) runs 2: 2 of 5 endpoints is 40 %.
    const request = { target, router: 'replica-ratio' as const, stable: 'blue' as const, canary: 'green' as const };
    assert.deepEqual(await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 40 }), {
      changed: true,
      previous: 'selector slot=blue',
    });
    const service = await cluster.core.readNamespacedService({ name: 'detection-api-service', namespace: NS });
    assert.equal(service.spec!.selector!['slot'], undefined, 'the slot label is off the selector');
    const split = (await readService()).metadata!.resourceVersion;
    assert.deepEqual(await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 40 }), {
      changed: false,
      previous: 'both slots, by replicas',
    });
    assert.equal((await readService()).metadata!.resourceVersion, split, 'the second call wrote nothing');
    const at40 = await trafficThrough(platform.routers).verifyTrafficWeight(
      { ...request, weight: 40, timeoutSeconds: 30 },
      progress(),
    );
    assert.deepEqual([at40.weight, at40.endpoints], [40, { blue: 3, green: 2 }]);
    assert.deepEqual(
      await endpointPods(cluster, 'detection-api-service', NS),
      [...(await slotPods(cluster, 'blue', NS)), ...(await slotPods(cluster, 'green', NS))].sort(),
    );
    const unheld = await rejection(
      trafficThrough(platform.routers).verifyTrafficWeight({ ...request, weight: 25, timeoutSeconds: 1 }, progress()),
    );
    assert.equal(unheld.type, ErrorType.TrafficNotVerified);
    assert.match(
      unheld.message,
      /does not hold 25 % for green after 1 s: 3 ready endpoints in blue, 2 in green \(40 %\)/,
    );
    const selector = await rejection(
      trafficThrough(platform.routers).setTrafficWeight({ ...request, router: 'service-selector', weight: 40 }),
    );
    assert.equal(selector.type, ErrorType.InvalidInput);
    assert.match(selector.message, /service-selector cannot send 40 % to one slot/);

    await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 0 });
    await trafficThrough(platform.routers).verifyTrafficWeight(
      { ...request, weight: 0, timeoutSeconds: 30 },
      progress(),
    );
    assert.deepEqual(await endpointPods(cluster, 'detection-api-service', NS), await slotPods(cluster, 'blue', NS));
    const reset = (await readService()).metadata!.resourceVersion;
    assert.deepEqual(await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 0 }), {
      changed: false,
      previous: 'selector slot=blue',
    });
    assert.equal((await readService()).metadata!.resourceVersion, reset, 'the second reset wrote nothing');
  });

  it('switches the selector and waits until the EndpointSlices list only the new slot', async () => {
    const switched = await trafficThrough(platform.routers).switchTraffic({ target, slot: 'green' });
    assert.deepEqual(switched, { changed: true, previousSlot: 'blue' });
    assert.equal((await readService()).spec!.selector!['slot'], 'green');
    const verified = await trafficThrough(platform.routers).verifyTraffic(
      { target, slot: 'green', timeoutSeconds: 30 },
      progress(),
    );
    assert.equal(verified.endpoints, 2);
    assert.deepEqual(await endpointPods(cluster, 'detection-api-service', NS), await slotPods(cluster, 'green', NS));
    const resourceVersion = (await readService()).metadata!.resourceVersion;
    assert.deepEqual(await trafficThrough(platform.routers).switchTraffic({ target, slot: 'green' }), {
      changed: false,
      previousSlot: 'green',
    });
    assert.equal((await readService()).metadata!.resourceVersion, resourceVersion, 'no write when already switched');
  });

  it('reads the restarts of a slot, as a crash loop raises them', async () => {
    assert.equal(await platform.readRestarts({ target, slot: 'green' }), 0);
    const [name] = await slotPods(cluster, 'green', NS);
    const pod = await cluster.core.readNamespacedPod({ name: name!, namespace: NS });
    pod.status!.containerStatuses![0]!.restartCount = 2;
    await cluster.core.replaceNamespacedPodStatus({ name: name!, namespace: NS, body: pod });
    assert.equal(await platform.readRestarts({ target, slot: 'green' }), 2);
  });

  it("collects a crash-looping slot's evidence through the API server: log tails (the previous container's too), BackOff events, restarts, the template diff", async () => {
    // What the crashing container wrote, as the simulated kubelet serves it (see test/k8s-harness/kubelet_logs.go).
    const crashing = (
      await cluster.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=detection-api,slot=green' })
    ).items.find((p) => p.status?.containerStatuses?.[0]?.restartCount === 2)!;
    await cluster.core.patchNamespacedPod(
      {
        name: crashing.metadata!.name!,
        namespace: NS,
        body: {
          metadata: {
            annotations: {
              'k8s-harness.bluegreen.dev/log': [
                'starting detection-api v2.2.0',
                'connecting to the TAK server',
                'FATAL: cannot reach tak:8087',
              ].join('\n'),
              'k8s-harness.bluegreen.dev/previous-log': ['starting detection-api v2.2.0', 'panic: out of memory'].join(
                '\n',
              ),
            },
          },
        },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const evidence = await platform.collectEvidence({ target, slot: 'green', peer: 'blue', tailLines: 2 });
    assert.equal(evidence.deployment, 'detection-api-green');
    assert.deepEqual(evidence.problems, []);
    const crashed = evidence.containers.find((c) => c.pod === crashing.metadata!.name)!;
    assert.deepEqual(
      [crashed.restarts, crashed.log, crashed.previousLog],
      [
        2,
        ['connecting to the TAK server', 'FATAL: cannot reach tak:8087'],
        ['starting detection-api v2.2.0', 'panic: out of memory'],
      ],
      'the last 2 lines of each',
    );
    const healthy = evidence.containers.find((c) => c.pod !== crashing.metadata!.name)!;
    assert.deepEqual([healthy.restarts, healthy.previousLog], [0, null]);
    assert.match(
      healthy.log.join('\n'),
      /sim-kubelet: started container detection-api from registry\.internal\/detection-api:v2\.2\.0/,
    );
    assert.ok(
      evidence.events.some(
        (e) => e.type === 'Warning' && e.reason === 'BackOff' && e.object === `Pod/${crashing.metadata!.name}`,
      ),
      JSON.stringify(evidence.events.map((e) => `${e.object} ${e.reason}`)),
    );
    assert.ok(
      evidence.events.some((e) => e.object === 'Deployment/detection-api-green' && e.reason === 'ScalingReplicaSet'),
    );
    assert.ok(
      evidence.events.some(
        (e) => e.object.startsWith('ReplicaSet/detection-api-green-') && e.reason === 'SuccessfulCreate',
      ),
    );
    assert.ok(
      evidence.templateDiff.some((line) =>
        /^spec\.containers\[0\]\.image: "registry\.internal\/detection-api:v2\.1\.0" → "registry\.internal\/detection-api:v2\.2\.0"$/.test(
          line,
        ),
      ),
      evidence.templateDiff.join('\n'),
    );
  });

  it('times out a slot whose pod stays unready, naming the counts', async () => {
    const [name] = await slotPods(cluster, 'green', NS);
    const pod = await cluster.core.readNamespacedPod({ name: name!, namespace: NS });
    pod.status!.conditions = pod.status!.conditions!.map((c) =>
      c.type === 'Ready' || c.type === 'ContainersReady' ? { ...c, status: 'False' } : c,
    );
    pod.status!.containerStatuses![0]!.ready = false;
    await cluster.core.replaceNamespacedPodStatus({ name: name!, namespace: NS, body: pod });
    await eventually(
      async () => (await readDeployment('detection-api-green')).status?.readyReplicas === 1,
      'readyReplicas 1',
    );
    const failure = await rejection(
      platform.waitForSlotReady({ target, slot: 'green', replicas: 2, timeoutSeconds: 1 }, progress()),
    );
    assert.equal(failure.type, ErrorType.ReadinessTimeout);
    assert.equal(failure.nonRetryable, true);
    assert.match(
      failure.message,
      new RegExp(`detection-api-green in namespace ${NS}: 1 of 2 replicas ready after 1 s .*2 restarts`),
    );
    await eventually(
      async () => (await endpointPods(cluster, 'detection-api-service', NS)).length === 1,
      'the unready pod left the endpoints',
    );
  });

  it('scales a slot to zero and waits for its pods to go; restores a previous image when asked', async () => {
    await platform.scaleSlot({ target, slot: 'blue', replicas: 0 }, progress());
    assert.equal((await readDeployment('detection-api-blue')).spec!.replicas, 0);
    assert.deepEqual(await slotPods(cluster, 'blue', NS), []);
    await platform.scaleSlot({ target, slot: 'green', replicas: 0, image: V1 }, progress());
    const green = await readDeployment('detection-api-green');
    assert.deepEqual(
      [
        green.spec!.replicas,
        green.spec!.template.spec!.containers[0]!.image,
        green.spec!.template.metadata!.labels!['version'],
      ],
      [0, V1, 'v2.1.0'],
    );
    assert.deepEqual(await slotPods(cluster, 'green', NS), []);
  });

  it('maps a missing object to NotFound, naming it and its namespace', async () => {
    const service = await rejection(platform.describe({ ...target, service: 'no-such-service' }));
    assert.equal(service.type, ErrorType.NotFound);
    assert.equal(service.nonRetryable, true);
    assert.match(service.message, new RegExp(`read service no-such-service: not found in namespace ${NS}`));
    const deployment = await rejection(platform.describe({ ...target, namespace: 'kube-public' }));
    assert.equal(deployment.type, ErrorType.NotFound);
    assert.match(deployment.message, /not found in namespace kube-public/);
  });

  it('maps an invalid patch to InvalidInput with the API server’s own reason (422)', async () => {
    const failure = await rejection(
      platform.deploySlot({ target, slot: 'blue', image: V2, version: 'v2.2.0', replicas: -1 }),
    );
    assert.equal(failure.type, ErrorType.InvalidInput);
    assert.match(failure.message, /patch deployment detection-api-blue: .*spec.replicas: Invalid value: -1/);
    assert.equal(
      (await readDeployment('detection-api-blue')).spec!.template.spec!.containers[0]!.image,
      V1,
      'nothing changed',
    );
  });

  it('refuses a container the Deployment does not have, before writing', async () => {
    const failure = await rejection(
      platform.deploySlot({
        target: { ...target, container: 'sidecar' },
        slot: 'blue',
        image: V2,
        version: 'v2.2.0',
        replicas: 1,
      }),
    );
    assert.equal(failure.type, ErrorType.InvalidInput);
    assert.match(failure.message, /has no container named sidecar \(it has detection-api\)/);
  });

  it('reports a selector on neither slot as a failed precondition', async () => {
    await cluster.core.patchNamespacedService(
      { name: 'detection-api-service', namespace: NS, body: { spec: { selector: { slot: 'canary' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const failure = await rejection(platform.describe(target));
    assert.equal(failure.type, ErrorType.PreconditionFailed);
    assert.match(failure.message, /selects slot=canary, which is neither slot/);
    await trafficThrough(platform.routers).switchTraffic({ target, slot: 'blue' });
  });

  it('maps an RBAC denial to Forbidden, naming the ServiceAccount, the verb and the namespace', async () => {
    await cluster.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'no-rights' } } });
    const token = await cluster.plane.mintToken(NS, 'no-rights');
    const denied = new KubernetesPlatform(cluster.plane.configForToken(token));
    const failure = await rejection(trafficThrough(denied.routers).switchTraffic({ target, slot: 'green' }));
    assert.equal(failure.type, ErrorType.Forbidden);
    assert.equal(failure.nonRetryable, true);
    assert.match(
      failure.message,
      new RegExp(
        `User "system:serviceaccount:${NS}:no-rights" cannot get resource "services" in API group "" in the namespace "${NS}"`,
      ),
    );
  });

  it('takes a 403 within 30 s of the API server being unreachable for one that has just started (retried), and any other 403 as Forbidden', async () => {
    // TEST DOUBLE for the fault: a restarted API server refuses every request until its authorizer
    // has loaded RBAC, for about a second; the proxy makes that window certain.
    const proxy = await FaultInjectingKubeProxy.inFrontOf(cluster.plane);
    try {
      const config = cluster.plane.configForToken(await cluster.plane.mintToken(NS, 'bluegreen-worker'), proxy.url);
      const path = new RegExp(`/api/v1/namespaces/${NS}/services/detection-api-service$`);
      proxy.permanent = [{ method: 'GET', path, status: 403 }];
      const fresh = await rejection(new KubernetesPlatform(config).describe(target));
      assert.deepEqual(
        [fresh.type, fresh.nonRetryable],
        [ErrorType.Forbidden, true],
        'a 403 with no outage before it is permanent',
      );

      // A connection reset is not an outage: a serving API server's connections reset too.
      const reset = new KubernetesPlatform(config);
      [proxy.permanent, proxy.transientRate] = [[], 1];
      await assert.rejects(reset.describe(target), (error: Error) => !(error instanceof ApplicationFailure));
      [proxy.permanent, proxy.transientRate] = [[{ method: 'GET', path, status: 403 }], 0];
      const afterReset = await rejection(reset.describe(target));
      assert.deepEqual(
        [afterReset.type, afterReset.nonRetryable],
        [ErrorType.Forbidden, true],
        'a 403 after resets and 500s is permanent',
      );

      const restarted = new KubernetesPlatform(config);
      proxy.unreachable = true;
      await assert.rejects(
        restarted.describe(target),
        (error: Error) => !(error instanceof ApplicationFailure) && /HTTP 502/.test(error.message),
      );
      proxy.unreachable = false;
      const starting = await restarted.describe(target).catch((error: unknown) => error as Error);
      assert.ok(
        starting instanceof Error && !(starting instanceof ApplicationFailure),
        `a plain error, retried by Temporal: ${String(starting)}`,
      );
      assert.match(starting.message, /HTTP 403 from an API server that was unreachable moments ago/);
      proxy.permanent = [];
      assert.equal(
        (await restarted.describe(target)).activeSlot,
        (await platform.describe(target)).activeSlot,
        'answered once the server authorizes again',
      );
    } finally {
      await proxy.close();
    }
  });

  it('leaves an unreachable API server to the retry policy (a plain error)', async () => {
    const config = new k8s.KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'gone', server: 'https://127.0.0.1:9', skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'gone', cluster: 'gone', user: 'u' }],
      currentContext: 'gone',
    });
    const error = await new KubernetesPlatform(config).describe(target).catch((e: unknown) => e);
    assert.ok(
      error instanceof Error && !(error instanceof ApplicationFailure),
      `a retryable error, got ${String(error)}`,
    );
    assert.match(
      (error as Error).message,
      new RegExp(`kubernetes: read service detection-api-service in namespace ${NS}: .*ECONNREFUSED`),
    );
  });
});

describe('which API answers the adapter repeats at once (the drill in kubernetes-api-faults.e2e proves them end to end)', () => {
  const answer = (code: number, headers: Record<string, string> = {}) =>
    new k8s.ApiException(code, `HTTP ${code}`, '{}', headers);

  it('repeats 409, 429 and 5xx after the backoff, or after a short Retry-After', () => {
    assert.deepEqual(
      [409, 429, 500, 503].map((code) => transientDelay(answer(code), 400)),
      [400, 400, 400, 400],
    );
    assert.equal(transientDelay(answer(429, { 'retry-after': '1' }), 100), 1000);
  });

  it('leaves a long Retry-After, permanent answers and programming errors to the caller', () => {
    assert.equal(transientDelay(answer(429, { 'retry-after': '30' }), 100), null);
    assert.deepEqual(
      [400, 401, 403, 404, 422].map((code) => transientDelay(answer(code), 100)),
      [null, null, null, null, null],
    );
    assert.equal(transientDelay(new TypeError('x is undefined'), 100), null);
  });

  it('repeats a lost connection', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    assert.equal(transientDelay(reset, 200), 200);
  });
});
