/**
 * Deployments of the detection API on the real node with open-loop load through a real data plane,
 * and what the load saw: the scenarios test/e2e/dataplane.e2e.test.ts asserts on and
 * bench/dataplane.ts prints. Four entry points, one per traffic router:
 * - service-selector and replica-ratio: the switched Service, through kube-proxy's rules (its
 *   NodePort on loopback, which jumps to the chain its ClusterIP does);
 * - gateway-api: Traefik's Gateway listener, the HTTPRoute's weights;
 * - ingress: Traefik's NGINX Ingress entry, the Ingress's backend and canary annotations.
 * Every request is kept with the pod that answered it (the detection API names itself), so each
 * figure is what traffic saw, beside when the router's object was read back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import * as k8s from '@kubernetes/client-node';
import { deploymentResult } from '../../src/client/deployment-client.js';
import type { DeploymentSpecInput } from '../../src/deployment-spec/deployment-spec.js';
import { KubernetesPlatform } from '../../src/platforms/kubernetes-platform.js';
import { GATEWAY_GROUP } from '../../src/routers/gateway-api/kubernetes.js';
import type { DeploymentResult, Phase } from '../../src/shared/deployment-status.js';
import { NGINX_CANARY_WEIGHT } from '../../src/shared/traffic.js';
import type { Slot } from '../../src/shared/slots.js';
import { otherSlot } from '../../src/shared/slots.js';
import { blueGreenDeploymentWorkflow } from '../../src/workflows/blue-green-deployment.js';
import { canaryDeploymentWorkflow } from '../../src/workflows/canary-deployment.js';
import { statusQuery } from '../../src/workflows/definitions.js';
import { startPrometheus } from '../../src/cluster-simulator/prometheus-process.js';
import type { PrometheusProcess } from '../../src/cluster-simulator/prometheus-process.js';
import { freePort } from '../../src/processes/processes.js';
import { startControlPlane } from '../k8s-harness/control-plane.js';
import type { ControlPlane } from '../k8s-harness/control-plane.js';
import { GATEWAY_CLASS, startTraefik } from '../k8s-harness/traefik.js';
import type { Traefik } from '../k8s-harness/traefik.js';
import { DataPlaneEvidence } from './dataplane-evidence.js';
import { DETECTION_API_SLOS, testSpec } from './deployment-harness.js';
import { eventually } from './eventually.js';
import { applyInNamespace, detectionApiTarget } from './kubernetes.js';
import { startKubernetesWorker } from './kubernetes-worker.js';
import type { KubernetesWorker } from './kubernetes-worker.js';
import { failures, OpenLoopLoad, tally } from './open-loop-load.js';
import type { Answer, Outcome } from './open-loop-load.js';
import { podDiscovery } from './pod-discovery.js';
import { startDevServer } from './temporal-servers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OVERLAY = join(ROOT, 'test/e2e/dataplane-overlay');
export const DETECTION_API_IMAGE = join(ROOT, '.tools/images/detection-api.tar');
const HOST = 'detection-api.internal.example.com';
export const IMAGE = (tag: string) => `registry.internal/detection-api:${tag}`;
/** The good versions the images hold (scripts/images/build.sh), deployed in turn. */
const GOOD = ['v2.2.0', 'v2.3.0', 'v2.1.0'];
export const FAULTY = 'v2.4.0-crashloop';
/** Healthy for 40 s after each start, then half its API requests answer 500. */
export const DEGRADES = 'v2.4.0-degrades';

export type Router = 'service-selector' | 'replica-ratio' | 'gateway-api' | 'ingress';
export const ROUTERS: readonly Router[] = ['service-selector', 'replica-ratio', 'gateway-api', 'ingress'];

export interface EntryPoint {
  router: Router;
  /** Where the load enters, and the Host header it names. */
  url: string;
  host?: string;
  /** The slot the router's object sends everything to, or null while it splits or is unreadable. */
  routedSlot(): Promise<Slot | null>;
  /** Points the router's object at `slot` alone, as the team's object is before a deployment through it. */
  align(slot: Slot): Promise<void>;
}

