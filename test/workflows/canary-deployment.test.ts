/**
 * The canary workflow on the real time-skipping Temporal server, with the platform and gates
 * replaced by the recording double: each scenario asserts the exact platform calls (weights
 * included), the state they leave behind, and the result.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import {
  abortUpdate,
  approveUpdate,
  promoteSignal,
  promoteUpdate,
  statusQuery,
} from '../../src/workflows/definitions.js';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import type { DeploymentSpecInput } from '../../src/deployment-spec/deployment-spec.js';
import { deploymentResult } from '../../src/client/deployment-client.js';
import { captureHistory, startDeployment, testSpec, withWorker } from '../helpers/deployment-harness.js';
import { eventually } from '../helpers/eventually.js';
import { inPreflightOrder, RecordingPlatformDouble } from '../helpers/recording-platform-double.js';
import { startTimeSkippingServer } from '../helpers/temporal-servers.js';

const NEW_IMAGE = 'registry.internal/detection-api:v2.2.0';
const LIVE_IMAGE = 'registry.internal/detection-api:v2.1.0';
const IDLE_IMAGE = 'registry.internal/detection-api:v2.0.0';

/** The procedure's four steps, each held 60 s, through weighted routing (3 replicas can express 5 %). */
function canarySpec(overrides: Partial<DeploymentSpecInput> = {}) {
  return testSpec({
    strategy: 'canary',
    traffic: { router: 'gateway-api' },
    monitor: { durationSeconds: 60, intervalSeconds: 10, window: '1m' },
    canary: {
      steps: [5, 25, 50, 100].map((weight) => ({ weight, holdSeconds: 60 })),
      minRequests: 100,
      maxHoldExtensionSeconds: 60,
    },
    scaleDownDelaySeconds: 30,
    ...overrides,
  });
}

/**
 * The same steps held 3 s, measured every second: for scenarios an operator acts in. Time skips
 * only while a test waits for a result, so these run on the wall clock, and briefly.
 */
function interactiveSpec(overrides: Partial<DeploymentSpecInput> = {}) {
  return canarySpec({
    monitor: { durationSeconds: 3, intervalSeconds: 1, window: '1m' },
    canary: {
      steps: [5, 25, 50, 100].map((weight) => ({ weight, holdSeconds: 3 })),
      minRequests: 100,
      maxHoldExtensionSeconds: 3,
    },
    ...overrides,
  });
}

/** The weights the workflow set, in order (0 is the rollback's). */
function weightsSet(double: RecordingPlatformDouble): number[] {
  return double.calls.filter((c) => c.name === 'setTrafficWeight').map((c) => (c.request as { weight: number }).weight);
}

/** The platform calls without the per-tick measurements, weights written beside their call. */
function calls(double: RecordingPlatformDouble): string[] {
  return inPreflightOrder(
    double.calls
      .filter((c) => !c.name.startsWith('tick:'))
      .map((c) => {
        const request = c.request as { weight?: number; replicas?: number };
        if (c.name === 'setTrafficWeight' || c.name === 'verifyTrafficWeight')
          return `${c.name} ${c.slot} ${request.weight}`;
        if (c.name === 'deploySlot' || c.name === 'scaleSlot' || c.name === 'waitForSlotReady')
          return `${c.name} ${c.slot} x${request.replicas}`;
        return `${c.name}${c.slot ? ` ${c.slot}` : ''}`;
      }),
  );
}

/** Up to the smoke suite: nothing has moved traffic yet. */
const BEFORE_TRAFFIC = [
  'describe',
  'evaluateActiveSlos blue',
  'readScrapeInterval blue',
  'deploySlot green x1',
  'waitForSlotReady green x1',
  'runSmokeSuite green',
];

/**
 * Each step's calls: capacity first (where the step needs more canary replicas), then the weight,
 * verified; the first hold reads the canary's restart baseline.
 */
const STEP_CALLS: Record<number, string[]> = {
  5: ['setTrafficWeight green 5', 'verifyTrafficWeight green 5', 'readRestarts green'],
  25: ['setTrafficWeight green 25', 'verifyTrafficWeight green 25'],
  50: ['deploySlot green x2', 'waitForSlotReady green x2', 'setTrafficWeight green 50', 'verifyTrafficWeight green 50'],
  100: [
    'deploySlot green x3',
    'waitForSlotReady green x3',
    'setTrafficWeight green 100',
    'verifyTrafficWeight green 100',
  ],
};

