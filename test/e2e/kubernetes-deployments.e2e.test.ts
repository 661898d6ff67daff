/**
 * Whole deployments on the Temporal dev server against the real control plane, with the worker
 * authenticated as deploy/'s ServiceAccount (least privilege): blue to green and back, a smoke
 * failure that leaves traffic where it was, an abort during monitoring. The smoke suite checks a
 * locally running reference service whose URL the spec names (the cluster's pods are simulated):
 * what pods do (readiness, a crash loop and its logs, the drain) is tested on a real node, in
 * real-node-deployments.e2e.test.ts. Three apps deploy in parallel on the one
 * worker. Then each rule and verb of deploy/'s Role
 * is removed in turn, and some step of a deployment fails with 403 every time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { V1Role } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import type { Progress } from '../../src/activities/contract.js';
import { freePort } from '../../src/processes/processes.js';
import { KubernetesPlatform } from '../../src/platforms/kubernetes-platform.js';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import { ErrorType } from '../../src/shared/errors.js';
import { otherSlot } from '../../src/shared/slots.js';
import { blueGreenDeploymentWorkflow } from '../../src/workflows/blue-green-deployment.js';
import { canaryDeploymentWorkflow } from '../../src/workflows/canary-deployment.js';
import { statusQuery } from '../../src/workflows/definitions.js';
import type { DeploymentSpecInput } from '../../src/deployment-spec/deployment-spec.js';
import { testSpec } from '../helpers/deployment-harness.js';
import { eventually } from '../helpers/eventually.js';
import {
  createBlueGreenApp,
  detectionApiTarget,
  endpointPods,
  fileNamespace,
  slotPods,
  startClusterWithManifests,
} from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startKubernetesWorker } from '../helpers/kubernetes-worker.js';
import type { KubernetesWorker } from '../helpers/kubernetes-worker.js';
import { startDevServer } from '../helpers/temporal-servers.js';
import { deploymentResult } from '../../src/client/deployment-client.js';
import { trafficThrough } from '../../src/activities/traffic.js';

/** This file's namespace on the shared control plane. */
const NS = fileNamespace(import.meta.url);
const TARGET = detectionApiTarget(NS);

const TASK_QUEUE = 'bluegreen-kubernetes-e2e';
const IMAGE = (tag: string) => `registry.internal/detection-api:${tag}`;
const ROLE = parseYaml(
  readFileSync(fileURLToPath(new URL('../../deploy/worker/role.yaml', import.meta.url)), 'utf8'),
) as V1Role;

