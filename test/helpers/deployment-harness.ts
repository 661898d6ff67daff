/**
 * Runs deployments on a real Temporal server with the real worker code and injected activity
 * doubles, and captures histories for the replay tests.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkerOptions } from '@temporalio/worker';
import { parse as parseYaml } from 'yaml';
import { createActivities } from '../../src/activities/index.js';
import type { Clock } from '../../src/activities/monitor-window.js';
import type { Target } from '../../src/activities/contract.js';
import type { Notifier } from '../../src/activities/contract.js';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import type { DeploymentSpec, DeploymentSpecInput } from '../../src/deployment-spec/deployment-spec.js';
import { createDeploymentWorker } from '../../src/worker/worker.js';
import { blueGreenDeploymentWorkflow } from '../../src/workflows/blue-green-deployment.js';
import { canaryDeploymentWorkflow } from '../../src/workflows/canary-deployment.js';
import type { RecordingPlatformDouble } from './recording-platform-double.js';
import { workflowBundle } from './temporal-servers.js';
import { DETECTION_API_TARGET } from '../../src/demo/stack.js';

export const HISTORIES_DIR = fileURLToPath(new URL('../histories/', import.meta.url));

/**
 * The objects `testSpec()` names: what the workflow must render from the spec, and what the
 * example local platform configuration and Kubernetes manifests hold.
 */
export const REFERENCE_TARGET: Target = DETECTION_API_TARGET;

/** The reference workload's preset, as its repository keeps it: the seven smoke checks and the full SLO table. */
export const DETECTION_API_PRESET = parseYaml(
  readFileSync(fileURLToPath(new URL('../../examples/detection-api/bluegreen.yaml', import.meta.url)), 'utf8'),
) as {
  smoke: NonNullable<DeploymentSpecInput['smoke']>;
  monitor: NonNullable<DeploymentSpecInput['monitor']>;
  canary: NonNullable<DeploymentSpecInput['canary']>;
};

/** The detection API's SLO table, parsed (its preset's `monitor.slos`). */
export const DETECTION_API_SLOS = parseDeploymentSpec({
  app: 'detection-api',
  image: 'registry.internal/detection-api:v2.2.0',
  monitor: { slos: DETECTION_API_PRESET.monitor.slos },
}).monitor.slos;

/**
 * The reference workload's spec: the product's defaults with the detection API's preset (its
 * smoke suite, SLO table and canary request count), plus the test's overrides (over the preset's
 * smoke, monitor and canary fields, field by field).
 */
export function testSpec(overrides: Partial<DeploymentSpecInput> = {}): DeploymentSpec {
  return parseDeploymentSpec({
    app: 'detection-api',
    namespace: 'default',
    image: 'registry.internal/detection-api:v2.2.0',
    ...overrides,
    smoke: { suite: DETECTION_API_PRESET.smoke.suite, ...overrides.smoke },
    monitor: { slos: DETECTION_API_PRESET.monitor.slos, ...overrides.monitor },
    canary: { requestsQuery: DETECTION_API_PRESET.canary.requestsQuery, ...overrides.canary },
  });
}

/**
 * Runs `body` while a worker with the double's activities polls a fresh task queue, then stops
 * the worker (releasing any call the double still blocks).
 */
export async function withWorker<T>(
  env: TestWorkflowEnvironment,
  double: RecordingPlatformDouble,
  body: (taskQueue: string) => Promise<T>,
  {
    taskQueue = `test-${randomUUID()}`,
    options = {},
    notifier = null,
  }: { taskQueue?: string; options?: Partial<WorkerOptions>; notifier?: Notifier | null } = {},
): Promise<T> {
  const skipping = env.supportsTimeSkipping;
  const worker = await createDeploymentWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    activities: createActivities({
      platform: double,
      smoke: double,
      slo: double,
      notifier,
      ...(skipping ? { clock: acceleratedClock(env) } : {}),
    }),
    workflowBundle: await workflowBundle(),
    // Under skipped time a heartbeat must reach the server before the next skip, not 3 s later.
    options: { ...(skipping ? { maxHeartbeatThrottleInterval: '1ms' } : {}), ...options },
  });
  try {
    return await worker.runUntil(body(taskQueue));
  } finally {
    double.releaseAll();
  }
}

/** How much faster than real time the monitor window's clock runs under the time-skipping server. */
export const ACCELERATION = 25;

/**
 * The monitor window's clock under the time-skipping test server: each sleep skips the server's
 * time (as the workflow's timers are skipped) and takes a 25th of it in real time, so a window of
 * 10 minutes passes in 24 s and a test can still act while it runs. Not faster: the server's
 * heartbeat timeout (10 s) runs on skipped time, and at 100 times real time a loaded machine
 * delivered a heartbeat too late (the window was retried, and re-measured its last ticks).
 */
export function acceleratedClock(env: TestWorkflowEnvironment): Clock {
  return {
    now: async () => await env.currentTimeMs(),
    sleep: async (ms, signal) => {
      await delay(ms / ACCELERATION, undefined, { signal });
      await env.sleep(ms);
    },
  };
}

/** Starts a deployment workflow directly, of the spec's strategy (the client library is tested on its own). */
export async function startDeployment(env: TestWorkflowEnvironment, taskQueue: string, spec: DeploymentSpec) {
  return await env.client.workflow.start(
    spec.strategy === 'canary' ? canaryDeploymentWorkflow : blueGreenDeploymentWorkflow,
    {
      taskQueue,
      workflowId: `deploy-${randomUUID()}`,
      args: [spec],
    },
  );
}

/** Writes a finished run's history for the replay tests when UPDATE_HISTORIES=1. */
export async function captureHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env['UPDATE_HISTORIES'] !== '1') return;
  const history = await handle.fetchHistory();
  mkdirSync(HISTORIES_DIR, { recursive: true });
  writeFileSync(`${HISTORIES_DIR}${name}.json`, `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 1)}\n`);
}
