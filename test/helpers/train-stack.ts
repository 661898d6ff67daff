/**
 * Release trains on the embedded stack (the dev server keeping its history in a file, the local
 * platform, Prometheus), with two clusters and the train's own worker, each a process of its own:
 * - "local": the stack's local platform, deployed by the stack's worker process;
 * - "local-2" (and "local-3" when asked for): another local platform process, deployed by a worker
 *   process of its own;
 * - the train runs on a worker process of its own, which deploys to none of them.
 * The drills SIGKILL the train's worker and restart the server; bench:train measures a train's
 * overhead and an abort's restore on it. Every process is stopped by PID.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import type { LiveState } from '../../src/activities/contract.js';
import { TrainClient, trainResult } from '../../src/client/train-client.js';
import { statusQuery } from '../../src/workflows/definitions.js';
import { DETECTION_API_TARGET, EmbeddedStack, freeStackPorts } from '../../src/demo/stack.js';
import { startWorkerProcess } from '../../src/demo/worker-process.js';
import type { WorkerProcess } from '../../src/demo/worker-process.js';
import { freePort } from '../../src/processes/processes.js';
import type { DeploymentStatus } from '../../src/shared/deployment-status.js';
import type { TrainStatus } from '../../src/shared/train.js';
import { deploymentWorkflowId } from '../../src/shared/workflow-id.js';
import type { TrainSpecInput } from '../../src/train/train-spec.js';
import { startLocalPlatform } from './local-platform-process.js';
import type { LocalPlatformProcess } from './local-platform-process.js';
import { workflowBundleFile } from './workflow-bundle-file.js';

export type LocalCluster = 'local' | 'local-2' | 'local-3';
export const TRAIN_QUEUE = 'train-itself';
const queueOf = (cluster: LocalCluster) => `train-${cluster}`;

export const TRAIN_IMAGE = (tag: string) => `registry.internal/detection-api:${tag}`;

export class TrainStack {
  stack!: EmbeddedStack;
  /** Built once the stack's server answers (its connection outlives a server restart). */
  client!: Client;
  trains!: TrainClient;
  /** The clusters beyond the stack's own, each a local platform process and its worker process. */
  private readonly others = new Map<LocalCluster, { local: LocalPlatformProcess; worker: WorkerProcess | null }>();
  private trainWorker: WorkerProcess | null = null;
  private bundle = '';

  constructor(private readonly extra: LocalCluster[] = ['local-2']) {}

  async start(): Promise<void> {
    const stateDir = mkdtempSync(join(tmpdir(), 'train-stack-'));
    // Three worker processes and their restarts load one bundle, built once.
    this.bundle = await workflowBundleFile(stateDir);
    this.stack = new EmbeddedStack({
      stateDir,
      ports: await freeStackPorts(),
      taskQueue: queueOf('local'),
      replicaEnv: { SHUTDOWN_DRAIN_MS: '100' },
      workerEnv: { BLUEGREEN_WORKFLOW_BUNDLE: this.bundle },
    });
    try {
      await this.stack.start();
      this.client = new Client({ connection: this.stack.connection!, namespace: 'default' });
      this.trains = new TrainClient(this.client, TRAIN_QUEUE);
      for (const cluster of this.extra) {
        const local = await startLocalPlatform({ takAddress: `127.0.0.1:${this.stack.options.ports.tak}` });
        this.others.set(cluster, { local, worker: null });
        this.others.get(cluster)!.worker = await this.startWorker(local.controlUrl, queueOf(cluster));
      }
      await this.stack.waitForInitialSlot();
      await this.startTrainWorker();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** A worker process driving the local platform at `controlUrl`, polling `taskQueue`. */
  private async startWorker(controlUrl: string, taskQueue: string): Promise<WorkerProcess> {
    return await startWorkerProcess({
      metricsPort: await freePort(),
      env: {
        BLUEGREEN_PLATFORM: 'local',
        BLUEGREEN_LOCAL_URL: controlUrl,
        PROMETHEUS_URL: this.stack.prometheus!.url,
        TEMPORAL_ADDRESS: this.stack.temporalAddress,
        TEMPORAL_TASK_QUEUE: taskQueue,
        BLUEGREEN_WORKFLOW_BUNDLE: this.bundle,
      },
    });
  }

  /** Starts the train's worker (again, after `killTrainWorker`); resolves when it polls. */
  async startTrainWorker(): Promise<void> {
    this.trainWorker = await this.startWorker(this.stack.local!.controlUrl, TRAIN_QUEUE);
  }

  /** SIGKILL: the train's worker dies as a crashed node would take it. */
  async killTrainWorker(): Promise<void> {
    await this.trainWorker?.kill();
    this.trainWorker = null;
  }

  /** What a cluster runs now. */
  async live(cluster: LocalCluster): Promise<LiveState> {
    const platform = cluster === 'local' ? this.stack.local!.platform : this.others.get(cluster)!.local.platform;
    return await platform.describe(DETECTION_API_TARGET);
  }

  /** The slot a cluster's traffic is on, that slot's image and ready replicas, and the other slot's replicas. */
  async served(cluster: LocalCluster): Promise<string> {
    const state = await this.live(cluster);
    const slot = state.activeSlot!;
    const other = slot === 'blue' ? 'green' : 'blue';
    const { image, readyReplicas } = state.slots[slot];
    return `${slot} ${image} x${readyReplicas}, ${other} x${state.slots[other].replicas}`;
  }

  /**
   * The detection API's latest deployment on a cluster: a train's deployment there has the app's
   * own workflow id on the cluster's queue, as a direct one has.
   */
  deployment(cluster: LocalCluster): WorkflowHandle {
    return this.client.workflow.getHandle(deploymentWorkflowId('default', 'detection-api', queueOf(cluster)));
  }

  /** The status of the latest deployment on a cluster (its workflow's query), or null while it cannot answer. */
  async deploymentStatus(cluster: LocalCluster): Promise<DeploymentStatus | null> {
    return await this.deployment(cluster)
      .query(statusQuery)
      .catch(() => null);
  }

  /**
   * The train's end, waiting through a server restart or a worker's absence: the long poll fails
   * while the server is down, and is asked again.
   */
  async result(name: string): Promise<TrainStatus> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await trainResult(this.trains.handle(name));
      } catch (error) {
        if (attempt > 30 || !/UNAVAILABLE|connect|ECONNREFUSED|deadline/i.test(String(error))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  async stop(): Promise<void> {
    await this.trainWorker?.stop();
    for (const { local, worker } of this.others.values()) {
      await worker?.stop();
      await local.stop();
    }
    await this.stack?.stop();
  }
}

/**
 * A train over the local clusters: the detection API, two replicas, a short monitor window gated
 * on restarts (only the stack's platform has a Prometheus), and the stages given.
 */
export function localTrain(
  name: string,
  tag: string,
  stages: TrainSpecInput['stages'],
  { monitorSeconds = 6 }: { monitorSeconds?: number } = {},
): TrainSpecInput {
  return {
    name,
    image: TRAIN_IMAGE(tag),
    base: {
      app: 'detection-api',
      namespace: 'default',
      replicas: 2,
      readinessTimeoutSeconds: 60,
      monitor: { durationSeconds: monitorSeconds, intervalSeconds: 1, slos: [] },
      scaleDownDelaySeconds: 1,
    },
    clusters: Object.fromEntries(
      (['local', 'local-2', 'local-3'] as const).map((cluster) => [cluster, { taskQueue: queueOf(cluster) }]),
    ),
    stages,
    onFailure: 'rollbackCompleted',
  };
}
