/**
 * Whole deployments on the Temporal dev server with the real gates: the smoke suite against the
 * real detection API and the SLOs from a real Prometheus scraping both slots, under real traffic.
 * The platform is a double that runs each slot as a real process. A good version goes live; a
 * slow one passes its smoke tests (the latency check only warns) and is rolled back when the
 * monitor sees its p95 latency.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities/index.js';
import { PrometheusSloSource } from '../../src/gates/prometheus-slo-source.js';
import { HttpSmokeRunner } from '../../src/gates/smoke-suite.js';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import { createDeploymentWorker } from '../../src/worker/worker.js';
import { blueGreenDeploymentWorkflow } from '../../src/workflows/blue-green-deployment.js';
import { testSpec } from '../helpers/deployment-harness.js';
import { freePort, postDetection, SEED_DETECTION, TakListener } from '../helpers/detection-api-process.js';
import { ProcessPlatformDouble } from '../helpers/process-platform-double.js';
import { startPrometheus } from '../helpers/prometheus.js';
import type { PrometheusServer } from '../helpers/prometheus.js';
import { startDevServer, workflowBundle } from '../helpers/temporal-servers.js';

const TASK_QUEUE = 'bluegreen-gates-e2e';

describe('deployments with the real gates on the dev server', () => {
  let env: TestWorkflowEnvironment;
  let tak: TakListener;
  let prometheus: PrometheusServer;
  let platform: ProcessPlatformDouble;
  let worker: Worker;
  let running: Promise<void>;
  let trafficOn = true;
  let traffic: Promise<void>[] = [];
  const answered: Record<string, number> = {};

  before(async () => {
    env = await startDevServer();
    tak = await TakListener.start();
    platform = new ProcessPlatformDouble({ blue: await freePort(), green: await freePort() }, `127.0.0.1:${tak.port}`);
    await platform.init('blue', 'registry.internal/detection-api:v2.1.0');
    prometheus = await startPrometheus([platform.endpointOf('blue'), platform.endpointOf('green')].map((u) => u.replace('http://', '')));
    worker = await createDeploymentWorker({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue: TASK_QUEUE,
      activities: createActivities({
        platform,
        smoke: new HttpSmokeRunner({ resolveEndpoint: (request) => platform.endpointOf(request.slot) }),
        slo: PrometheusSloSource.fromEnv({ PROMETHEUS_URL: prometheus.url }),
      }),
      workflowBundle: await workflowBundle(),
    });
    running = worker.run();
    // A steady stream of detections to whichever slot is live, as the Service would route it.
    traffic = Array.from({ length: 4 }, async () => {
      while (trafficOn) {
        const outcome = await postDetection(platform.endpointOf(platform.selector), SEED_DETECTION)
          .then((r) => String(r.status))
          .catch(() => 'no answer');
        answered[outcome] = (answered[outcome] ?? 0) + 1;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    });
  });

  after(async () => {
    trafficOn = false;
    await Promise.all(traffic);
    worker?.shutdown();
    await running;
    await platform?.stopAll();
    await prometheus?.stop();
    await tak?.close();
    await env?.teardown();
  });

  async function deploy(image: string, workflowId: string): Promise<DeploymentResult> {
    const spec = testSpec({
      image,
      replicas: 1,
      readinessTimeoutSeconds: 30,
      monitor: { durationSeconds: 12, intervalSeconds: 2, window: '5s' },
      scaleDownDelaySeconds: 0,
    });
    return await env.client.workflow.execute(blueGreenDeploymentWorkflow, { taskQueue: TASK_QUEUE, workflowId, args: [spec] });
  }

  it('puts a good version live: smoke passes, the SLOs hold, the old slot stops', async () => {
    const result = await deploy('registry.internal/detection-api:v2.2.0', 'gates-e2e-good');
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.deepEqual([result.fromSlot, result.toSlot, result.liveSlot], ['blue', 'green', 'green']);
    assert.equal(platform.selector, 'green');
    assert.equal(platform.slots.blue.process, null, 'the old slot is scaled to zero');
    assert.deepEqual(result.status.smoke?.checks.map((c) => c.verdict), Array<string>(7).fill('passed'));
    const monitor = result.status.monitor!;
    assert.ok(monitor.successful >= 1, `at least one tick measured and met every SLO (${JSON.stringify(monitor)})`);
    assert.equal(monitor.failed, 0);
    assert.equal(monitor.latest['error-rate']?.value, 0);
    assert.ok((monitor.latest['p95-latency']?.value ?? 1) < 0.5);
  });

  it('rolls back a slow version that passed its smoke tests, when the monitor sees p95', async () => {
    const result = await deploy('registry.internal/detection-api:v2.3.0-slow', 'gates-e2e-slow');
    assert.equal(result.outcome, 'RolledBack', result.message);
    assert.equal(result.reason, 'SloBreach');
    assert.equal(result.failedCheck, 'p95-latency');
    assert.equal(result.status.smoke?.passed, true, 'the smoke suite only warned about latency');
    assert.equal(result.status.smoke?.checks.find((c) => c.name === 'latency')?.verdict, 'warning');
    assert.equal(platform.selector, 'green', 'traffic is back on the good version');
    assert.equal(platform.slots.blue.process, null, 'the slow version is stopped');
    assert.equal(platform.slots.green.image, 'registry.internal/detection-api:v2.2.0');
    const ready = await fetch(`${platform.endpointOf('green')}/ready`);
    assert.deepEqual(await ready.json(), { status: 'ready', version: 'v2.2.0', slot: 'green' });
    assert.ok((answered['201'] ?? 0) > 50, `traffic flowed throughout (${JSON.stringify(answered)})`);
  });
});
