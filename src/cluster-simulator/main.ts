/**
 * `npm run local-platform -- --config FILE`: runs the local platform in the foreground (its
 * routers, its replicas, its control API) until SIGTERM or SIGINT, then stops every replica it
 * started within their grace periods.
 */
import { Command } from 'commander';
import { ConfigError } from '../config/env.js';
import { loadLocalPlatformConfig } from './config.js';
import { LocalCluster } from './local-cluster.js';
import { logger } from './logger.js';

/** A timer this much later than due means every router here held its requests as long: logged. */
const STALL_LOGGED_MS = 1_000;
const STALL_TICK_MS = 250;

/** Logs each stall of this process's event loop: its routers answer nothing meanwhile. */
function logStalls(): void {
  let due = performance.now() + STALL_TICK_MS;
  setInterval(() => {
    const late = performance.now() - due;
    if (late >= STALL_LOGGED_MS) logger.warn({ stalledMs: Math.round(late) }, 'the event loop stalled');
    due = performance.now() + STALL_TICK_MS;
  }, STALL_TICK_MS).unref();
}

const program = new Command('local-platform')
  .description('Slots as local processes behind a router per Service, driven through a control API on loopback')
  .requiredOption('-c, --config <file>', 'the local platform configuration (YAML)')
  .parse();

async function main(): Promise<void> {
  const { config: file } = program.opts<{ config: string }>();
  const cluster = new LocalCluster(loadLocalPlatformConfig(file));
  await cluster.start();
  logStalls();
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
