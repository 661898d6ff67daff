/**
 * The operator's abort at the worst moments, on the embedded stack (dev server, worker process,
 * local platform, Prometheus) under steady traffic. The worker reaches the local platform's control
 * API through a proxy that can hold a write, as a slow API server would (the one test double here,
 * named so); everything else is real.
 *
 * - An abort while the switch's selector PATCH is held for 5 s: the compensation waits for the
 *   write to land, reads the selector it left, and switches back; no request fails.
 * - The same for a canary's first weight: the weight 0, verified, after the held write lands.
 * - The abort sweep: one deployment per offset across Deploying and Switching, in steps of at most
 *   50 ms; every run ends rolled back with the old slot serving and the new one restored.
 * - No worker: `bluegreen abort` is recorded (exit 5) and the next worker restores traffic; the
 *   same with the worker SIGKILLed in the middle of a canary's hold, whose activity it ran.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import proto from '@temporalio/proto';
import { deploymentResult } from '../../src/client/deployment-client.js';
import { ROOT } from '../../src/demo/simulator-process.js';
import { DETECTION_API_TARGET, freeStackPorts } from '../../src/demo/stack.js';
import type { EmbeddedStack } from '../../src/demo/stack.js';
import type { TrafficGenerator } from '../../src/demo/traffic.js';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import type { Slot } from '../../src/shared/slots.js';
import { phaseSpans, runSweep, summarise, sweepPoints } from '../helpers/abort-sweep.js';
import { eventually } from '../helpers/eventually.js';
import { testSpec } from '../helpers/deployment-harness.js';
import {
  answered5xx,
  DETECTION_API_IMAGE,
  deployTag,
  startStackUnderTraffic,
  stopStackUnderTraffic,
  unanswered,
  untilPhase,
} from '../helpers/embedded-stack.js';
import type { StackUnderTraffic } from '../helpers/embedded-stack.js';
import { SlowWriteProxy } from '../helpers/slow-write-proxy-double.js';
import { trafficThrough } from '../../src/activities/traffic.js';

const run = promisify(execFile);
const CANCEL_REQUESTED = proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED;
const IMAGE = DETECTION_API_IMAGE;
const SERVICE_PATCH = /\/services\/detection-api-service$/;
const deploymentPatch = (slot: Slot) => new RegExp(`/deployments/detection-api-${slot}$`);

describe('abort drills on the embedded stack', () => {
  let stack: EmbeddedStack;
  let proxy: SlowWriteProxy;
  let traffic: TrafficGenerator;
  const running: Partial<StackUnderTraffic> = {};

  before(async () => {
    const ports = await freeStackPorts();
    proxy = await SlowWriteProxy.start(`http://127.0.0.1:${ports.control}`);
    // The worker's platform calls go through the proxy; the test reads the platform directly.
    Object.assign(
      running,
      await startStackUnderTraffic({
        ports,
        taskQueue: 'bluegreen-abort-drills',
        workerEnv: { BLUEGREEN_LOCAL_URL: proxy.url },
      }),
    );
    ({ stack, traffic } = running as StackUnderTraffic);
  });

  after(async () => {
    try {
      await stopStackUnderTraffic(running);
    } finally {
      // Closed even when requests went unanswered: an open proxy would hold the file to its timeout.
      await proxy?.close();
    }
  });

  const live = () => stack.local!.platform.describe(DETECTION_API_TARGET);
  const start = (tag: string, monitorSeconds = 30) =>
    deployTag(stack, tag, { monitorSeconds, intervalSeconds: 1, scaleDownDelaySeconds: 0 });
  /**
   * A replica-ratio canary of two steps, its first held `holdSeconds`: one canary replica beside
   * two stable ones, so the first weight is the selector's slot label, removed.
   */
  const canary = (tag: string, holdSeconds: number) =>
    testSpec({
      image: IMAGE(tag),
      replicas: 2,
      strategy: 'canary',
      traffic: { router: 'replica-ratio' },
      readinessTimeoutSeconds: 60,
      monitor: { durationSeconds: 30, intervalSeconds: 1, window: '5s' },
      canary: {
        steps: [
          { weight: 33, holdSeconds },
          { weight: 100, holdSeconds: 30 },
        ],
        minRequests: 5,
      },
      scaleDownDelaySeconds: 0,
    });
  const abort = (reason: string) => stack.deployments!.abort('default', 'detection-api', { reason, by: 'abort-drill' });

  /** The old slot serves (selector and every endpoint, read back), fully Ready; the new one restored. */
  async function assertRestored(from: Slot, before: { image: string | null; replicas: number }): Promise<void> {
    const to: Slot = from === 'blue' ? 'green' : 'blue';
    const state = await live();
    assert.equal(state.activeSlot, from, 'the Service selects the old slot');
    assert.deepEqual(
      [state.slots[from].readyReplicas, state.slots[from].replicas],
      [2, 2],
      'the old slot is fully Ready',
    );
    assert.deepEqual(
      { image: state.slots[to].image, replicas: state.slots[to].replicas },
      before,
      'the new slot is back to its previous image and replicas',
    );
    const progress = { heartbeat: () => undefined, signal: new AbortController().signal };
    await trafficThrough(stack.local!.platform.routers).verifyTraffic(
      { target: DETECTION_API_TARGET, slot: from, timeoutSeconds: 10 },
      progress,
    );
    const answer = await fetch(`${stack.local!.routerUrl}/health`);
    assert.equal(answer.status, 200, 'the Service answers');
  }

  /** `bluegreen abort` while no worker runs: recorded by Temporal, not yet answered (exit 5). */
  async function abortWithoutWorker(reason: string): Promise<void> {
    const cli = await run(
      process.execPath,
      [
        join(ROOT, 'bin/bluegreen.js'),
        '--address',
        stack.temporalAddress,
        '--task-queue',
        stack.taskQueue,
        'abort',
        'detection-api',
        '--reason',
        reason,
      ],
      { cwd: ROOT },
    ).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
    );
    assert.equal(cli.code, 5, cli.stdout);
    assert.match(
      cli.stdout,
      /RECORDED, not yet answered: .*the abort is recorded by Temporal and takes effect as soon as a worker runs/,
    );
  }

  /**
   * The run is over and nothing of it runs. `cancelledWindow`: a monitor window whose attempt was
   * lost with its worker may still be listed, its cancellation requested (the abort does not wait
   * for a read to confirm it stopped; the closed run's tasks go to no worker).
   */
  async function assertNothingPending(workflowId: string, { cancelledWindow = false } = {}): Promise<void> {
    const description = await stack.deployments!.handle('default', 'detection-api').describe();
    assert.equal(description.workflowId, workflowId);
    assert.notEqual(description.status.name, 'RUNNING');
    const pending = description.raw.pendingActivities ?? [];
    const left = cancelledWindow
      ? pending.filter((a) => !(a.activityType?.name === 'monitorWindow' && a.state === CANCEL_REQUESTED))
      : pending;
    assert.deepEqual(left, [], 'nothing left running');
  }

  it('an abort while the switch is held 5 s by a slow API ends on the old slot, serving, with no failed request', async () => {
    const from = (await live()).activeSlot;
    const to: Slot = from === 'blue' ? 'green' : 'blue';
    const before = { image: (await live()).slots[to].image, replicas: (await live()).slots[to].replicas };
    const score = traffic.snapshot();
    proxy.tap.holdNext(SERVICE_PATCH, 5000);
    const held = proxy.tap.nextWrite(SERVICE_PATCH);
    const handle = await start('v2.2.0');
    await held;
    const answer = await abort('the switch is slow: pull it back');
    assert.equal(answer.delivery, 'accepted');
    assert.equal(answer.phase, 'Switching');
    const result: DeploymentResult = await deploymentResult(handle);
    assert.deepEqual([result.outcome, result.reason, result.liveSlot], ['RolledBack', 'Aborted', from], result.message);
    // The held PATCH landed before the switch-back ran: the compensation saw it and undid it.
    const selectorWrites = proxy.tap.writes.filter((w) => SERVICE_PATCH.test(w.path));
    assert.equal(selectorWrites.length, 2, 'the switch and the switch-back');
    await assertRestored(from, before);
    // Held 5 s more: had the switch landed after the rollback, every request would now fail.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal((await live()).activeSlot, from);
    const after = traffic.snapshot();
    assert.equal(after.serverErrors - score.serverErrors, 0, answered5xx(after, stack));
    assert.equal(after.connectionFailures - score.connectionFailures, 0, unanswered(after, stack));
    await assertNothingPending(handle.workflowId);
  });

  it("an abort while a replica-ratio canary's first weight is held 5 s by a slow API ends with weight 0, verified, and the canary restored", async () => {
    const from = (await live()).activeSlot;
    const to: Slot = from === 'blue' ? 'green' : 'blue';
    const before = { image: (await live()).slots[to].image, replicas: (await live()).slots[to].replicas };
    const score = traffic.snapshot();
    const writesBefore = proxy.tap.writes.length;
    proxy.tap.holdNext(SERVICE_PATCH, 5000);
    const held = proxy.tap.nextWrite(SERVICE_PATCH);
    const handle = await stack.deployments!.start(canary('v2.2.0', 30));
    await held;
    const answer = await abort('the weight write is slow: pull the canary back');
    assert.equal(answer.delivery, 'accepted');
    assert.equal(answer.phase, 'Switching');
    const result: DeploymentResult = await deploymentResult(handle);
    assert.deepEqual([result.outcome, result.reason, result.liveSlot], ['RolledBack', 'Aborted', from], result.message);
    // The held weight landed before the rollback's weight 0: both writes, in that order.
    const weightWrites = proxy.tap.writes.slice(writesBefore).filter((w) => SERVICE_PATCH.test(w.path));
    assert.equal(weightWrites.length, 2, 'the 33 % and the 0 %');
    const service = (await (
      await fetch(`${stack.local!.controlUrl}/api/v1/namespaces/default/services/detection-api-service`)
    ).json()) as { selector: Record<string, string> };
    assert.equal(service.selector['slot'], from, 'the selector names the stable slot again: no split left');
    await assertRestored(from, before);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal((await live()).activeSlot, from);
    const after = traffic.snapshot();
    assert.equal(after.serverErrors - score.serverErrors, 0, answered5xx(after, stack));
    assert.equal(after.connectionFailures - score.connectionFailures, 0, unanswered(after, stack));
    await assertNothingPending(handle.workflowId);
  });

  it('sweeps the abort across Deploying and Switching: every run rolls back, the old slot serving', async () => {
    // Calibration: a deployment aborted in Monitoring gives the spans of both phases.
    const from = (await live()).activeSlot;
    const to: Slot = from === 'blue' ? 'green' : 'blue';
    const before = { image: (await live()).slots[to].image, replicas: (await live()).slots[to].replicas };
    const calibration = await start('v2.2.1');
    await untilPhase(stack, 'Monitoring');
    await abort('calibration');
    const calibrated = await deploymentResult(calibration);
    await assertRestored(from, before);
    const spans = phaseSpans(calibrated.status);
    const points = sweepPoints(spans);
    assert.ok(points.length >= 40, `${points.length} offsets`);
    const score = traffic.snapshot();
    const runs = await runSweep(
      points,
      {
        start: () => start('v2.2.1'),
        anchorWrite: (anchor) => proxy.tap.nextWrite(anchor === 'deploy' ? deploymentPatch(to) : SERVICE_PATCH),
        abort: () => abort('abort sweep'),
        assertRestored: async () => assertRestored(from, before),
      },
      (line) => process.stdout.write(`# ${line}\n`),
    );
    const after = traffic.snapshot();
    process.stdout.write(
      `# abort sweep (local platform): Deploying ${spans.deployMs} ms, Switching ${spans.switchMs} ms; ${summarise(runs)}\n`,
    );
    assert.equal(after.connectionFailures - score.connectionFailures, 0, unanswered(after, stack));
    assert.equal(after.serverErrors - score.serverErrors, 0, answered5xx(after, stack));
    assert.ok(
      runs.some((r) => r.acceptedIn === 'Deploying') && runs.some((r) => r.acceptedIn === 'Switching'),
      summarise(runs),
    );
  });

  it('with the worker SIGKILLed, `bluegreen abort` is recorded (exit 5) and the next worker restores traffic', async () => {
    const from = (await live()).activeSlot;
    const to: Slot = from === 'blue' ? 'green' : 'blue';
    const handle = await start('v2.2.2', 600);
    await untilPhase(stack, 'Monitoring');
    assert.equal((await live()).activeSlot, to);
    await stack.killWorker();
    await abortWithoutWorker('worker gone, pull it back');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal((await live()).activeSlot, to, 'no worker, no change');

    const began = performance.now();
    await stack.startWorker();
    const started = performance.now();
    for (;;) {
      if ((await live()).activeSlot === from) break;
      assert.ok(performance.now() - started < 60_000, 'traffic restored within 60 s of the worker starting');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const restored = performance.now();
    process.stdout.write(
      `# worker down: worker start took ${((started - began) / 1000).toFixed(1)} s, then traffic restored ${((restored - started) / 1000).toFixed(2)} s after it polled\n`,
    );
    const result = await deploymentResult(handle);
    assert.deepEqual([result.outcome, result.reason], ['RolledBack', 'Aborted']);
    assert.equal(result.status.abort?.reason, 'worker gone, pull it back');
    const state = await live();
    assert.deepEqual([state.activeSlot, state.slots[from].readyReplicas, state.slots[to].replicas], [from, 2, 0]);
    assert.equal(state.slots[from].image === IMAGE('v2.2.2'), false, 'the old version serves');
  });

  it('with the worker SIGKILLed during a canary hold (one activity measuring), the abort is recorded and the next worker sends all traffic back and restores the canary', async () => {
    const from = (await live()).activeSlot;
    const to: Slot = from === 'blue' ? 'green' : 'blue';
    const before = { image: (await live()).slots[to].image, replicas: (await live()).slots[to].replicas };
    const score = traffic.snapshot();
    const handle = await stack.deployments!.start(canary('v2.2.3', 600));
    // The hold's activity has measured, and heartbeated, twice: the worker dies mid-hold.
    await eventually(
      async () =>
        ((await stack.deployments!.status('default', 'detection-api').catch(() => null))?.monitor?.tick ?? 0) >= 2,
      'two ticks of the hold',
      60_000,
    );
    await stack.killWorker();
    await abortWithoutWorker('worker gone mid-hold, pull the canary back');
    await stack.startWorker();
    const result: DeploymentResult = await deploymentResult(handle);
    assert.deepEqual([result.outcome, result.reason, result.liveSlot], ['RolledBack', 'Aborted', from], result.message);
    assert.equal(result.status.abort?.reason, 'worker gone mid-hold, pull the canary back');
    const service = (await (
      await fetch(`${stack.local!.controlUrl}/api/v1/namespaces/default/services/detection-api-service`)
    ).json()) as { selector: Record<string, string> };
    assert.equal(service.selector['slot'], from, 'the selector names the stable slot again: no split left');
    await assertRestored(from, before);
    const after = traffic.snapshot();
    assert.equal(after.serverErrors - score.serverErrors, 0, answered5xx(after, stack));
    await assertNothingPending(handle.workflowId, { cancelledWindow: true });
  });
});
