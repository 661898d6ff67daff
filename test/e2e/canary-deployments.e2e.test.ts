/**
 * Canary deployments on the embedded default under steady traffic, through each router the local
 * platform plays: the real Temporal dev server, the worker process on the `local` platform,
 * detection-API replicas, and a real Prometheus. Traffic enters where a cluster's clients would:
 * the HTTPRoute's listener (a Gateway), the Ingress's (an NGINX controller), the Service. Each
 * step's weight is set and verified, the entry point's own counts give the share each backend
 * served, and a faulty version is rolled back at its first step having answered only its share.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deploymentResult } from '../../src/client/deployment-client.js';
import { followCanary } from '../../src/demo/canary-shares.js';
import { TrafficGenerator } from '../../src/demo/traffic.js';
import type { EmbeddedStack } from '../../src/demo/stack.js';
import { otherSlot } from '../../src/shared/slots.js';
import { TrafficRouter } from '../../src/shared/traffic.js';
import { testSpec } from '../helpers/deployment-harness.js';
import {
  DETECTION_API_IMAGE,
  routeAllTo,
  startStackUnderTraffic,
  stopStackUnderTraffic,
  unanswered,
} from '../helpers/embedded-stack.js';
import type { StackUnderTraffic } from '../helpers/embedded-stack.js';
import { REFERENCE_TARGET } from '../helpers/deployment-harness.js';

const RATE = 60;

function canary(tag: string, router: TrafficRouter, steps: number[], replicas: number, holdSeconds: number) {
  return testSpec({
    image: DETECTION_API_IMAGE(tag),
    replicas,
    strategy: 'canary',
    traffic: { router },
    readinessTimeoutSeconds: 60,
    monitor: { durationSeconds: holdSeconds, intervalSeconds: 2, window: '5s' },
    canary: { steps: steps.map((weight) => ({ weight, holdSeconds })), minRequests: 5, maxHoldExtensionSeconds: 20 },
    scaleDownDelaySeconds: 1,
  });
}

/** `RATE` requests/s through the router's entry point while `body` runs; fails if any went unanswered. */
async function underTraffic<T>(
  stack: EmbeddedStack,
  router: TrafficRouter,
  body: (traffic: TrafficGenerator) => Promise<T>,
): Promise<T> {
  const traffic = new TrafficGenerator(stack.local!.entryUrls[router], RATE);
  traffic.start();
  try {
    return await body(traffic);
  } finally {
    const score = await traffic.stop();
    assert.equal(score.connectionFailures, 0, `through ${router}, ${unanswered(score, stack)}`);
  }
}

