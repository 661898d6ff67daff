/**
 * The GitOps controller's process (Releases and ReleaseTrains): Temporal from the same settings as
 * the CLI and the worker, the API server from a kubeconfig or the pod's ServiceAccount, and a Lease
 * so that of several replicas exactly one acts. A replica that loses the Lease exits (its Deployment restarts it as a
 * candidate), as client-go's controllers do: it never acts beside a new leader. SIGTERM and SIGINT
 * hand the Lease back, so that another replica takes over at once instead of after it expires.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { connectDeployments } from '../client/connect.js';
import { ConfigError, parseEnv } from '../config/env.js';
import { loadKubeConfig } from '../config/kubeconfig.js';
import { ControllerEnvSchema } from './controller-config.js';
import { LeaderElector } from './leader-election.js';
import { ReleaseController } from './release-controller.js';
import { ReleaseTrainController } from './release-train-controller.js';

const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const logger = pino({ name: 'bluegreen-release-controller' });

function podNamespace(): string | undefined {
  try {
    return readFileSync(IN_CLUSTER_NAMESPACE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const settings = parseEnv(ControllerEnvSchema, process.env);
  const kubeConfig = loadKubeConfig(process.env);
  const namespace = settings.BLUEGREEN_RELEASE_NAMESPACE ?? podNamespace() ?? 'default';
  const identity = settings.BLUEGREEN_CONTROLLER_ID ?? process.env['POD_NAME'] ?? `${hostname()}-${process.pid}`;
  const { deployments, trains, config, close } = await connectDeployments(process.env);
  const log = (line: string, fields?: Record<string, unknown>) => logger.info(fields ?? {}, line);
  const retryMs = settings.BLUEGREEN_RETRY_PERIOD_SECONDS * 1000;
  const options = { namespace, identity, resyncMs: settings.BLUEGREEN_RESYNC_SECONDS * 1000, retryMs, log };
  // Both under one Lease: Releases and ReleaseTrains.
  const controllers = [
    new ReleaseController(kubeConfig, deployments, options),
    new ReleaseTrainController(kubeConfig, trains, options),
  ];
  let stopping = false;
  const elector = new LeaderElector(kubeConfig, {
    namespace,
    name: settings.BLUEGREEN_LEASE_NAME,
    identity,
    leaseDurationMs: settings.BLUEGREEN_LEASE_DURATION_SECONDS * 1000,
    renewDeadlineMs: settings.BLUEGREEN_RENEW_DEADLINE_SECONDS * 1000,
    retryMs,
    log,
    // Not awaited: the elector keeps renewing while the first list is slow.
    onStartedLeading: () => controllers.forEach((c) => void c.start()),
    onStoppedLeading: async () => {
      await Promise.all(controllers.map((c) => c.stop()));
    },
  });
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping: handing the lease back');
    void elector.stop();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  logger.info(
    {
      identity,
      namespace,
      lease: settings.BLUEGREEN_LEASE_NAME,
      temporal: config.TEMPORAL_ADDRESS,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
    },
    'release controller started; campaigning for the lease',
  );
  await elector.run();
  await close();
  if (!stopping) {
    logger.error('lost the lease: exiting, so as never to act beside the new leader');
    await sleep(10); // let pino flush
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    logger.error(error.message);
    process.exitCode = 2;
  } else {
    logger.error({ err: error }, 'release controller failed');
    process.exitCode = 1;
  }
});
