/**
 * The `local` adapter against the real local platform process and real detection-API replicas:
 * every platform call, asserting what the router then serves and what runs, the idempotent
 * re-runs, restarts counted, and each error mapping.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { ErrorType } from '../../src/shared/errors.js';
import { REFERENCE_TARGET } from '../helpers/deployment-harness.js';
import { postDetection, SEED_DETECTION, TakListener } from '../helpers/detection-api-process.js';
import { eventually } from '../helpers/eventually.js';
import { progress, rejection } from '../helpers/platform-calls.js';
import { startLocalPlatform } from '../helpers/local-platform-process.js';
import type { LocalPlatformProcess } from '../helpers/local-platform-process.js';
import { trafficThrough } from '../../src/activities/traffic.js';

const target = REFERENCE_TARGET;
const V1 = 'registry.internal/detection-api:v2.1.0';
const V2 = 'registry.internal/detection-api:v2.2.0';

/** Which pods answered `count` requests through a router. */
async function servedBy(url: string, count = 8): Promise<Set<string>> {
  const pods = new Set<string>();
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${url}/api/detections`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(SEED_DETECTION),
    });
    assert.equal(response.status, 201);
    pods.add(response.headers.get('x-served-by') ?? '?');
    await response.body?.cancel();
  }
  return pods;
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the local platform adapter against the real local platform', () => {
  let tak: TakListener;
  let local: LocalPlatformProcess;

  before(async () => {
    tak = await TakListener.start();
    local = await startLocalPlatform({ takAddress: `127.0.0.1:${tak.port}` });
    await local.platform.waitForSlotReady({ target, slot: 'blue', replicas: 2, timeoutSeconds: 30 }, progress());
  });

  after(async () => {
    await local?.stop();
    await tak?.close();
  });

  it('describes the live state: blue selected, two ready replicas of v2.1.0, green empty', async () => {
    const state = await local.platform.describe(target);
    assert.equal(state.activeSlot, 'blue');
    assert.deepEqual(
      { image: state.slots.blue.image, replicas: state.slots.blue.replicas, ready: state.slots.blue.readyReplicas },
      { image: V1, replicas: 2, ready: 2 },
    );
    assert.deepEqual(
      { replicas: state.slots.green.replicas, ready: state.slots.green.readyReplicas },
      { replicas: 0, ready: 0 },
    );
    assert.deepEqual(await servedBy(local.routerUrl), new Set(['detection-api-blue-1', 'detection-api-blue-2']));
  });

  it('lists every running replica in the Prometheus targets file with its pod and deployment', async () => {
    const groups = JSON.parse(readFileSync(local.targetsFile, 'utf8')) as {
      targets: string[];
      labels: Record<string, string>;
    }[];
    assert.deepEqual(groups.map((g) => g.labels['pod']).sort(), ['detection-api-blue-1', 'detection-api-blue-2']);
    for (const group of groups) {
      const metrics = await (await fetch(`http://${group.targets[0]}/metrics`)).text();
      assert.match(metrics, /slot="blue"/);
    }
  });

  it('deploys the idle slot in one change, returns what was there, is idempotent, and rolls out new pods for a new run of the same image', async () => {
    const before = await local.platform.deploySlot({
      target,
      slot: 'green',
      image: V2,
      version: 'v2.2.0',
      run: 'run-1',
      replicas: 2,
    });
    assert.deepEqual(
      { image: before.image, replicas: before.replicas, run: before.run },
      { image: V1, replicas: 0, run: null },
    );
    const beats = progress();
    const ready = await local.platform.waitForSlotReady(
      { target, slot: 'green', replicas: 2, timeoutSeconds: 30 },
      beats,
    );
    assert.equal(ready.readyReplicas, 2);
    assert.ok(beats.beats.length >= 1, 'waiting heartbeats');
    const again = await local.platform.deploySlot({
      target,
      slot: 'green',
      image: V2,
      version: 'v2.2.0',
      run: 'run-1',
      replicas: 2,
    });
    assert.deepEqual(
      { image: again.image, replicas: again.replicas, ready: again.readyReplicas, run: again.run },
      { image: V2, replicas: 2, ready: 2, run: 'run-1' },
    );
    // The re-run changed nothing: the same two pods still serve the slot's own Service.
    assert.deepEqual(await servedBy(local.slotUrls.green), new Set(['detection-api-green-1', 'detection-api-green-2']));
    const answer = await postDetection(local.slotUrls.green, SEED_DETECTION);
    assert.equal(answer.status, 201);

    // The same image from another run: new pods, whose series carry the new run.
    await local.platform.deploySlot({ target, slot: 'green', image: V2, version: 'v2.2.0', run: 'run-2', replicas: 2 });
    await local.platform.waitForSlotReady({ target, slot: 'green', replicas: 2, timeoutSeconds: 30 }, progress());
    assert.deepEqual(await servedBy(local.slotUrls.green), new Set(['detection-api-green-3', 'detection-api-green-4']));
    assert.equal((await local.platform.describe(target)).slots.green.run, 'run-2');
    const groups = JSON.parse(readFileSync(local.targetsFile, 'utf8')) as {
      targets: string[];
      labels: Record<string, string>;
    }[];
    const green = groups.filter((g) => g.labels['deployment'] === 'detection-api-green');
    assert.deepEqual(green.map((g) => g.labels['pod']).sort(), ['detection-api-green-3', 'detection-api-green-4']);
    for (const group of green)
      assert.match(
        await (await fetch(`http://${group.targets[0]}/metrics`)).text(),
        /^http_requests_total\{[^}]*run="run-2"/m,
      );
  });

  it('maps cluster DNS names of slot Services to their local routers', async () => {
    assert.equal(
      await local.platform.resolveServiceUrl('http://detection-api-green.default.svc:8000'),
      local.slotUrls.green,
    );
    assert.equal(
      await local.platform.resolveServiceUrl('http://detection-api-blue.default.svc.cluster.local:8000/'),
      local.slotUrls.blue,
    );
    assert.equal(await local.platform.resolveServiceUrl('http://example.test:8000'), 'http://example.test:8000');
  });

  it('switches traffic atomically, verifies it, and writes nothing when already switched', async () => {
    const switched = await trafficThrough(local.platform.routers).switchTraffic({ target, slot: 'green' });
    assert.deepEqual(switched, { changed: true, previousSlot: 'blue' });
    const verified = await trafficThrough(local.platform.routers).verifyTraffic(
      { target, slot: 'green', timeoutSeconds: 10 },
      progress(),
    );
    assert.equal(verified.endpoints, 2);
    assert.deepEqual(await servedBy(local.routerUrl), new Set(['detection-api-green-3', 'detection-api-green-4']));
    assert.deepEqual(await trafficThrough(local.platform.routers).switchTraffic({ target, slot: 'green' }), {
      changed: false,
      previousSlot: 'green',
    });
  });

  it('splits traffic through each router exactly, verifies each, and reports what each backend served', async () => {
    // Green serves (2 replicas of v2.2.0); blue still runs 2 of v2.1.0: here blue plays the canary.
    const request = { target, stable: 'green' as const, canary: 'blue' as const };
    /** Sends `requests` one at a time through an entry point; what each backend answered, by the entry's own counts. */
    const countServed = async (entry: string, statusPath: string, requests: number) => {
      const served = async () =>
        ((await (await fetch(`${local.controlUrl}${statusPath}`)).json()) as { served: Record<string, number> }).served;
      const before = await served();
      for (let i = 0; i < requests; i++) await servedBy(entry, 1);
      const after = await served();
      const delta = (backend: string) => (after[backend] ?? 0) - (before[backend] ?? 0);
      return { blue: delta('detection-api-blue'), green: delta('detection-api-green') };
    };
    const routePath = '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/detection-api';
    const ingressPath = (name: string) => `/apis/networking.k8s.io/v1/namespaces/default/ingresses/${name}`;
    const servicePath = '/api/v1/namespaces/default/services/detection-api-service';
    const read = async <T>(path: string) => (await (await fetch(`${local.controlUrl}${path}`)).json()) as T;

    // gateway-api: the route's backendRefs weights.
    const gateway = { ...request, router: 'gateway-api' as const };
    assert.deepEqual(await trafficThrough(local.platform.routers).setTrafficWeight({ ...gateway, weight: 25 }), {
      changed: true,
      previous: 'weights detection-api-blue 100, detection-api-green 0',
    });
    assert.deepEqual((await read<{ backendRefs: unknown }>(routePath)).backendRefs, [
      { name: 'detection-api-blue', weight: 25 },
      { name: 'detection-api-green', weight: 75 },
    ]);
    const at25 = await trafficThrough(local.platform.routers).verifyTrafficWeight(
      { ...gateway, weight: 25, timeoutSeconds: 10 },
      progress(),
    );
    assert.deepEqual([at25.weight, at25.endpoints], [25, { green: 2, blue: 2 }]);
    assert.deepEqual(
      await countServed(local.entryUrls['gateway-api'], routePath, 100),
      { blue: 25, green: 75 },
      'smooth weighted round robin: exactly 25 of every 100',
    );
    assert.deepEqual(await trafficThrough(local.platform.routers).setTrafficWeight({ ...gateway, weight: 25 }), {
      changed: false,
      previous: 'weights detection-api-blue 25, detection-api-green 75',
    });
    await trafficThrough(local.platform.routers).setTrafficWeight({ ...gateway, weight: 0 });
    await trafficThrough(local.platform.routers).verifyTrafficWeight(
      { ...gateway, weight: 0, timeoutSeconds: 10 },
      progress(),
    );
    assert.deepEqual(await countServed(local.entryUrls['gateway-api'], routePath, 10), { blue: 0, green: 10 });

    // ingress: the entry Ingress's backend moves to the stable slot, a canary Ingress for its host takes the weight.
    const ingress = { ...request, router: 'ingress' as const };
    await trafficThrough(local.platform.routers).setTrafficWeight({ ...ingress, weight: 20 });
    const canaryIngress = await read<{ host: string; backend: string; annotations: Record<string, string> }>(
      ingressPath('detection-api-ingress-canary'),
    );
    assert.deepEqual(canaryIngress, {
      name: 'detection-api-ingress-canary',
      namespace: 'default',
      listen: null,
      host: 'detection-api.internal.example.com',
      backend: 'detection-api-blue',
      annotations: { 'nginx.ingress.kubernetes.io/canary': 'true', 'nginx.ingress.kubernetes.io/canary-weight': '20' },
      served: {},
    });
    assert.equal(
      (await read<{ backend: string }>(ingressPath('detection-api-ingress'))).backend,
      'detection-api-green',
    );
    assert.equal(
      (
        await trafficThrough(local.platform.routers).verifyTrafficWeight(
          { ...ingress, weight: 20, timeoutSeconds: 10 },
          progress(),
        )
      ).weight,
      20,
    );
    assert.deepEqual(await countServed(local.entryUrls.ingress, ingressPath('detection-api-ingress'), 50), {
      blue: 10,
      green: 40,
    });
    await trafficThrough(local.platform.routers).setTrafficWeight({ ...ingress, weight: 0 });
    await trafficThrough(local.platform.routers).verifyTrafficWeight(
      { ...ingress, weight: 0, timeoutSeconds: 10 },
      progress(),
    );
    assert.deepEqual(await countServed(local.entryUrls.ingress, ingressPath('detection-api-ingress'), 10), {
      blue: 0,
      green: 10,
    });

    // replica-ratio: one Service over both slots.
    const byReplicas = { ...request, router: 'replica-ratio' as const };
    await trafficThrough(local.platform.routers).setTrafficWeight({ ...byReplicas, weight: 50 });
    const at50 = await trafficThrough(local.platform.routers).verifyTrafficWeight(
      { ...byReplicas, weight: 50, timeoutSeconds: 10 },
      progress(),
    );
    assert.equal(at50.weight, 50, 'two replicas of each slot behind one selector');
    assert.deepEqual(
      (await read<{ selector: unknown }>(servicePath)).selector,
      { app: 'detection-api' },
      'the slot label is gone from the selector',
    );
    assert.deepEqual(await countServed(local.routerUrl, servicePath, 40), { blue: 20, green: 20 });
    // A weight the replicas do not hold is not verified: 25 % of 2 + 2 endpoints cannot be.
    const wrong = await rejection(
      trafficThrough(local.platform.routers).verifyTrafficWeight(
        { ...byReplicas, weight: 25, timeoutSeconds: 1 },
        progress(),
      ),
    );
    assert.equal(wrong.type, ErrorType.TrafficNotVerified);
    assert.match(
      wrong.message,
      /does not hold 25 % for blue after 1 s: 2 ready endpoints in green, 2 in blue \(50 %\), 0 outside both slots/,
    );
    await trafficThrough(local.platform.routers).setTrafficWeight({ ...byReplicas, weight: 0 });
    await trafficThrough(local.platform.routers).verifyTrafficWeight(
      { ...byReplicas, weight: 0, timeoutSeconds: 10 },
      progress(),
    );
    assert.deepEqual(await countServed(local.routerUrl, servicePath, 10), { blue: 0, green: 10 });
    assert.deepEqual((await read<{ selector: unknown }>(servicePath)).selector, {
      app: 'detection-api',
      slot: 'green',
    });
  });

  it('scales the old slot to zero: its processes are gone, the router never used it', async () => {
    const pids = (await (
      await fetch(`${local.controlUrl}/api/v1/namespaces/default/deployments/detection-api-blue`)
    ).json()) as { pods: { pid: number }[] };
    await local.platform.scaleSlot({ target, slot: 'blue', replicas: 0 }, progress());
    const state = await local.platform.describe(target);
    assert.deepEqual(
      { replicas: state.slots.blue.replicas, ready: state.slots.blue.readyReplicas, image: state.slots.blue.image },
      { replicas: 0, ready: 0, image: V1 },
    );
    assert.ok(pids.pods.length === 2 && pids.pods.every((p) => !isAlive(p.pid)), 'every blue process has exited');
    await local.platform.scaleSlot({ target, slot: 'blue', replicas: 0 }, progress());
  });

  it('restores a slot with its previous image when compensating, and counts a killed replica as a restart', async () => {
    await local.platform.scaleSlot({ target, slot: 'blue', replicas: 1, image: V1 }, progress());
    await local.platform.waitForSlotReady({ target, slot: 'blue', replicas: 1, timeoutSeconds: 30 }, progress());
    assert.equal(await local.platform.readRestarts({ target, slot: 'blue' }), 0);
    const blue = (await (
      await fetch(`${local.controlUrl}/api/v1/namespaces/default/deployments/detection-api-blue`)
    ).json()) as { pods: { pid: number }[] };
    process.kill(blue.pods[0]!.pid, 'SIGKILL');
    await eventually(
      async () => (await local.platform.readRestarts({ target, slot: 'blue' })) === 1,
      'the restart counted',
    );
    await local.platform.waitForSlotReady({ target, slot: 'blue', replicas: 1, timeoutSeconds: 30 }, progress());
    await local.platform.scaleSlot({ target, slot: 'blue', replicas: 0 }, progress());
  });

  it('reports a slot that never becomes ready as a non-retryable ReadinessTimeout', async () => {
    await local.platform.deploySlot({
      target,
      slot: 'blue',
      image: 'registry.internal/detection-api:v2.4.0-crashloop',
      version: 'v2.4.0-crashloop',
      replicas: 1,
    });
    await eventually(
      async () => (await local.platform.readRestarts({ target, slot: 'blue' })) >= 1,
      'the crash counted',
      20_000,
    );
    const failure = await rejection(
      local.platform.waitForSlotReady({ target, slot: 'blue', replicas: 2, timeoutSeconds: 2 }, progress()),
    );
    assert.equal(failure.type, ErrorType.ReadinessTimeout);
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, /detection-api-blue: [01] of 2 replicas ready after 2 s \(\d+ restarts/);
    // Its evidence, before it is scaled down: the crashed container's last lines, the restarts and their events.
    const evidence = await local.platform.collectEvidence({ target, slot: 'blue', peer: 'green', tailLines: 50 });
    const crashed = evidence.containers.find((c) => c.restarts >= 1)!;
    assert.ok(crashed, JSON.stringify(evidence.containers.map((c) => [c.pod, c.restarts])));
    assert.match(
      crashed.previousLog!.join('\n'),
      /injected crash \(FAULT_CRASH_AFTER_SECONDS=2\)/,
      'the previous container said why it died',
    );
    assert.ok(
      evidence.events.some(
        (e) =>
          e.type === 'Warning' &&
          e.reason === 'BackOff' &&
          e.object === `Pod/${crashed.pod}` &&
          /exited \(code \d+\)/.test(e.message),
      ),
      JSON.stringify(evidence.events),
    );
    assert.ok(
      evidence.events.filter((e) => e.reason === 'Started' && e.object === `Pod/${crashed.pod}`).length >= 2,
      'each start is an event',
    );
    assert.ok(
      evidence.templateDiff.some(
        (line) => line.startsWith('image: ') && line.endsWith('"registry.internal/detection-api:v2.4.0-crashloop"'),
      ),
      evidence.templateDiff.join('\n'),
    );
    await local.platform.scaleSlot({ target, slot: 'blue', replicas: 0, image: V1 }, progress());
  });

  it('names what is missing or invalid, without retrying', async () => {
    const missing = await rejection(local.platform.describe({ ...target, service: 'no-such-service' }));
    assert.equal(missing.type, ErrorType.NotFound);
    assert.match(missing.message, /service "no-such-service" not found in namespace "default"/);

    const noDeployment = await rejection(
      local.platform.describe({ ...target, deployments: { blue: 'detection-api-blue', green: 'nope' } }),
    );
    assert.equal(noDeployment.type, ErrorType.NotFound);
    assert.match(noDeployment.message, /deployment "nope" not found/);

    const unknownImage = await rejection(
      local.platform.deploySlot({
        target,
        slot: 'blue',
        image: 'registry.internal/other:v1',
        version: 'v1',
        replicas: 1,
      }),
    );
    assert.equal(unknownImage.type, ErrorType.InvalidInput);
    assert.match(unknownImage.message, /no entry in 'images' runs registry.internal\/other/);

    const wrongContainer = await rejection(
      local.platform.deploySlot({
        target: { ...target, container: 'sidecar' },
        slot: 'blue',
        image: V2,
        version: 'v2.2.0',
        replicas: 1,
      }),
    );
    assert.equal(wrongContainer.type, ErrorType.InvalidInput);
    assert.match(wrongContainer.message, /has no container named sidecar/);

    const badReplicas = await fetch(`${local.controlUrl}/api/v1/namespaces/default/deployments/detection-api-blue`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ replicas: -1 }),
    });
    assert.equal(badReplicas.status, 422);
    assert.match(((await badReplicas.json()) as { message: string }).message, /replicas: replicas must be 0 or more/);
    const selectorLabel = await fetch(`${local.controlUrl}/api/v1/namespaces/default/deployments/detection-api-blue`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ labels: { slot: 'green' } }),
    });
    assert.equal(selectorLabel.status, 422);
    assert.match(
      ((await selectorLabel.json()) as { message: string }).message,
      /labels\.slot: the Deployment's selector label cannot be changed/,
    );

    // A selector on neither slot is a precondition the deployment cannot work from.
    await fetch(`${local.controlUrl}/api/v1/namespaces/default/services/detection-api-service`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ selector: { slot: 'purple' } }),
    });
    const neither = await rejection(local.platform.describe(target));
    assert.equal(neither.type, ErrorType.PreconditionFailed);
    assert.match(neither.message, /selects slot=purple, which is neither slot/);
    await trafficThrough(local.platform.routers).switchTraffic({ target, slot: 'green' });
  });

  it('retries (plain error) when the control API cannot be reached', async () => {
    const { LocalPlatform } = await import('../../src/platforms/local-platform.js');
    const error = await new LocalPlatform('http://127.0.0.1:9').describe(target).catch((e: unknown) => e);
    assert.ok(error instanceof Error && !(error instanceof ApplicationFailure), 'a retryable error');
    assert.match((error as Error).message, /local platform at http:\/\/127.0.0.1:9: .*ECONNREFUSED/);
  });
});
