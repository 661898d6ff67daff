/**
 * bench:kubernetes: the figures of deployments against the Kubernetes test control plane (real
 * API server, controllers and scheduler; simulated nodes), driven by the worker as its own
 * process, authenticated as deploy/'s ServiceAccount, on a Temporal dev server.
 *
 * - Abort to traffic restored: a deployment of the detection API is aborted during monitoring;
 *   from the signal to the Service selecting the old slot again with every ready endpoint in it
 *   (polled every few ms through the API). Median of RUNS. Target under 1 s.
 * - Orchestration overhead of a lone deployment (as bench:rollback, from its history), median of
 *   RUNS; then APPS deployments of different apps started at once on the one worker: all must
 *   succeed; their overhead's p50, p95 and max; goal p95 within 10x of the lone median on two shared cores.
 * - The Temporal server's CPU seconds per deployment (its process's, from /proc), lone (the lone
 *   runs' total over RUNS, idle time between them included) and among APPS at once (the total
 *   over APPS). Each deployment monitors for TICKS ticks of 2 s (3 by default; a real window is 30
 *   or more).
 * - The worker's peak resident memory (VmHWM, start-up included) and its peak during the
 *   concurrent deployments. Target under 400 MB.
 *
 * The worker runs as the Dockerfile runs it: compiled (`npm run build`), workflows prebuilt.
 *
 * - With WORKER_MEMORY_LIMIT_MIB, the worker runs as deploy/worker's container does: its heap
 *   capped (`--max-old-space-size`, WORKER_HEAP_MIB, 384 by default as the Deployment sets it) and
 *   the process in a memory cgroup of that limit, so the kernel kills it where the container's
 *   would be killed. Reported: the cgroup's peak, how often the limit was hit, any OOM kill.
 *
 *   npm run bench:kubernetes
 *   APPS=20 RUNS=3 npm run bench:kubernetes
 *   TICKS=30 npm run bench:kubernetes                # a 60 s monitor window
 *   TEMPORAL_DB=memory npm run bench:kubernetes     # the dev server without its database file
 *   CONTROLLER_QPS=200 npm run bench:kubernetes     # the controller manager's API rate limit raised
 *   WORKER_MEMORY_LIMIT_MIB=512 npm run bench:kubernetes   # the worker within deploy/'s limit
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { EmbeddedStack, DETECTION_API_TARGET, freeStackPorts } from '../src/demo/stack.js';
import { ROOT } from '../src/demo/simulator-process.js';
import { KubernetesPlatform } from '../src/platforms/kubernetes-platform.js';
import type { DeploymentResult } from '../src/shared/deployment-status.js';
import { parseDeploymentSpec } from '../src/deployment-spec/deployment-spec.js';
import { startControlPlane } from '../test/k8s-harness/control-plane.js';
import { startDetectionApi, tempQueuePath } from '../test/helpers/detection-api-process.js';
import { appTarget, createBlueGreenApp } from '../test/helpers/kubernetes.js';
import { breakdown, overhead } from './histories.js';
import { untilMonitoring } from './deployments.js';
import { median, percentile } from './statistics.js';
import { deploymentResult } from '../src/client/deployment-client.js';

const APPS = Number(process.env['APPS'] ?? 100);
const RUNS = Number(process.env['RUNS'] ?? 5);
/** Monitor ticks of each deployment but the abort's, 2 s apart. */
const TICKS = Number(process.env['TICKS'] ?? 3);
/**
 * The controller manager's requests per second to the API server (`--kube-api-qps`); unset,
 * Kubernetes' default of 20, which 100 rollouts at once queue behind.
 */
const CONTROLLER_QPS = process.env['CONTROLLER_QPS'] ? Number(process.env['CONTROLLER_QPS']) : undefined;
/** The dev server's history in its database file (as the demo keeps it), or in memory. */
const TEMPORAL_DB = process.env['TEMPORAL_DB'] === 'memory' ? 'memory' : 'file';
const NAMESPACE = 'default';
const say = (line: string) => process.stdout.write(`${line}\n`);
const run = promisify(execFile);
const progress = { heartbeat: () => undefined, signal: new AbortController().signal };