/** The rollback once traffic moved: the weight to 0, verified, before the canary slot is restored. */
/** Weight 0, verified; then the canary's evidence is captured; then the canary slot restored. */
const WEIGHT_ZERO_THEN_RESTORE = [
  'setTrafficWeight green 0',
  'verifyTrafficWeight green 0',
  'evidence:collectEvidence green',
  'evidence:rangeSlos green',
  'scaleSlot green x0',
];

function assertRestored(double: RecordingPlatformDouble): void {
  assert.equal(double.selector, 'blue', 'traffic ends on the stable slot');
  assert.equal(double.weight, 0, 'the canary has no weight left');
  assert.deepEqual(
    { image: double.slots.blue.image, replicas: double.slots.blue.replicas },
    { image: LIVE_IMAGE, replicas: 3 },
    'the stable slot was never shrunk',
  );
  assert.deepEqual(
    { image: double.slots.green.image, replicas: double.slots.green.replicas },
    { image: IDLE_IMAGE, replicas: 0 },
    'the canary slot is restored',
  );
}

function assertRolledBack(result: DeploymentResult, reason: string): void {
  assert.equal(result.outcome, 'RolledBack', result.message);
  assert.equal(result.reason, reason);
  assert.deepEqual([result.liveSlot, result.liveImage], ['blue', LIVE_IMAGE]);
}

