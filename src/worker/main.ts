/**
 * The worker process: configuration from the environment, the configured platform's activities,
 * the deployment workflows. Stops gracefully on SIGTERM or SIGINT (the SDK's runtime handles the
 * signals; activities in flight get the shutdown grace time).
 */
import { existsSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { NativeConnection } from '@temporalio/worker';
import { pino } from 'pino';
import { z } from 'zod';
import { createActivities } from '../activities/index.js';
import { connectionOptions, TemporalConfigSchema } from '../config/temporal.js';
import { ConfigError, parseEnv } from '../config/env.js';
import { capacityFor, CapacityConfigSchema } from './capacity.js';
import { loadActivityDependencies } from './platforms.js';
import { installRuntime } from './runtime.js';
import { createDeploymentWorker } from './worker.js';

const WorkerProcessSchema = z.object({
  /** Where Prometheus scrapes the worker: the SDK's metrics and the deployments' own. */
  BLUEGREEN_METRICS_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:[0-9]{1,5}$/, 'BLUEGREEN_METRICS_ADDRESS must be host:port')
    .default('0.0.0.0:9464'),
  /** The workflows bundled ahead of time (`npm run bundle:workflows`); without it they are bundled at start. */
  BLUEGREEN_WORKFLOW_BUNDLE: z
    .string()
    .min(1)
    .refine(
      (path) => existsSync(path),
      (path) => ({ message: `no file at ${path}; build it with 'npm run bundle:workflows'` }),
    )
    .optional(),
});

const logger = pino({ name: 'bluegreen-worker' });

async function main(): Promise<void> {
  const config = parseEnv(TemporalConfigSchema, process.env);
  const { BLUEGREEN_METRICS_ADDRESS: metricsAddress, BLUEGREEN_WORKFLOW_BUNDLE: bundle } = parseEnv(
    WorkerProcessSchema,
    process.env,
  );
  const capacity = capacityFor(
    getHeapStatistics().heap_size_limit / 2 ** 20,
    parseEnv(CapacityConfigSchema, process.env),
  );
  const dependencies = await loadActivityDependencies(process.env);
  installRuntime({ metricsAddress, logger });
  const connection = await NativeConnection.connect(connectionOptions(config));
  try {
    const worker = await createDeploymentWorker({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      activities: createActivities(dependencies),
      ...(bundle ? { workflowBundle: { codePath: bundle } } : {}),
      options: {
        maxCachedWorkflows: capacity.maxCachedWorkflows,
        maxConcurrentWorkflowTaskExecutions: capacity.maxConcurrentWorkflowTaskExecutions,
        maxConcurrentActivityTaskExecutions: capacity.maxConcurrentActivityTaskExecutions,
      },
    });
    logger.info(
      {
        address: config.TEMPORAL_ADDRESS,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        platform: dependencies.platform.name,
        metrics: `http://${metricsAddress}/metrics`,
        workflows: bundle ?? 'bundled at start',
        capacity,
      },
      'worker started',
    );
    await worker.run();
    logger.info('worker stopped');
  } finally {
    await connection.close();
  }
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    logger.error(error.message);
    process.exitCode = 2;
  } else {
    logger.error({ err: error }, 'worker failed');
    process.exitCode = 1;
  }
});
