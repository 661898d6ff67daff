/**
 * bench:gitops: the Release controller as a GitOps tool meets it. On the Kubernetes test control
 * plane, with the worker and the controller each as its own compiled process (as their containers
 * run them) and the controller as its ServiceAccount:
 *
 * - APPS Releases applied at once, in one `kubectl apply` (an Argo CD or Flux sync of a repository
 *   that bumped every tag). For each: from the apply's end to its deployment's run id in the
 *   Release's status (started and mirrored), and from the workflow's close to the outcome in the
 *   status (the mirror's lag; the controller resyncs every BLUEGREEN_RESYNC_SECONDS, 5 by default).
 *   p50, p95 and max.
 * - The controller's resident memory at rest and at its peak (VmHWM), against the 256 MiB limit
 *   of deploy/gitops/controller.yaml, and its CPU seconds over the run.
 *
 *   npm run bench:gitops
 *   APPS=20 npm run bench:gitops
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { EmbeddedStack, freeStackPorts } from '../src/demo/stack.js';
import { ROOT } from '../src/demo/simulator-process.js';
import { RELEASE_GROUP, RELEASE_PLURAL, RELEASE_VERSION } from '../src/gitops/release-resource.js';
import type { Release } from '../src/gitops/release-resource.js';
import { KubernetesPlatform } from '../src/platforms/kubernetes-platform.js';
import { startControlPlane } from '../test/k8s-harness/control-plane.js';
import { startDetectionApi, tempQueuePath } from '../test/helpers/detection-api-process.js';
import { appTarget, createBlueGreenApp } from '../test/helpers/kubernetes.js';
import { median, percentile } from './statistics.js';

const APPS = Number(process.env['APPS'] ?? 50);
const NAMESPACE = 'default';
const say = (line: string) => process.stdout.write(`${line}\n`);
const run = promisify(execFile);
const progress = { heartbeat: () => undefined, signal: new AbortController().signal };
const appName = (i: number) => `gitops-${String(i).padStart(3, '0')}`;

/** Resident memory (VmRSS) and its peak so far (VmHWM) in MB, and CPU seconds, of a process. */
function usageOf(pid: number): { rss: number; peak: number; cpu: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024, cpu: (Number(fields[11]) + Number(fields[12])) / 100 };
}