describe('canaryDeploymentWorkflow on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;

  beforeEach(async () => {
    env = await startTimeSkippingServer();
  });

  afterEach(async () => {
    await env?.teardown();
  });

  it('raises the weight 5, 25, 50, 100 with capacity first, holds each under analysis, and ends as blue-green does', async () => {
    const double = new RecordingPlatformDouble();
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, canarySpec());
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'canary-succeeded');
      return result;
    });
    assert.deepEqual(calls(double), [
      ...BEFORE_TRAFFIC,
      ...STEP_CALLS[5]!,
      ...STEP_CALLS[25]!,
      ...STEP_CALLS[50]!,
      ...STEP_CALLS[100]!,
      'scaleSlot blue x0',
    ]);
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.deepEqual([result.liveSlot, result.liveImage], ['green', NEW_IMAGE]);
    assert.equal(double.selector, 'green');
    assert.deepEqual(double.slots.green, { image: NEW_IMAGE, replicas: 3, readyReplicas: 3, restarts: 0 });
    assert.equal(double.slots.blue.replicas, 0);
    const canary = result.status.canary!;
    assert.deepEqual(
      canary.completed.map((c) => [c.step, c.weight, c.observedShare]),
      [
        [1, 5, 5],
        [2, 25, 5],
        [3, 50, 5],
        [4, 100, 5],
      ],
      'every step is recorded with the share the double reports (500 of 10,000 requests)',
    );
    for (const step of canary.completed)
      assert.ok(step.seconds >= 60, `step ${step.step} was held ${step.seconds} s, at least its 60 s`);
    // Every tick measured both slots: the stable is the canary's baseline.
    const stableTicks = double.calls.filter((c) => c.name === 'tick:evaluateStableSlos').length;
    assert.equal(stableTicks, double.ticks);
    assert.ok(double.ticks >= 4 * 7, `${double.ticks} ticks: at least 7 per 60 s hold every 10 s`);
    assert.deepEqual(
      [...new Set(result.status.transitions.map((t) => t.phase))],
      ['Preflight', 'Deploying', 'SmokeTesting', 'Switching', 'Monitoring', 'CleaningUp', 'Succeeded'],
    );
    assert.equal(result.status.strategy, 'canary');
  });

  for (const [index, weight] of [5, 25, 50, 100].entries()) {
    it(`rolls back a breach at step ${index + 1} (${weight} %): weight 0, verified, before the canary slot is restored`, async () => {
      const double = new RecordingPlatformDouble();
      double.behaviour.sloValues = () => (double.weight === weight ? { 'error-rate': 0.2 } : {});
      const result = await withWorker(env, double, async (taskQueue) => {
        const handle = await startDeployment(env, taskQueue, canarySpec());
        const result = await deploymentResult(handle);
        if (weight === 25) await captureHistory(handle, 'canary-rolled-back-slo-breach');
        return result;
      });
      assertRolledBack(result, 'SloBreach');
      assert.equal(result.failedCheck, 'error-rate');
      const steps = [5, 25, 50, 100].slice(0, index + 1).flatMap((w) => STEP_CALLS[w]!);
      assert.deepEqual(calls(double), [...BEFORE_TRAFFIC, ...steps, ...WEIGHT_ZERO_THEN_RESTORE]);
      assert.deepEqual(weightsSet(double), [...[5, 25, 50, 100].slice(0, index + 1), 0]);
      assertRestored(double);
      assert.equal(result.status.canary?.step, index + 1);
    });
  }

  for (const [index, weight] of [5, 25, 50, 100].entries()) {
    it(`aborts at step ${index + 1} (${weight} %): weight 0, verified, then the canary slot restored`, async () => {
      const double = new RecordingPlatformDouble();
      const result = await withWorker(env, double, async (taskQueue) => {
        const handle = await startDeployment(env, taskQueue, interactiveSpec());
        await double.waitForCall('setTrafficWeight', index + 1);
        await double.waitForCall('tick:evaluateSlos', double.ticks + 1);
        // Between ticks: the time-skipping server fails the workflow task that cancels an activity
        // it saw complete in the meantime, and does not recover. Aborts that cut a call short are
        // drilled on the real dev server (test/e2e/abort-drills.e2e.test.ts).
        await new Promise((resolve) => setTimeout(resolve, 300));
        const answer = await handle.executeUpdate(abortUpdate, {
          args: [{ reason: `drill at ${weight} %`, by: 'test' }],
        });
        assert.match(answer.message, /abort accepted/);
        const result = await deploymentResult(handle);
        if (weight === 50) await captureHistory(handle, 'canary-rolled-back-abort');
        return result;
      });
      assertRolledBack(result, 'Aborted');
      const steps = [5, 25, 50, 100].slice(0, index + 1).flatMap((w) => STEP_CALLS[w]!);
      assert.deepEqual(calls(double), [...BEFORE_TRAFFIC, ...steps, ...WEIGHT_ZERO_THEN_RESTORE]);
      assertRestored(double);
    });
  }

  it('waits at an until-promote step, measuring, and goes on when promoted; promote is refused before traffic moves', async () => {
    const double = new RecordingPlatformDouble();
    const spec = interactiveSpec({
      gates: { approveBeforeSwitch: true },
      canary: {
        steps: [
          { weight: 25, untilPromote: true },
          { weight: 100, holdSeconds: 3 },
        ],
        minRequests: 100,
      },
    });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, spec);
      await eventually(
        async () => (await handle.query(statusQuery)).awaiting?.gate === 'beforeSwitch',
        'the beforeSwitch gate',
      );
      await assert.rejects(handle.executeUpdate(promoteUpdate, { args: [{ by: 'test' }] }), (error: unknown) => {
        assert.ok(error instanceof WorkflowUpdateFailedError);
        assert.match(error.cause?.message ?? '', /the canary has no traffic/);
        return true;
      });
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'test' }] });
      await double.waitForCall('setTrafficWeight', 1);
      await double.waitForCall('tick:evaluateSlos', 8);
      const status = await handle.query(statusQuery);
      assert.equal(status.canary?.weight, 25);
      assert.equal(status.canary?.hold?.untilPromote, true);
      assert.deepEqual(weightsSet(double), [25], 'eight ticks after its weight, the step still holds');
      const answer = await handle.executeUpdate(promoteUpdate, { args: [{ by: 'release-manager' }] });
      assert.match(answer.message, /step 1\/2 \(25 %\) ends its hold now/);
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'canary-promoted');
      return result;
    });
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.deepEqual(weightsSet(double), [25, 100]);
    assert.equal(result.status.canary?.promotedBy, 'release-manager');
    assert.ok(double.ticks >= 8);
  });

  it('promote --full skips the remaining steps to 100 %, scaling the canary first', async () => {
    const double = new RecordingPlatformDouble();
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, interactiveSpec());
      await double.waitForCall('setTrafficWeight', 1);
      await double.waitForCall('tick:evaluateSlos', double.ticks + 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The signal form: what `temporal workflow signal --name promote` sends.
      await handle.signal(promoteSignal, { by: 'test', full: true });
      return await deploymentResult(handle);
    });
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.deepEqual(weightsSet(double), [5, 100]);
    assert.deepEqual(calls(double), [...BEFORE_TRAFFIC, ...STEP_CALLS[5]!, ...STEP_CALLS[100]!, 'scaleSlot blue x0']);
    assert.deepEqual(
      result.status.canary?.completed.map((c) => c.weight),
      [5, 100],
    );
  });

  it('never calls a step successful on too few requests: extends the hold, pauses, and goes on once the data comes', async () => {
    // 60 s hold every 10 s, extended at most 60 s: ticks 1 to 13 find 12 requests, the pause's
    // first ticks too; from tick 17 the canary has served enough, and the pause ends by itself
    // after 3 Successful ticks in a row.
    const double = new RecordingPlatformDouble();
    double.behaviour.requests = (call) => ({ canary: call >= 17 ? 400 : 12, stable: 9000 });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, canarySpec());
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'canary-inconclusive-low-traffic');
      return result;
    });
    assert.equal(result.outcome, 'Succeeded', result.message);
    const paused = result.status.transitions.find((t) => t.phase === 'Paused');
    assert.match(
      paused?.message ?? '',
      /step 1\/4: no Successful tick in 1[23]\d s at 5 % \(12 canary requests in the window, at least 100 needed\)/,
    );
    const resumed = result.status.transitions.find(
      (t) => t.phase === 'Monitoring' && /resumed by itself/.test(t.message),
    );
    assert.match(resumed?.message ?? '', /step 1\/4: resumed by itself after 3 successful ticks in a row/);
    const first = result.status.canary!.completed[0]!;
    assert.ok(
      first.seconds >= 120,
      `the first step lasted ${first.seconds} s: its hold, the whole extension, then the pause`,
    );
    assert.equal(first.canaryRequests, 400);
    assert.deepEqual(weightsSet(double), [5, 25, 50, 100]);
  });

  it('refuses a replica-ratio canary whose live slot runs another count than replicas, before anything is written', async () => {
    const double = new RecordingPlatformDouble();
    const result = await withWorker(env, double, async (taskQueue) => {
      const spec = canarySpec({
        replicas: 2,
        traffic: { router: 'replica-ratio' },
        canary: {
          steps: [
            { weight: 50, holdSeconds: 60 },
            { weight: 100, holdSeconds: 60 },
          ],
          minRequests: 100,
          maxHoldExtensionSeconds: 60,
        },
      });
      const handle = await startDeployment(env, taskQueue, spec);
      return await deploymentResult(handle);
    });
    assert.deepEqual([result.outcome, result.reason, result.failedCheck], ['Failed', 'InvalidSpec', 'spec']);
    assert.match(
      result.message,
      /- replicas: replica-ratio splits traffic by replica counts, .* the live slot blue \(detection-api-blue\) runs 3/,
    );
    assert.deepEqual(weightsSet(double), [], 'no weight was set');
    assert.equal(double.calls.filter((c) => c.name === 'deploySlot').length, 0, 'nothing was deployed');
  });

  it('rolls back when the requests never come and nobody decides', async () => {
    const double = new RecordingPlatformDouble();
    double.behaviour.requests = () => ({ canary: 3, stable: 200 });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, canarySpec({ gates: { approvalTimeoutSeconds: 300 } }));
      return await deploymentResult(handle);
    });
    assertRolledBack(result, 'NoDecision');
    assert.deepEqual(weightsSet(double), [5, 0]);
    assertRestored(double);
  });

  it('pauses with a diagnosis instead of rolling back when both slots breach the same SLO, and rolls back on abort', async () => {
    const double = new RecordingPlatformDouble();
    double.behaviour.sloValues = () => (double.weight === 25 ? { 'error-rate': 0.3 } : {});
    double.behaviour.stableSloValues = () => (double.weight === 25 ? { 'error-rate': 0.29 } : {});
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, interactiveSpec());
      await eventually(
        async () => (await handle.query(statusQuery)).awaiting?.gate === 'sharedCause',
        'the sharedCause gate',
      );
      const status = await handle.query(statusQuery);
      assert.match(status.canary?.sharedCause ?? '', /'error-rate' is 0\.3 on the canary and 0\.29 on the stable slot/);
      assert.match(status.canary?.sharedCause ?? '', /rolling the canary back would not help/);
      assert.deepEqual(weightsSet(double), [5, 25], 'no rollback while the operator decides');
      await handle.executeUpdate(abortUpdate, {
        args: [{ reason: 'the shared database is down; stop here', by: 'test' }],
      });
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'canary-shared-cause-aborted');
      return result;
    });
    assertRolledBack(result, 'Aborted');
    assert.deepEqual(weightsSet(double), [5, 25, 0]);
    assertRestored(double);
  });

  it('goes on after an operator approves a shared cause, judging the canary again once the shared breach is over', async () => {
    const double = new RecordingPlatformDouble();
    // A shared dependency is slow at 50 % for a while, on both slots; the operator lets the canary
    // go on, the dependency recovers five ticks later, and the step is judged on its own again.
    let approvedAt: number | null = null;
    const slow = () => double.weight === 50 && (approvedAt === null || double.ticks < approvedAt + 5);
    double.behaviour.sloValues = () => (slow() ? { 'p95-latency': 0.9 } : {});
    double.behaviour.stableSloValues = () => (slow() ? { 'p95-latency': 0.8 } : {});
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, interactiveSpec());
      await eventually(
        async () => (await handle.query(statusQuery)).awaiting?.gate === 'sharedCause',
        'the sharedCause gate',
      );
      approvedAt = double.ticks;
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'test', gate: 'sharedCause' }] });
      return await deploymentResult(handle);
    });
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.deepEqual(weightsSet(double), [5, 25, 50, 100]);
    assert.ok(
      result.status.transitions.some((t) =>
        /resumed by an operator after a shared cause: both slots breach/.test(t.message),
      ),
    );
  });

  it('rolls back a canary worse than the stable allows, though within its absolute threshold', async () => {
    const double = new RecordingPlatformDouble();
    double.behaviour.sloValues = () => (double.weight === 25 ? { 'error-rate': 0.008 } : {});
    double.behaviour.stableSloValues = () => ({ 'error-rate': 0.001 });
    const spec = canarySpec();
    spec.monitor.slos = spec.monitor.slos.map((slo) =>
      slo.name === 'error-rate' ? { ...slo, comparedToStable: { factor: 1, offset: 0.005 } } : slo,
    );
    const result = await withWorker(
      env,
      double,
      async (taskQueue) => await deploymentResult(await startDeployment(env, taskQueue, spec)),
    );
    assertRolledBack(result, 'SloBreach');
    assert.deepEqual(weightsSet(double), [5, 25, 0]);
    const breach = result.status.monitor?.latest['error-rate'];
    assert.equal(breach?.result, 'Failed');
    assert.deepEqual(breach?.stable, { value: 0.001, threshold: 0.006 });
  });

  it('resumes mid-step when its worker stops and another one starts', async () => {
    const double = new RecordingPlatformDouble();
    const taskQueue = `canary-restart-${Date.now()}`;
    const handle = await withWorker(
      env,
      double,
      async () => {
        const handle = await startDeployment(env, taskQueue, interactiveSpec());
        await double.waitForCall('setTrafficWeight', 2);
        await double.waitForCall('tick:evaluateSlos', double.ticks + 2);
        return handle;
      },
      { taskQueue, options: { maxCachedWorkflows: 0 } },
    );
    assert.equal((await handle.describe()).status.name, 'RUNNING');
    const result = await withWorker(env, double, async () => await deploymentResult(handle), { taskQueue });
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.deepEqual(weightsSet(double), [5, 25, 50, 100], 'no weight was written twice');
    assert.deepEqual(calls(double), [
      ...BEFORE_TRAFFIC,
      ...STEP_CALLS[5]!,
      ...STEP_CALLS[25]!,
      ...STEP_CALLS[50]!,
      ...STEP_CALLS[100]!,
      'scaleSlot blue x0',
    ]);
  });
});