const MEMORY_LIMIT_MIB = process.env['WORKER_MEMORY_LIMIT_MIB'] ? Number(process.env['WORKER_MEMORY_LIMIT_MIB']) : null;
const HEAP_MIB = Number(process.env['WORKER_HEAP_MIB'] ?? 384);
const CGROUPS = '/sys/fs/cgroup/memory';

/**
 * A memory cgroup (v1) of `limitMiB`, as a container's limit holds its process: the worker joins
 * it first thing (`join-cgroup.mjs`, before it loads anything), so all it allocates is charged
 * there. null where this machine gives no writable memory controller.
 */
function memoryCgroup(
  limitMiB: number,
): { procs: string; read(): { peakMiB: number; limitHits: number; oomKills: number }; remove(): void } | null {
  const dir = join(CGROUPS, `bluegreen-bench-${process.pid}`);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitMiB * 2 ** 20));
  } catch {
    return null;
  }
  return {
    procs: join(dir, 'cgroup.procs'),
    read: () => ({
      peakMiB: Number(readFileSync(join(dir, 'memory.max_usage_in_bytes'), 'utf8')) / 2 ** 20,
      limitHits: Number(readFileSync(join(dir, 'memory.failcnt'), 'utf8')),
      oomKills: Number(/oom_kill (\d+)/.exec(readFileSync(join(dir, 'memory.oom_control'), 'utf8'))?.[1] ?? 0),
    }),
    // Empty once the worker has stopped; a cgroup is removed as a directory, its files with it.
    remove: () => rmdirSync(dir),
  };
}

const appName = (i: number) => `scale-${String(i).padStart(3, '0')}`;

