/**
 * Deployments of the reference detection API whose pods run for real, on a real node
 * (test/k8s-harness/real-node.ts), from the images built here (scripts/images/: the good versions,
 * one whose API answers 500, one whose process exits 30 s after each start). The worker runs as
 * deploy/'s ServiceAccount; the smoke suite reaches the idle slot through its Service's ClusterIP,
 * and steady traffic reaches the live slot through the switched Service's, both through
 * kube-proxy's rules:
 * - readiness probes gate the EndpointSlices: a pod that runs is not an endpoint until its probe
 *   passes;
 * - the old slot's pods drain (preStop, then SIGTERM) with the traffic answered, and uploads still
 *   in flight when SIGTERM comes are answered before the process exits;
 * - a version that answers 500 fails its smoke suite and traffic stays where it was;
 * - a version that crash-loops is rolled back on the restarts the kubelet counts, and the evidence
 *   holds what its container wrote before it exited, read through pods/log;
 * - the worker runs as a pod from deploy/worker (the image built from Dockerfile), as its
 *   ServiceAccount, and SIGKILLed while monitoring is restarted by the kubelet, the deployment
 *   ending as it should;
 * - a version that degrades once live (half its requests 500 after 40 s) is rolled back on the
 *   error rate the worker pod reads from Prometheus, which discovers the pods through the API
 *   server (their prometheus.io annotations) and scrapes them every 15 s, as teams run it;
 * - the Release controller runs as deploy/gitops's two pods, one leading through its Lease.
 * Temporal (a dev server on loopback) reaches the pods through a relay on the node's address, and
 * Prometheus listens on that address; it finds the pods through the API server (podDiscovery). Pods resolve Service names through the node's cluster DNS;
 * the host does not, so its worker gets IPs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import * as k8s from '@kubernetes/client-node';
import { startPrometheus } from '../../src/cluster-simulator/prometheus-process.js';
import type { PrometheusProcess } from '../../src/cluster-simulator/prometheus-process.js';
import { KubernetesPlatform } from '../../src/platforms/kubernetes-platform.js';
import { freePort } from '../../src/processes/processes.js';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import type { Slot } from '../../src/shared/slots.js';
import { otherSlot } from '../../src/shared/slots.js';
import { TrafficGenerator } from '../../src/demo/traffic.js';
import { blueGreenDeploymentWorkflow } from '../../src/workflows/blue-green-deployment.js';
import { deploymentResult } from '../../src/client/deployment-client.js';
import { statusQuery } from '../../src/workflows/definitions.js';
import { DETECTION_API_SLOS, testSpec } from '../helpers/deployment-harness.js';
import { eventually } from '../helpers/eventually.js';
import { applyInNamespace, detectionApiTarget, endpointPods, fileNamespace } from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startKubernetesWorker } from '../helpers/kubernetes-worker.js';
import { podDiscovery } from '../helpers/pod-discovery.js';
import type { KubernetesWorker } from '../helpers/kubernetes-worker.js';
import { startDevServer } from '../helpers/temporal-servers.js';
import { startControlPlane } from '../k8s-harness/control-plane.js';
import { containerMemory, containerProcesses } from '../k8s-harness/real-node.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The detection API's image at every version scripts/images/build.sh tags, and the worker's. */
const IMAGES = [join(ROOT, '.tools/images/detection-api.tar'), join(ROOT, '.tools/images/worker.tar')];
const NS = fileNamespace(import.meta.url);
const TARGET = detectionApiTarget(NS);
const TASK_QUEUE = 'bluegreen-real-node-e2e';
/** The task queue of the worker that runs as a pod. */
const WORKER_POD_QUEUE = 'bluegreen-worker-pod';
const IMAGE = (tag: string) => `registry.internal/detection-api:${tag}`;

