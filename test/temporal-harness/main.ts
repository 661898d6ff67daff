/**
 * `npm run temporal-postgres`: Temporal on PostgreSQL in the foreground, as docker-compose.yml runs
 * it but without Docker (Debian's PostgreSQL 15, the server built by scripts/setup.sh). Prints the
 * address; Ctrl+C stops both.
 *
 *   npm run temporal-postgres                  # state in .state/temporal-postgres
 *   npm run temporal-postgres -- --dir /tmp/t
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { startTemporalOnPostgres, TEMPORAL_SERVER_VERSION } from './temporal-postgres.js';

const options = new Command('temporal-postgres')
  .option('--dir <dir>', 'state directory (wiped at start)', '.state/temporal-postgres')
  .parse()
  .opts<{ dir: string }>();

const dir = resolve(options.dir);
rmSync(dir, { recursive: true, force: true });
const temporal = await startTemporalOnPostgres({ dir });
process.stdout.write(
  [
    `Temporal ${TEMPORAL_SERVER_VERSION} on PostgreSQL 15 up in ${temporal.startSeconds.toFixed(1)} s at ${temporal.address} (namespace default)`,
    `  TEMPORAL_ADDRESS=${temporal.address} npm run worker`,
    `data in ${dir}; Ctrl+C stops it`,
    '',
  ].join('\n'),
);
const stop = () => void temporal.stop().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