describe('deployments on the dev server against a real control plane, as the worker ServiceAccount', () => {
  let env: TestWorkflowEnvironment;
  let cluster: Cluster;
  let worker: KubernetesWorker;
  let sequence = 0;

  before(async () => {
    [env, cluster] = await Promise.all([startDevServer(), startClusterWithManifests({ namespace: NS })]);
    const token = await cluster.plane.mintToken(NS, 'bluegreen-worker');
    worker = await startKubernetesWorker(env, cluster.plane.configForToken(token), TASK_QUEUE);
  });

  after(async () => {
    await worker?.stop();
    await cluster?.plane.stop();
    await env?.teardown();
  });

  const liveSlot = async () =>
    (await cluster.core.readNamespacedService({ name: 'detection-api-service', namespace: NS })).spec!.selector![
      'slot'
    ];
  const deployment = (slot: string) =>
    cluster.apps.readNamespacedDeployment({ name: `detection-api-${slot}`, namespace: NS });

  /** Starts a deployment of `tag` (blue-green, or what `overrides` make it), gated on restarts alone. */
  function start(
    tag: string,
    {
      monitorSeconds = 4,
      smokeEndpoint = worker.referenceUrl,
      overrides,
    }: { monitorSeconds?: number; smokeEndpoint?: string; overrides?: Partial<DeploymentSpecInput> } = {},
  ) {
    sequence += 1;
    const spec = testSpec({
      namespace: NS,
      image: IMAGE(tag),
      replicas: 2,
      readinessTimeoutSeconds: 60,
      smoke: { endpoint: smokeEndpoint },
      monitor: { durationSeconds: monitorSeconds, intervalSeconds: 1, slos: [] },
      scaleDownDelaySeconds: 0,
      ...overrides,
    });
    return env.client.workflow.start(
      spec.strategy === 'canary' ? canaryDeploymentWorkflow : blueGreenDeploymentWorkflow,
      {
        taskQueue: TASK_QUEUE,
        workflowId: `k8s-e2e-${sequence}`,
        args: [spec],
      },
    );
  }

  /** The seconds verifyTraffic reported: from the switch's patch to EndpointSlices on new pods only. */
  async function switchToEndpoints(handle: {
    fetchHistory(): Promise<{ events?: unknown[] | null }>;
  }): Promise<number> {
    const history = await handle.fetchHistory();
    const events = (history.events ?? []) as {
      activityTaskCompletedEventAttributes?: { result?: { payloads?: { data?: Uint8Array }[] } };
    }[];
    for (const event of events) {
      const data = event.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
      if (!data) continue;
      const value = JSON.parse(Buffer.from(data).toString()) as { endpoints?: number; seconds?: number };
      if (typeof value === 'object' && value && 'endpoints' in value && typeof value.seconds === 'number')
        return value.seconds;
    }
    throw new Error('no verifyTraffic result in the history');
  }

  it('goes blue to green, then green to blue, leaving the old slot at zero each time', async () => {
    const first = await start('v2.2.0');
    const toGreen: DeploymentResult = await deploymentResult(first);
    assert.equal(toGreen.outcome, 'Succeeded', toGreen.message);
    assert.deepEqual([toGreen.fromSlot, toGreen.toSlot, await liveSlot()], ['blue', 'green', 'green']);
    assert.deepEqual(await endpointPods(cluster, 'detection-api-service', NS), await slotPods(cluster, 'green', NS));
    assert.equal((await deployment('blue')).spec!.replicas, 0);
    assert.deepEqual(await slotPods(cluster, 'blue', NS), []);
    const green = await deployment('green');
    assert.deepEqual(
      [green.spec!.template.spec!.containers[0]!.image, green.spec!.template.metadata!.labels!['version']],
      [IMAGE('v2.2.0'), 'v2.2.0'],
    );

    const second = await start('v2.2.1');
    const toBlue: DeploymentResult = await deploymentResult(second);
    assert.equal(toBlue.outcome, 'Succeeded', toBlue.message);
    assert.deepEqual([toBlue.fromSlot, toBlue.toSlot, await liveSlot()], ['green', 'blue', 'blue']);
    assert.equal((await deployment('green')).spec!.replicas, 0);
    assert.equal((await deployment('blue')).spec!.template.spec!.containers[0]!.image, IMAGE('v2.2.1'));
    const seconds = [await switchToEndpoints(first), await switchToEndpoints(second)];
    console.log(
      `switch patch to EndpointSlices on the new slot only: ${seconds.map((s) => `${(s * 1000).toFixed(0)} ms`).join(', ')}`,
    );
  });

  it('leaves traffic on the old slot and scales the idle slot back when the smoke suite fails', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const result: DeploymentResult = await deploymentResult(await start('v2.3.0', { smokeEndpoint: closed }));
    assert.equal(result.outcome, 'RolledBack');
    assert.equal(result.reason, 'SmokeFailed');
    assert.equal(await liveSlot(), 'blue');
    const green = await deployment('green');
    assert.deepEqual(
      [green.spec!.replicas, green.spec!.template.spec!.containers[0]!.image],
      [0, IMAGE('v2.2.0')],
      'the idle slot is as it was',
    );
    assert.deepEqual(await slotPods(cluster, 'green', NS), []);
  });

  it('puts the selector back on the old slot when an operator aborts during monitoring', async () => {
    const handle = await start('v2.3.1', { monitorSeconds: 120 });
    await eventually(async () => (await handle.query(statusQuery)).phase === 'Monitoring', 'monitoring', 60_000);
    assert.equal(await liveSlot(), 'green');
    const signalled = performance.now();
    await handle.signal('abort', { reason: 'operator abort in the e2e test', by: 'e2e' });
    let restoredMs = 0;
    await eventually(
      async () => {
        if ((await liveSlot()) !== 'blue') return false;
        restoredMs = performance.now() - signalled;
        return true;
      },
      'selector back on blue',
      30_000,
    );
    const result: DeploymentResult = await deploymentResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.equal(result.reason, 'Aborted');
    assert.deepEqual(await endpointPods(cluster, 'detection-api-service', NS), await slotPods(cluster, 'blue', NS));
    assert.equal((await deployment('green')).spec!.replicas, 0);
    console.log(`abort signal to selector back on the old slot: ${restoredMs.toFixed(0)} ms (polled every 200 ms)`);
  });

  /** A replica-ratio canary: 1 canary beside 2 stable replicas (33 %), then 100 %. */
  const startCanary = (tag: string, holdSeconds: number) =>
    start(tag, {
      monitorSeconds: holdSeconds,
      overrides: {
        strategy: 'canary',
        traffic: { router: 'replica-ratio' },
        canary: {
          steps: [
            { weight: 33, holdSeconds },
            { weight: 100, holdSeconds: 2 },
          ],
          minRequests: 0,
        },
      },
    });

  it('runs a replica-ratio canary: one Service over both slots at 33 %, the stable slot fully scaled, then the canary live', async () => {
    const stable = (await liveSlot()) as 'blue' | 'green';
    const canary = otherSlot(stable);
    const handle = await startCanary('v2.5.0', 8);
    await eventually(
      async () =>
        (await handle.query(statusQuery)).canary?.weight === 33 &&
        (await handle.query(statusQuery)).phase === 'Monitoring',
      'the 33 % hold',
      60_000,
    );
    const service = await cluster.core.readNamespacedService({ name: 'detection-api-service', namespace: NS });
    assert.deepEqual(
      service.spec!.selector,
      { app: 'detection-api' },
      'the slot label is off the selector: both slots serve',
    );
    const endpoints = await endpointPods(cluster, 'detection-api-service', NS);
    const [stablePods, canaryPods] = [await slotPods(cluster, stable, NS), await slotPods(cluster, canary, NS)];
    assert.deepEqual([stablePods.length, canaryPods.length], [2, 1]);
    assert.deepEqual(
      endpoints,
      [...stablePods, ...canaryPods].sort(),
      'the endpoints are both slots: 1 of 3 is the canary',
    );
    const result: DeploymentResult = await deploymentResult(handle);
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.equal(await liveSlot(), canary);
    assert.deepEqual(await endpointPods(cluster, 'detection-api-service', NS), await slotPods(cluster, canary, NS));
    assert.deepEqual([(await deployment(canary)).spec!.replicas, (await deployment(stable)).spec!.replicas], [2, 0]);
    assert.deepEqual(
      result.status.canary?.completed.map((c) => c.weight),
      [33, 100],
    );
  });

  it('puts the selector back on the stable slot, verified, when a replica-ratio canary is aborted', async () => {
    const stable = (await liveSlot()) as 'blue' | 'green';
    const canary = otherSlot(stable);
    const handle = await startCanary('v2.5.1', 120);
    await eventually(
      async () =>
        (await handle.query(statusQuery)).canary?.weight === 33 &&
        (await handle.query(statusQuery)).phase === 'Monitoring',
      'the 33 % hold',
      60_000,
    );
    await handle.executeUpdate('abort', { args: [{ reason: 'e2e', by: 'test' }] });
    const result: DeploymentResult = await deploymentResult(handle);
    assert.equal(result.reason, 'Aborted');
    const service = await cluster.core.readNamespacedService({ name: 'detection-api-service', namespace: NS });
    assert.deepEqual(service.spec!.selector, { app: 'detection-api', slot: stable });
    assert.deepEqual(await endpointPods(cluster, 'detection-api-service', NS), await slotPods(cluster, stable, NS));
    assert.equal((await deployment(canary)).spec!.replicas, 0);
    assert.equal((await deployment(stable)).spec!.replicas, 2, 'the stable slot never shrank');
  });

  it('runs deployments of different apps in parallel on one worker, each to its own new slot', async () => {
    const suffix = randomBytes(3).toString('hex');
    const others = await Promise.all(
      ['a', 'b'].map((name) =>
        createBlueGreenApp(cluster.apps, cluster.core, `parallel-${name}-${suffix}`, { namespace: NS }),
      ),
    );
    const admin = new KubernetesPlatform(cluster.plane.adminConfig());
    const progress = { heartbeat: () => undefined, signal: new AbortController().signal };
    for (const target of others)
      await admin.waitForSlotReady({ target, slot: 'blue', replicas: 1, timeoutSeconds: 60 }, progress);
    const before = await liveSlot();
    const specs = [
      { target: TARGET, image: IMAGE('v2.5.0') },
      ...others.map((target) => ({ target, image: `registry.internal/${target.app}:v1.1.0` })),
    ];
    const handles = await Promise.all(
      specs.map(({ target, image }) =>
        env.client.workflow.start(blueGreenDeploymentWorkflow, {
          taskQueue: TASK_QUEUE,
          workflowId: `k8s-e2e-parallel-${target.app}`,
          args: [
            testSpec({
              namespace: NS,
              app: target.app,
              image,
              replicas: 1,
              readinessTimeoutSeconds: 60,
              smoke: { endpoint: worker.referenceUrl },
              monitor: { durationSeconds: 4, intervalSeconds: 1, slos: [] },
              scaleDownDelaySeconds: 0,
            }),
          ],
        }),
      ),
    );
    const results: DeploymentResult[] = await Promise.all(handles.map((h) => deploymentResult(h)));
    for (const [index, result] of results.entries())
      assert.equal(result.outcome, 'Succeeded', `${specs[index]!.target.app}: ${result.message}`);
    assert.deepEqual(
      results.map((r) => r.toSlot),
      [otherSlot(before as 'blue' | 'green'), 'green', 'green'],
    );
    for (const [index, { target, image }] of specs.entries()) {
      const live = await admin.describe(target);
      assert.deepEqual(
        [live.activeSlot, live.slots[live.activeSlot].image],
        [results[index]!.toSlot, image],
        target.app,
      );
      assert.equal(live.slots[otherSlot(live.activeSlot)].replicas, 0, `${target.app}'s old slot scaled down`);
    }
    // In parallel, not one after another: every run started before any of them closed.
    const runs = await Promise.all(handles.map((h) => h.describe()));
    const lastStart = Math.max(...runs.map((r) => r.startTime.getTime()));
    const firstClose = Math.min(...runs.map((r) => r.closeTime!.getTime()));
    assert.ok(
      lastStart < firstClose,
      `the runs overlapped: last start ${new Date(lastStart).toISOString()}, first close ${new Date(firstClose).toISOString()}`,
    );
  });

  it('needs every rule and verb of the worker Role: without any one, a deployment step is refused with 403', async () => {
    const admin = new KubernetesPlatform(cluster.plane.adminConfig());
    const target = TARGET;
    const progress: Progress = { heartbeat: () => undefined, signal: new AbortController().signal };
    const variants = ROLE.rules!.flatMap((rule, index) =>
      rule.verbs.map((verb) => ({
        label: `${verb} ${rule.resources!.join(',')}`,
        rules: ROLE.rules!.map((r, i) => (i === index ? { ...r, verbs: r.verbs.filter((v) => v !== verb) } : r)).filter(
          (r) => r.verbs.length > 0,
        ),
      })),
    );
    assert.ok(variants.length >= 7);
    for (const [index, variant] of variants.entries()) {
      const name = `least-privilege-${index}`;
      await cluster.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name } } });
      await cluster.rbac.createNamespacedRole({ namespace: NS, body: { metadata: { name }, rules: variant.rules } });
      await cluster.rbac.createNamespacedRoleBinding({
        namespace: NS,
        body: {
          metadata: { name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
          subjects: [{ kind: 'ServiceAccount', name, namespace: NS }],
        },
      });
      const restricted = new KubernetesPlatform(cluster.plane.configForToken(await cluster.plane.mintToken(NS, name)));
      const live = (await admin.describe(target)).activeSlot;
      const idle = otherSlot(live);
      // The steps of a deployment and its rollback, as the workflow runs them.
      const steps = async () => {
        await restricted.describe(target);
        await restricted.deploySlot({ target, slot: idle, image: IMAGE('v9.0.0'), version: 'v9.0.0', replicas: 1 });
        await restricted.waitForSlotReady({ target, slot: idle, replicas: 1, timeoutSeconds: 30 }, progress);
        await trafficThrough(restricted.routers).switchTraffic({ target, slot: idle });
        await trafficThrough(restricted.routers).verifyTraffic({ target, slot: idle, timeoutSeconds: 30 }, progress);
        await restricted.readRestarts({ target, slot: idle });
        await trafficThrough(restricted.routers).switchTraffic({ target, slot: live });
        await restricted.collectEvidence({ target, slot: idle, peer: live, tailLines: 10 });
        await restricted.scaleSlot({ target, slot: idle, replicas: 0 }, progress);
      };
      // RBAC reads its objects from informers: give the new Role a moment to be seen.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const error = await steps().then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(
        error instanceof ApplicationFailure,
        `without ${variant.label} the deployment should fail; got ${String(error)}`,
      );
      assert.equal(error.type, ErrorType.Forbidden, `without ${variant.label}: ${error.message}`);
      // Put the cluster back as it was for the next variant.
      await trafficThrough(admin.routers).switchTraffic({ target, slot: live });
      await admin.scaleSlot({ target, slot: idle, replicas: 0 }, progress);
    }
  });
});