describe('canary deployments through each router on the embedded default (dev server, local platform, Prometheus, worker process)', () => {
  let running: StackUnderTraffic;

  before(async () => {
    // The stack's own traffic is light and through the Service; each test sends its own through its router.
    running = await startStackUnderTraffic({ taskQueue: 'bluegreen-canary-e2e' }, 5);
  });

  after(async () => {
    await stopStackUnderTraffic(running);
  });

  /** Runs a good version's canary through `router` and checks each step's share by the entry point's counts. */
  async function goodCanary(router: TrafficRouter, tag: string, steps: number[]) {
    const { stack } = running;
    const stable = (await stack.local!.platform.describe(REFERENCE_TARGET)).activeSlot;
    await routeAllTo(stack, stable);
    return await underTraffic(stack, router, async () => {
      await stack.deployments!.start(canary(tag, router, steps, 2, 8));
      const { result, steps: shares } = await followCanary(stack, undefined, { router });
      assert.equal(result.outcome, 'Succeeded', result.message);
      assert.deepEqual(
        result.status.canary?.completed.map((c) => c.weight),
        steps,
      );
      assert.deepEqual(
        shares.map((s) => s.weight),
        steps,
        'every step was seen holding',
      );
      for (const step of shares.filter((s) => s.weight < 100)) {
        const share = (100 * step.canary) / step.total;
        assert.ok(step.total >= 200, `the ${step.weight} % hold saw ${step.total} requests`);
        assert.ok(
          Math.abs(share - step.weight) <= 2,
          `${router}: ${step.weight} % set, ${share.toFixed(1)} % served by the canary (${step.canary} of ${step.total})`,
        );
      }
      await routeAllTo(stack, otherSlot(stable));
      const live = await stack.local!.platform.describe(REFERENCE_TARGET);
      assert.equal(live.activeSlot, otherSlot(stable));
      assert.deepEqual([live.slots[otherSlot(stable)].readyReplicas, live.slots[stable].replicas], [2, 0]);
      return result;
    });
  }

  it('raises a good version 10, 50, 100 % through the HTTPRoute, each share served as set by the route, and puts it live with no failed request', async () => {
    const result = await goodCanary(TrafficRouter.GatewayApi, 'v2.2.0', [10, 50, 100]);
    for (const step of result.status.canary!.completed.slice(0, 2)) {
      assert.ok(step.observedShare !== null, `Prometheus saw the share at ${step.weight} %`);
    }
    const route = (await (
      await fetch(
        `${running.stack.local!.controlUrl}/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/detection-api`,
      )
    ).json()) as { backendRefs: unknown };
    assert.deepEqual(route.backendRefs, [
      { name: 'detection-api-blue', weight: 0 },
      { name: 'detection-api-green', weight: 100 },
    ]);
  });

  it('raises a good version 20, 100 % through NGINX canary annotations on a second Ingress, each share served as set by the entry Ingress', async () => {
    await goodCanary(TrafficRouter.Ingress, 'v2.2.1', [20, 100]);
    const ingress = async (name: string) =>
      (await (
        await fetch(`${running.stack.local!.controlUrl}/apis/networking.k8s.io/v1/namespaces/default/ingresses/${name}`)
      ).json()) as { backend: string; annotations: Record<string, string> };
    assert.equal(
      (await ingress('detection-api-ingress')).backend,
      'detection-api-blue',
      'the promotion moved the stable backend',
    );
    assert.equal(
      (await ingress('detection-api-ingress-canary')).annotations['nginx.ingress.kubernetes.io/canary-weight'],
      '0',
      'and let the canary Ingress go',
    );
  });

  it('rolls a faulty version back at its first step by replica ratio (33 %, the least 2 stable replicas allow): the canary answered only its share, and the stable slot never shrank', async () => {
    const { stack } = running;
    const stable = (await stack.local!.platform.describe(REFERENCE_TARGET)).activeSlot;
    const [stableDeployment, canaryDeployment] = [`detection-api-${stable}`, `detection-api-${otherSlot(stable)}`];
    await routeAllTo(stack, stable);
    await underTraffic(stack, TrafficRouter.ReplicaRatio, async (traffic) => {
      // 2 stable replicas and 1 canary give 33 %: the smallest step there.
      const before = await stack.servedBy(TrafficRouter.ReplicaRatio);
      const handle = await stack.deployments!.start(canary('v2.3.0', TrafficRouter.ReplicaRatio, [33, 100], 2, 40));
      const result = await deploymentResult(handle);
      assert.equal(result.outcome, 'RolledBack', result.message);
      assert.equal(result.reason, 'SloBreach');
      assert.equal(result.failedCheck, 'error-rate');
      assert.equal(result.status.canary?.step, 1);
      const after = await stack.servedBy(TrafficRouter.ReplicaRatio);
      const canaryServed = (after[canaryDeployment] ?? 0) - (before[canaryDeployment] ?? 0);
      const stableServed = (after[stableDeployment] ?? 0) - (before[stableDeployment] ?? 0);
      assert.ok(
        canaryServed > 0 && canaryServed < stableServed,
        `the canary served ${canaryServed}, the stable ${stableServed}`,
      );
      const errors = traffic.snapshot().serverErrorsBy[canaryDeployment] ?? 0;
      assert.ok(errors > 0 && errors < canaryServed, `${errors} of the canary's ${canaryServed} answers were errors`);
    });
    const live = await stack.local!.platform.describe(REFERENCE_TARGET);
    assert.equal(live.activeSlot, stable, 'the selector names the stable slot again');
    assert.deepEqual(
      [live.slots[stable].replicas, live.slots[stable].readyReplicas],
      [2, 2],
      'the stable slot stayed fully scaled',
    );
    assert.equal(live.slots[otherSlot(stable)].replicas, 0, 'the canary slot is restored');
  });
});
