/**
 * Several workers under chaos: three worker processes on one task queue of the Temporal dev
 * server, and 50 deployments of different apps against the real control plane, as the worker
 * ServiceAccount, while one worker after another is SIGKILLed and a new one started in its place
 * every 20 s until the last deployment has ended. One app in five deploys a version whose pods
 * crash-loop (their restartCount climbs, as a crashing container's does).
 *
 * Every deployment ends as its version should: Succeeded, or RolledBack on pod-restarts. Each
 * app's cluster state is then what its outcome says, down to the Service's endpoints and the
 * Deployments' rollouts. The writes repeated after a kill (a write activity whose history shows
 * an attempt after the first) are counted and listed; each was harmless: its app's state is
 * exactly its outcome's, and its Deployments rolled out once per change, never once per attempt.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DeploymentClient, deploymentResult } from '../../src/client/deployment-client.js';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import { startWorkerProcess } from '../../src/demo/worker-process.js';
import type { WorkerProcess } from '../../src/demo/worker-process.js';
import { freePort } from '../../src/processes/processes.js';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import { startDetectionApi, TakListener, tempQueuePath } from '../helpers/detection-api-process.js';
import type { DetectionApiProcess } from '../helpers/detection-api-process.js';
import { eventually } from '../helpers/eventually.js';
import { FaultInjectingKubeProxy } from '../helpers/fault-injecting-kube-proxy-double.js';
import {
  assertFirstDeploymentState,
  crashLoop,
  createBlueGreenApp,
  deleteBlueGreenApp,
  fileNamespace,
  startClusterWithManifests,
} from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startDevServer } from '../helpers/temporal-servers.js';
import { workflowBundleFile } from '../helpers/workflow-bundle-file.js';

const APPS = 50;
const WORKERS = 3;
const KILL_EVERY_MS = 20_000;
const WAVE = 10;
const WAVE_EVERY_MS = 15_000;
const WRITE_DELAY_MS = 1500;
const TASK_QUEUE = 'bluegreen-chaos';
const NAMESPACE = fileNamespace(import.meta.url);
/** The activities that write to the cluster. */
const WRITES = new Set(['deploySlot', 'switchTraffic', 'scaleSlot', 'setTrafficWeight']);

const appName = (i: number) => `chaos-${String(i).padStart(2, '0')}`;
/** One app in five deploys a version that crash-loops. */
const isCrashLooping = (i: number) => i % 5 === 4;
const versionOf = (i: number) => (isCrashLooping(i) ? 'v2.0.0-crashloop' : 'v2.0.0');
const imageOf = (app: string, version: string) => `registry.internal/${app}:${version}`;

