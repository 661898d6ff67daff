/**
 * The worker process: configuration from the environment, the configured platform's activities,
 * the deployment workflows. Stops gracefully on SIGTERM or SIGINT (the SDK's runtime handles the
 * signals; activities in flight get the shutdown grace time).
 */
import { NativeConnection } from '@temporalio/worker';
import { pino } from 'pino';
import { createActivities } from '../activities/index.js';
import { ConfigError, connectionOptions, parseEnv, TemporalConfigSchema } from '../config/temporal.js';
import { loadActivityDependencies } from './platforms.js';
import { createDeploymentWorker } from './worker.js';

const logger = pino({ name: 'bluegreen-worker' });

async function main(): Promise<void> {
  const config = parseEnv(TemporalConfigSchema, process.env);
  const dependencies = await loadActivityDependencies(process.env);
  const connection = await NativeConnection.connect(connectionOptions(config));
  try {
    const worker = await createDeploymentWorker({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      activities: createActivities(dependencies),
    });
    logger.info(
      { address: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE, taskQueue: config.TEMPORAL_TASK_QUEUE, platform: dependencies.platform.name },
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
