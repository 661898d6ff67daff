/**
 * Builds the deployment worker: the workflow bundle plus the activities of one platform. Tests
 * build it with activity doubles; production builds it through `main.ts` from configuration.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import type { WorkerOptions, NativeConnection } from '@temporalio/worker';
import type { Activities } from '../activities/index.js';

/** The workflow module the worker bundles: TypeScript from src/, or JavaScript built into dist/. */
export const WORKFLOWS_PATH = fileURLToPath(new URL(`../workflows/index${extname(import.meta.url)}`, import.meta.url));

export interface DeploymentWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  /** A prebuilt bundle (tests build one and share it); otherwise the workflows are bundled here. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Extra worker options (identity, concurrency, sinks). */
  options?: Partial<WorkerOptions>;
}

export async function createDeploymentWorker(options: DeploymentWorkerOptions): Promise<Worker> {
  return await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: options.activities,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    // Activities in flight get this long to finish after SIGTERM before the worker gives up.
    shutdownGraceTime: '30s',
    // A heartbeat reaches the server at least this often (the SDK throttles to 80 % of the
    // heartbeat timeout otherwise): the monitor window's 10 s timeout keeps a margin under load.
    maxHeartbeatThrottleInterval: '3s',
    ...options.options,
  });
}
