/**
 * Starts the detection API. On SIGTERM or SIGINT it drains as docs/PROCEDURE.md §8 asks: health
 * and readiness answer 503 at once, API requests are still answered, each closing its connection,
 * requests in flight complete, and the process exits within SHUTDOWN_GRACE_SECONDS whatever happens.
 */
import { loadConfig } from './config.js';
import { createDetectionService } from './service.js';

const config = (() => {
  try {
    return loadConfig(process.env);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
})();

const service = createDetectionService(config);
let stopping = false;

async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  service.app.log.info({ signal }, 'graceful shutdown initiated');
  setTimeout(() => {
    service.app.log.error('grace period over: exiting with requests still open');
    process.exit(1);
  }, config.SHUTDOWN_GRACE_SECONDS * 1000).unref();
  await service.shutdown();
  process.exit(0);
}

process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

if (config.FAULT_CRASH_AFTER_SECONDS !== undefined) {
  setTimeout(() => {
    service.app.log.fatal(`injected crash (FAULT_CRASH_AFTER_SECONDS=${config.FAULT_CRASH_AFTER_SECONDS})`);
    process.exit(70);
  }, config.FAULT_CRASH_AFTER_SECONDS * 1000);
}

await service.start();