/** Relays TCP connections to a free port on `host` on to `target` (host:port), until closed. */
async function relay(host: string, target: string): Promise<{ address: string; close(): Promise<void> }> {
  const { hostname, port } = new URL(`tcp://${target}`);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const upstream = connect(Number(port), hostname);
    for (const [one, other] of [
      [socket, upstream],
      [upstream, socket],
    ] as const) {
      sockets.add(one);
      one.once('close', () => sockets.delete(one));
      one.once('error', () => other.destroy());
      one.pipe(other);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    address: `${host}:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A detection uploaded slowly, as from a sensor on a poor link: the request's headers and the
 * detection go at once, then its trailing whitespace a byte a second, so the request stays in
 * flight at the server until finish() sends the rest and reads the answer.
 */
function slowUpload(url: string): {
  finish(): Promise<{ status: number; connection: string | undefined; body: string }>;
  /** Stops the trickle and closes the connection: a test that failed before finish() leaves nothing running. */
  abandon(): void;
} {
  const detection = JSON.stringify({
    source: 'slow-link-uav',
    latitude: 34.05,
    longitude: -118.24,
    accuracy_meters: 12,
    confidence: 0.9,
  });
  const padding = 600;
  const upload = request(url, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': detection.length + padding },
  });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    upload.once('response', resolve);
    upload.once('error', reject);
  });
  answered.catch(() => undefined); // read by finish(); a failure before then is reported there
  upload.write(detection);
  let sent = 0;
  const trickle = setInterval(() => sent < padding - 1 && (upload.write(' '), (sent += 1)), 1_000);
  return {
    finish: async () => {
      clearInterval(trickle);
      upload.end(' '.repeat(padding - sent));
      const response = await answered;
      let body = '';
      for await (const chunk of response) body += chunk;
      return { status: response.statusCode!, connection: response.headers.connection, body };
    },
    abandon: () => {
      clearInterval(trickle);
      upload.destroy();
    },
  };
}

describe(
  'deployments whose pods run on a real node',
  { skip: process.getuid?.() !== 0 ? 'a real node needs root' : false },
  () => {
    let env: TestWorkflowEnvironment;
    let cluster: Cluster;
    let worker: KubernetesWorker;
    let temporalForPods: { address: string; close(): Promise<void> } | undefined;
    let prometheus: PrometheusProcess | undefined;
    let discovery: { url: string; close(): Promise<void> } | undefined;
    let sequence = 0;

    before(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'real-node-e2e-'));
      // Each kept as soon as it is up, so that after() stops it even if the other failed to start.
      await Promise.all([
        startDevServer().then((started) => (env = started)),
        startControlPlane({ dir, realNode: true }).then((plane) => {
          const config = plane.adminConfig();
          cluster = {
            plane,
            core: config.makeApiClient(k8s.CoreV1Api),
            apps: config.makeApiClient(k8s.AppsV1Api),
            discovery: config.makeApiClient(k8s.DiscoveryV1Api),
            rbac: config.makeApiClient(k8s.RbacAuthorizationV1Api),
          };
        }),
      ]);
      const { plane } = cluster;
      const config = plane.adminConfig();
      // The dev server listens on loopback; pods reach the node's address, where this relays to it.
      temporalForPods = await relay(plane.realNode!.ip, env.address);
      // Prometheus as a team runs it beside a cluster: the pods found through the API server, scraped
      // every 15 s; on the node's address, so that the worker's pod reaches it.
      discovery = await podDiscovery(cluster.core, NS);
      prometheus = await startPrometheus({
        dir: join(dir, 'prometheus'),
        listen: `${plane.realNode!.ip}:${await freePort()}`,
        targets: { http: discovery.url },
        scrapeIntervalSeconds: 15,
      });
      for (const archive of IMAGES) {
        const imported = performance.now();
        await plane.realNode!.importImage(archive);
        console.log(
          `${archive} imported into the node's containerd in ${((performance.now() - imported) / 1000).toFixed(1)} s`,
        );
      }
      await applyInNamespace(plane, join(ROOT, 'deploy'), NS);
      // The worker's own Deployment (deploy/worker) waits for its test, which points it at this Temporal.
      await cluster.apps.patchNamespacedDeploymentScale(
        { name: 'bluegreen-worker', namespace: NS, body: { spec: { replicas: 0 } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      const platform = new KubernetesPlatform(config);
      const progress = { heartbeat: () => undefined, signal: new AbortController().signal };
      await platform.waitForSlotReady({ target: TARGET, slot: 'blue', replicas: 3, timeoutSeconds: 180 }, progress);
      const token = await plane.mintToken(NS, 'bluegreen-worker');
      worker = await startKubernetesWorker(env, plane.configForToken(token), TASK_QUEUE);
    });

    after(async () => {
      await temporalForPods?.close();
      await prometheus?.stop();
      await discovery?.close();
      await worker?.stop();
      await cluster?.plane.stop();
      await env?.teardown();
    });

    const service = async (name: string) => (await cluster.core.readNamespacedService({ name, namespace: NS })).spec!;
    const liveSlot = async () => (await service('detection-api-service')).selector!['slot'] as Slot;
    const pods = async (slot: Slot) =>
      (await cluster.core.listNamespacedPod({ namespace: NS, labelSelector: `app=detection-api,slot=${slot}` })).items;
    /** What the switched Service's /ready answers, through kube-proxy. */
    const readyAnswer = async () => {
      const { clusterIP } = await service('detection-api-service');
      return (await (await fetch(`http://${clusterIP}/ready`, { signal: AbortSignal.timeout(5_000) })).json()) as {
        status: string;
        version: string;
        slot: string;
      };
    };
    /** The command line of a container's process on this machine (its first). */
    const commandOf = (containerId: string) => {
      const [pid] = containerProcesses(containerId);
      assert.ok(pid, `a process of container ${containerId} runs on this machine`);
      return { pid, command: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ') };
    };
    const kubectl = (...args: string[]) =>
      execFileSync('kubectl', ['--kubeconfig', cluster.plane.kubeconfigPath, '-n', NS, ...args]).toString();

    /**
     * Deploys `tag` blue-green to the idle slot, its smoke suite sent to that slot's Service: at its
     * ClusterIP from the host's worker (the host does not resolve Service names), by the spec's
     * default, its Service name, from a worker in a pod (`byName`).
     */
    async function deploy(
      tag: string,
      {
        monitor = {},
        taskQueue = TASK_QUEUE,
        byName = false,
      }: { monitor?: Record<string, unknown>; taskQueue?: string; byName?: boolean } = {},
    ) {
      const idle = otherSlot(await liveSlot());
      const { clusterIP } = await service(`detection-api-${idle}`);
      sequence += 1;
      const spec = testSpec({
        namespace: NS,
        image: IMAGE(tag),
        replicas: 2,
        readinessTimeoutSeconds: 120,
        ...(byName ? {} : { smoke: { endpoint: `http://${clusterIP}:8000` } }),
        monitor: { durationSeconds: 4, intervalSeconds: 2, slos: [], ...monitor },
        scaleDownDelaySeconds: 0,
      });
      return {
        idle,
        handle: await env.client.workflow.start(blueGreenDeploymentWorkflow, {
          taskQueue,
          workflowId: `real-node-e2e-${sequence}`,
          args: [spec],
        }),
      };
    }

    it('goes blue to green with pods that run: not an endpoint until Ready, the traffic answered through kube-proxy throughout, uploads in flight at SIGTERM answered', async (t) => {
      const { clusterIP } = await service('detection-api-service');
      assert.deepEqual(await readyAnswer(), { status: 'ready', version: 'v2.1.0', slot: 'blue' });

      const traffic = new TrafficGenerator(`http://${clusterIP}`, 10);
      traffic.start();
      // Stopped however the test ends: a generator left running would keep this file's process alive.
      t.after(async () => void (await traffic.stop()));
      // A slow upload to each pod of the live slot (at its pod IP, where kube-proxy sends a connection),
      // in flight from before the switch until the pod's process has been told to stop.
      const uploads = (await pods('blue')).map((pod) => ({
        pod: pod.metadata!.name!,
        upload: slowUpload(`http://${pod.status!.podIP}:8000/api/detections`),
      }));
      // Left in flight by a failure before they are finished, they would keep this file's process
      // alive (a byte a second for 10 minutes) until its bound ends it.
      t.after(() => uploads.forEach(({ upload }) => upload.abandon()));
      const { idle, handle } = await deploy('v2.2.0');
      // Each upload is finished once its pod has been told to stop (its SIGTERM, logged), while the
      // deployment runs its cleanup (the scale-down waits for the old pods to go).
      const answers = Promise.all(
        uploads.map(async ({ pod, upload }) => {
          const log = async () => await cluster.core.readNamespacedPodLog({ name: pod, namespace: NS });
          await eventually(
            async () => (await log()).includes('graceful shutdown initiated'),
            `${pod} told to stop (SIGTERM)`,
            180_000,
          );
          return { pod, ...(await upload.finish()) };
        }),
      );
      answers.catch(() => undefined); // awaited below; a failure before then is reported there
      // While it deploys: each of the new slot's pods, as the kubelet reports it and as the EndpointSlices list it.
      const seen: { pod: string; running: boolean; ready: boolean; endpoint: boolean }[] = [];
      let done = false;
      const result = deploymentResult(handle).finally(() => (done = true));
      while (!done) {
        // The EndpointSlices first, then the pods: a pod an endpoint before it was Ready would be seen
        // not Ready after it was seen an endpoint.
        const endpoints = await endpointPods(cluster, `detection-api-${idle}`, NS);
        const items = await pods(idle);
        for (const pod of items) {
          const status = pod.status?.containerStatuses?.[0];
          seen.push({
            pod: pod.metadata!.name!,
            running: Boolean(status?.state?.running),
            ready: Boolean(status?.ready),
            endpoint: endpoints.includes(pod.metadata!.name!),
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const outcome: DeploymentResult = await result;
      assert.equal(outcome.outcome, 'Succeeded', outcome.message);
      assert.equal(await liveSlot(), idle);

      assert.ok(
        seen.some((s) => s.running && !s.ready && !s.endpoint),
        'a running pod of the new slot was seen before its readiness probe passed, and was no endpoint then',
      );
      assert.deepEqual(
        seen.filter((s) => s.endpoint && !s.ready),
        [],
        'no pod was an endpoint before the kubelet reported it Ready',
      );
      const live = await pods(idle);
      assert.equal(live.length, 2);
      for (const pod of live) {
        const status = pod.status!.containerStatuses![0]!;
        assert.match(commandOf(status.containerID!).command, /^node dist\/main\.js/);
        const ready = pod.status!.conditions!.find((c) => c.type === 'Ready')!;
        const waited =
          (new Date(ready.lastTransitionTime!).getTime() - new Date(status.state!.running!.startedAt!).getTime()) /
          1000;
        assert.ok(
          waited >= 4,
          `${pod.metadata!.name} Ready ${waited} s after its container started: not before the probe's initial delay of 5 s`,
        );
        const created =
          (new Date(ready.lastTransitionTime!).getTime() - new Date(pod.metadata!.creationTimestamp!).getTime()) / 1000;
        console.log(`${pod.metadata!.name}: created to Ready in ${created} s (container started to Ready ${waited} s)`);
      }
      assert.deepEqual(
        await endpointPods(cluster, 'detection-api-service', NS),
        live.map((p) => p.metadata!.name!).sort(),
      );
      for (let i = 0; i < 10; i++) {
        assert.deepEqual(await readyAnswer(), { status: 'ready', version: 'v2.2.0', slot: idle });
      }

      // The old slot drained: each pod's preStop (15 s), then SIGTERM; the upload still in flight then
      // was answered, its connection closed, before the process exited.
      for (const answer of await answers) {
        assert.deepEqual(
          [answer.status, answer.connection],
          [201, 'close'],
          `${answer.pod} answered the upload in flight at its SIGTERM: ${answer.body}`,
        );
        assert.match(answer.body, /"detection_id":"[0-9a-f-]{36}"/);
      }
      // Its pods go once their processes have exited, the traffic answered meanwhile.
      await eventually(async () => (await pods(otherSlot(idle))).length === 0, 'the old slot has no pods', 90_000);
      const score = await traffic.stop();
      console.log(
        `traffic through the Service during the switch and the drain: ${JSON.stringify({ ...score, servedBy: undefined, serverErrorsBy: undefined })}`,
      );
      assert.ok(score.sent > 100, `${score.sent} requests sent`);
      assert.deepEqual(
        [score.connectionFailures, score.serverErrors, score.otherAnswers],
        [0, 0, 0],
        score.failureSamples.join('; '),
      );
    });

    it('leaves traffic on the live slot when the new version answers 500 to its smoke suite', async () => {
      const live = await liveSlot();
      const { idle, handle } = await deploy('v2.4.0-errors');
      const outcome: DeploymentResult = await deploymentResult(handle);
      assert.deepEqual([outcome.outcome, outcome.reason], ['RolledBack', 'SmokeFailed'], outcome.message);
      assert.match(outcome.message ?? '', /500/);
      assert.equal(await liveSlot(), live);
      assert.equal(
        (await cluster.apps.readNamespacedDeployment({ name: `detection-api-${idle}`, namespace: NS })).spec!.replicas,
        0,
      );
      assert.equal((await readyAnswer()).version, 'v2.2.0');
    });

    it('rolls back a version that crash-loops on the restarts the kubelet counts, with what its container wrote as evidence', async () => {
      const live = await liveSlot();
      const { idle, handle } = await deploy('v2.4.0-crashloop', { monitor: { durationSeconds: 120 } });
      const outcome: DeploymentResult = await deploymentResult(handle);
      assert.deepEqual([outcome.outcome, outcome.failedCheck], ['RolledBack', 'pod-restarts'], outcome.message);
      assert.equal(await liveSlot(), live);
      const evidence = outcome.status.evidence!;
      assert.equal(evidence.slot, idle);
      assert.ok(
        evidence.restartedPods.length > 0 &&
          evidence.restartedPods.every((p) => /^detection-api-\w+-\w+-\w+ \(\d+ restarts\)$/.test(p)),
        evidence.restartedPods.join('; '),
      );
      assert.ok(
        evidence.errorLines.some((line) => line.includes('injected crash (FAULT_CRASH_AFTER_SECONDS=30)')),
        evidence.errorLines.join('\n'),
      );
      await eventually(async () => (await pods(idle)).length === 0, 'the crash-looping pods are gone', 90_000);
    });

    it('runs the worker as a pod, as its ServiceAccount: its container SIGKILLed while monitoring, the kubelet restarts it and the deployment succeeds', async () => {
      // deploy/worker as a team applies it, pointed at this Temporal and this Prometheus.
      kubectl(
        'set',
        'env',
        'deployment/bluegreen-worker',
        `TEMPORAL_ADDRESS=${temporalForPods!.address}`,
        `TEMPORAL_TASK_QUEUE=${WORKER_POD_QUEUE}`,
        `PROMETHEUS_URL=${prometheus!.url}`,
      );
      kubectl('scale', 'deployment/bluegreen-worker', '--replicas=1');
      const workerPod = async () =>
        (
          await cluster.core.listNamespacedPod({
            namespace: NS,
            labelSelector: 'app.kubernetes.io/name=bluegreen-worker',
          })
        ).items.find((p) => !p.metadata!.deletionTimestamp);
      await eventually(
        async () => Boolean((await workerPod())?.status?.containerStatuses?.[0]?.ready),
        'the worker pod Ready',
        120_000,
        async () => JSON.stringify((await workerPod())?.status),
      );
      const pod = (await workerPod())!;
      assert.equal(pod.spec!.serviceAccountName, 'bluegreen-worker');
      const first = pod.status!.containerStatuses![0]!;
      const memory = containerMemory(first.containerID!);

      const live = await liveSlot();
      const { idle, handle } = await deploy('v2.3.0', {
        monitor: { durationSeconds: 45 },
        taskQueue: WORKER_POD_QUEUE,
        byName: true,
      });
      await eventually(async () => (await handle.query(statusQuery)).phase === 'Monitoring', 'monitoring', 120_000);
      const { pid, command } = commandOf(first.containerID!);
      assert.match(command, /^node bin\/bluegreen-worker\.js/);
      const peakBeforeKill = memory.peak();
      process.kill(pid, 'SIGKILL');

      const outcome: DeploymentResult = await deploymentResult(handle);
      assert.equal(outcome.outcome, 'Succeeded', outcome.message);
      assert.deepEqual([await liveSlot(), live], [idle, otherSlot(idle)]);
      // Its smoke suite went to the Service's name, which the pod resolved through the cluster DNS.
      assert.equal(outcome.status.smoke?.endpoint, `http://detection-api-${idle}.${NS}.svc:8000`);
      const again = (await workerPod())!.status!.containerStatuses![0]!;
      assert.equal(again.restartCount, 1);
      assert.equal(again.lastState?.terminated?.exitCode, 137, 'the kubelet saw the SIGKILL');
      assert.equal((await readyAnswer()).version, 'v2.3.0');
      console.log(
        `worker pod memory: peak ${(peakBeforeKill / 2 ** 20).toFixed(0)} MiB of its 512 MiB limit up to monitoring; the restarted container peaked at ${(containerMemory(again.containerID!).peak() / 2 ** 20).toFixed(0)} MiB`,
      );
    });

    it('rolls back a version that degrades once live, on the error rate the worker pod reads from Prometheus scraping the pods every 15 s', async (t) => {
      const live = await liveSlot();
      const { version } = await readyAnswer();
      const { clusterIP } = await service('detection-api-service');
      const traffic = new TrafficGenerator(`http://${clusterIP}`, 10);
      traffic.start();
      t.after(async () => void (await traffic.stop()));
      // The monitor as a team configures it: the SLO table's error rate and latency over 1 m, every 5 s.
      const slos = DETECTION_API_SLOS.filter((slo) => slo.name === 'error-rate' || slo.name === 'p95-latency');
      const { idle, handle } = await deploy('v2.4.0-degrades', {
        monitor: { durationSeconds: 180, intervalSeconds: 5, slos },
        taskQueue: WORKER_POD_QUEUE,
        byName: true,
      });
      const outcome: DeploymentResult = await deploymentResult(handle);
      const started = new Date(outcome.status.transitions[0]!.at).getTime();
      console.log(
        `v2.4.0-degrades: ${outcome.status.transitions.map((t) => `+${((new Date(t.at).getTime() - started) / 1000).toFixed(1)} s ${t.phase}: ${t.message}`).join('\n  ')}`,
      );
      assert.deepEqual(
        [outcome.outcome, outcome.reason, outcome.failedCheck],
        ['RolledBack', 'SloBreach', 'error-rate'],
        outcome.message,
      );
      assert.equal(await liveSlot(), live);
      const monitor = outcome.status.monitor!;
      // The warm-up was derived from the scrape interval Prometheus reports for the pods it discovered.
      assert.equal(monitor.scrapeIntervalSeconds, 15);
      assert.ok((monitor.latest['error-rate']?.value ?? 0) > 0.01, JSON.stringify(monitor.latest['error-rate']));
      const evidence = outcome.status.evidence!;
      assert.equal(evidence.slot, idle);
      assert.match(evidence.breach ?? '', /^error-rate = /);
      assert.ok(
        evidence.errorLines.some((line) => line.includes('injected fault')),
        evidence.errorLines.join('\n'),
      );
      assert.deepEqual(evidence.problems, []);

      // The traffic is back on the old version; what it met meanwhile is the faulty version's blast radius.
      // (A new connection: one kept alive may still reach a pod of the rolled-back slot until it drains.)
      await eventually(
        async () => (await readyAnswer()).version === version,
        `the Service answering ${version} again`,
        10_000,
      );
      for (let i = 0; i < 5; i++) assert.equal((await readyAnswer()).version, version);
      const score = await traffic.stop();
      console.log(
        `traffic through the Service while v2.4.0-degrades was live and after its rollback: ${JSON.stringify({ ...score, servedBy: undefined, serverErrorsBy: undefined })}`,
      );
      assert.ok(score.serverErrors > 0, 'the degraded version answered 500 to traffic before the rollback');
      assert.equal(score.connectionFailures, 0, score.failureSamples.join('; '));
    });

    it('runs the Release controller as two pods from deploy/gitops: one leads through the Lease, and when its pod is deleted the other takes over', async () => {
      await applyInNamespace(cluster.plane, join(ROOT, 'deploy/gitops'), NS);
      kubectl('set', 'env', 'deployment/bluegreen-release-controller', `TEMPORAL_ADDRESS=${temporalForPods!.address}`);
      // The change rolls the pods over. A pod of the first ReplicaSet, still trying the manifest's Temporal
      // address before it exits, counts as Ready and never leads: the drill starts from the rolled-out pair.
      kubectl('rollout', 'status', 'deployment/bluegreen-release-controller', '--timeout=120s');
      const controllerPods = async () =>
        (
          await cluster.core.listNamespacedPod({
            namespace: NS,
            labelSelector: 'app.kubernetes.io/name=bluegreen-release-controller',
          })
        ).items.filter((p) => !p.metadata!.deletionTimestamp && p.status?.containerStatuses?.[0]?.ready);
      const coordination = cluster.plane.adminConfig().makeApiClient(k8s.CoordinationV1Api);
      const holder = async () =>
        (
          await coordination
            .readNamespacedLease({ name: 'bluegreen-release-controller', namespace: NS })
            .catch(() => null)
        )?.spec?.holderIdentity ?? null;
      let names: string[] = [];
      await eventually(
        async () => {
          names = (await controllerPods()).map((p) => p.metadata!.name!);
          return names.length === 2 && names.includes((await holder()) ?? '');
        },
        'two controller pods Ready, one of them holding the Lease',
        120_000,
      );
      const leader = (await holder())!;
      const leaderPod = await cluster.core.readNamespacedPod({ name: leader, namespace: NS });
      assert.match(
        commandOf(leaderPod.status!.containerStatuses![0]!.containerID!).command,
        /^node bin\/bluegreen-controller\.js/,
      );

      const deleted = performance.now();
      await cluster.core.deleteNamespacedPod({ name: leader, namespace: NS });
      const follower = names.find((name) => name !== leader)!;
      // The leader hands the Lease back on SIGTERM: the other replica takes it within a retry period or two, not a lease duration.
      await eventually(
        async () => (await holder()) === follower,
        `${follower} holding the Lease`,
        30_000,
        async () =>
          `the Lease is held by ${(await holder()) ?? 'nobody'}; the controller pods' logs:\n` +
          kubectl('logs', '-l', 'app.kubernetes.io/name=bluegreen-release-controller', '--prefix', '--tail=20'),
      );
      console.log(
        `Release controller: the leader's pod deleted to the other replica leading in ${((performance.now() - deleted) / 1000).toFixed(1)} s`,
      );
    });
  },
);
