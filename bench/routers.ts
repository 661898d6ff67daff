/**
 * bench:routers: an operator's abort through each traffic router on the Kubernetes test control
 * plane (real API server with the Gateway API CRDs, controllers, scheduler; simulated nodes), the
 * worker authenticated as deploy/'s ServiceAccount with the routers' components applied, on a
 * Temporal dev server.
 *
 * For each router, RUNS deployments aborted while traffic is split (blue-green: during
 * monitoring, all of it on the new slot); from the abort (Update accepted, in the history) to all
 * traffic read back on the old slot: the Service's EndpointSlices (service-selector,
 * replica-ratio), the HTTPRoute's weights and the slot Services' endpoints (gateway-api), the
 * Ingresses' backend and canary weight (ingress). Median, min and max per router.
 *
 *   npm run bench:routers
 *   RUNS=9 npm run bench:routers
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DeploymentClient, deploymentResult } from '../src/client/deployment-client.js';
import { ROOT } from '../src/demo/simulator-process.js';
import { KubernetesPlatform } from '../src/platforms/kubernetes-platform.js';
import { otherSlot } from '../src/shared/slots.js';
import type { Slot } from '../src/shared/slots.js';
import { TRAFFIC_ROUTERS, TrafficRouter } from '../src/shared/traffic.js';
import { startControlPlane } from '../test/k8s-harness/control-plane.js';
import { REFERENCE_TARGET, testSpec } from '../test/helpers/deployment-harness.js';
import { startKubernetesWorker } from '../test/helpers/kubernetes-worker.js';
import type { KubernetesWorker } from '../test/helpers/kubernetes-worker.js';
import { startDevServer } from '../test/helpers/temporal-servers.js';
import { untilMonitoring } from './deployments.js';
import { abortToRestored } from './histories.js';
import { median } from './statistics.js';
import { trafficThrough } from '../src/activities/traffic.js';

const RUNS = Number(process.env['RUNS'] ?? 5);
const TASK_QUEUE = 'bench-routers';
const say = (line: string) => process.stdout.write(`${line}\n`);
const run = promisify(execFile);
const progress = { heartbeat: () => undefined, signal: new AbortController().signal };

const plane = await startControlPlane({
  dir: mkdtempSync(join(tmpdir(), 'bench-routers-')),
  log: (line) => say(`# ${line}`),
});
const env = await startDevServer();
let worker: KubernetesWorker | undefined;
try {
  await run('kubectl', [
    '--kubeconfig',
    plane.kubeconfigPath,
    'apply',
    '--server-side',
    '-k',
    join(ROOT, 'test/e2e/routers-overlay'),
  ]);
  const admin = new KubernetesPlatform(plane.adminConfig());
  await admin.waitForSlotReady({ target: REFERENCE_TARGET, slot: 'blue', replicas: 3, timeoutSeconds: 120 }, progress);
  worker = await startKubernetesWorker(
    env,
    plane.configForToken(await plane.mintToken('default', 'bluegreen-worker')),
    TASK_QUEUE,
  );
  const client = new DeploymentClient(env.client, TASK_QUEUE);
  const reference = worker.referenceUrl;
  const targetFor = (router: TrafficRouter) => ({
    ...REFERENCE_TARGET,
    traffic: { ...REFERENCE_TARGET.traffic!, router, httpRoute: 'detection-api', ingress: 'detection-api-ingress' },
  });
  /** Every router's objects on the live slot, so that any of them reads the same live slot. */
  const routeAllTo = async (slot: Slot) => {
    for (const router of TRAFFIC_ROUTERS)
      await trafficThrough(admin.routers).switchTraffic({ target: targetFor(router), slot });
  };

  const figures = new Map<TrafficRouter, number[]>();
  for (const router of TRAFFIC_ROUTERS) {
    figures.set(router, []);
    for (let i = 1; i <= RUNS; i++) {
      const live = (await admin.describe(REFERENCE_TARGET)).activeSlot;
      await routeAllTo(live);
      const canary = router !== TrafficRouter.ServiceSelector;
      const handle = await client.start(
        testSpec({
          image: `registry.internal/detection-api:v3.${TRAFFIC_ROUTERS.indexOf(router)}.${i}`,
          // The stable slot runs deploy/'s 3 replicas: one canary replica beside them is 25 %.
          replicas: 3,
          readinessTimeoutSeconds: 60,
          smoke: { endpoint: reference },
          monitor: { durationSeconds: 120, intervalSeconds: 1, slos: [] },
          scaleDownDelaySeconds: 0,
          traffic: { router, ...(router === TrafficRouter.GatewayApi ? { httpRoute: 'detection-api' } : {}) },
          ...(canary
            ? {
                strategy: 'canary' as const,
                canary: {
                  steps: [
                    { weight: 25, holdSeconds: 120 },
                    { weight: 100, holdSeconds: 1 },
                  ],
                  minRequests: 0,
                },
              }
            : {}),
        }),
      );
      await untilMonitoring(client, 'default', 'detection-api').catch(async (error: unknown) => {
        const result = await deploymentResult(handle);
        throw new Error(
          `${router} run ${i} never reached monitoring: ${result.outcome} ${result.reason}: ${result.message}`,
          { cause: error },
        );
      });
      await client.abort('default', 'detection-api', { reason: `bench run ${i}`, by: 'bench:routers' });
      const result = await deploymentResult(handle);
      if (result.reason !== 'Aborted' || result.liveSlot !== live)
        throw new Error(`${router} run ${i}: ${result.outcome} ${result.reason}: ${result.message}`);
      const restored = (await admin.describe({ ...targetFor(router) })).activeSlot;
      if (restored !== live) throw new Error(`${router} run ${i}: the router reads ${restored} live, not ${live}`);
      figures.get(router)!.push(abortToRestored((await handle.fetchHistory()).events ?? []));
      say(
        `# ${router} ${i}/${RUNS}: old slot ${live} read back ${figures.get(router)!.at(-1)} ms after the abort (the new slot ${otherSlot(live)} restored)`,
      );
    }
  }
  say('');
  say(
    `bench:routers on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString().slice(0, 16)}; Kubernetes test control plane, worker as deploy/'s ServiceAccount`,
  );
  say(
    'router           | what is read back                                | abort -> old slot read back: median (min-max), runs',
  );
  const readBack: Record<TrafficRouter, string> = {
    [TrafficRouter.ServiceSelector]: 'Service selector, EndpointSlices (blue-green)',
    [TrafficRouter.ReplicaRatio]: 'Service selector, EndpointSlices (canary 25 %)',
    [TrafficRouter.GatewayApi]: 'HTTPRoute weights, slot EndpointSlices (25 %)',
    [TrafficRouter.Ingress]: 'Ingress backend, canary-weight (25 %)',
  };
  for (const [router, times] of figures) {
    say(
      `${router.padEnd(16)} | ${readBack[router].padEnd(48)} | ${median(times)} ms (${Math.min(...times)}-${Math.max(...times)}), ${times.length}`,
    );
  }
} finally {
  await worker?.stop();
  await env.teardown();
  await plane.stop();
}