/** The slot of a detection API pod, from its name (detection-api-SLOT-...). */
export const slotOf = (pod: string | null): Slot | null =>
  (/^detection-api-(blue|green)-/.exec(pod ?? '')?.[1] as Slot | undefined) ?? null;

export interface DataPlane {
  /** The namespace the detection API runs in, and the task queue of the worker that deploys it. */
  namespace: string;
  taskQueue: string;
  env: TestWorkflowEnvironment;
  plane: ControlPlane;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  traefik: Traefik;
  worker: KubernetesWorker;
  /** Prometheus, scraping the detection API's pods every 15 s. */
  prometheusUrl: string;
  entryPoints: Record<Router, EntryPoint>;
  /** The Service's ready endpoints and the NodePort's un-NATed connections, recorded throughout. */
  evidence: DataPlaneEvidence;
  /** The slot that runs: the one with replicas. */
  liveSlot(): Promise<Slot>;
  stop(): Promise<void>;
}

/**
 * A Temporal dev server, a control plane with the real node, the detection API from deploy/ (blue
 * live, 2 replicas each deployment), Traefik serving its Gateway and Ingress, and a worker on
 * `taskQueue` authenticated as deploy/'s ServiceAccount.
 */
export async function startDataPlane(namespace: string, taskQueue: string): Promise<DataPlane> {
  const dir = mkdtempSync(join(tmpdir(), 'dataplane-'));
  const started: {
    env?: TestWorkflowEnvironment;
    plane?: ControlPlane;
    traefik?: Traefik;
    worker?: KubernetesWorker;
    discovery?: { url: string; close(): Promise<void> };
    prometheus?: PrometheusProcess;
    evidence?: DataPlaneEvidence;
  } = {};
  const stop = async () => {
    await started.evidence?.stop();
    await started.worker?.stop();
    await started.prometheus?.stop();
    await started.discovery?.close();
    await started.traefik?.stop();
    await started.plane?.stop();
    await started.env?.teardown();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Each kept as soon as it is up, so that stop() ends it even if the other failed to start.
    await Promise.all([
      startDevServer().then((env) => (started.env = env)),
      startControlPlane({ dir, realNode: true }).then((plane) => (started.plane = plane)),
    ]);
    const plane = started.plane!;
    const env = started.env!;
    await plane.realNode!.importImage(DETECTION_API_IMAGE);
    await applyInNamespace(plane, OVERLAY, namespace, '--server-side', '--force-conflicts');
    const config = plane.adminConfig();
    const core = config.makeApiClient(k8s.CoreV1Api);
    const apps = config.makeApiClient(k8s.AppsV1Api);
    const networking = config.makeApiClient(k8s.NetworkingV1Api);
    const custom = config.makeApiClient(k8s.CustomObjectsApi);
    started.traefik = await startTraefik({
      dir,
      kubeconfigPath: plane.kubeconfigPath,
      adminConfig: config,
      namespace,
    });
    const traefik = started.traefik;
    await k8s.KubernetesObjectApi.makeApiClient(config).create({
      apiVersion: `${GATEWAY_GROUP}/v1`,
      kind: 'Gateway',
      metadata: { name: 'platform-gateway', namespace },
      spec: {
        gatewayClassName: GATEWAY_CLASS,
        listeners: [{ name: 'http', protocol: 'HTTP', port: traefik.gatewayPort }],
      },
    });
    const platform = new KubernetesPlatform(config);
    const progress = { heartbeat: () => undefined, signal: new AbortController().signal };
    const target = detectionApiTarget(namespace);
    await platform.waitForSlotReady({ target, slot: 'blue', replicas: 3, timeoutSeconds: 180 }, progress);
    // Prometheus as teams run it: the pods found through the API server, scraped every 15 s.
    started.discovery = await podDiscovery(core, namespace);
    started.prometheus = await startPrometheus({
      dir: join(dir, 'prometheus'),
      listen: `127.0.0.1:${await freePort()}`,
      targets: { http: started.discovery.url },
      scrapeIntervalSeconds: 15,
    });
    started.worker = await startKubernetesWorker(
      env,
      plane.configForToken(await plane.mintToken(namespace, 'bluegreen-worker')),
      taskQueue,
      null,
      { prometheusUrl: started.prometheus.url },
    );

    const service = async () => await core.readNamespacedService({ name: 'detection-api-service', namespace });
    const nodePort = (await service()).spec!.ports![0]!.nodePort!;
    started.evidence = await DataPlaneEvidence.start(config, namespace, 'detection-api-service', nodePort);
    const selectorSlot = async () => ((await service()).spec!.selector?.['slot'] as Slot | undefined) ?? null;
    const alignSelector = async (slot: Slot) =>
      void (await core.patchNamespacedService(
        { name: 'detection-api-service', namespace, body: { spec: { selector: { app: 'detection-api', slot } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ));
    const route = async () =>
      (await custom.getNamespacedCustomObject({
        group: GATEWAY_GROUP,
        version: 'v1',
        namespace,
        plural: 'httproutes',
        name: 'detection-api',
      })) as { spec: { rules: { backendRefs: { name: string; port?: number; weight?: number }[] }[] } };
    const ingress = async (name: string) => await networking.readNamespacedIngress({ name, namespace });
    const canaryWeight = async () => {
      try {
        const canary = await ingress('detection-api-ingress-canary');
        return Number(canary.metadata?.annotations?.[NGINX_CANARY_WEIGHT] ?? 0);
      } catch {
        return 0;
      }
    };
    const entryPoints: Record<Router, EntryPoint> = {
      'service-selector': {
        router: 'service-selector',
        url: `http://127.0.0.1:${nodePort}`,
        routedSlot: selectorSlot,
        align: alignSelector,
      },
      'replica-ratio': {
        router: 'replica-ratio',
        url: `http://127.0.0.1:${nodePort}`,
        routedSlot: selectorSlot,
        align: alignSelector,
      },
      'gateway-api': {
        router: 'gateway-api',
        url: traefik.gatewayUrl,
        host: HOST,
        routedSlot: async () => {
          const refs = (await route()).spec.rules[0]!.backendRefs;
          const full = refs.find((ref) => (ref.weight ?? 1) > 0 && refs.every((r) => r === ref || r.weight === 0));
          return slotOf(`${full?.name ?? ''}-`);
        },
        align: async (slot) => {
          const { spec } = await route();
          const rules = spec.rules.map((rule, i) =>
            i === 0
              ? {
                  ...rule,
                  backendRefs: (['blue', 'green'] as const).map((s) => ({
                    name: `detection-api-${s}`,
                    port: 8000,
                    weight: s === slot ? 100 : 0,
                  })),
                }
              : rule,
          );
          await custom.patchNamespacedCustomObject(
            {
              group: GATEWAY_GROUP,
              version: 'v1',
              namespace,
              plural: 'httproutes',
              name: 'detection-api',
              body: { spec: { rules } },
            },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
          );
        },
      },
      ingress: {
        router: 'ingress',
        url: traefik.ingressUrl,
        host: HOST,
        routedSlot: async () => {
          if ((await canaryWeight()) > 0) return null;
          const backend = (await ingress('detection-api-ingress')).spec!.rules![0]!.http!.paths[0]!.backend;
          return slotOf(`${backend.service!.name}-`);
        },
        align: async (slot) => {
          await networking.patchNamespacedIngress(
            {
              name: 'detection-api-ingress',
              namespace,
              body: [
                {
                  op: 'replace',
                  path: '/spec/rules/0/http/paths/0/backend/service/name',
                  value: `detection-api-${slot}`,
                },
              ],
            },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
          );
          if ((await canaryWeight()) > 0) {
            await networking.patchNamespacedIngress(
              {
                name: 'detection-api-ingress-canary',
                namespace,
                body: { metadata: { annotations: { [NGINX_CANARY_WEIGHT]: '0' } } },
              },
              k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
            );
          }
        },
      },
    };
    const liveSlot = async () => {
      const replicas = async (slot: Slot) =>
        (await apps.readNamespacedDeployment({ name: `detection-api-${slot}`, namespace })).spec!.replicas ?? 0;
      return (await replicas('blue')) > 0 ? 'blue' : (await replicas('green')) > 0 ? 'green' : 'blue';
    };
    return {
      namespace,
      taskQueue,
      env,
      plane,
      core,
      apps,
      traefik,
      worker: started.worker,
      prometheusUrl: started.prometheus.url,
      entryPoints,
      evidence: started.evidence,
      liveSlot,
      stop,
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

/** One request through an entry point: the slot whose pod answered it (node:http, since fetch may not set Host). */
async function probe(entry: EntryPoint): Promise<Slot | null> {
  return await new Promise((resolve) => {
    const request = get(
      `${entry.url}/ready`,
      { headers: entry.host ? { host: entry.host } : {}, agent: false, timeout: 2_000 },
      (response) => {
        response.resume();
        response.once('end', () =>
          resolve(response.statusCode === 200 ? slotOf(String(response.headers['x-served-by'] ?? '')) : null),
        );
      },
    );
    request.once('timeout', () => request.destroy());
    request.once('error', () => resolve(null));
  });
}

/** The replicas each deployment runs (deploy/ starts the live slot with 3). */
const REPLICAS = 2;

/**
 * Points the entry point's router at the live slot and waits until 20 requests in a row reach it
 * there. For replica-ratio, the live slot runs REPLICAS first: its canary's shares are those of
 * REPLICAS stable replicas, and preflight refuses a canary beside another count.
 */
export async function prepare(dataPlane: DataPlane, entry: EntryPoint): Promise<Slot> {
  const live = await dataPlane.liveSlot();
  if ((await entry.routedSlot()) !== live) await entry.align(live);
  if (entry.router === 'replica-ratio') {
    const platform = new KubernetesPlatform(dataPlane.plane.adminConfig());
    const progress = { heartbeat: () => undefined, signal: new AbortController().signal };
    const target = detectionApiTarget(dataPlane.namespace);
    await platform.scaleSlot({ target, slot: live, replicas: REPLICAS }, progress);
    await platform.waitForSlotReady({ target, slot: live, replicas: REPLICAS, timeoutSeconds: 120 }, progress);
  }
  let inARow = 0;
  await eventually(
    async () => {
      inARow = (await probe(entry)) === live ? inARow + 1 : 0;
      return inARow >= 20;
    },
    `${entry.router}: requests reach the live slot ${live}`,
    60_000,
  );
  return live;
}

/** A timeline of the slot the router's object names, read every 100 ms. */
class RouterWatch {
  readonly changes: { at: number; slot: Slot | null }[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(entry: EntryPoint) {
    this.loop = (async () => {
      while (this.running) {
        const slot = await entry.routedSlot().catch(() => null);
        if (this.changes.at(-1)?.slot !== slot) this.changes.push({ at: Date.now(), slot });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
  }

  /** The first time at or after `from` that the object named `slot` alone. */
  firstAt(slot: Slot, from = 0): number | null {
    return this.changes.find((c) => c.slot === slot && c.at >= from)?.at ?? null;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

let sequence = 0;
const nextGood = () => GOOD[sequence % GOOD.length]!;

/** Starts a deployment of `tag` through the entry point's router. */
async function start(
  dataPlane: DataPlane,
  entry: EntryPoint,
  tag: string,
  overrides: Partial<DeploymentSpecInput> = {},
): Promise<WorkflowHandle> {
  const { namespace, taskQueue } = dataPlane;
  sequence += 1;
  // The smoke suite goes to the idle slot's Service at its ClusterIP (the host does not resolve Service names).
  const idle = otherSlot(await dataPlane.liveSlot());
  const { clusterIP } = (await dataPlane.core.readNamespacedService({ name: `detection-api-${idle}`, namespace }))
    .spec!;
  const spec = testSpec({
    namespace,
    image: IMAGE(tag),
    replicas: REPLICAS,
    readinessTimeoutSeconds: 120,
    smoke: { endpoint: `http://${clusterIP}:8000` },
    monitor: { durationSeconds: 4, intervalSeconds: 2, slos: [] },
    scaleDownDelaySeconds: 0,
    traffic: {
      router: entry.router,
      ...(entry.router === 'gateway-api' ? { httpRoute: 'detection-api' } : {}),
      // Each full route verified by traffic through the entry point too, as a team would set it
      // (PROBE=0: by the router's object only, to measure without it).
      ...(process.env['PROBE'] !== '0'
        ? { probe: { url: `${entry.url}/ready`, ...(entry.host ? { host: entry.host } : {}) } }
        : {}),
    },
    // replica-ratio only splits: its deployments are canaries, the first step held as long as a
    // blue-green's monitoring would be.
    ...(entry.router === 'replica-ratio'
      ? {
          strategy: 'canary' as const,
          canary: {
            steps: canarySteps(entry.router).map((weight, i) => ({
              weight,
              holdSeconds: i === 0 ? (overrides.monitor?.durationSeconds ?? 4) : 2,
            })),
            minRequests: 0,
          },
        }
      : {}),
    ...overrides,
  });
  return await dataPlane.env.client.workflow.start(
    spec.strategy === 'canary' ? canaryDeploymentWorkflow : blueGreenDeploymentWorkflow,
    { taskQueue, workflowId: `dataplane-${entry.router}-${sequence}-${Date.now()}`, args: [spec] },
  );
}

/** When the deployment ended: its last transition (ms since the epoch). */
const endOf = (result: DeploymentResult) => new Date(result.status.transitions.at(-1)!.at).getTime();

/** When the deployment entered `phase` (ms since the epoch), or null if it never did. */
function entered(result: DeploymentResult, phase: Phase): number | null {
  const transition = result.status.transitions.find((t) => t.phase === phase);
  return transition ? new Date(transition.at).getTime() : null;
}

export interface Figures {
  router: Router;
  scenario: string;
  outcome: string;
  sent: number;
  tally: Record<Outcome, number>;
  /** Failed requests (not ok, not the faulty version's own 5xx) in each window. */
  failed: { total: number; switch?: number; abort?: number; scaleDown?: number };
  /** Write of the router's object (read back) → the first request the new slot answered, ms. */
  propagationMs?: number;
  /**
   * Of NEW_CONNECTIONS requests sent on new connections as the monitor started (the switch
   * verified), how many the new slot answered: a kept-alive client may stay on the old slot a while
   * (lastOldMs), but no new connection should.
   */
  newConnectionsAtMonitoring?: { toNew: number; sent: number };
  /** Write → the last request the old slot answered after it, ms (kept-alive connections hold on). */
  lastOldMs?: number;
  /** Abort accepted → the router's object read back on the live slot, ms. */
  abortReadBackMs?: number;
  /** Abort accepted → the last request the aborted slot answered, as traffic saw it, ms. */
  abortTrafficMs?: number;
  /** Requests the aborted slot answered after the rollback was done (its pods gone). */
  abortedAnsweredAfterDone?: number;
  /** The canary's served share per step, beside the weight set, in percent. */
  shares?: { weight: number; served: number; requests: number }[];
  /** Requests answered badly by the faulty version, or failed while it was live (until its rollback ended). */
  blastRadius?: number;
  /**
   * Requests failed in the `aftermathSeconds` after the faulty version's rollback ended: while its
   * pods crashed, the Service had no endpoint, and each connection kube-proxy refused then left an
   * un-NATed conntrack entry (SYN_SENT, 120 s by default); a client that reuses that source port
   * before it expires is refused again (kubernetes/kubernetes#48719, #101607).
   */
  aftermath?: number;
  /** The first failed requests. */
  samples: string[];
  /** When any failed: what the node did meanwhile (its endpoints, un-NATed connections). */
  evidence?: string[];
}

/** How many failed requests each case lists (SAMPLES in the environment; 5 by default). */
const SAMPLES = Number(process.env['SAMPLES'] ?? 5);

const within = (answers: Answer[], from: number | null, to: number | null) =>
  from === null ? [] : answers.filter((a) => a.sentAt >= from && (to === null || a.sentAt < to));

const describeFailure = (a: Answer) => `${new Date(a.sentAt).toISOString()} ${a.code || a.error} ${a.pod ?? ''}`.trim();

/** The first SAMPLES failed requests and, if any failed, what the node did meanwhile (DataPlaneEvidence). */
const failuresOf = (dataPlane: DataPlane, failed: Answer[], answers: Answer[]) => ({
  samples: failed.slice(0, SAMPLES).map(describeFailure),
  ...(failed.length > 0 ? { evidence: dataPlane.evidence.explain(answers[0]!.sentAt, answers.at(-1)!.at) } : {}),
});

/** A case's failed requests and the node's evidence, for a message. */
export const whyFailed = (figures: Figures) => [...figures.samples, ...(figures.evidence ?? [])].join('; ');

/** Runs `body` with the load going through `entry` at `rate`, and returns the load's answers with its result. */
async function underLoad<T>(
  entry: EntryPoint,
  rate: number,
  body: () => Promise<T>,
): Promise<{ value: T; answers: Answer[] }> {
  const load = OpenLoopLoad.start({ url: entry.url, rate, ...(entry.host ? { host: entry.host } : {}) });
  try {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const value = await body();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    return { value, answers: await load.stop() };
  } catch (error) {
    await load.stop().catch(() => undefined);
    throw error;
  }
}

const NEW_CONNECTIONS = 20;

/** Once the deployment monitors, NEW_CONNECTIONS requests each on a new connection: how many `slot` answered. */
async function newConnectionsAtMonitoring(handle: WorkflowHandle, entry: EntryPoint, slot: Slot) {
  await eventually(async () => (await handle.query(statusQuery)).phase === 'Monitoring', 'monitoring', 120_000);
  let toNew = 0;
  for (let i = 0; i < NEW_CONNECTIONS; i++) if ((await probe(entry)) === slot) toNew += 1;
  return { toNew, sent: NEW_CONNECTIONS };
}

/**
 * A blue-green deployment of the next good version: the switch and the old slot's scale-down. With
 * `stallKubeProxyMs`, the node's kube-proxy is paused that long from the smoke suite (or the
 * switch, when the smoke suite was too quick to be seen) on, so that the switch lands while the
 * rules still send every new connection to the old slot.
 */
export async function blueGreenSwitch(
  dataPlane: DataPlane,
  entry: EntryPoint,
  rate: number,
  { stallKubeProxyMs = 0 } = {},
): Promise<Figures> {
  const live = await prepare(dataPlane, entry);
  const idle = otherSlot(live);
  const watch = new RouterWatch(entry);
  let atMonitoring: { toNew: number; sent: number } | null = null;
  const { value: result, answers } = await underLoad(entry, rate, async () => {
    const handle = await start(dataPlane, entry, nextGood());
    let stalled: Promise<void> = Promise.resolve();
    if (stallKubeProxyMs > 0) {
      // Read every 25 ms: the smoke suite may take less than a second.
      const phase = async () => (await handle.query(statusQuery)).phase;
      await eventually(
        async () => ['SmokeTesting', 'Switching'].includes(await phase()),
        'the smoke suite',
        120_000,
        undefined,
        25,
      );
      stalled = dataPlane.plane.realNode!.stallKubeProxy(stallKubeProxyMs);
    }
    // replica-ratio's deployment is a canary: its monitoring begins on a split.
    if (entry.router !== 'replica-ratio') atMonitoring = await newConnectionsAtMonitoring(handle, entry, idle);
    await stalled;
    return await deploymentResult(handle);
  });
  await watch.stop();
  const writtenAt = watch.firstAt(idle);
  const afterWrite = writtenAt === null ? [] : answers.filter((a) => a.sentAt >= writtenAt);
  const firstNew = afterWrite.find((a) => slotOf(a.pod) === idle);
  const lastOld = afterWrite.filter((a) => slotOf(a.pod) === live).at(-1);
  const failed = failures(answers);
  return {
    router: entry.router,
    scenario: 'blue-green switch',
    outcome: result.outcome,
    sent: answers.length,
    tally: tally(answers),
    failed: {
      total: failed.length,
      switch: failures(within(answers, entered(result, 'Switching'), entered(result, 'Monitoring'))).length,
      scaleDown: failures(within(answers, entered(result, 'CleaningUp'), null)).length,
    },
    ...(writtenAt !== null && firstNew ? { propagationMs: firstNew.sentAt - writtenAt } : {}),
    ...(writtenAt !== null && lastOld ? { lastOldMs: lastOld.sentAt - writtenAt } : {}),
    ...(atMonitoring ? { newConnectionsAtMonitoring: atMonitoring } : {}),
    ...failuresOf(dataPlane, failed, answers),
  };
}

/** A blue-green deployment aborted 2 s into its monitoring (replica-ratio: a canary, 2 s into its first hold). */
export async function abortDuringMonitoring(dataPlane: DataPlane, entry: EntryPoint, rate: number): Promise<Figures> {
  const live = await prepare(dataPlane, entry);
  const idle = otherSlot(live);
  const watch = new RouterWatch(entry);
  let acceptedAt = 0;
  const { value: result, answers } = await underLoad(entry, rate, async () => {
    const handle = await start(dataPlane, entry, nextGood(), {
      monitor: { durationSeconds: 300, intervalSeconds: 2, slos: [] },
    });
    await eventually(async () => (await handle.query(statusQuery)).phase === 'Monitoring', 'monitoring', 120_000);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await handle.executeUpdate('abort', { args: [{ reason: 'dataplane: abort during monitoring', by: 'test' }] });
    acceptedAt = Date.now();
    return await deploymentResult(handle);
  });
  await watch.stop();
  const readBack = watch.firstAt(live, acceptedAt - 1_000);
  const lastAborted = answers.filter((a) => a.sentAt >= acceptedAt && slotOf(a.pod) === idle).at(-1);
  const failed = failures(answers);
  return {
    router: entry.router,
    scenario: 'abort during monitoring',
    outcome: `${result.outcome}/${result.reason ?? ''}`,
    sent: answers.length,
    tally: tally(answers),
    failed: {
      total: failed.length,
      switch: failures(within(answers, entered(result, 'Switching'), entered(result, 'Monitoring'))).length,
      abort: failures(within(answers, acceptedAt, null)).length,
    },
    ...(readBack !== null ? { abortReadBackMs: Math.max(0, readBack - acceptedAt) } : {}),
    abortTrafficMs: lastAborted ? Math.max(0, lastAborted.at - acceptedAt) : 0,
    abortedAnsweredAfterDone: answers.filter((a) => a.sentAt >= endOf(result) && slotOf(a.pod) === idle).length,
    ...failuresOf(dataPlane, failed, answers),
  };
}

/** The steps a canary takes through each router: replica-ratio's shares are those 2 stable replicas allow. */
export const canarySteps = (router: Router) => (router === 'replica-ratio' ? [33, 50, 100] : [5, 25, 50, 100]);

/** A canary of the next good version, each step held `holdSeconds`; the share each step served. */
export async function canary(
  dataPlane: DataPlane,
  entry: EntryPoint,
  rate: number,
  holdSeconds: number,
): Promise<Figures> {
  const live = await prepare(dataPlane, entry);
  const idle = otherSlot(live);
  const steps = canarySteps(entry.router);
  /** When each weight was set and read back (the workflow's status says so as it enters its hold). */
  const held: { weight: number; from: number; to: number }[] = [];
  const { value: result, answers } = await underLoad(entry, rate, async () => {
    const handle = await start(dataPlane, entry, nextGood(), {
      strategy: 'canary',
      canary: { steps: steps.map((weight) => ({ weight, holdSeconds })), minRequests: 0 },
    });
    const outcome = deploymentResult(handle);
    let done = false;
    void outcome.finally(() => (done = true)).catch(() => undefined);
    let current = null as { weight: number; from: number } | null;
    while (!done) {
      const status = await handle.query(statusQuery).catch(() => null);
      const weight = status?.phase === 'Monitoring' ? (status.canary?.weight ?? null) : null;
      if (weight !== (current?.weight ?? null)) {
        if (current) held.push({ ...current, to: Date.now() });
        current = weight === null ? null : { weight, from: Date.now() };
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (current) held.push({ ...current, to: Date.now() });
    return await outcome;
  });
  // Each hold's requests from 3 s after it began (the data plane's own delay to apply a change: a
  // provider's 2 s throttle) to its end.
  const shares = held
    .filter((h) => h.weight < 100)
    .map((h) => {
      const window = within(answers, h.from + 3_000, h.to).filter((a) => a.pod);
      const served = window.filter((a) => slotOf(a.pod) === idle).length;
      return { weight: h.weight, served: window.length ? (100 * served) / window.length : 0, requests: window.length };
    });
  const failed = failures(answers);
  return {
    router: entry.router,
    scenario: 'canary',
    outcome: result.outcome,
    sent: answers.length,
    tally: tally(answers),
    failed: { total: failed.length, scaleDown: failures(within(answers, entered(result, 'CleaningUp'), null)).length },
    shares,
    ...failuresOf(dataPlane, failed, answers),
  };
}

/** A version whose process exits 30 s after each start, rolled back on its restarts once live. */
export async function faultyRollback(
  dataPlane: DataPlane,
  entry: EntryPoint,
  rate: number,
  { aftermathSeconds = 0 }: { aftermathSeconds?: number } = {},
): Promise<Figures> {
  await prepare(dataPlane, entry);
  const { value, answers } = await underLoad(entry, rate, async () => {
    const result = await deploymentResult(
      await start(dataPlane, entry, FAULTY, {
        monitor: { durationSeconds: 120, intervalSeconds: 2, slos: [] },
      }),
    );
    const ended = Date.now();
    await new Promise((resolve) => setTimeout(resolve, aftermathSeconds * 1000));
    return { result, ended };
  });
  const { result, ended } = value;
  // From the switch on (to the rollback's end when its aftermath is counted apart): every request
  // the faulty slot answered with a 5xx, or that got no answer.
  const blast = failures(within(answers, entered(result, 'Switching'), aftermathSeconds > 0 ? ended : null)).length;
  const failed = failures(answers);
  return {
    router: entry.router,
    scenario: 'faulty version rolled back',
    outcome: `${result.outcome}/${result.failedCheck ?? result.reason ?? ''}`,
    sent: answers.length,
    tally: tally(answers, FAULTY),
    failed: { total: failed.length, abort: failures(within(answers, entered(result, 'RollingBack'), null)).length },
    blastRadius: blast,
    ...(aftermathSeconds > 0 ? { aftermath: failures(within(answers, ended, null)).length } : {}),
    ...failuresOf(dataPlane, failed, answers),
  };
}

/**
 * A version that degrades once live (half its API requests 500, 40 s after start), rolled back on
 * the error rate the monitor reads from Prometheus (every 15 s): its blast radius in 5xx answers.
 */
export async function degradedRollback(dataPlane: DataPlane, entry: EntryPoint, rate: number): Promise<Figures> {
  await prepare(dataPlane, entry);
  const slos = DETECTION_API_SLOS.filter((slo) => slo.name === 'error-rate');
  const { value: result, answers } = await underLoad(entry, rate, async () =>
    deploymentResult(
      await start(dataPlane, entry, DEGRADES, { monitor: { durationSeconds: 240, intervalSeconds: 5, slos } }),
    ),
  );
  const failed = failures(answers, DEGRADES);
  const counts = tally(answers, DEGRADES);
  return {
    router: entry.router,
    scenario: 'degrading version rolled back',
    outcome: `${result.outcome}/${result.failedCheck ?? result.reason ?? ''}`,
    sent: answers.length,
    tally: counts,
    failed: {
      total: failed.length,
      abort: failures(within(answers, entered(result, 'RollingBack'), null), DEGRADES).length,
    },
    blastRadius: counts['faulty-5xx'],
    ...failuresOf(dataPlane, failed, answers),
  };
}
