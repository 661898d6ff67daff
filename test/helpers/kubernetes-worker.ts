/**
 * A deployment worker in the test process that drives the control plane through `config` (the
 * worker ServiceAccount's token, straight to the API server or through a proxy), and a real
 * reference service for the smoke suite to check. No SLO queries unless given a Prometheus: the
 * cluster's pods are simulated, so the monitor gates on their restarts. `startLocalWorker` drives
 * a local platform process the same way (its smoke suite calls the slots' own replicas).
 */
import type * as k8s from '@kubernetes/client-node';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createActivities } from '../../src/activities/index.js';
import type { Notifier } from '../../src/activities/contract.js';
import { PrometheusSloSource } from '../../src/checks/prometheus-slo-source.js';
import { PrometheusConfigSchema } from '../../src/config/worker-settings.js';
import { parseEnv } from '../../src/config/env.js';
import { HttpSmokeRunner } from '../../src/checks/smoke-suite.js';
import type { Platform, SmokeRunner } from '../../src/activities/contract.js';
import { KubernetesPlatform } from '../../src/platforms/kubernetes-platform.js';
import type { LocalPlatform } from '../../src/platforms/local-platform.js';
import { createDeploymentWorker } from '../../src/worker/worker.js';
import { startDetectionApi, TakListener, tempQueuePath } from './detection-api-process.js';
import { workflowBundle } from './temporal-servers.js';

export interface KubernetesWorker {
  /** Where the reference service answers: the smoke endpoint for the specs. */
  referenceUrl: string;
  stop(): Promise<void>;
}

export async function startKubernetesWorker(
  env: TestWorkflowEnvironment,
  config: k8s.KubeConfig,
  taskQueue: string,
  notifier: Notifier | null = null,
  options: { prometheusUrl?: string } = {},
): Promise<KubernetesWorker> {
  const platform = new KubernetesPlatform(config);
  return await startPlatformWorker(env, { platform, smoke: new HttpSmokeRunner() }, taskQueue, notifier, options);
}

/** A worker in the test process that drives a local platform process, as a cluster of its own. */
export async function startLocalWorker(
  env: TestWorkflowEnvironment,
  local: LocalPlatform,
  taskQueue: string,
  notifier: Notifier | null = null,
): Promise<KubernetesWorker> {
  const smoke = new HttpSmokeRunner({ resolveEndpoint: (url) => local.resolveServiceUrl(url) });
  return await startPlatformWorker(env, { platform: local, smoke }, taskQueue, notifier);
}

async function startPlatformWorker(
  env: TestWorkflowEnvironment,
  { platform, smoke }: { platform: Platform; smoke: SmokeRunner },
  taskQueue: string,
  notifier: Notifier | null,
  { prometheusUrl = 'http://127.0.0.1:9' }: { prometheusUrl?: string } = {},
): Promise<KubernetesWorker> {
  const tak = await TakListener.start();
  const reference = await startDetectionApi({ TAK_ADDRESS: `127.0.0.1:${tak.port}`, QUEUE_PATH: tempQueuePath() });
  const worker = await createDeploymentWorker({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    activities: createActivities({
      platform,
      smoke,
      slo: new PrometheusSloSource(parseEnv(PrometheusConfigSchema, { PROMETHEUS_URL: prometheusUrl })),
      notifier,
    }),
    workflowBundle: await workflowBundle(),
  });
  const running = worker.run();
  return {
    referenceUrl: reference.url,
    stop: async () => {
      worker.shutdown();
      await running;
      reference.kill('SIGKILL');
      await tak.close();
    },
  };
}
