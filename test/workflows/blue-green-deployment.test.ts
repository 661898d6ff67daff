/**
 * The deployment workflow on the real time-skipping Temporal server, with the platform and gates
 * replaced by a recording double: each scenario asserts the exact platform calls, the state they
 * leave behind, and the result.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import {
  abortSignal,
  abortUpdate,
  approveSignal,
  approveUpdate,
  statusQuery,
} from '../../src/workflows/definitions.js';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import type { MonitorWindowResult } from '../../src/shared/monitor-window.js';
import { Notifiers, WebhookNotifier } from '../../src/notifications/webhook-notifier.js';
import { PagerDutyNotifier } from '../../src/notifications/pagerduty-notifier.js';
import { freePort } from '../helpers/detection-api-process.js';
import {
  captureHistory,
  REFERENCE_TARGET,
  startDeployment,
  testSpec,
  withWorker,
} from '../helpers/deployment-harness.js';
import { eventually } from '../helpers/eventually.js';
import { RecordingPlatformDouble } from '../helpers/recording-platform-double.js';
import { startTimeSkippingServer } from '../helpers/temporal-servers.js';
import { DeploymentClient, deploymentResult } from '../../src/client/deployment-client.js';
import type { EvaluateSlosRequest } from '../../src/activities/contract.js';

const NEW_IMAGE = 'registry.internal/detection-api:v2.2.0';
const LIVE_IMAGE = 'registry.internal/detection-api:v2.1.0';
const IDLE_IMAGE = 'registry.internal/detection-api:v2.0.0';

/** The forward calls of a deployment from blue to green, up to and including `last`. */
function forwardCalls(last: string): string[] {
  const all = [
    'describe',
    'evaluateActiveSlos blue',
    'readScrapeInterval blue',
    'deploySlot green',
    'waitForSlotReady green',
    'runSmokeSuite green',
    'switchTraffic green',
    'verifyTraffic green',
    'readRestarts green',
  ];
  return all.slice(0, all.indexOf(last) + 1);
}

/** Compensation before traffic moved: the idle slot back to what it was. */
const RESTORE_IDLE = ['scaleSlot green'];
/** Compensation after traffic moved: selector back first, verified, then the idle slot restored. */
const SWITCH_BACK_THEN_RESTORE = ['switchTraffic blue', 'verifyTraffic blue', 'scaleSlot green'];

/** Blue serves the old version; green is back to its previous image and replica count. */
function assertRestored(double: RecordingPlatformDouble): void {
  assert.equal(double.selector, 'blue', 'traffic must end on the old slot');
  assert.deepEqual(
    { image: double.slots.blue.image, replicas: double.slots.blue.replicas },
    { image: LIVE_IMAGE, replicas: 3 },
    'the old slot must be untouched',
  );
  assert.deepEqual(
    { image: double.slots.green.image, replicas: double.slots.green.replicas },
    { image: IDLE_IMAGE, replicas: 0 },
    'the idle slot must be restored to its previous image and replicas',
  );
}

function assertRolledBack(result: DeploymentResult, reason: string, failedCheck?: string): void {
  assert.equal(result.outcome, 'RolledBack', result.message);
  assert.equal(result.reason, reason);
  if (failedCheck !== undefined) assert.equal(result.failedCheck, failedCheck);
  assert.equal(result.liveSlot, 'blue');
  assert.equal(result.liveImage, LIVE_IMAGE);
  assert.equal(result.status.phase, 'RolledBack');
}

