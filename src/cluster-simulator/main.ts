/**
 * `npm run local-platform -- --config FILE`: runs the local platform in the foreground (its
 * routers, its replicas, its control API) until SIGTERM or SIGINT, then stops every replica it
 * started within their grace periods.
 */
import { Command } from 'commander';
import { pino } from 'pino';
import { ConfigError } from '../config/env.js';
import { loadLocalPlatformConfig } from './config.js';
import { LocalCluster } from './local-cluster.js';

const logger = pino({ name: 'bluegreen-local-platform' });

const program = new Command('local-platform')
  .description('Slots as local processes behind a router per Service, driven through a control API on loopback')
  .requiredOption('-c, --config <file>', 'the local platform configuration (YAML)')
  .parse();

async function main(): Promise<void> {
  const { config: file } = program.opts<{ config: string }>();
  const cluster = new LocalCluster(loadLocalPlatformConfig(file));
  await cluster.start();
  logger.info(
    {
      control: cluster.controlUrl,
      services: cluster.services.map((s) => `${s.key} on http://${s.config.listen}`),
      prometheusTargets: cluster.targetsFile,
    },
    'local platform started',
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping the local platform and its replicas');
    cluster.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  logger.error(error instanceof ConfigError ? error.message : { err: error }, 'the local platform could not start');
  process.exit(2);
});