const figures = (label: string, ms: number[]) =>
  say(
    `${label}: p50 ${(median(ms) / 1000).toFixed(2)} s, p95 ${(percentile(ms, 95) / 1000).toFixed(2)} s, max ${(Math.max(...ms) / 1000).toFixed(2)} s (n=${ms.length})`,
  );

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-gitops-'));
  say(`starting the control plane, ${APPS} apps, Temporal, the worker and the controller`);
  const plane = await startControlPlane({ dir: join(dir, 'plane'), nodes: 4 });
  let stack: EmbeddedStack | null = null;
  let reference: Awaited<ReturnType<typeof startDetectionApi>> | null = null;
  let controller: ReturnType<typeof spawn> | null = null;
  try {
    for (const kustomization of ['deploy', 'deploy/gitops'])
      await run('kubectl', ['--kubeconfig', plane.kubeconfigPath, 'apply', '-k', join(ROOT, kustomization)]);
    await run('kubectl', [
      '--kubeconfig',
      plane.kubeconfigPath,
      'wait',
      '--for',
      'condition=Established',
      'crd/releases.bluegreen.dev',
      '--timeout=60s',
    ]);
    // The controller's own Deployment has simulated pods here: the benchmark runs the real process.
    await run('kubectl', [
      '--kubeconfig',
      plane.kubeconfigPath,
      'scale',
      'deployment/bluegreen-release-controller',
      '--replicas=0',
    ]);
    const admin = plane.adminConfig();
    const [apps, core] = [admin.makeApiClient(k8s.AppsV1Api), admin.makeApiClient(k8s.CoreV1Api)];
    const releases = admin.makeApiClient(k8s.CustomObjectsApi);
    for (let i = 0; i < APPS; i += 10)
      await Promise.all(
        Array.from({ length: Math.min(10, APPS - i) }, (_, j) =>
          createBlueGreenApp(apps, core, appName(i + j), { namespace: 'default' }),
        ),
      );
    const adminPlatform = new KubernetesPlatform(admin);
    for (let i = 0; i < APPS; i++)
      await adminPlatform.waitForSlotReady(
        { target: appTarget(appName(i), 'default'), slot: 'blue', replicas: 1, timeoutSeconds: 120 },
        progress,
      );

    const workerKubeconfig = join(dir, 'worker.kubeconfig');
    writeFileSync(
      workerKubeconfig,
      plane.configForToken(await plane.mintToken(NAMESPACE, 'bluegreen-worker', 7200)).exportConfig(),
    );
    const controllerKubeconfig = join(dir, 'controller.kubeconfig');
    writeFileSync(
      controllerKubeconfig,
      plane.configForToken(await plane.mintToken(NAMESPACE, 'bluegreen-release-controller', 7200)).exportConfig(),
    );
    const bundle = join(dir, 'workflow-bundle.js');
    await run('npm', ['run', 'build'], { cwd: ROOT });
    await run(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/bundle-workflows.ts'), '--out', bundle], {
      cwd: ROOT,
    });
    const ports = await freeStackPorts();
    stack = new EmbeddedStack({
      stateDir: join(dir, 'stack'),
      ports,
      kubeconfig: workerKubeconfig,
      workerCommand: [join(ROOT, 'dist/worker/main.js')],
      workerEnv: { LOG_LEVEL: 'warn', BLUEGREEN_WORKFLOW_BUNDLE: bundle },
      temporalDb: 'memory',
    });
    await stack.start();
    reference = await startDetectionApi({ TAK_ADDRESS: `127.0.0.1:${ports.tak}`, QUEUE_PATH: tempQueuePath() });

    // The controller as its container runs it (deploy/gitops/controller.yaml): compiled, its heap capped.
    controller = spawn(process.execPath, ['--max-old-space-size=160', join(ROOT, 'dist/gitops/main.js')], {
      env: {
        ...process.env,
        BLUEGREEN_KUBECONFIG: controllerKubeconfig,
        BLUEGREEN_RELEASE_NAMESPACE: NAMESPACE,
        BLUEGREEN_CONTROLLER_ID: 'bench-controller',
        TEMPORAL_ADDRESS: stack.temporalAddress,
        TEMPORAL_NAMESPACE: 'default',
        TEMPORAL_TASK_QUEUE: stack.taskQueue,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const pid = controller.pid!;
    const leases = admin.makeApiClient(k8s.CoordinationV1Api);
    for (;;) {
      const lease = await leases
        .readNamespacedLease({ name: 'bluegreen-release-controller', namespace: NAMESPACE })
        .catch(() => null);
      if (lease?.spec?.holderIdentity === 'bench-controller') break;
      await sleep(200);
    }
    await sleep(3000);
    const atRest = usageOf(pid);
    say(`controller at rest, leading: RSS ${atRest.rss.toFixed(0)} MB, CPU ${atRest.cpu.toFixed(2)} s since start`);

    const manifest = join(dir, 'releases.yaml');
    writeFileSync(
      manifest,
      Array.from({ length: APPS }, (_, i) =>
        stringify({
          apiVersion: `${RELEASE_GROUP}/${RELEASE_VERSION}`,
          kind: 'Release',
          metadata: { name: appName(i), namespace: NAMESPACE },
          spec: {
            image: `registry.internal/${appName(i)}:v2.0.0`,
            replicas: 1,
            readinessTimeoutSeconds: 180,
            smoke: { endpoint: reference!.url },
            monitor: { durationSeconds: 10, intervalSeconds: 2, slos: [] },
            scaleDownDelaySeconds: 0,
          },
        }),
      ).join('---\n'),
    );
    say(`applying ${APPS} Releases at once`);
    await run('kubectl', ['--kubeconfig', plane.kubeconfigPath, 'apply', '-f', manifest]);
    const applied = Date.now();
    const started = new Map<string, number>();
    const mirrored = new Map<string, number>();
    let peakDuring = 0;
    while (mirrored.size < APPS && Date.now() - applied < 15 * 60_000) {
      const list = (await releases.listNamespacedCustomObject({
        group: RELEASE_GROUP,
        version: RELEASE_VERSION,
        namespace: NAMESPACE,
        plural: RELEASE_PLURAL,
      })) as { items: Release[] };
      const now = Date.now();
      for (const release of list.items) {
        const name = release.metadata!.name!;
        if (release.status?.runId && !started.has(name)) started.set(name, now - applied);
        if (release.status?.outcome && !mirrored.has(name)) mirrored.set(name, now);
      }
      peakDuring = Math.max(peakDuring, usageOf(pid).rss);
      await sleep(250);
    }
    const outcomes = new Map<string, number>();
    const lags: number[] = [];
    for (const [name, seen] of mirrored) {
      const description = await stack.deployments!.handle(NAMESPACE, name).describe();
      const result = (
        (await releases.getNamespacedCustomObject({
          group: RELEASE_GROUP,
          version: RELEASE_VERSION,
          namespace: NAMESPACE,
          plural: RELEASE_PLURAL,
          name,
        })) as Release
      ).status!.outcome!;
      outcomes.set(result, (outcomes.get(result) ?? 0) + 1);
      lags.push(seen - description.closeTime!.getTime());
    }
    const end = usageOf(pid);
    say(`outcomes: ${[...outcomes].map(([outcome, n]) => `${n} ${outcome}`).join(', ')} of ${APPS}`);
    figures('apply to run id in the status', [...started.values()]);
    figures('workflow closed to outcome in the status (poll every 250 ms)', lags);
    say(
      `controller: RSS peak during the run ${peakDuring.toFixed(0)} MB, VmHWM ${end.peak.toFixed(0)} MB (limit 256 MiB); CPU ${(end.cpu - atRest.cpu).toFixed(2)} s over ${((Date.now() - applied) / 1000).toFixed(0)} s`,
    );
  } finally {
    controller?.kill('SIGTERM');
    reference?.kill('SIGKILL');
    await stack?.stop();
    await plane.stop();
  }
}

await main();
