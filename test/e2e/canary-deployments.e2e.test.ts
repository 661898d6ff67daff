/**
 * Canary deployments on the embedded default under steady traffic: the real Temporal dev server,
 * the worker process on the `local` platform, detection-API replicas behind the local router
 * (which plays weighted routing and replica ratios), and a real Prometheus. Each step's weight is
 * set and verified, the router's own counts give the share each slot served, and a faulty version
 * is rolled back at 5 % having answered only its share of the traffic.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deploymentResult } from '../../src/client/deployment-client.js';
import { followCanary } from '../../src/embedded/canary-shares.js';
import { testSpec } from '../helpers/deployment-harness.js';
import { DETECTION_API_IMAGE, startStackUnderTraffic, stopStackUnderTraffic } from '../helpers/embedded-stack.js';
import type { StackUnderTraffic } from '../helpers/embedded-stack.js';
import { REFERENCE_TARGET } from '../helpers/deployment-harness.js';

function canary(tag: string, router: 'gateway-api' | 'replica-ratio', steps: number[], replicas: number, holdSeconds: number) {
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

describe('canary deployments on the embedded default (dev server, local platform, Prometheus, worker process)', () => {
  let running: StackUnderTraffic;

  before(async () => {
    running = await startStackUnderTraffic({ taskQueue: 'bluegreen-canary-e2e' }, 60);
  });

  after(async () => {
    await stopStackUnderTraffic(running);
  });

  it('raises a good version 10, 50, 100 % by weight, each share served as set, and puts it live with no failed request', async () => {
    const { stack } = running;
    await stack.deployments!.start(canary('v2.2.0', 'gateway-api', [10, 50, 100], 2, 8));
    // The router's counts during each step's hold: the share each slot actually served.
    const { result, steps: shares } = await followCanary(stack);
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.deepEqual(result.status.canary?.completed.map((c) => c.weight), [10, 50, 100]);
    assert.deepEqual(shares.map((s) => s.weight), [10, 50, 100], 'every step was seen holding');
    for (const step of shares.filter((s) => s.weight < 100)) {
      const share = (100 * step.canary) / step.total;
      assert.ok(step.total >= 200, `the ${step.weight} % hold saw ${step.total} requests`);
      assert.ok(Math.abs(share - step.weight) <= 2, `${step.weight} % set, ${share.toFixed(1)} % served by the canary (${step.canary} of ${step.total})`);
    }
    for (const step of result.status.canary!.completed.slice(0, 2)) {
      assert.ok(step.observedShare !== null, `Prometheus saw the share at ${step.weight} %`);
    }
    const live = await stack.local!.platform.describe(REFERENCE_TARGET);
    assert.equal(live.activeSlot, 'green');
    assert.deepEqual([live.slots.green.readyReplicas, live.slots.blue.replicas], [2, 0]);
    assert.equal(running.traffic.snapshot().connectionFailures, 0, running.traffic.snapshot().failureSamples.join('; '));
  });

  it('rolls a faulty version back at its first step by replica ratio (33 %, the least 2 stable replicas allow): the canary answered only its share, and the stable slot never shrank', async () => {
    const { stack } = running;
    // Green is live with 2 replicas; 2 stable replicas and 1 canary give 33 %: the smallest step there.
    const before = await running.stack.servedBy();
    const errorsBefore = running.traffic.snapshot().serverErrorsBy['detection-api-blue'] ?? 0;
    const handle = await stack.deployments!.start(canary('v2.3.0', 'replica-ratio', [33, 100], 2, 40));
    const result = await deploymentResult(handle);
    assert.equal(result.outcome, 'RolledBack', result.message);
    assert.equal(result.reason, 'SloBreach');
    assert.equal(result.failedCheck, 'error-rate');
    assert.equal(result.status.canary?.step, 1);
    const after = await running.stack.servedBy();
    const canaryServed = (after['detection-api-blue'] ?? 0) - (before['detection-api-blue'] ?? 0);
    const stableServed = (after['detection-api-green'] ?? 0) - (before['detection-api-green'] ?? 0);
    assert.ok(canaryServed > 0 && canaryServed < stableServed, `the canary served ${canaryServed}, the stable ${stableServed}`);
    const errors = (running.traffic.snapshot().serverErrorsBy['detection-api-blue'] ?? 0) - errorsBefore;
    assert.ok(errors > 0 && errors < canaryServed, `${errors} of the canary's ${canaryServed} answers were errors`);
    const live = await stack.local!.platform.describe(REFERENCE_TARGET);
    assert.equal(live.activeSlot, 'green', 'the selector names the stable slot again');
    assert.deepEqual([live.slots.green.replicas, live.slots.green.readyReplicas], [2, 2], 'the stable slot stayed fully scaled');
    assert.equal(live.slots.blue.replicas, 0, 'the canary slot is restored');
  });
});
