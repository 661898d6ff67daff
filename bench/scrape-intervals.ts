/**
 * bench:scrape-intervals: the monitor at the scrape intervals teams run, on the embedded stack
 * (Prometheus scraping the replicas every 1, 15, 30 and 60 s; 20 requests/s through the router; no
 * operator). For each interval: the warm-up the monitor derived from what Prometheus reports, how a
 * healthy release ended (and whether it ever paused), and for a faulty one (a quarter of its
 * answers 500, from 8 s after its pods start) the time from fault onset to traffic restored and the
 * 5xx it answered meanwhile. Specs as a team would write them: `deployTagAtScrapeInterval`.
 *
 *   npm run bench:scrape-intervals
 *   SCRAPE_INTERVALS=15,60 npm run bench:scrape-intervals
 */
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { deploymentResult } from '../src/client/deployment-client.js';
import { EmbeddedStack, freeStackPorts } from '../src/demo/stack.js';
import { TrafficGenerator } from '../src/demo/traffic.js';
import { deployTagAtScrapeInterval } from '../test/helpers/embedded-stack.js';
import { faultOnsetToRestored } from './histories.js';

const INTERVALS = (process.env['SCRAPE_INTERVALS'] ?? '1,15,30,60').split(',').map(Number);
/** v2.3.0's FAULT_AFTER_SECONDS in examples/detection-api/local-platform.yaml. */
const FAULT_AFTER_MS = 8000;
const say = (line: string) => process.stdout.write(`${line}\n`);

interface Row {
  scrape: number;
  warmUp: number;
  healthy: string;
  paused: boolean;
  onsetToRestored: number;
  faulty5xx: number;
}

async function measure(scrape: number): Promise<Row> {
  const stack = new EmbeddedStack({
    stateDir: mkdtempSync(join(tmpdir(), `bench-scrape-${scrape}s-`)),
    ports: await freeStackPorts(),
    replicaEnv: { LOG_LEVEL: 'error' },
    scrapeIntervalSeconds: scrape,
  });
  await stack.start();
  const traffic = new TrafficGenerator(stack.local!.routerUrl, 20);
  try {
    await stack.waitForInitialSlot();
    traffic.start();
    const good = await deploymentResult(await deployTagAtScrapeInterval(stack, 'v2.2.0', scrape));
    const paused = good.status.transitions.some((t) => t.phase === 'Paused');
    say(
      `scrape ${scrape} s: healthy release ${good.outcome}${paused ? ' after a pause' : ', never paused'}; warm-up ${good.status.monitor?.warmUpSeconds} s`,
    );
    const before = traffic.snapshot();
    const handle = await deployTagAtScrapeInterval(stack, 'v2.3.0', scrape);
    const faulty = await deploymentResult(handle);
    if (faulty.outcome !== 'RolledBack')
      throw new Error(`scrape ${scrape} s: the faulty version was not rolled back: ${faulty.message}`);
    const onsetToRestored = faultOnsetToRestored((await handle.fetchHistory()).events ?? [], FAULT_AFTER_MS);
    const faulty5xx = traffic.snapshot().serverErrors - before.serverErrors;
    say(
      `scrape ${scrape} s: faulty release ${faulty.outcome} (${faulty.failedCheck}), fault onset to traffic restored ${(onsetToRestored / 1000).toFixed(1)} s, ${faulty5xx} requests answered 5xx`,
    );
    return {
      scrape,
      warmUp: good.status.monitor?.warmUpSeconds ?? Number.NaN,
      healthy: good.outcome,
      paused,
      onsetToRestored,
      faulty5xx,
    };
  } finally {
    await traffic.stop().catch(() => undefined);
    await stack.stop();
  }
}

const rows: Row[] = [];
for (const scrape of INTERVALS) rows.push(await measure(scrape));
say('');
say(
  `bench:scrape-intervals on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString().slice(0, 16)}; 20 requests/s; monitor every 5 s, window 4 scrapes`,
);
say('scrape | warm-up | healthy release, no operator | faulty: onset to traffic restored | 5xx answered');
for (const row of rows) {
  say(
    `${`${row.scrape} s`.padStart(6)} | ${`${row.warmUp} s`.padStart(7)} | ${`${row.healthy}${row.paused ? ' (paused)' : ', never paused'}`.padEnd(28)} | ${`${(row.onsetToRestored / 1000).toFixed(1)} s`.padStart(33)} | ${row.faulty5xx}`,
  );
}
