/**
 * The plan workflow on the time-skipping server, its activities on the recording double: a plan
 * reads and sends its writes as dry runs only (the double's slots and selector stay as they
 * were), builds the plan of each strategy, and a deployment of a plan refuses in preflight, with
 * nothing written, once the live state changed since. The histories are kept for the replay test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DeploymentClient, deploymentResult } from '../../src/client/deployment-client.js';
import { captureHistory, testSpec, withWorker } from '../helpers/deployment-harness.js';
import { RecordingPlatformDouble } from '../helpers/recording-platform-double.js';
import { startTimeSkippingServer } from '../helpers/temporal-servers.js';

const WRITES = ['deploySlot', 'switchTraffic', 'setTrafficWeight', 'scaleSlot'];

describe('planWorkflow on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;

  before(async () => {
    env = await startTimeSkippingServer();
  });

  after(async () => {
    await env?.teardown();
  });

  it('plans a blue-green release with reads and dry runs only, and refuses to deploy it once the live state changed', async () => {
    const double = new RecordingPlatformDouble();
    await withWorker(env, double, async (taskQueue) => {
      const client = new DeploymentClient(env.client, taskQueue);
      const result = await client.plan(testSpec());
      await captureHistory(env.client.workflow.getHandle(result.id), 'planned-blue-green');
      const plan = result.plan!;
      assert.equal(plan.proceeds, true, JSON.stringify(plan.checks));
      assert.deepEqual(
        [plan.liveSlot, plan.idleSlot, plan.strategy, plan.router],
        ['blue', 'green', 'blueGreen', 'service-selector'],
      );
      assert.deepEqual(plan.changes, [
        {
          field: 'image',
          from: 'registry.internal/detection-api:v2.0.0',
          to: 'registry.internal/detection-api:v2.2.0',
        },
        { field: 'version', from: 'v2.0.0', to: 'v2.2.0' },
        { field: 'replicas', from: 0, to: 3 },
        { field: 'run label', from: null, to: '(this run)' },
      ]);
      assert.deepEqual(
        plan.checks.filter((c) => c.kind === 'write').map((c) => [c.name, c.verdict]),
        [
          ['deploy v2.2.0 to detection-api-green x3', 'ok'],
          ['switch detection-api-service to green', 'ok'],
          ['scale detection-api-blue to 0 at the cleanup', 'ok'],
        ],
      );
      assert.deepEqual(
        plan.timeline.map((p) => p.phase),
        ['Preflight', 'Deploying', 'SmokeTesting', 'Switching', 'Monitoring', 'CleaningUp'],
      );
      assert.equal(plan.leastSeconds, 300 + 30, 'the five-minute window and the scale-down delay');
      assert.deepEqual(
        double.calls.filter((c) => WRITES.includes(c.name)),
        [],
        'nothing was written',
      );
      assert.deepEqual(
        double.calls.filter((c) => c.name.startsWith('dryRun:')).map((c) => `${c.name} ${c.slot}`),
        ['dryRun:deploySlot green', 'dryRun:promote green', 'dryRun:deploySlot blue'],
      );
      assert.equal(double.selector, 'blue');

      // Someone else rolls out the idle slot before the plan is deployed.
      double.slots.green.image = 'registry.internal/detection-api:v2.0.5';
      const handle = await client.start(result.spec, { planned: result });
      const outcome = await deploymentResult(handle);
      await captureHistory(handle, 'failed-plan-stale');
      assert.deepEqual([outcome.outcome, outcome.reason, outcome.failedCheck], ['Failed', 'PreflightFailed', 'plan']);
      assert.match(
        outcome.message,
        new RegExp(
          `the live state changed since plan ${result.id.replace(/\//g, '\\/')}: green's image was registry\\.internal/detection-api:v2\\.0\\.0, is registry\\.internal/detection-api:v2\\.0\\.5`,
        ),
      );
      assert.deepEqual(
        double.calls.filter((c) => WRITES.includes(c.name)),
        [],
        'still nothing written',
      );
    });
  });

  it('plans a canary: each step with its weight, hold and replicas, and a dry-run weight per step', async () => {
    const double = new RecordingPlatformDouble();
    await withWorker(env, double, async (taskQueue) => {
      const client = new DeploymentClient(env.client, taskQueue);
      const spec = testSpec({
        strategy: 'canary',
        replicas: 3,
        traffic: { router: 'gateway-api' },
        canary: {
          steps: [
            { weight: 10, holdSeconds: 60 },
            { weight: 50, untilPromote: true },
            { weight: 100, holdSeconds: 30 },
          ],
        },
      });
      const plan = (await client.plan(spec)).plan!;
      assert.deepEqual(plan.steps, [
        // Through a route the canary slot grows with its share: enough replicas for each weight.
        { weight: 10, holdSeconds: 60, replicas: 1 },
        { weight: 50, holdSeconds: null, replicas: 2 },
        { weight: 100, holdSeconds: 30, replicas: 3 },
      ]);
      assert.ok(plan.gates.includes('promote at 50 %'), plan.gates.join('; '));
      assert.equal(
        plan.leastSeconds,
        60 + 30 + 30,
        'the holds and the scale-down delay; the promoted step waits for a person',
      );
      assert.deepEqual(
        double.calls
          .filter((c) => c.name === 'dryRun:setWeight' || c.name === 'dryRun:promote')
          .map((c) => (c.request as { weight: number }).weight),
        [10, 50, 100],
      );
      assert.equal(double.weight, 0, 'no weight was set');
    });
  });
  it('gives a live pod that missed a readiness probe the settle preflight gives it, and fails a slot still short after it', async () => {
    const double = new RecordingPlatformDouble();
    // Back in its Service at the next probe: ready from the live state's third read (2 s on).
    double.missProbe('blue', 2, 3);
    await withWorker(env, double, async (taskQueue) => {
      const client = new DeploymentClient(env.client, taskQueue);
      const back = (await client.plan(testSpec())).plan!;
      assert.equal(back.proceeds, true, JSON.stringify(back.checks));
      assert.equal(double.liveReads, 3);

      // Short for good: read each second of the plan's time (skipped here) for 15 s, then failed.
      double.missProbe('blue', 1);
      const short = (await client.plan(testSpec())).plan!;
      assert.equal(short.proceeds, false);
      assert.equal(double.liveReads, 16);
      assert.deepEqual(
        short.checks.filter((c) => c.kind === 'live').map((c) => [c.name, c.verdict, c.detail]),
        [
          [
            'live slot blue',
            'fail',
            'detection-api-blue is not healthy: 1/3 replicas ready after 15 s of reads; preflight would stop here',
          ],
        ],
      );
    });
  });
});
