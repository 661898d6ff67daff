/**
 * The deployment workflow on the real time-skipping Temporal server, as operators and on-call meet
 * it: its notifications, the abort, and the operator verbs as Updates. The platform and gates are a
 * recording double, as in blue-green-deployment.test.ts (the file is split so the two run side by
 * side): each scenario asserts the exact platform calls, the state they leave behind, and the result.
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
import { Notifiers, WebhookNotifier } from '../../src/notifications/webhook-notifier.js';
import { PagerDutyNotifier } from '../../src/notifications/pagerduty-notifier.js';
import { freePort } from '../helpers/detection-api-process.js';
import { captureHistory, startDeployment, testSpec, withWorker } from '../helpers/deployment-harness.js';
import { eventually } from '../helpers/eventually.js';
import { RecordingPlatformDouble } from '../helpers/recording-platform-double.js';
import { startTimeSkippingServer } from '../helpers/temporal-servers.js';
import { deploymentResult } from '../../src/client/deployment-client.js';
import {
  assertRestored,
  assertRolledBack,
  forwardCalls,
  RESTORE_IDLE,
  SWITCH_BACK_THEN_RESTORE,
} from '../helpers/blue-green-scenarios.js';

describe('blueGreenDeploymentWorkflow on the time-skipping server: notifications, abort and operator verbs', () => {
  let env: TestWorkflowEnvironment;

  // A server per scenario: a cancelled activity that outlives its workflow keeps the test
  // server's clock from skipping for the rest of that server's life, so scenarios must not share.
  beforeEach(async () => {
    env = await startTimeSkippingServer();
  });

  afterEach(async () => {
    await env?.teardown();
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
});
