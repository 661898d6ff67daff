/**
 * The embedded default, whole: a Temporal dev server (Web UI, the deployments' search attributes,
 * history in a file), a TAK stand-in, the local platform with the detection API live on blue, a
 * Prometheus scraping its replicas, and the worker as its own process. The demo runs it on fixed
 * ports; the tests and benchmarks on free ones. Everything started is stopped by PID.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Target } from '../activities/contract.js';
import { DeploymentClient } from '../client/deployment-client.js';
import { startPrometheus } from '../cluster-simulator/prometheus-process.js';
import type { PrometheusProcess } from '../cluster-simulator/prometheus-process.js';
import { freePort, stopProcess, waitUntilReady } from '../processes/processes.js';
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/search-attributes.js';
import { TrafficRouter } from '../shared/traffic.js';
import { DEFAULT_TASK_QUEUE } from '../shared/workflow-id.js';
import { ROOT, startLocalPlatformProcess } from './simulator-process.js';
import type { LocalPlatformPorts, LocalPlatformProcess } from './simulator-process.js';
import { startTakSink } from './tak-sink.js';
import { startWorkerProcess } from './worker-process.js';
import type { WorkerProcess } from './worker-process.js';
import type { TakSink } from './tak-sink.js';

export interface StackPorts extends LocalPlatformPorts {
  temporal: number;
  ui: number;
  prometheus: number;
  tak: number;
  workerMetrics: number;
}

/** The demo's ports: Temporal's and Prometheus' usual ones, the local platform's from its example file. */
export const DEMO_PORTS: StackPorts = {
  temporal: 7233,
  ui: 8233,
  prometheus: 9090,
  tak: 8087,
  workerMetrics: 9464,
  control: 7070,
  router: 8080,
  blue: 8081,
  green: 8082,
  gateway: 8083,
  ingress: 8084,
};

export async function freeStackPorts(): Promise<StackPorts> {
  const ports = {} as StackPorts;
  for (const key of Object.keys(DEMO_PORTS) as (keyof StackPorts)[]) ports[key] = await freePort();
  return ports;
}

/** The objects of examples/detection-api/local-platform.yaml, as a deployment's target. */
export const DETECTION_API_TARGET: Target = {
  app: 'detection-api',
  namespace: 'default',
  service: 'detection-api-service',
  slotLabelKey: 'slot',
  container: 'detection-api',
  deployments: { blue: 'detection-api-blue', green: 'detection-api-green' },
  traffic: { router: 'service-selector', slotServices: { blue: 'detection-api-blue', green: 'detection-api-green' } },
};

export interface StackOptions {
  stateDir: string;
  ports: StackPorts;
  taskQueue?: string;
  /** Environment added to every detection-API replica. */
  replicaEnv?: Record<string, string>;
  /** Environment added to the worker (credentials, say). */
  workerEnv?: Record<string, string>;
  /**
   * Drive the cluster of this kubeconfig instead: no local platform and no Prometheus are
   * started, and the worker runs with the kubernetes platform (its SLO source unreachable, so
   * deployments must gate on restarts alone).
   */
  kubeconfig?: string;
  /** How the worker process is started: node's arguments (default: src/worker/main.ts through tsx). */
  workerCommand?: string[];
  /** Where the dev server keeps its history: a database file in stateDir (default), or memory. */
  temporalDb?: 'file' | 'memory';
  /** How often Prometheus scrapes the replicas (default 1 s; teams run 15 s to 1 min). */
  scrapeIntervalSeconds?: number;
  /**
   * With a history kept from an earlier run and a platform started afresh: end the deployments
   * still running in that history, with this reason recorded, before any worker could resume them.
   */
  endLeftoverDeployments?: string;
  log?: (line: string) => void;
}

export class EmbeddedStack {
  temporal: ChildProcess | null = null;
  tak: TakSink | null = null;
  local: LocalPlatformProcess | null = null;
  prometheus: PrometheusProcess | null = null;
  worker: ChildProcess | null = null;
  connection: Connection | null = null;
  deployments: DeploymentClient | null = null;
  readonly taskQueue: string;
  private workerProcess: WorkerProcess | null = null;

  constructor(readonly options: StackOptions) {
    this.taskQueue = options.taskQueue ?? DEFAULT_TASK_QUEUE;
  }