describe('blueGreenDeploymentWorkflow on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;

  // A server per scenario: a cancelled activity that outlives its workflow keeps the test
  // server's clock from skipping for the rest of that server's life, so scenarios must not share.
  beforeEach(async () => {
    env = await startTimeSkippingServer();
  });

  afterEach(async () => {
    await env?.teardown();
  });

  it('switches through an Ingress: every traffic call carries the router and its objects, and the history names the Ingress', async () => {
    const double = new RecordingPlatformDouble();
    const spec = testSpec({
      traffic: { router: 'ingress', ingress: 'edge' },
      monitor: { durationSeconds: 20, intervalSeconds: 5 },
      scaleDownDelaySeconds: 0,
    });
    const { result, summaries } = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, spec);
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'succeeded-through-ingress');
      const events = (await handle.fetchHistory()).events ?? [];
      const summaries = events
        .map((e) =>
          e.userMetadata?.summary?.data
            ? (JSON.parse(Buffer.from(e.userMetadata.summary.data).toString()) as string)
            : null,
        )
        .filter(Boolean);
      return { result, summaries };
    });
    assert.equal(result.outcome, 'Succeeded', result.message);
    const traffic = double.calls.filter(
      (c) => c.name === 'switchTraffic' || c.name === 'verifyTraffic' || c.name === 'describe',
    );
    assert.ok(traffic.length >= 3);
    for (const call of traffic) {
      const target =
        call.name === 'describe'
          ? (call.request as typeof REFERENCE_TARGET)
          : (call.request as { target: typeof REFERENCE_TARGET }).target;
      assert.deepEqual(target.traffic, {
        router: 'ingress',
        slotServices: { blue: 'detection-api-blue', green: 'detection-api-green' },
        ingress: 'edge',
        canaryIngress: 'edge-canary',
      });
    }
    assert.ok(summaries.includes('switch ingress edge to green'), summaries.join(' | '));
    assert.ok(summaries.includes('verify ingress edge serves green'), summaries.join(' | '));
  });

  it('deploys to the idle slot, switches, monitors the whole window and scales the old slot down', async () => {
    const double = new RecordingPlatformDouble();
    let run = '';
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, testSpec());
      run = handle.firstExecutionRunId;
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'succeeded-blue-to-green');
      const events = (await handle.fetchHistory()).events ?? [];
      const timers = events
        .filter((e) => e.timerStartedEventAttributes)
        .map((e) => Number(e.timerStartedEventAttributes!.startToFireTimeout!.seconds));
      // The five-minute window of the procedure, every 5 s (60 ticks), is one activity; then the
      // 30 s scale-down delay. All of it ran on skipped time.
      assert.deepEqual(timers, [30]);
      const windows = events.filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'monitorWindow',
      );
      assert.equal(windows.length, 1);
      const completed = events.find(
        (e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(windows[0]!.eventId),
      );
      const answer = env.client.options.loadedDataConverter.payloadConverter.fromPayload<MonitorWindowResult>(
        completed!.activityTaskCompletedEventAttributes!.result!.payloads![0]!,
      );
      // Every sample of the window is in the history, in the activity's result.
      assert.deepEqual(
        answer.samples.map((sample) => [sample.tick, sample.result]),
        Array.from({ length: 60 }, (_, i) => [i + 1, 'Successful']),
      );
      // 757 events when each tick was a timer and an activity; 99 with the window as one activity;
      // now 8 activities (preflight's reads in one, and no notification from a worker with no
      // notifier), whatever the window's length.
      const tasks = events.filter((e) => e.workflowTaskCompletedEventAttributes).length;
      assert.ok(
        events.length < 80 && tasks <= 12,
        `${events.length} history events and ${tasks} workflow tasks for a 60-tick deployment`,
      );
      return result;
    });

    assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), 'scaleSlot blue']);
    assert.equal(double.ticks, 60);
    assert.deepEqual(double.calls.find((c) => c.name === 'deploySlot')?.request, {
      target: REFERENCE_TARGET,
      slot: 'green',
      image: NEW_IMAGE,
      version: 'v2.2.0',
      run,
      replicas: 3,
    });
    // The window measures this run's series: the run that labelled the pods.
    assert.equal(
      (double.calls.find((c) => c.name === 'tick:evaluateSlos')?.request as { run?: string } | undefined)?.run,
      run,
    );
    assert.equal(double.selector, 'green');
    assert.deepEqual(double.slots.green, { image: NEW_IMAGE, replicas: 3, readyReplicas: 3, restarts: 0 });
    assert.equal(double.slots.blue.replicas, 0, 'the old slot is scaled to zero, not left running');
    assert.equal(result.outcome, 'Succeeded');
    assert.deepEqual(
      [result.fromSlot, result.toSlot, result.liveSlot, result.liveImage],
      ['blue', 'green', 'green', NEW_IMAGE],
    );
    assert.deepEqual(
      result.status.transitions.map((t) => t.phase),
      ['Preflight', 'Deploying', 'SmokeTesting', 'Switching', 'Monitoring', 'CleaningUp', 'Succeeded'],
    );
    assert.equal(result.status.monitor?.tick, 60);
    assert.equal(result.status.monitor?.latest['error-rate']?.value, 0.001);
    assert.equal(result.status.smoke?.checks.length, 7);
  });

  it('sends the next deployment the other way, from green back to blue', async () => {
    const double = new RecordingPlatformDouble();
    const results = await withWorker(env, double, async (taskQueue) => {
      const first = await deploymentResult(await startDeployment(env, taskQueue, testSpec()));
      const next = await startDeployment(env, taskQueue, testSpec({ image: 'registry.internal/detection-api:v2.3.0' }));
      const second = await deploymentResult(next);
      await captureHistory(next, 'succeeded-green-to-blue');
      return [first, second];
    });
    assert.deepEqual(
      results.map((r) => [r.outcome, r.fromSlot, r.toSlot]),
      [
        ['Succeeded', 'blue', 'green'],
        ['Succeeded', 'green', 'blue'],
      ],
    );
    assert.equal(double.selector, 'blue');
    assert.equal(double.slots.blue.image, 'registry.internal/detection-api:v2.3.0');
    assert.equal(double.slots.green.replicas, 0);
    const secondRun = double.platformCalls().slice(double.platformCalls().lastIndexOf('describe'));
    assert.deepEqual(secondRun, [
      'describe',
      'evaluateActiveSlos green',
      'readScrapeInterval green',
      'deploySlot blue',
      'waitForSlotReady blue',
      'runSmokeSuite blue',
      'switchTraffic blue',
      'verifyTraffic blue',
      'readRestarts blue',
      'scaleSlot green',
    ]);
  });

  it('restores the idle slot when it never becomes ready, and never moves traffic', async () => {
    const double = new RecordingPlatformDouble({ behaviour: { readinessTimeout: true } });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, testSpec());
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'rolled-back-readiness-timeout');
      return result;
    });
    assert.deepEqual(double.platformCalls(), [...forwardCalls('waitForSlotReady green'), ...RESTORE_IDLE]);
    assert.deepEqual(double.calls.at(-1)?.request, {
      target: double.calls[0]!.request,
      slot: 'green',
      replicas: 0,
      image: IDLE_IMAGE,
    });
    assertRestored(double);
    assertRolledBack(result, 'ReadinessTimeout', 'waitForSlotReady');
    assert.match(result.message, /0\/3 replicas of detection-api-green ready after 180 s/);
  });

  it('restores the idle slot when a smoke check fails, naming the check', async () => {
    const double = new RecordingPlatformDouble({ behaviour: { failSmokeCheck: 'accuracy-flag' } });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, testSpec());
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'rolled-back-smoke-failed');
      return result;
    });
    assert.deepEqual(double.platformCalls(), [...forwardCalls('runSmokeSuite green'), ...RESTORE_IDLE]);
    assertRestored(double);
    assertRolledBack(result, 'SmokeFailed', 'accuracy-flag');
    assert.match(result.message, /smoke check 'accuracy-flag' failed/);
    assert.equal(result.status.smoke?.checks.find((c) => c.name === 'accuracy-flag')?.verdict, 'failed');
  });

  it('restores the idle slot when nobody approves the switch before the approval timeout', async () => {
    const double = new RecordingPlatformDouble();
    const spec = testSpec({ gates: { approveBeforeSwitch: true, approvalTimeoutSeconds: 1800 } });
    const result = await withWorker(env, double, async (taskQueue) =>
      deploymentResult(await startDeployment(env, taskQueue, spec)),
    );
    assert.deepEqual(double.platformCalls(), [...forwardCalls('runSmokeSuite green'), ...RESTORE_IDLE]);
    assertRestored(double);
    assertRolledBack(result, 'ApprovalTimeout', 'beforeSwitch');
    assert.ok(result.status.transitions.some((t) => t.phase === 'AwaitingApproval'));
  });

  it('waits at both approval gates and goes on when each is approved', async () => {
    const double = new RecordingPlatformDouble();
    const spec = testSpec({
      gates: { approveBeforeSwitch: true, approveBeforeCleanup: true },
      monitor: { durationSeconds: 3, intervalSeconds: 1 },
    });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, spec);
      for (const gate of ['beforeSwitch', 'beforeCleanup'] as const) {
        await eventually(async () => (await handle.query(statusQuery)).awaiting?.gate === gate);
        assert.equal((await handle.query(statusQuery)).phase, 'AwaitingApproval');
        await handle.signal(approveSignal, { by: 'operator', gate });
      }
      return await deploymentResult(handle);
    });
    assert.equal(result.outcome, 'Succeeded');
    assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), 'scaleSlot blue']);
    assert.equal(result.status.transitions.filter((t) => t.phase === 'AwaitingApproval').length, 2);
  });

  it('captures the evidence of the failing slot after traffic is back and before it is scaled down, and keeps its summary', async () => {
    const double = new RecordingPlatformDouble({
      behaviour: { sloValues: (tick) => (tick === 3 ? { 'error-rate': 0.05 } : {}) },
    });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, testSpec());
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'rolled-back-slo-breach-evidence');
      return result;
    });
    assertRolledBack(result, 'SloBreach', 'error-rate');
    const order = double.calls.map((c) => c.name).filter((name) => !name.startsWith('tick:'));
    assert.deepEqual(
      order.slice(-5),
      ['switchTraffic', 'verifyTraffic', 'evidence:collectEvidence', 'evidence:rangeSlos', 'scaleSlot'],
      'traffic first, evidence next, the slot last',
    );
    const capture = double.calls.find((c) => c.name === 'evidence:collectEvidence')!.request as {
      slot: string;
      peer: string;
      tailLines: number;
    };
    assert.deepEqual([capture.slot, capture.peer, capture.tailLines], ['green', 'blue', 200]);
    const evidence = result.status.evidence!;
    assert.equal(evidence.breach, 'error-rate = 0.05 (must be < 0.01)');
    assert.deepEqual([evidence.slot, evidence.events, evidence.restartedPods, evidence.problems], ['green', 3, [], []]);
    assert.ok(evidence.bytes > 0 && evidence.bytes <= 512 * 1024, `${evidence.bytes} bytes`);
  });

  it('rolls back as ever when the evidence cannot be captured, and says why', async () => {
    const double = new RecordingPlatformDouble({ behaviour: { failSmokeCheck: 'health', failEvidence: true } });
    const result = await withWorker(env, double, async (taskQueue) =>
      deploymentResult(await startDeployment(env, taskQueue, testSpec())),
    );
    assertRolledBack(result, 'SmokeFailed', 'health');
    assertRestored(double);
    assert.equal(result.status.evidence ?? null, null);
    assert.deepEqual(
      result.warnings.filter((w) => w.startsWith('evidence')),
      ['evidence of green not captured: read the log of a pod: pods "x" is forbidden: cannot get resource "pods/log"'],
    );
  });

  it('switches back first and then restores the idle slot on an SLO breach', async () => {
    const double = new RecordingPlatformDouble({
      behaviour: { sloValues: (tick) => (tick === 3 ? { 'error-rate': 0.05 } : {}) },
    });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, testSpec());
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'rolled-back-slo-breach');
      return result;
    });
    assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), ...SWITCH_BACK_THEN_RESTORE]);
    assert.equal(double.ticks, 3);
    assertRestored(double);
    assertRolledBack(result, 'SloBreach', 'error-rate');
    assert.match(result.message, /SLO 'error-rate' breached: 0.05 \(must be < 0.01\)/);
  });

  it('rolls back when the new slot restarts a pod during monitoring', async () => {
    const double = new RecordingPlatformDouble({ behaviour: { restartsAt: (tick) => (tick >= 2 ? 1 : 0) } });
    const result = await withWorker(env, double, async (taskQueue) =>
      deploymentResult(await startDeployment(env, taskQueue, testSpec())),
    );
    assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), ...SWITCH_BACK_THEN_RESTORE]);
    assertRestored(double);
    assertRolledBack(result, 'SloBreach', 'pod-restarts');
    assert.equal(result.status.monitor?.restarts, 1);
  });

  it('never reports success when the SLOs cannot be measured: rolls back at the consecutive error limit', async () => {
    const double = new RecordingPlatformDouble({
      behaviour: {
        sloValues: () => {
          throw new Error('connect ECONNREFUSED 127.0.0.1:9090');
        },
      },
    });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, testSpec());
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'rolled-back-measurement-errors');
      return result;
    });
    assert.equal(double.ticks, 4, 'consecutiveErrorLimit defaults to 4');
    assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), ...SWITCH_BACK_THEN_RESTORE]);
    assertRestored(double);
    assertRolledBack(result, 'MeasurementErrors', 'measurement');
    assert.equal(result.status.monitor?.errors, 4);
  });

  it('pauses on inconclusive data and rolls back when nobody decides', async () => {
    const double = new RecordingPlatformDouble({ behaviour: { sloValues: () => ({ 'error-rate': null }) } });
    const spec = testSpec({ gates: { approvalTimeoutSeconds: 120 } });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, spec);
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'rolled-back-no-decision');
      return result;
    });
    // Warm-up 2 x 1 s scrapes + one 5 s tick: ticks 1 and 2 are not counted; the seventh counted
    // one (tick 9) pauses, and the pause goes on measuring every 5 s until the 120 s timeout.
    assert.equal(result.status.monitor?.warmUpSeconds, 7);
    assert.equal(result.status.monitor?.tick, 9, 'inconclusiveLimit 6: the seventh counted inconclusive tick pauses');
    const paused = result.status.monitor?.pausedTicks ?? 0;
    assert.ok(paused >= 20 && paused <= 24, `measured every 5 s while paused (${paused} ticks)`);
    assert.equal(double.ticks, 9 + paused);
    assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), ...SWITCH_BACK_THEN_RESTORE]);
    assertRestored(double);
    assertRolledBack(result, 'NoDecision', 'inconclusive');
    assert.ok(result.status.transitions.some((t) => t.phase === 'Paused'));
  });

  it('does not pass a monitor window in which nothing could be measured', async () => {
    const double = new RecordingPlatformDouble({ behaviour: { sloValues: () => ({ 'error-rate': null }) } });
    const spec = testSpec({
      monitor: { durationSeconds: 20, intervalSeconds: 5 },
      gates: { approvalTimeoutSeconds: 300 },
    });
    const result = await withWorker(env, double, async (taskQueue) =>
      deploymentResult(await startDeployment(env, taskQueue, spec)),
    );
    const paused = result.status.monitor?.pausedTicks ?? 0;
    assert.equal(double.ticks, 4 + paused, 'four inconclusive ticks, under the limit of 6, then the pause measured on');
    assert.ok(paused >= 50, `${paused} ticks while paused`);
    assertRolledBack(result, 'NoDecision', 'inconclusive');
    assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), ...SWITCH_BACK_THEN_RESTORE]);
  });

  it('resumes monitoring when an operator approves after inconclusive data', async () => {
    const double = new RecordingPlatformDouble({
      behaviour: { sloValues: (tick) => (tick <= 2 ? { 'error-rate': null } : {}) },
    });
    // No warm-up and no pause ending by itself: only the operator ends it.
    const spec = testSpec({
      monitor: {
        durationSeconds: 5,
        intervalSeconds: 1,
        inconclusiveLimit: 1,
        initialDelaySeconds: 0,
        resumeWhenConclusive: 0,
      },
    });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, spec);
      await eventually(async () => (await handle.query(statusQuery)).phase === 'Paused');
      await handle.signal(approveSignal, { by: 'operator' });
      return await deploymentResult(handle);
    });
    assert.equal(result.outcome, 'Succeeded');
    assert.equal(result.status.monitor?.inconclusive, 2);
    assert.equal(double.selector, 'green');
  });

  describe('monitoring at the scrape intervals teams run', () => {
    it('counts missing data only after the warm-up the scrape interval needs: a healthy release at 30 s passes unattended', async () => {
      // Scraped every 30 s: no data for the first 60 s (13 ticks at 5 s), then healthy.
      const double = new RecordingPlatformDouble({
        behaviour: {
          scrapeIntervalSeconds: 30,
          sloValues: (call) => (call <= 13 ? { 'error-rate': null, 'p95-latency': null } : {}),
        },
      });
      const spec = testSpec({ monitor: { durationSeconds: 300, intervalSeconds: 5, window: '2m' } });
      const result = await withWorker(env, double, async (taskQueue) =>
        deploymentResult(await startDeployment(env, taskQueue, spec)),
      );
      assert.equal(result.outcome, 'Succeeded', result.message);
      assert.deepEqual([result.status.monitor?.warmUpSeconds, result.status.monitor?.scrapeIntervalSeconds], [65, 30]);
      assert.equal(result.status.monitor?.inconclusive, 13);
      assert.ok(!result.status.transitions.some((t) => t.phase === 'Paused'), 'never paused');
      assert.match(
        result.status.transitions.find((t) => t.phase === 'Monitoring')!.message,
        /missing data counts after a 65 s warm-up \(scrape interval 30 s\)/,
      );
      assert.deepEqual(result.warnings, []);
    });

    it('counts Inconclusive in a row: scattered no-data ticks never pause', async () => {
      // Every third tick has no data (a scrape that landed late), after the warm-up too.
      const double = new RecordingPlatformDouble({
        behaviour: { sloValues: (call) => (call % 3 === 0 ? { 'error-rate': null } : {}) },
      });
      const spec = testSpec({ monitor: { durationSeconds: 100, intervalSeconds: 5, inconclusiveLimit: 1 } });
      const result = await withWorker(env, double, async (taskQueue) =>
        deploymentResult(await startDeployment(env, taskQueue, spec)),
      );
      assert.equal(result.outcome, 'Succeeded', result.message);
      assert.ok((result.status.monitor?.inconclusive ?? 0) >= 6);
      assert.ok(!result.status.transitions.some((t) => t.phase === 'Paused'));
    });

    it('goes on measuring while paused, and ends the pause by itself after 3 successful ticks in a row', async () => {
      const double = new RecordingPlatformDouble({
        behaviour: { sloValues: (call) => (call <= 5 ? { 'error-rate': null } : {}) },
      });
      const spec = testSpec({
        monitor: { durationSeconds: 30, intervalSeconds: 5, inconclusiveLimit: 2, initialDelaySeconds: 0 },
      });
      const result = await withWorker(env, double, async (taskQueue) =>
        deploymentResult(await startDeployment(env, taskQueue, spec)),
      );
      assert.equal(result.outcome, 'Succeeded', result.message);
      const phases = result.status.transitions.map((t) => t.phase);
      assert.deepEqual(phases.slice(phases.indexOf('Monitoring')), [
        'Monitoring',
        'Paused',
        'Monitoring',
        'CleaningUp',
        'Succeeded',
      ]);
      assert.match(
        result.status.transitions[phases.lastIndexOf('Monitoring')]!.message,
        /resumed by itself after 3 successful ticks in a row at tick 3\/6/,
      );
      assert.equal(result.status.monitor?.pausedTicks, 5, 'two more without data, then three with');
      assert.equal(result.status.awaiting, null);
    });

    it('rolls back on a breach seen while paused', async () => {
      const double = new RecordingPlatformDouble({
        behaviour: { sloValues: (call) => (call <= 3 ? { 'error-rate': null } : { 'error-rate': 0.2 }) },
      });
      const spec = testSpec({
        monitor: { durationSeconds: 60, intervalSeconds: 5, inconclusiveLimit: 2, initialDelaySeconds: 0 },
      });
      const result = await withWorker(env, double, async (taskQueue) =>
        deploymentResult(await startDeployment(env, taskQueue, spec)),
      );
      assertRolledBack(result, 'SloBreach', 'error-rate');
      assert.equal(result.status.monitor?.pausedTicks, 1);
      assertRestored(double);
    });

    it('warns, with numbers, of a window or a duration too short for the scrape interval', async () => {
      const double = new RecordingPlatformDouble({ behaviour: { scrapeIntervalSeconds: 60 } });
      const spec = testSpec({ monitor: { durationSeconds: 120, intervalSeconds: 5, window: '1m' } });
      const result = await withWorker(env, double, async (taskQueue) =>
        deploymentResult(await startDeployment(env, taskQueue, spec)),
      );
      assert.deepEqual(result.warnings, [
        "monitor.window (60 s) holds fewer than 2 scrapes at the targets' scrape interval (60 s): rate() over it has no data at all; make it at least 120 s (4 scrapes, 240 s, is safer)",
        'monitor.durationSeconds (120 s) leaves 0 judged tick(s) after a 125 s warm-up (scrape interval 60 s); make it at least 140 s',
      ]);
    });
  });

  describe('notifications', () => {
    let webhook: Server;
    let url: string;
    const received: Record<string, unknown>[] = [];

    beforeEach(async () => {
      received.length = 0;
      webhook = createServer((request, response) => {
        let body = '';
        request.on('data', (chunk) => (body += chunk));
        request.on('end', () => {
          received.push(JSON.parse(body) as Record<string, unknown>);
          response.writeHead(200).end('ok');
        });
      });
      await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(webhook.address() as { port: number }).port}/hooks/deployments`;
    });

    afterEach(async () => {
      await new Promise((resolve) => webhook.close(resolve));
    });

    it('posts Slack-compatible messages when a gate waits and when the deployment ends', async () => {
      const double = new RecordingPlatformDouble();
      const spec = testSpec({
        gates: { approveBeforeSwitch: true },
        monitor: { durationSeconds: 2, intervalSeconds: 1 },
      });
      const result = await withWorker(
        env,
        double,
        async (taskQueue) => {
          const handle = await startDeployment(env, taskQueue, spec);
          await eventually(async () => received.length === 1, 'the approval notification');
          await handle.signal(approveSignal, { by: 'operator' });
          return await deploymentResult(handle);
        },
        { notifier: new WebhookNotifier(url) },
      );
      assert.equal(result.outcome, 'Succeeded');
      assert.deepEqual(
        received.map((m) => m['kind']),
        ['awaiting-approval', 'succeeded'],
      );
      assert.match(
        String(received[0]!['text']),
        /^:hourglass: default\/detection-api v2\.2\.0: waiting for approval \(beforeSwitch\).*bluegreen approve detection-api -n default/,
      );
      assert.equal(received[1]!['text'], ':white_check_mark: default/detection-api v2.2.0: v2.2.0 is live on green');
    });

    it('tells why a deployment rolled back', async () => {
      const double = new RecordingPlatformDouble({ behaviour: { failSmokeCheck: 'metrics' } });
      const result = await withWorker(
        env,
        double,
        async (taskQueue) => deploymentResult(await startDeployment(env, taskQueue, testSpec())),
        {
          notifier: new WebhookNotifier(url),
        },
      );
      assert.equal(result.outcome, 'RolledBack');
      assert.equal(received.length, 1);
      assert.deepEqual(
        [received[0]!['kind'], received[0]!['reason'], received[0]!['failedCheck']],
        ['rolled-back', 'SmokeFailed', 'metrics'],
      );
    });

    it('raises an incident on an SLO breach: summary and links as Slack-compatible JSON and as a PagerDuty Events v2 trigger', async () => {
      const double = new RecordingPlatformDouble({
        behaviour: { sloValues: (tick) => (tick === 2 ? { 'error-rate': 0.05 } : {}), restartsAt: () => 2 },
      });
      const bases = {
        temporalUiUrl: 'http://temporal-ui.internal:8233/',
        prometheusUiUrl: 'http://prometheus.internal:9090',
      };
      const pagerDutyUrl = url.replace('/hooks/deployments', '/v2/enqueue');
      const notifier = new Notifiers([
        { name: 'webhook', notifier: new WebhookNotifier(url, 5000, undefined, bases) },
        { name: 'pagerduty', notifier: new PagerDutyNotifier('routing-key-0123', pagerDutyUrl, bases) },
      ]);
      const spec = testSpec({ monitor: { restartLimit: 5 } });
      let run = { workflowId: '', runId: '' };
      const result = await withWorker(
        env,
        double,
        async (taskQueue) => {
          const handle = await startDeployment(env, taskQueue, spec);
          run = { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
          return await deploymentResult(handle);
        },
        { notifier },
      );
      assertRolledBack(result, 'SloBreach', 'error-rate');
      assert.equal(received.length, 2, 'one message in each format');
      const slack = received.find((m) => 'text' in m)! as {
        text: string;
        links: { href: string; text: string }[];
        incident: { breach: { from: string; to: string } };
      };
      const temporalLink = `http://temporal-ui.internal:8233/namespaces/default/workflows/${encodeURIComponent(run.workflowId)}/${run.runId}/history`;
      assert.deepEqual(slack.text.split('\n').slice(0, 4), [
        `:rewind: default/detection-api v2.2.0: ${result.message}`,
        'breached: error-rate = 0.05 (must be < 0.01) on green',
        'pod restarts on green during monitoring: 2',
        'live now: blue (registry.internal/detection-api:v2.1.0)',
      ]);
      assert.equal(slack.links[0]!.href, temporalLink);
      assert.match(
        slack.text,
        new RegExp(`<${temporalLink.replace(/[.?/]/g, '\\$&')}\\|the deployment in the Temporal UI>`),
      );
      // The Prometheus graph: the breached query as the monitor ran it on the new slot and version.
      const graph = new URL(slack.links[1]!.href);
      assert.equal(graph.origin + graph.pathname, 'http://prometheus.internal:9090/graph');
      const expr = graph.searchParams.get('g0.expr')!;
      assert.match(expr, /slot="green"/);
      assert.match(expr, /version="v2\.2\.0"/);
      assert.match(expr, new RegExp(`\\[${spec.monitor.window}\\]`));
      assert.doesNotMatch(expr, /\{\{/, 'every placeholder rendered');
      assert.ok(new Date(slack.incident.breach.from) <= new Date(slack.incident.breach.to));

      const pagerDuty = received.find((m) => 'routing_key' in m)! as Record<string, unknown> & {
        payload: Record<string, unknown> & { custom_details: Record<string, unknown> };
      };
      assert.deepEqual(
        [pagerDuty['routing_key'], pagerDuty['event_action'], pagerDuty['dedup_key'], pagerDuty['client_url']],
        ['routing-key-0123', 'trigger', `${run.workflowId}/${run.runId}`, temporalLink],
      );
      assert.deepEqual(
        [
          pagerDuty.payload['severity'],
          pagerDuty.payload['source'],
          pagerDuty.payload['component'],
          pagerDuty.payload['group'],
          pagerDuty.payload['class'],
        ],
        ['error', run.workflowId, 'detection-api', 'default', 'SloBreach'],
      );
      assert.equal(pagerDuty.payload['summary'], `default/detection-api v2.2.0: ${result.message}`);
      assert.deepEqual(
        (pagerDuty.payload.custom_details['breach'] as { slo: string; value: number }).slo,
        'error-rate',
      );
      assert.equal((pagerDuty['links'] as unknown[]).length, 2);
    });

    it('observes the live slot after the cleanup: a breach is notified once, recorded, and changes nothing', async () => {
      // Two monitor ticks, then six observe ticks; the error rate breaches from the second on.
      const double = new RecordingPlatformDouble({
        behaviour: { sloValues: (call) => (call >= 4 ? { 'error-rate': 0.03 } : {}) },
      });
      // Six ticks of 10 s: the window's activity sleeps in skipped time at 25 times real time.
      const spec = testSpec({
        monitor: { durationSeconds: 10, intervalSeconds: 5 },
        observe: { durationSeconds: 60, intervalSeconds: 10 },
      });
      const result = await withWorker(
        env,
        double,
        async (taskQueue) => {
          const handle = await startDeployment(env, taskQueue, spec);
          const result = await deploymentResult(handle);
          await captureHistory(handle, 'succeeded-observe-breach-notified');
          return result;
        },
        { notifier: new WebhookNotifier(url) },
      );
      assert.equal(result.outcome, 'Succeeded', result.message);
      assert.deepEqual([double.selector, double.slots.blue.replicas], ['green', 0], 'nothing undone');
      // The window reads its own restart baseline, after the cleanup.
      assert.deepEqual(
        double.platformCalls(),
        [...forwardCalls('readRestarts green'), 'scaleSlot blue', 'readRestarts green'],
        'the old slot went to zero before the window',
      );
      assert.equal(double.ticks, 2 + 6);
      assert.deepEqual(result.status.transitions.map((t) => t.phase).slice(-3), [
        'CleaningUp',
        'Observing',
        'Succeeded',
      ]);
      const observe = result.status.observe!;
      assert.deepEqual(
        [observe.tick, observe.ticks, observe.successful, observe.failed, observe.keepOldSlotWarm],
        [6, 6, 1, 5, false],
      );
      assert.deepEqual(
        observe.breaches.map((b) => [b.name, b.value]),
        [['error-rate', 0.03]],
      );
      assert.deepEqual(
        received.map((m) => m['kind']),
        ['observe-breach', 'succeeded'],
        'notified once, not every tick',
      );
      assert.match(
        String(received[0]!['text']),
        /^:mag: default\/detection-api v2\.2\.0: SLO 'error-rate' breached while observing green: 0\.03 \(must be < 0\.01\), [0-9.]+ min into the window; nothing was changed: to go back, bluegreen undo detection-api -n default\nbreached: error-rate = 0\.03 \(must be < 0\.01\) on green/,
      );
      const observed = result.warnings.filter((w) => w.startsWith('observe:'));
      assert.equal(observed.length, 1, result.warnings.join('\n'));
      assert.match(observed[0]!, /^observe: SLO 'error-rate' breached while observing green/);
    });

    it('keeps the old slot warm through the window when asked: a breach then rolls back as during monitoring', async () => {
      const double = new RecordingPlatformDouble({
        behaviour: { sloValues: (call) => (call >= 4 ? { 'error-rate': 0.03 } : {}) },
      });
      const spec = testSpec({
        monitor: { durationSeconds: 10, intervalSeconds: 5 },
        observe: { durationSeconds: 60, intervalSeconds: 10, keepOldSlotWarm: true },
      });
      const result = await withWorker(env, double, async (taskQueue) => {
        const handle = await startDeployment(env, taskQueue, spec);
        const result = await deploymentResult(handle);
        await captureHistory(handle, 'rolled-back-observe-warm-breach');
        return result;
      });
      assertRolledBack(result, 'SloBreach', 'error-rate');
      assertRestored(double);
      assert.deepEqual(
        double.platformCalls(),
        [...forwardCalls('readRestarts green'), 'readRestarts green', ...SWITCH_BACK_THEN_RESTORE],
        'blue was never scaled down',
      );
      assert.deepEqual(result.status.transitions.map((t) => t.phase).slice(-3), [
        'Observing',
        'RollingBack',
        'RolledBack',
      ]);
      assert.deepEqual([result.status.observe?.tick, result.status.observe?.keepOldSlotWarm], [2, true]);
    });

    it('takes an abort while the old slot is warm, and refuses it once the cleanup has begun', async () => {
      for (const keepOldSlotWarm of [true, false]) {
        const double = new RecordingPlatformDouble();
        // Real time up to the window (no result is awaited, so the server does not skip time).
        // Six ticks of a second: in this test the server did not skip the cold window's time (it
        // passed in real time, 60 s for a minute's window), so the window is kept short.
        const spec = testSpec({
          monitor: { durationSeconds: 2, intervalSeconds: 1 },
          scaleDownDelaySeconds: 0,
          observe: { durationSeconds: 6, intervalSeconds: 1, keepOldSlotWarm },
        });
        const result = await withWorker(env, double, async (taskQueue) => {
          const handle = await startDeployment(env, taskQueue, spec);
          await eventually(async () => (await handle.query(statusQuery)).phase === 'Observing', 'the window');
          const answer = await handle
            .executeUpdate(abortUpdate, { args: [{ reason: 'looks wrong', by: 'erin' }] })
            .catch((error: unknown) => error);
          if (keepOldSlotWarm)
            assert.deepEqual(answer, { message: 'abort accepted in Observing: rolling back', phase: 'Observing' });
          else assert.match((answer as WorkflowUpdateFailedError).cause?.message ?? '', /cleanup has begun/);
          return await deploymentResult(handle);
        });
        if (keepOldSlotWarm) {
          assertRolledBack(result, 'Aborted');
          assertRestored(double);
        } else {
          assert.equal(result.outcome, 'Succeeded');
          assert.equal(result.status.observe?.tick, 6, 'the window ran to its end');
        }
      }
    });

    it('rolls back as ever when the incident receiver is unreachable, and says so', async () => {
      const notices: string[] = [];
      const notifier = new Notifiers([
        { name: 'webhook', notifier: new WebhookNotifier(url) },
        {
          name: 'pagerduty',
          notifier: new PagerDutyNotifier(
            'routing-key-0123',
            `http://127.0.0.1:${await freePort()}/v2/enqueue`,
            {},
            1000,
            (line) => notices.push(line),
          ),
        },
      ]);
      const double = new RecordingPlatformDouble({ behaviour: { failSmokeCheck: 'health' } });
      const result = await withWorker(
        env,
        double,
        async (taskQueue) => deploymentResult(await startDeployment(env, taskQueue, testSpec())),
        { notifier },
      );
      assert.deepEqual([result.outcome, result.reason], ['RolledBack', 'SmokeFailed']);
      assertRestored(double);
      assert.deepEqual(
        received.map((m) => m['kind']),
        ['rolled-back'],
        'the webhook still got it',
      );
      assert.equal(notices.length, 1);
      assert.match(
        notices[0]!,
        /notification not delivered \(rolled-back, deploy-[0-9a-f-]+\): incident receiver unreachable: ECONNREFUSED/,
      );
    });

    for (const [behaviour, answer, expected] of [
      ['answers 500', (response: ServerResponse) => response.writeHead(500).end('boom'), /webhook answered HTTP 500/],
      ['hangs', () => undefined, /webhook unreachable: ECONNABORTED/],
    ] as const) {
      it(`goes on when the webhook ${behaviour}`, async () => {
        const server = createServer((_request, response) => answer(response));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const notices: string[] = [];
        try {
          const double = new RecordingPlatformDouble({ behaviour: { failSmokeCheck: 'health' } });
          const hook = new WebhookNotifier(
            `http://127.0.0.1:${(server.address() as { port: number }).port}/`,
            1000,
            (line) => notices.push(line),
          );
          const result = await withWorker(
            env,
            double,
            async (taskQueue) => deploymentResult(await startDeployment(env, taskQueue, testSpec())),
            { notifier: hook },
          );
          assert.equal(result.outcome, 'RolledBack');
          assert.equal(result.reason, 'SmokeFailed');
          assertRestored(double);
          assert.equal(notices.length, 1);
          assert.match(notices[0]!, expected);
        } finally {
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        }
      });
    }

    it('keeps restoring through an API outage, says rollback-stuck after 2 min, and ends rolled back with the restore time', async () => {
      // Sixteen refused switch-backs at backoff 1, 2, 4, 8, then 10 s: well over two minutes.
      const double = new RecordingPlatformDouble({
        behaviour: { sloValues: (call) => (call >= 2 ? { 'error-rate': 0.0872812917 } : {}), failSwitchBack: 16 },
      });
      const result = await withWorker(
        env,
        double,
        async (taskQueue) => deploymentResult(await startDeployment(env, taskQueue, testSpec())),
        {
          notifier: new WebhookNotifier(url),
        },
      );
      assertRolledBack(result, 'SloBreach', 'error-rate');
      assert.equal(
        result.message,
        "SLO 'error-rate' breached: 0.0873 (must be < 0.01)",
        'the value is rounded for people',
      );
      assert.equal(
        double.calls.filter((c) => c.name === 'switchTraffic' && c.slot === 'blue').length,
        17,
        'sixteen refused, the seventeenth landed',
      );
      assertRestored(double);
      assert.ok((result.rollbackSeconds ?? 0) > 120, `the restore took ${result.rollbackSeconds} s`);
      assert.ok(result.status.rollback?.stuckSince, 'the status says the restore was stuck');
      assert.deepEqual(
        received.map((m) => m['kind']),
        ['rollback-stuck', 'rolled-back'],
      );
      assert.match(
        String(received[0]!['text']),
        /^:warning: default\/detection-api v2\.2\.0: ROLLBACK STUCK for 120 s at 'switch detection-api-service back to blue': still retrying/,
      );
    });

    it('never lets a failing webhook change the deployment', async () => {
      const double = new RecordingPlatformDouble();
      const refused = `http://127.0.0.1:${await freePort()}/hooks`;
      const notices: string[] = [];
      const result = await withWorker(
        env,
        double,
        async (taskQueue) => {
          const handle = await startDeployment(
            env,
            taskQueue,
            testSpec({ monitor: { durationSeconds: 2, intervalSeconds: 1 } }),
          );
          const result = await deploymentResult(handle);
          const events = (await handle.fetchHistory()).events ?? [];
          assert.ok(
            events.some((e) => e.activityTaskCompletedEventAttributes),
            'the notify activity completed',
          );
          return result;
        },
        { notifier: new WebhookNotifier(refused, 1000, (line) => notices.push(line)) },
      );
      assert.equal(result.outcome, 'Succeeded');
      assert.equal(double.selector, 'green');
      assert.equal(notices.length, 1);
      assert.match(
        notices[0]!,
        /^notification not delivered \(succeeded, deploy-[0-9a-f-]+\): webhook unreachable: ECONNREFUSED$/,
      );
    });
  });

  describe('abort', () => {
    const cases = [
      {
        during: 'deploy',
        block: 'waitForSlotReady',
        expected: [...forwardCalls('waitForSlotReady green'), ...RESTORE_IDLE],
      },
      { during: 'smoke', block: 'runSmokeSuite', expected: [...forwardCalls('runSmokeSuite green'), ...RESTORE_IDLE] },
      {
        during: 'switch',
        block: 'verifyTraffic',
        expected: [...forwardCalls('verifyTraffic green'), ...SWITCH_BACK_THEN_RESTORE],
      },
    ];
    for (const { during, block, expected } of cases) {
      it(`during ${during}: cancels the waiting call, leaves traffic on the old slot, restores the idle slot`, async () => {
        const double = new RecordingPlatformDouble({ behaviour: { block: [block] } });
        const result = await withWorker(env, double, async (taskQueue) => {
          const handle = await startDeployment(env, taskQueue, testSpec());
          await double.waitForCall(block);
          await handle.signal(abortSignal, { reason: `bad build (during ${during})`, by: 'alice' });
          const result = await deploymentResult(handle);
          await captureHistory(handle, `rolled-back-abort-during-${during}`);
          return result;
        });
        assert.deepEqual(double.platformCalls(), expected);
        assertRestored(double);
        assertRolledBack(result, 'Aborted');
        assert.equal(result.message, `aborted by alice: bad build (during ${during})`);
        assert.deepEqual(
          { by: result.status.abort?.by, reason: result.status.abort?.reason },
          { by: 'alice', reason: `bad build (during ${during})` },
        );
      });
    }

    it('during a monitor tick, while its measurement is in flight: cancels the read and switches back at once', async () => {
      // The tick is one activity (SLOs and restarts together): an abort must not wait for it.
      const double = new RecordingPlatformDouble({ behaviour: { block: ['tick:evaluateSlos'] } });
      const spec = testSpec({ monitor: { durationSeconds: 600, intervalSeconds: 1 } });
      const { result, history } = await withWorker(env, double, async (taskQueue) => {
        const handle = await startDeployment(env, taskQueue, spec);
        await double.waitForCall('tick:evaluateSlos');
        await handle.signal(abortSignal, { reason: 'pager fired', by: 'frank' });
        const result = await deploymentResult(handle);
        double.releaseAll(); // the abandoned read ends, so the worker can shut down
        return { result, history: (await handle.fetchHistory()).events ?? [] };
      });
      assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), ...SWITCH_BACK_THEN_RESTORE]);
      assertRestored(double);
      assertRolledBack(result, 'Aborted');
      assert.equal(result.status.monitor?.tick, 0, 'the tick in flight was never judged');
      const scheduled = history.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
      assert.equal(scheduled.filter((name) => name === 'monitorWindow').length, 1, 'one activity for the window');
      assert.ok(
        history.some((e) => e.activityTaskCancelRequestedEventAttributes),
        'the measurement was cancelled',
      );
    });

    it('during the approval gate: rolls back without waiting for the timeout', async () => {
      const double = new RecordingPlatformDouble();
      const spec = testSpec({ gates: { approveBeforeSwitch: true } });
      const result = await withWorker(env, double, async (taskQueue) => {
        const handle = await startDeployment(env, taskQueue, spec);
        await eventually(async () => (await handle.query(statusQuery)).phase === 'AwaitingApproval');
        await handle.signal(abortSignal, { reason: 'not today', by: 'bob' });
        return await deploymentResult(handle);
      });
      assert.deepEqual(double.platformCalls(), [...forwardCalls('runSmokeSuite green'), ...RESTORE_IDLE]);
      assertRestored(double);
      assertRolledBack(result, 'Aborted');
      assert.equal(result.status.awaiting, null, 'a finished deployment waits at no gate');
    });

    it('during monitoring: interrupts the wait at once and switches back', async () => {
      const double = new RecordingPlatformDouble();
      const spec = testSpec({ monitor: { durationSeconds: 600, intervalSeconds: 1 } });
      const result = await withWorker(env, double, async (taskQueue) => {
        const handle = await startDeployment(env, taskQueue, spec);
        // Between ticks, in the window's interval wait.
        await double.waitForCall('tick:evaluateSlos', 2);
        await handle.signal(abortSignal, { reason: 'customer reports', by: 'carol' });
        const result = await deploymentResult(handle);
        await captureHistory(handle, 'rolled-back-abort-during-monitor');
        return result;
      });
      assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), ...SWITCH_BACK_THEN_RESTORE]);
      const ticksAtRollback = double.ticks;
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(double.ticks, ticksAtRollback, 'monitoring stopped with the rollback');
      assert.ok(double.ticks < 600, `monitoring stopped at the abort (after ${double.ticks} of 600 ticks)`);
      assertRestored(double);
      assertRolledBack(result, 'Aborted');
    });

    it('after cleanup began: is rejected with a message and the deployment succeeds', async () => {
      const double = new RecordingPlatformDouble();
      const spec = testSpec({ monitor: { durationSeconds: 2, intervalSeconds: 1 }, scaleDownDelaySeconds: 120 });
      const result = await withWorker(env, double, async (taskQueue) => {
        const handle = await startDeployment(env, taskQueue, spec);
        await eventually(async () => (await handle.query(statusQuery)).phase === 'CleaningUp');
        await handle.signal(abortSignal, { reason: 'too late', by: 'dave' });
        const result = await deploymentResult(handle);
        await captureHistory(handle, 'succeeded-abort-rejected');
        return result;
      });
      assert.equal(result.outcome, 'Succeeded');
      assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), 'scaleSlot blue']);
      assert.equal(double.selector, 'green');
      assert.equal(result.status.abort, null);
      assert.match(result.status.rejectedAborts[0]!.message, /cleanup has begun.*deploy the previous image/);
    });
  });

  describe('operator verbs as Updates', () => {
    it('answers an abort synchronously, and refuses with the reason what the rules forbid', async () => {
      const double = new RecordingPlatformDouble();
      const spec = testSpec({ gates: { approveBeforeSwitch: true } });
      const result = await withWorker(env, double, async (taskQueue) => {
        const handle = await startDeployment(env, taskQueue, spec);
        await eventually(async () => (await handle.query(statusQuery)).phase === 'AwaitingApproval');
        const wrongGate = await handle
          .executeUpdate(approveUpdate, { args: [{ gate: 'beforeCleanup', by: 'erin' }] })
          .catch((error: unknown) => error);
        assert.ok(wrongGate instanceof WorkflowUpdateFailedError);
        assert.equal(wrongGate.cause?.message, "the deployment waits at gate 'beforeSwitch', not 'beforeCleanup'");
        const answer = await handle.executeUpdate(abortUpdate, { args: [{ reason: 'wrong build', by: 'erin' }] });
        assert.deepEqual(answer, {
          message: 'abort accepted in AwaitingApproval: rolling back',
          phase: 'AwaitingApproval',
        });
        const late = await handle
          .executeUpdate(approveUpdate, { args: [{ by: 'frank' }] })
          .catch((error: unknown) => error);
        assert.match(
          (late as WorkflowUpdateFailedError).cause?.message ?? '',
          /approve rejected: an abort is rolling the deployment back \(aborted by erin: wrong build\)/,
        );
        return await deploymentResult(handle);
      });
      assertRolledBack(result, 'Aborted');
      assertRestored(double);
    });

    it('approve against abort at the same instant, 100 trials: exactly one takes effect, and the history says which', async () => {
      const spec = testSpec({
        gates: { approveBeforeCleanup: true },
        monitor: { durationSeconds: 1, intervalSeconds: 1 },
        scaleDownDelaySeconds: 0,
      });
      const tally = { approve: 0, abort: 0 };
      // One worker and one platform for all trials: each deployment starts where the last ended.
      const double = new RecordingPlatformDouble();
      await withWorker(env, double, async (taskQueue) => {
        for (let trial = 0; trial < 100; trial++) {
          const handle = await startDeployment(env, taskQueue, spec);
          await eventually(async () => (await handle.query(statusQuery)).phase === 'AwaitingApproval', 'the gate');
          // Both at once; which one the client sends first alternates.
          const send = {
            approve: () => handle.executeUpdate(approveUpdate, { args: [{ by: 'approver' }] }),
            abort: () => handle.executeUpdate(abortUpdate, { args: [{ reason: 'race', by: 'aborter' }] }),
          };
          const order = trial % 2 === 0 ? (['approve', 'abort'] as const) : (['abort', 'approve'] as const);
          const answers = await Promise.allSettled(order.map((verb) => send[verb]()));
          const accepted = order.filter((_, i) => answers[i]!.status === 'fulfilled');
          assert.equal(
            accepted.length,
            1,
            `trial ${trial}: exactly one accepted (${answers.map((a) => a.status).join(', ')})`,
          );
          const winner = accepted[0]!;
          tally[winner]++;
          const result = await deploymentResult(handle);
          assert.equal(
            result.outcome,
            winner === 'approve' ? 'Succeeded' : 'RolledBack',
            `trial ${trial}: ${winner} won, ${result.message}`,
          );
          assert.equal(double.selector, winner === 'approve' ? result.toSlot : result.fromSlot);
          const history = await handle.fetchHistory();
          const acceptedUpdates = (history.events ?? []).filter(
            (e) => e.workflowExecutionUpdateAcceptedEventAttributes,
          );
          assert.deepEqual(
            acceptedUpdates.map((e) => e.workflowExecutionUpdateAcceptedEventAttributes!.acceptedRequest!.input!.name),
            [winner],
            `trial ${trial}: the history records the ${winner} alone`,
          );
        }
      });
      process.stdout.write(
        `# approve against abort: ${tally.approve} approvals and ${tally.abort} aborts took effect, one per trial\n`,
      );
      assert.equal(tally.approve + tally.abort, 100);
    });
  });

  it('reports a degraded cleanup without rolling back when the old slot cannot be scaled down', async () => {
    const double = new RecordingPlatformDouble({ behaviour: { failScaleDown: true } });
    const result = await withWorker(env, double, async (taskQueue) =>
      deploymentResult(await startDeployment(env, taskQueue, testSpec())),
    );
    assert.equal(result.outcome, 'Succeeded');
    assert.equal(double.selector, 'green');
    assert.equal(result.warnings.length, 1);
    assert.match(
      result.warnings[0]!,
      /cleanup degraded: blue \(detection-api-blue\) could not be scaled to zero: serviceaccount bluegreen cannot patch/,
    );
  });

  it('fails in preflight without changing anything when the active slot stays unhealthy', async () => {
    const double = new RecordingPlatformDouble();
    double.slots.blue.readyReplicas = 1;
    const result = await withWorker(env, double, async (taskQueue) =>
      deploymentResult(await startDeployment(env, taskQueue, testSpec())),
    );
    // Read again each second for ACTIVE_SLOT_SETTLE_MS (15 s), then refused: only reads.
    const calls = double.platformCalls();
    assert.ok(calls.length >= 10, `${calls.length} reads of the live state`);
    assert.deepEqual(new Set(calls), new Set(['describe']));
    assert.equal(result.outcome, 'Failed');
    assert.equal(result.reason, 'PreflightFailed');
    assert.match(
      result.message,
      /the active slot blue \(detection-api-blue\) is not healthy: 1\/3 replicas ready; nothing was changed/,
    );
  });

  it('goes on when a live pod that missed a readiness probe is Ready again within the settle', async () => {
    const double = new RecordingPlatformDouble();
    double.slots.blue.readyReplicas = 2;
    // Back in its Service at the next probe, 3 s on.
    const back = setTimeout(() => (double.slots.blue.readyReplicas = 3), 3_000);
    const result = await withWorker(env, double, async (taskQueue) =>
      deploymentResult(await startDeployment(env, taskQueue, testSpec())),
    ).finally(() => clearTimeout(back));
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.equal(double.selector, 'green');
    const reads = double.platformCalls().filter((c) => c === 'describe').length;
    assert.ok(reads >= 2, `the live state read ${reads} times`);
  });

  it('refuses to deploy onto an active slot that breaches a gated SLO, naming it, with nothing changed', async () => {
    const double = new RecordingPlatformDouble({ behaviour: { activeSloValues: () => ({ 'error-rate': 0.2 }) } });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, testSpec());
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'failed-active-slot-unstable');
      return result;
    });
    assert.deepEqual(
      double.platformCalls(),
      ['describe', 'evaluateActiveSlos blue', 'readScrapeInterval blue'],
      'nothing was written: preflight read, and only read',
    );
    assert.deepEqual(
      [result.outcome, result.reason, result.failedCheck, result.liveSlot],
      ['Failed', 'ActiveSlotUnstable', 'error-rate', 'blue'],
    );
    assert.match(
      result.message,
      /the active slot blue \(detection-api-blue, v2\.1\.0\) breaches SLO 'error-rate': 0\.2 \(must be < 0\.01\): .*allowUnstableActive: true, or deploy --allow-unstable-active.*; nothing was changed/,
    );
    assert.deepEqual([double.slots.green.image, double.slots.green.replicas], [IDLE_IMAGE, 0]);
    const check = result.status.activeCheck!;
    assert.deepEqual(
      [check.slot, check.version, check.verdict, check.allowedUnstable],
      ['blue', 'v2.1.0', 'breaching', false],
    );
    // Measured over the monitor window, scoped to the live version, gated SLOs only.
    const request = double.calls.find((c) => c.name === 'evaluateActiveSlos')!.request as EvaluateSlosRequest;
    assert.deepEqual([request.slot, request.version, request.window], ['blue', 'v2.1.0', testSpec().monitor.window]);
    assert.deepEqual(
      request.slos.map((slo) => slo.name),
      testSpec()
        .monitor.slos.filter((slo) => slo.gate)
        .map((slo) => slo.name),
    );
  });

  it('deploys onto a breaching active slot when allowUnstableActive says so, and records it', async () => {
    const double = new RecordingPlatformDouble({ behaviour: { activeSloValues: () => ({ 'error-rate': 0.2 }) } });
    const result = await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, testSpec({ allowUnstableActive: true }));
      const result = await deploymentResult(handle);
      await captureHistory(handle, 'succeeded-unstable-active-allowed');
      return result;
    });
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.equal(double.selector, 'green');
    assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), 'scaleSlot blue']);
    assert.deepEqual(
      [result.status.activeCheck?.verdict, result.status.activeCheck?.allowedUnstable],
      ['breaching', true],
    );
    assert.deepEqual(result.warnings, [
      "deployed onto an unstable active slot: the active slot blue breaches SLO 'error-rate': 0.2 (must be < 0.01); let through by allowUnstableActive",
    ]);
  });

  it('goes on when the active slot has no data or its metrics do not answer, saying it could not judge', async () => {
    const quiet = new RecordingPlatformDouble({ behaviour: { activeSloValues: () => ({ 'error-rate': null }) } });
    const silent = new RecordingPlatformDouble({
      behaviour: {
        activeSloValues: () => {
          throw new Error('Prometheus unreachable');
        },
      },
    });
    for (const [double, detail] of [
      [quiet, /no data for error-rate/],
      [silent, /the SLOs could not be measured: Prometheus unreachable/],
    ] as const) {
      const result = await withWorker(env, double, async (taskQueue) =>
        deploymentResult(await startDeployment(env, taskQueue, testSpec())),
      );
      assert.equal(result.outcome, 'Succeeded', result.message);
      assert.equal(result.status.activeCheck?.verdict, 'unknown');
      assert.match(result.status.activeCheck?.detail ?? '', detail);
    }
  });

  it('rejects an invalid spec started without the client, before any platform call', async () => {
    const double = new RecordingPlatformDouble();
    const bad = { ...testSpec(), replicas: 0, image: 'Not An Image' };
    const [result, empty] = await withWorker(env, double, async (taskQueue) => {
      const start = async (spec: unknown, id: string) =>
        await deploymentResult(
          await env.client.workflow.start('blueGreenDeploymentWorkflow', {
            taskQueue,
            workflowId: `${id}-${taskQueue}`,
            args: [spec],
          }),
        );
      return [await start(bad, 'bad'), await start({}, 'empty')];
    });
    assert.deepEqual(double.calls, []);
    assert.deepEqual([empty.outcome, empty.reason], ['Failed', 'InvalidSpec']);
    assert.match(empty.message, /app: Required[\s\S]*image: Required/);
    assert.equal(result.outcome, 'Failed');
    assert.equal(result.reason, 'InvalidSpec');
    assert.match(result.message, /image: image must be an OCI reference/);
    assert.match(result.message, /replicas: replicas must be at least 1/);
  });

  it("shows the monitor window's latest tick in the status while the window runs, from the activity's heartbeat", async () => {
    const double = new RecordingPlatformDouble();
    const spec = testSpec({ monitor: { durationSeconds: 600, intervalSeconds: 1 } });
    await withWorker(env, double, async (taskQueue) => {
      const handle = await startDeployment(env, taskQueue, spec);
      await double.waitForCall('tick:evaluateSlos', 5);
      const queried = await handle.query(statusQuery);
      assert.deepEqual(
        [queried.phase, queried.monitor?.tick],
        ['Monitoring', 0],
        "the workflow's own status: as the window began",
      );
      const client = new DeploymentClient(env.client, taskQueue);
      let status = queried;
      await eventually(
        async () =>
          ((status = await client.withLatestTick(handle, await handle.query(statusQuery))).monitor?.tick ?? 0) >= 5,
        'the fifth tick in the status',
      );
      assert.match(status.message, /^monitor tick \d+\/600: Successful$/);
      assert.equal(status.monitor?.successful, status.monitor?.tick);
      assert.equal(status.monitor?.latest['error-rate']?.value, 0.001);
      await handle.signal(abortSignal, { reason: 'seen enough', by: 'test' });
      assert.equal((await deploymentResult(handle)).reason, 'Aborted');
    });
  });

  it('resumes and finishes when its worker stops mid-monitor and another one starts: the window goes on from its last heartbeat', async () => {
    const double = new RecordingPlatformDouble();
    const spec = testSpec({ monitor: { durationSeconds: 300, intervalSeconds: 1 } });
    const taskQueue = `restart-${Date.now()}`;
    const handle = await withWorker(
      env,
      double,
      async () => {
        const handle = await startDeployment(env, taskQueue, spec);
        await double.waitForCall('tick:evaluateSlos', 3);
        return handle;
      },
      // No sticky cache: the stopped worker's sticky queue would hold the next task until the
      // server's sticky timeout; the test is about resuming, not about that timeout. No grace for
      // the window's activity: the worker stops in the middle of it.
      { taskQueue, options: { maxCachedWorkflows: 0, shutdownGraceTime: '1ms' } },
    );
    const ticksBeforeStop = double.ticks;
    assert.equal((await handle.describe()).status.name, 'RUNNING');
    const result = await withWorker(env, double, async () => await deploymentResult(handle), { taskQueue });
    assert.equal(result.outcome, 'Succeeded');
    assert.ok(ticksBeforeStop >= 3 && ticksBeforeStop < 300, `${ticksBeforeStop} ticks before the worker stopped`);
    assert.equal(result.status.monitor?.tick, 300);
    // Resumed, not started again: at most the tick in flight when the worker stopped is measured twice.
    assert.ok(double.ticks <= 301, `${double.ticks} ticks measured for a 300-tick window`);
    const events = (await handle.fetchHistory()).events ?? [];
    const window = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'monitorWindow')!;
    const started = events.find(
      (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(window.eventId),
    );
    assert.ok(
      (started?.activityTaskStartedEventAttributes?.attempt ?? 0) >= 2,
      'the window was retried on the second worker',
    );
    assert.deepEqual(double.platformCalls(), [...forwardCalls('readRestarts green'), 'scaleSlot blue']);
    assert.equal(double.selector, 'green');
  });
});