/** Resident memory of a process, from /proc: now (VmRSS) and its peak so far (VmHWM), in MB. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** CPU seconds a process has spent so far (user and system, from /proc). */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The API server's requests so far, by verb and in all (its apiserver_request_total, as `kubectl get --raw /metrics` reads it). */
async function apiRequests(kubeconfig: string): Promise<Map<string, number>> {
  const { stdout } = await run('kubectl', ['--kubeconfig', kubeconfig, 'get', '--raw', '/metrics'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const counts = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const verb = /verb="([A-Z]+)"/.exec(line)?.[1] ?? '?';
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    counts.set(verb, (counts.get(verb) ?? 0) + value);
    counts.set('all', (counts.get('all') ?? 0) + value);
  }
  return counts;
}

/**
 * CPU seconds spent so far by every running process, summed by command name (from /proc); the
 * control plane by part, and the processes in `named` by the name given.
 */
function cpuByCommand(named: Map<number, string> = new Map()): Map<string, number> {
  const seconds = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      // The control plane's parts are one binary, told apart by their first argument.
      const command =
        named.get(Number(pid)) ??
        (comm === 'k8s-harness' ? `k8s-harness ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1]}` : comm);
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      seconds.set(command, (seconds.get(command) ?? 0) + ticks / 100);
    } catch {
      // The process ended while being read.
    }
  }
  return seconds;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-kubernetes-'));
  say(
    `starting the control plane (controller manager at ${CONTROLLER_QPS ?? "Kubernetes' default 20"} requests/s), ` +
      `${APPS} apps, Temporal and the worker`,
  );
  const plane = await startControlPlane({ dir: join(dir, 'plane'), nodes: 4, controllerQps: CONTROLLER_QPS });
  let stack: EmbeddedStack | null = null;
  let reference: Awaited<ReturnType<typeof startDetectionApi>> | null = null;
  let cgroup: ReturnType<typeof memoryCgroup> = null;
  try {
    await run('kubectl', ['--kubeconfig', plane.kubeconfigPath, 'apply', '-k', join(ROOT, 'deploy')]);
    const admin = plane.adminConfig();
    const [apps, core, discovery] = [
      admin.makeApiClient(k8s.AppsV1Api),
      admin.makeApiClient(k8s.CoreV1Api),
      admin.makeApiClient(k8s.DiscoveryV1Api),
    ];
    const adminPlatform = new KubernetesPlatform(admin);
    for (let i = 0; i < APPS; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, APPS - i) }, (_, j) =>
          createBlueGreenApp(apps, core, appName(i + j), { namespace: 'default' }),
        ),
      );
    }
    await adminPlatform.waitForSlotReady(
      { target: DETECTION_API_TARGET, slot: 'blue', replicas: 3, timeoutSeconds: 120 },
      progress,
    );
    for (let i = 0; i < APPS; i++)
      await adminPlatform.waitForSlotReady(
        { target: appTarget(appName(i), 'default'), slot: 'blue', replicas: 1, timeoutSeconds: 120 },
        progress,
      );

    const kubeconfig = join(dir, 'worker.kubeconfig');
    writeFileSync(
      kubeconfig,
      plane.configForToken(await plane.mintToken(NAMESPACE, 'bluegreen-worker', 7200)).exportConfig(),
    );
    // The worker as the Dockerfile runs it: compiled to dist/, its workflows bundled ahead of time.
    const bundle = join(dir, 'workflow-bundle.js');
    await run('npm', ['run', 'build'], { cwd: ROOT });
    await run(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/bundle-workflows.ts'), '--out', bundle], {
      cwd: ROOT,
    });
    if (MEMORY_LIMIT_MIB) {
      cgroup = memoryCgroup(MEMORY_LIMIT_MIB);
      if (!cgroup) say(`no writable memory cgroup here: the worker runs with its ${HEAP_MIB} MiB heap cap only`);
    }
    const ports = await freeStackPorts();
    stack = new EmbeddedStack({
      stateDir: join(dir, 'stack'),
      ports,
      kubeconfig,
      workerCommand: cgroup
        ? [join(ROOT, 'bench/join-cgroup.mjs'), cgroup.procs, join(ROOT, 'dist/worker/main.js')]
        : [join(ROOT, 'dist/worker/main.js')],
      workerEnv: {
        LOG_LEVEL: 'warn',
        BLUEGREEN_WORKFLOW_BUNDLE: bundle,
        ...(MEMORY_LIMIT_MIB ? { NODE_OPTIONS: `--max-old-space-size=${HEAP_MIB}` } : {}),
      },
      temporalDb: TEMPORAL_DB,
    });
    await stack.start();
    const worker = stack.worker!.pid!;

    const startup = memoryOf(worker);
    reference = await startDetectionApi({ TAK_ADDRESS: `127.0.0.1:${ports.tak}`, QUEUE_PATH: tempQueuePath() });
    const client = stack.deployments!;
    const spec = (app: string, version: string, monitorSeconds: number, replicas: number) =>
      parseDeploymentSpec({
        app,
        namespace: NAMESPACE,
        image: `registry.internal/${app}:${version}`,
        replicas,
        readinessTimeoutSeconds: 180,
        smoke: { endpoint: reference!.url },
        monitor: { durationSeconds: monitorSeconds, intervalSeconds: 2, slos: [] },
        scaleDownDelaySeconds: 0,
      });

    // 1. Abort to traffic restored.
    const restoredMs: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const oldSlot = (await adminPlatform.describe(DETECTION_API_TARGET)).activeSlot;
      const handle = await client.start(spec('detection-api', `v3.0.${i}`, 120, 2));
      await untilMonitoring(client, NAMESPACE, 'detection-api');
      const signalled = performance.now();
      await client.abort(NAMESPACE, 'detection-api', { reason: `bench:kubernetes abort ${i}`, by: 'bench' });
      const oldPods = new Set(
        (
          await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `app=detection-api,slot=${oldSlot}` })
        ).items.map((p) => p.metadata!.name),
      );
      for (;;) {
        const [service, slices] = await Promise.all([
          core.readNamespacedService({ name: 'detection-api-service', namespace: NAMESPACE }),
          discovery.listNamespacedEndpointSlice({
            namespace: NAMESPACE,
            labelSelector: 'kubernetes.io/service-name=detection-api-service',
          }),
        ]);
        const ready = slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready !== false);
        if (
          service.spec!.selector!['slot'] === oldSlot &&
          ready.length > 0 &&
          ready.every((e) => oldPods.has(e.targetRef?.name))
        )
          break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      restoredMs.push(performance.now() - signalled);
      const result = await deploymentResult(handle);
      if (result.outcome !== 'RolledBack') throw new Error(`abort run ${i}: ${result.outcome}: ${result.message}`);
      say(
        `abort ${i}: selector and endpoints back on ${oldSlot} ${restoredMs.at(-1)!.toFixed(0)} ms after the signal (${result.reason})`,
      );
    }

    // 2. A lone deployment's overhead.
    const lone: number[] = [];
    let loneSpent: Record<string, number> = {};
    const server = stack.temporal!.pid!;
    const serverBeforeLone = cpuOf(server);
    for (let i = 1; i <= RUNS; i++) {
      const handle = await client.start(spec(appName(0), `v1.1.${i}`, TICKS * 2, 1));
      const result = await deploymentResult(handle);
      if (result.outcome !== 'Succeeded') throw new Error(`lone run ${i}: ${result.outcome}: ${result.message}`);
      const events = (await handle.fetchHistory()).events ?? [];
      const figures = overhead(events);
      loneSpent = breakdown(events);
      lone.push(figures.overhead);
      say(
        `lone ${i}: ${(figures.wall / 1000).toFixed(2)} s wall, ${(figures.waits / 1000).toFixed(2)} s of waits, overhead ${figures.overhead} ms`,
      );
    }

    const serverPerLone = (cpuOf(server) - serverBeforeLone) / RUNS;

    // 3. APPS deployments of different apps at once.
    let peakDuring = 0;
    const sampler = setInterval(() => (peakDuring = Math.max(peakDuring, memoryOf(worker).rss)), 200);
    const named = new Map([
      [worker, 'worker'],
      [process.pid, 'bench'],
    ]);
    const cpuBefore = cpuByCommand(named);
    const serverBefore = cpuOf(server);
    const requestsBefore = await apiRequests(plane.kubeconfigPath);
    const started = performance.now();
    const handles = await Promise.all(
      Array.from({ length: APPS }, (_, i) => client.start(spec(appName(i), 'v2.0.0', TICKS * 2, 1))),
    );
    const results: DeploymentResult[] = await Promise.all(handles.map((h) => deploymentResult(h)));
    const allSeconds = (performance.now() - started) / 1000;
    const serverPerConcurrent = (cpuOf(server) - serverBefore) / APPS;
    const requestsAfter = await apiRequests(plane.kubeconfigPath);
    clearInterval(sampler);
    const cpu = [...cpuByCommand(named)]
      .map(([command, total]) => [command, total - (cpuBefore.get(command) ?? 0)] as const)
      .filter(([, used]) => used >= 1)
      .sort((a, b) => b[1] - a[1]);
    const failed = results.filter((r) => r.outcome !== 'Succeeded');
    const histories = await Promise.all(handles.map(async (h) => (await h.fetchHistory()).events ?? []));
    const figures = histories.map(overhead);
    const overheads = figures.map((f) => f.overhead);
    const walls = figures.map((f) => f.wall);
    const spent = histories.map(breakdown);
    const live = await Promise.all(
      Array.from(
        { length: APPS },
        async (_, i) => (await adminPlatform.describe(appTarget(appName(i), 'default'))).activeSlot,
      ),
    );
    const onNew = live.filter((slot, i) => slot === results[i]!.toSlot).length;
    const end = memoryOf(worker);
    const metrics = await (await fetch(`http://127.0.0.1:${ports.workerMetrics}/metrics`)).text();

    say('');
    say(
      `bench:kubernetes on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString().slice(0, 10)}; control plane with 4 simulated nodes; Temporal history in ${TEMPORAL_DB}`,
    );
    say(
      `abort signal to traffic restored: median ${median(restoredMs).toFixed(0)} ms, max ${Math.max(...restoredMs).toFixed(0)} ms over ${RUNS} aborts (target < 1000 ms)`,
    );
    say(`orchestration overhead, lone deployment: median ${median(lone)} ms over ${RUNS} runs`);
    say(
      `Temporal server CPU per deployment of ${TICKS} monitor ticks: ${serverPerLone.toFixed(2)} s lone (${RUNS} in a row), ${serverPerConcurrent.toFixed(2)} s among ${APPS} at once`,
    );
    say(
      `${APPS} deployments at once: ${APPS - failed.length} succeeded, ${onNew} with their Service on the new slot, all done in ${allSeconds.toFixed(1)} s ` +
        `(wall per deployment p50 ${(median(walls) / 1000).toFixed(1)} s, max ${(Math.max(...walls) / 1000).toFixed(1)} s)`,
    );
    for (const r of failed.slice(0, 5)) say(`  ${r.outcome}: ${r.message}`);
    say(
      `  CPU seconds meanwhile (of ${(allSeconds * cpus().length).toFixed(0)} available): ${cpu.map(([command, used]) => `${command} ${used.toFixed(0)}`).join(', ')}`,
    );
    const requests = (verb?: string) =>
      (requestsAfter.get(verb ?? 'all') ?? 0) - (requestsBefore.get(verb ?? 'all') ?? 0);
    say(
      `  API server requests meanwhile, every client's (the worker, the controllers, the scheduler, the nodes): ${requests()}, ` +
        `${(requests() / APPS).toFixed(0)} a deployment; of them GET ${requests('GET')}, LIST ${requests('LIST')}, WATCH ${requests('WATCH')}, ` +
        `PATCH ${requests('PATCH')}, PUT ${requests('PUT')}, CREATE ${requests('POST')}`,
    );
    const p95 = percentile(overheads, 95);
    const parts = [...new Set(spent.flatMap((s) => Object.keys(s)))].sort();
    say(`  where a deployment's time went (median ms; lone: ${JSON.stringify(loneSpent)}):`);
    say(`    ${parts.map((part) => `${part} ${median(spent.map((s) => s[part] ?? 0))}`).join(', ')}`);
    // The tail: where the time of the deployments at and past the p95 overhead went.
    const tail = spent.filter((_, i) => overheads[i]! >= p95);
    say(`  and of the ${tail.length} at or past the p95 overhead (median ms):`);
    say(`    ${parts.map((part) => `${part} ${median(tail.map((s) => s[part] ?? 0))}`).join(', ')}`);
    say(
      `  overhead p50 ${median(overheads)} ms, p95 ${p95} ms, max ${Math.max(...overheads)} ms: p95 is ${(p95 / median(lone)).toFixed(2)}x the lone median (goal: within 10x on two shared cores)`,
    );
    // The worker's own view (the SDK's metrics): time per workflow task and per poll.
    const sdk = (name: string) => {
      const sum = Number(
        new RegExp(`^temporal_${name}_sum(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(metrics)?.[1] ?? NaN,
      );
      const count = Number(
        new RegExp(`^temporal_${name}_count(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(metrics)?.[1] ?? NaN,
      );
      return `${name} ${count} x ${((sum / count) * (name.endsWith('_seconds') ? 1000 : 1)).toFixed(1)} ms`;
    };
    say(
      `  worker, whole run: ${['workflow_task_execution_latency', 'workflow_activation_execution_latency', 'workflow_task_schedule_to_start_latency', 'workflow_task_replay_latency'].map(sdk).join('; ')}`,
    );
    say(
      `worker resident memory: peak ${end.peak.toFixed(0)} MB over its life (${startup.peak.toFixed(0)} MB by the end of start-up), peak ${peakDuring.toFixed(0)} MB during the ${APPS} deployments (target < 400 MB)`,
    );
    if (MEMORY_LIMIT_MIB) {
      const capped = cgroup?.read();
      say(
        `worker capped as deploy/ runs it: heap ${HEAP_MIB} MiB, ${cgroup ? `memory cgroup limit ${MEMORY_LIMIT_MIB} MiB: peak ${capped!.peakMiB.toFixed(0)} MiB charged (page cache included), limit hit ${capped!.limitHits} times, OOM kills ${capped!.oomKills}` : 'no cgroup'}; ` +
          `worker ${stack.worker!.exitCode === null && stack.worker!.signalCode === null ? 'alive' : `gone (${stack.worker!.signalCode ?? stack.worker!.exitCode})`} at the end`,
      );
    }
    process.exitCode = failed.length === 0 && onNew === APPS ? 0 : 1;
  } finally {
    reference?.kill('SIGKILL');
    await stack?.stop();
    try {
      cgroup?.remove();
    } catch {
      // A process of it still running: left for the machine's next start.
    }
    await plane.stop();
  }
}

await main();