  get temporalAddress(): string {
    return `127.0.0.1:${this.options.ports.temporal}`;
  }

  get uiUrl(): string {
    return `http://127.0.0.1:${this.options.ports.ui}`;
  }

  /** The Temporal UI page of a workflow. */
  workflowUrl(workflowId: string): string {
    return `${this.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`;
  }

  async start(): Promise<void> {
    const { stateDir, ports } = this.options;
    const log = this.options.log ?? (() => undefined);
    mkdirSync(stateDir, { recursive: true });
    try {
      this.tak = await startTakSink(ports.tak);
      log(`TAK stand-in       127.0.0.1:${ports.tak}`);
      await this.startTemporal();
      log(`Temporal           ${this.temporalAddress} (Web UI ${this.uiUrl})`);
      if (this.options.endLeftoverDeployments) {
        const ended = await this.deployments!.endRunning(this.options.endLeftoverDeployments);
        if (ended.length > 0)
          log(
            `ended ${ended.length} deployment(s) left running by an earlier run: ${ended.join(', ')} (terminated; ` +
              `the reason is in each history)`,
          );
      }
      if (this.options.kubeconfig) {
        await this.startWorker();
        log(`worker             task queue ${this.taskQueue}, kubeconfig ${this.options.kubeconfig}`);
        return;
      }
      this.local = await startLocalPlatformProcess({
        stateDir: join(stateDir, 'local-platform'),
        ports,
        env: { TAK_ADDRESS: `127.0.0.1:${ports.tak}`, ...this.options.replicaEnv },
      });
      log(`local platform     ${this.local.controlUrl} (detection-api-service on ${this.local.routerUrl})`);
      await this.startPrometheus();
      log(`Prometheus         ${this.prometheus!.url}`);
      await this.startWorker();
      log(`worker             task queue ${this.taskQueue}, metrics http://127.0.0.1:${ports.workerMetrics}/metrics`);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  private async startTemporal(): Promise<void> {
    const output = await this.startTemporalProcess();
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        this.connection = await Connection.connect({ address: this.temporalAddress, connectTimeout: 2000 });
        await this.connection.workflowService.getSystemInfo({});
        break;
      } catch (error) {
        await this.connection?.close();
        this.connection = null;
        if (Date.now() > deadline)
          throw new Error(
            `Temporal at ${this.temporalAddress} did not answer: ${(error as Error).message}\n${output()}`,
            { cause: error },
          );
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    this.deployments = new DeploymentClient(
      new Client({ connection: this.connection, namespace: 'default' }),
      this.taskQueue,
    );
  }

  /** Stops the dev server and starts it again on its database file: a server restart. */
  async restartTemporal(): Promise<void> {
    if (this.temporal) await stopProcess(this.temporal, 15_000);
    await this.startTemporalProcess();
  }

  /** Stops Prometheus: monitoring is lost. */
  async stopPrometheus(): Promise<void> {
    await this.prometheus?.stop();
  }

  /** Starts Prometheus again on the same port and data. */
  async startPrometheus(): Promise<void> {
    const { stateDir, ports } = this.options;
    this.prometheus = await startPrometheus({
      dir: join(stateDir, 'prometheus'),
      listen: `127.0.0.1:${ports.prometheus}`,
      targets: { file: this.local!.targetsFile },
      scrapeIntervalSeconds: this.options.scrapeIntervalSeconds,
    });
  }

  private async startTemporalProcess(): Promise<() => string> {
    const { stateDir, ports } = this.options;
    const cli = join(ROOT, '.venv/bin/temporal');
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run 'bash scripts/setup.sh' to install the Temporal CLI`);
    const args = [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(ports.temporal),
      '--ui-port',
      String(ports.ui),
    ];
    // The history in a file, written ahead (WAL) and synced at its checkpoints: a commit is an
    // append, not a journal file made, synced and removed, and a killed server loses nothing (a
    // machine's power cut may lose its last commits). 100 deployments at once waited 4.1 to 9.6 s
    // in the task queue with it, 12.1 to 15.6 s without (bench:kubernetes, RESULTS.md).
    if (this.options.temporalDb !== 'memory')
      args.push(
        '--db-filename',
        join(stateDir, 'temporal.db'),
        '--sqlite-pragma',
        'journal_mode=wal',
        '--sqlite-pragma',
        'synchronous=normal',
      );
    args.push('--log-level', 'error');
    for (const key of SEARCH_ATTRIBUTE_KEYS) args.push('--search-attribute', `${key.name}=Keyword`);
    const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.temporal = child;
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    await waitUntilReady('Temporal dev server', child, this.uiUrl, { output: () => output, timeoutMs: 60_000 });
    return () => output;
  }

  /**
   * Waits until the example's initial slot (blue, two replicas of v2.1.0) serves, and Prometheus
   * has discovered its replicas (a deployment reads their scrape interval in preflight).
   */
  async waitForInitialSlot(timeoutSeconds = 60): Promise<void> {
    const progress = { heartbeat: () => undefined, signal: new AbortController().signal };
    await this.local!.platform.waitForSlotReady(
      { target: DETECTION_API_TARGET, slot: 'blue', replicas: 2, timeoutSeconds },
      progress,
    );
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
      const answer = (await fetch(`${this.prometheus!.url}/api/v1/targets?state=active`)
        .then((r) => r.json())
        .catch(() => null)) as { data?: { activeTargets?: unknown[] } } | null;
      if ((answer?.data?.activeTargets?.length ?? 0) >= 2) return;
      if (Date.now() > deadline)
        throw new Error(`Prometheus did not discover the initial slot's replicas within ${timeoutSeconds} s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /**
   * What the detection API's clients got through `router`'s entry point since the local platform
   * started, per backend (its own counts): the share each slot actually served, whatever the
   * weights say. Keys are the slots' Deployments (for the Service) or Services (for the HTTPRoute
   * and the Ingress); the example names both `detection-api-<slot>`.
   */
  async servedBy(router: TrafficRouter = TrafficRouter.ServiceSelector): Promise<Record<string, number>> {
    const path = {
      [TrafficRouter.ServiceSelector]: `/api/v1/namespaces/default/services/${DETECTION_API_TARGET.service}`,
      [TrafficRouter.ReplicaRatio]: `/api/v1/namespaces/default/services/${DETECTION_API_TARGET.service}`,
      [TrafficRouter.GatewayApi]: '/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/detection-api',
      [TrafficRouter.Ingress]: '/apis/networking.k8s.io/v1/namespaces/default/ingresses/detection-api-ingress',
    }[router];
    const answer = await fetch(`${this.local!.controlUrl}${path}`);
    return ((await answer.json()) as { served: Record<string, number> }).served;
  }

  /** Starts the worker process (again, after `killWorker`); resolves when it polls. */
  async startWorker(): Promise<void> {
    const { ports } = this.options;
    this.workerProcess = await startWorkerProcess({
      command: this.options.workerCommand,
      metricsPort: ports.workerMetrics,
      env: {
        ...(this.options.kubeconfig
          ? {
              BLUEGREEN_PLATFORM: 'kubernetes',
              BLUEGREEN_KUBECONFIG: this.options.kubeconfig,
              PROMETHEUS_URL: 'http://127.0.0.1:9',
            }
          : {
              BLUEGREEN_PLATFORM: 'local',
              BLUEGREEN_LOCAL_URL: this.local!.controlUrl,
              PROMETHEUS_URL: this.prometheus!.url,
            }),
        TEMPORAL_ADDRESS: this.temporalAddress,
        TEMPORAL_TASK_QUEUE: this.taskQueue,
        // An incident links to the run in this stack's Temporal UI.
        BLUEGREEN_TEMPORAL_UI_URL: `http://127.0.0.1:${ports.ui}`,
        ...this.options.workerEnv,
      },
    });
    this.worker = this.workerProcess.child;
  }

  /** SIGKILL: the worker dies mid-activity, as a crashed node would take it. */
  async killWorker(): Promise<void> {
    await this.workerProcess?.kill();
  }

  workerLog(): string {
    return this.workerProcess?.output() ?? '';
  }

  /** Stops everything this stack started, newest first. */
  async stop(): Promise<void> {
    if (this.worker) await stopProcess(this.worker, 15_000);
    await this.prometheus?.stop();
    await this.local?.stop();
    await this.connection?.close();
    if (this.temporal) await stopProcess(this.temporal, 15_000);
    await this.tak?.close();
  }
}
