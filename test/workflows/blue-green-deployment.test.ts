/**
 * The deployment workflow on the real time-skipping Temporal server, with the platform and gates
 * replaced by a recording double: each scenario asserts the exact platform calls, the state they
 * leave behind, and the result.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { abortSignal, approveSignal, statusQuery } from '../../src/workflows/definitions.js';
import type { MonitorWindowResult } from '../../src/shared/monitor-window.js';
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
import {
  assertRestored,
  assertRolledBack,
  forwardCalls,
  IDLE_IMAGE,
  NEW_IMAGE,
  RESTORE_IDLE,
  SWITCH_BACK_THEN_RESTORE,
} from '../helpers/blue-green-scenarios.js';

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
    // Read again each second of the deployment's time (skipped here) for ACTIVE_SLOT_SETTLE_MS
    // (15 s), then refused: only reads.
    const calls = double.platformCalls();
    assert.equal(calls.length, 16, `${calls.length} reads of the live state`);
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
    // Back in its Service at the next probe: ready from the live state's third read (2 s on).
    double.missProbe('blue', 2, 3);
    const result = await withWorker(env, double, async (taskQueue) =>
      deploymentResult(await startDeployment(env, taskQueue, testSpec())),
    );
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.equal(double.selector, 'green');
    assert.ok(double.liveReads >= 3, `the live state read ${double.liveReads} times`);
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