describe('three workers on one task queue, one SIGKILLed every 20 s, under 50 deployments of different apps', () => {
  let env: TestWorkflowEnvironment;
  let cluster: Cluster;
  let tak: TakListener;
  let reference: DetectionApiProcess;
  let workerEnv: Record<string, string>;
  let proxy: FaultInjectingKubeProxy;
  const workers: WorkerProcess[] = [];

  const startWorker = async () =>
    await startWorkerProcess({
      env: workerEnv,
      metricsPort: await freePort(),
    });

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chaos-'));
    [env, cluster] = await Promise.all([startDevServer(), startClusterWithManifests({ namespace: NAMESPACE })]);
    tak = await TakListener.start();
    reference = await startDetectionApi({ TAK_ADDRESS: `127.0.0.1:${tak.port}`, QUEUE_PATH: tempQueuePath() });
    for (let i = 0; i < APPS; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, APPS - i) }, (_, j) =>
          createBlueGreenApp(cluster.apps, cluster.core, appName(i + j), { namespace: NAMESPACE }),
        ),
      );
    }
    await eventually(
      async () => {
        const deployments = await cluster.apps.listNamespacedDeployment({ namespace: NAMESPACE });
        return (
          deployments.items.filter(
            (d) =>
              d.metadata!.name!.startsWith('chaos-') &&
              d.metadata!.name!.endsWith('-blue') &&
              d.status?.readyReplicas === 1,
          ).length === APPS
        );
      },
      `blue ready in all ${APPS} apps`,
      120_000,
    );
    const kubeconfig = join(dir, 'worker.kubeconfig');
    // The API server answers each write WRITE_DELAY_MS late, as a busy one does: a kill then
    // often catches a write in flight, which is what the drill is after.
    proxy = await FaultInjectingKubeProxy.inFrontOf(cluster.plane);
    proxy.tap.writeDelayMs = WRITE_DELAY_MS;
    const token = await cluster.plane.mintToken(NAMESPACE, 'bluegreen-worker', 3600);
    writeFileSync(kubeconfig, cluster.plane.configForToken(token, proxy.url).exportConfig());
    // Bundled once, so that a worker started after a kill polls within seconds.
    const bundle = await workflowBundleFile(dir);
    workerEnv = {
      BLUEGREEN_PLATFORM: 'kubernetes',
      BLUEGREEN_KUBECONFIG: kubeconfig,
      // The cluster's pods are simulated: no SLO queries; the monitor gates on restarts.
      PROMETHEUS_URL: 'http://127.0.0.1:9',
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_TASK_QUEUE: TASK_QUEUE,
      BLUEGREEN_WORKFLOW_BUNDLE: bundle,
      LOG_LEVEL: 'warn',
    };
    workers.push(...(await Promise.all(Array.from({ length: WORKERS }, startWorker))));
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    reference?.kill('SIGKILL');
    await tak?.close();
    await proxy?.close();
    // The shared control plane goes on to other files: the drill's apps go.
    if (cluster) {
      await Promise.all(Array.from({ length: APPS }, (_, i) => deleteBlueGreenApp(cluster, appName(i), NAMESPACE)));
      await cluster.plane.stop();
    }
    await env?.teardown();
  });

  it('ends every deployment as its version should, each app as its outcome says; the writes repeated after a kill were harmless', async () => {
    const client = new DeploymentClient(env.client, TASK_QUEUE);
    const ended = new AbortController();

    // A crash-looping version's pods: their restartCount climbs every 2 s while they run.
    const crashing = crashLoop(cluster, 'v2.0.0-crashloop', NAMESPACE);

    // One worker after another SIGKILLed, and a new one started in its place, every 20 s.
    const kills: { at: number; worker: number }[] = [];
    const started = performance.now();
    const chaos = (async () => {
      for (let k = 0; ; k++) {
        await sleep(KILL_EVERY_MS, undefined, { signal: ended.signal }).catch(() => undefined);
        if (ended.signal.aborted) return;
        const slot = k % WORKERS;
        await workers[slot]!.kill();
        kills.push({ at: (performance.now() - started) / 1000, worker: slot });
        workers[slot] = await startWorker();
      }
    })();

    let results: DeploymentResult[];
    let handles: Awaited<ReturnType<DeploymentClient['start']>>[];
    try {
      // In waves of ten, 15 s apart, as a team's deployments come: each kill meets some in their
      // deploy, smoke and switch, and others monitoring.
      handles = await Promise.all(
        Array.from({ length: APPS }, async (_, i) => {
          await new Promise((resolve) => setTimeout(resolve, Math.floor(i / WAVE) * WAVE_EVERY_MS));
          return await client.start(
            parseDeploymentSpec({
              app: appName(i),
              namespace: NAMESPACE,
              image: imageOf(appName(i), versionOf(i)),
              replicas: 1,
              readinessTimeoutSeconds: 300,
              smoke: { endpoint: reference.url },
              monitor: { durationSeconds: 30, intervalSeconds: 5, slos: [] },
              scaleDownDelaySeconds: 0,
            }),
          );
        }),
      );
      results = await Promise.all(handles.map((h) => deploymentResult(h)));
    } finally {
      ended.abort();
      await Promise.all([chaos, crashing.stop()]);
    }
    const seconds = (performance.now() - started) / 1000;
    assert.ok(
      kills.length >= 3,
      `every worker was killed at least once: ${kills.length} kills in ${seconds.toFixed(0)} s`,
    );

    // Every outcome as the version should have it.
    const outcomes = results.map(
      (r, i) =>
        `${appName(i)} ${r.outcome}${r.outcome === 'RolledBack' ? ` (${r.reason}: ${r.failedCheck ?? r.message})` : r.outcome === 'Succeeded' ? '' : `: ${r.message}`}`,
    );
    for (const [i, result] of results.entries()) {
      if (isCrashLooping(i))
        assert.deepEqual([result.outcome, result.failedCheck], ['RolledBack', 'pod-restarts'], outcomes[i]);
      else assert.equal(result.outcome, 'Succeeded', outcomes[i]);
    }

    // Each app's cluster state, as its outcome says: where the Service sends traffic, who serves
    // behind it, what each slot runs, and one rollout per change.
    for (let i = 0; i < APPS; i++)
      await assertFirstDeploymentState(
        cluster,
        appName(i),
        imageOf(appName(i), versionOf(i)),
        isCrashLooping(i) ? 'RolledBack' : 'Succeeded',
        outcomes[i]!,
        NAMESPACE,
      );

    // The writes repeated after a kill, from the histories: an attempt after the first.
    const repeats: string[] = [];
    let retried = 0;
    let lostWorkflowTasks = 0;
    let timedOut = 0;
    for (const [i, handle] of handles.entries()) {
      const events = (await handle.fetchHistory()).events ?? [];
      const scheduled = new Map<string, string>();
      for (const event of events) {
        if (event.activityTaskScheduledEventAttributes)
          scheduled.set(String(event.eventId), event.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
        if (event.workflowTaskTimedOutEventAttributes || event.workflowTaskFailedEventAttributes) lostWorkflowTasks++;
        // An activity out of attempts (a tick's read has one: a lost one is a measurement error).
        if (event.activityTaskTimedOutEventAttributes) timedOut++;
        const attempt = event.activityTaskStartedEventAttributes?.attempt ?? 1;
        if (attempt > 1) {
          retried++;
          const type = scheduled.get(String(event.activityTaskStartedEventAttributes!.scheduledEventId))!;
          if (WRITES.has(type))
            repeats.push(`${appName(i)} ${type} ran ${attempt} times (${outcomes[i]}; its state as the outcome says)`);
        }
      }
    }
    console.log(
      `chaos: ${APPS} deployments on ${WORKERS} workers, ${kills.length} SIGKILLs in ${seconds.toFixed(0)} s; ` +
        `${results.filter((r) => r.outcome === 'Succeeded').length} succeeded, ${results.filter((r) => r.outcome === 'RolledBack').length} rolled back; ` +
        `${retried} activities retried after a lost attempt, ${repeats.length} of them writes; ${timedOut} activities timed out for good; ` +
        `${lostWorkflowTasks} workflow tasks timed out or failed`,
    );
    for (const line of repeats) console.log(`  repeated write: ${line}`);
    assert.ok(
      retried + timedOut + lostWorkflowTasks > 0,
      'the kills caught work in flight (else the drill proves nothing)',
    );
  });
});
