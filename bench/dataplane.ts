/**
 * bench:dataplane: what traffic saw through real data planes on the real node, one row per entry
 * point (test/helpers/dataplane.ts): the Service through kube-proxy's rules (service-selector,
 * replica-ratio), Traefik's Gateway listener (gateway-api) and its NGINX Ingress entry (ingress).
 * vegeta sends RATE detections/s, open-loop, through the entry point during each case:
 * - a blue-green switch and the old slot's scale-down;
 * - ABORTS aborts, each 2 s into monitoring;
 * - a canary (5 → 25 → 50 → 100; replica-ratio: 33 → 50 → 100, what 2 stable replicas allow),
 *   each step held HOLD seconds;
 * - a version that crashes once live (v2.4.0-crashloop), rolled back on its restarts;
 * - a version that degrades once live (v2.4.0-degrades: half its API requests 500 from 40 s after
 *   start), rolled back on the error rate read from Prometheus, which scrapes the pods every 15 s.
 *
 * Columns: failed requests (not 2xx, not the faulty version's own 5xx) during the switch, the
 * aborts and the scale-downs; write → the first request the new slot answered (the router's object
 * read back every 100 ms) and → the last the old slot answered; of 20 requests on new connections
 * as the monitor starts (the switch verified), how many the new slot answered; abort accepted → the
 * router read back on the live slot, and → the last request the aborted slot answered (median of
 * the aborts); the canary's largest distance between the share served and the weight set; the crashing
 * version's failed requests; the degrading version's 5xx answers (and any other failure).
 *
 * As root, after `bash scripts/setup.sh --real-node --images --dataplane` (npm run bench:dataplane runs it):
 *   npm run bench:dataplane
 *   ABORTS=1 ROUTERS=gateway-api npm run bench:dataplane
 *   CASES=canary,degrades npm run bench:dataplane
 * PROBE=0 verifies each full route by the router's object only (traffic.probe left out), SAMPLES=N
 * lists N failed requests per case (5).
 *
 * After the crashing version's rollback, the load goes on for AFTERMATH seconds (by default the
 * kernel's SYN_SENT conntrack timeout, 120 s; 0 leaves it out), counted apart as the crash's
 * aftermath (`+N after`): the connections kube-proxy refused while the Service had no endpoint
 * left entries that refuse a client reusing their source port until they expire. Without it, the
 * next case (the next router's) counted them as its own.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import {
  abortDuringMonitoring,
  blueGreenSwitch,
  canary,
  degradedRollback,
  FAULTY,
  faultyRollback,
  ROUTERS,
  startDataPlane,
  whyFailed,
} from '../test/helpers/dataplane.js';
import type { DataPlane, Figures, Router } from '../test/helpers/dataplane.js';
import { median } from './statistics.js';

const RATE = Number(process.env['RATE'] ?? 500);
const ABORTS = Number(process.env['ABORTS'] ?? 5);
const HOLD = Number(process.env['HOLD'] ?? 15);
/** Which cases run: switch, aborts, canary, crash, degrades (all by default). */
const CASES = new Set(process.env['CASES']?.split(',') ?? ['switch', 'aborts', 'canary', 'crash', 'degrades']);
/** The kernel's SYN_SENT conntrack timeout: how long a refused connection's entry outlives it. */
const SYN_SENT_TIMEOUT = '/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_syn_sent';
const AFTERMATH = Number(
  process.env['AFTERMATH'] ?? (existsSync(SYN_SENT_TIMEOUT) ? readFileSync(SYN_SENT_TIMEOUT, 'utf8').trim() : 120),
);
const CHOSEN = (process.env['ROUTERS']?.split(',') as Router[] | undefined) ?? [...ROUTERS];
const NS = 'bench-dataplane';
const TASK_QUEUE = 'bench-dataplane';
const say = (line: string) => process.stdout.write(`${line}\n`);
/** The median of the values measured, undefined if none was. */
const medianOf = (values: (number | undefined)[]) => {
  const measured = values.filter((v): v is number => v !== undefined);
  return measured.length > 0 ? median(measured) : undefined;
};

/**
 * The containers the kubelet has restarted so far, but the crashing version's, with the last
 * liveness failure it reported: a live slot restarted under the traffic is a failure the routers
 * did not cause.
 */
async function restarts(dataPlane: DataPlane): Promise<string> {
  const pods = await dataPlane.core.listNamespacedPod({ namespace: dataPlane.namespace });
  const restarted = pods.items
    .filter((p) => !p.spec?.containers[0]?.image?.endsWith(`:${FAULTY}`))
    .flatMap((p) => (p.status?.containerStatuses ?? []).map((c) => ({ pod: p.metadata!.name!, c })))
    .filter(({ c }) => c.restartCount > 0)
    .map(({ pod, c }) => `${pod} ${c.restartCount}x (${c.lastState?.terminated?.reason ?? '?'})`);
  const events = await dataPlane.core.listNamespacedEvent({ namespace: dataPlane.namespace });
  const liveness = events.items.filter((e) => e.reason === 'Unhealthy' && /Liveness/.test(e.message ?? ''));
  return (
    `containers restarted (the crashing version's aside): ${restarted.length ? restarted.join(', ') : 'none'}; ` +
    `liveness failures reported: ${liveness.reduce((n, e) => n + (e.count ?? 1), 0)}` +
    (liveness.length ? ` (last: ${liveness.at(-1)!.message})` : '')
  );
}

/**
 * Each pod's longest event-loop stall in the last `seconds`, longest first, from the detection API's
 * own `nodejs_eventloop_lag_max_seconds` (each scrape reads the longest since the one before): a
 * pod whose process stalls holds every request sent to it meanwhile, whatever the router does.
 */
async function podStalls(dataPlane: DataPlane, seconds: number): Promise<string> {
  const query = `max by (pod) (max_over_time(nodejs_eventloop_lag_max_seconds[${Math.ceil(seconds)}s]))`;
  const answer = await fetch(`${dataPlane.prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`)
    .then(
      async (r) => (await r.json()) as { data?: { result?: { metric: { pod?: string }; value: [number, string] }[] } },
    )
    .catch(() => null);
  const stalls = (answer?.data?.result ?? [])
    .map((r) => ({ pod: r.metric.pod ?? '?', ms: Math.round(Number(r.value[1]) * 1000) }))
    .sort((a, b) => b.ms - a.ms);
  return stalls.length
    ? `pods' longest event-loop stall: ${stalls.map((s) => `${s.pod} ${s.ms} ms`).join(', ')}`
    : "pods' longest event-loop stall: not read (no series)";
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    say('bench:dataplane runs a real node, which needs root');
    return 1;
  }
  say(
    `bench:dataplane: ${RATE} requests/s (vegeta, open-loop), ${ABORTS} aborts and a canary held ${HOLD} s per step, per entry point, the crash's aftermath watched ${AFTERMATH} s; ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, ${new Date().toISOString()}`,
  );
  const dataPlane = await startDataPlane(NS, TASK_QUEUE);
  const rows: string[][] = [];
  try {
    for (const router of CHOSEN) {
      const entry = dataPlane.entryPoints[router];
      const routerStarted = Date.now();
      const cases: Figures[] = [];
      const record = (figures: Figures) => {
        cases.push(figures);
        say(
          `  ${router} ${figures.scenario}: ${figures.outcome}, ${figures.sent} sent, ${JSON.stringify(figures.tally)}`,
        );
        if (figures.samples.length > 0) say(`    failed: ${whyFailed(figures)}`);
      };
      if (CASES.has('switch')) record(await blueGreenSwitch(dataPlane, entry, RATE));
      if (CASES.has('aborts'))
        for (let i = 0; i < ABORTS; i++) record(await abortDuringMonitoring(dataPlane, entry, RATE));
      if (CASES.has('canary') && router !== 'service-selector') record(await canary(dataPlane, entry, RATE, HOLD));
      if (CASES.has('crash')) record(await faultyRollback(dataPlane, entry, RATE, { aftermathSeconds: AFTERMATH }));
      if (CASES.has('degrades')) record(await degradedRollback(dataPlane, entry, RATE));

      const switched = cases.find((c) => c.scenario === 'blue-green switch');
      const aborts = cases.filter((c) => c.scenario === 'abort during monitoring');
      const canaried = cases.find((c) => c.scenario === 'canary');
      const faulty = cases.find((c) => c.scenario === 'faulty version rolled back');
      const degraded = cases.find((c) => c.scenario === 'degrading version rolled back');
      const sum = (values: (number | undefined)[]) => values.reduce<number>((a, v) => a + (v ?? 0), 0);
      const ms = (value: number | undefined) => (value === undefined ? '-' : `${Math.round(value)}`);
      const deviation = canaried?.shares?.length
        ? Math.max(...canaried.shares.map((s) => Math.abs(s.served - s.weight))).toFixed(2)
        : '-';
      rows.push([
        router,
        switched ? String(sum([switched.failed.switch])) : '-',
        aborts.length ? String(sum(aborts.map((a) => a.failed.abort))) : '-',
        switched || canaried ? String(sum([switched?.failed.scaleDown, canaried?.failed.scaleDown])) : '-',
        ms(switched?.propagationMs),
        ms(switched?.lastOldMs),
        switched?.newConnectionsAtMonitoring
          ? `${switched.newConnectionsAtMonitoring.toNew}/${switched.newConnectionsAtMonitoring.sent}`
          : '-',
        ms(medianOf(aborts.map((a) => a.abortReadBackMs))),
        ms(medianOf(aborts.map((a) => a.abortTrafficMs))),
        deviation,
        faulty ? `${faulty.blastRadius}${faulty.aftermath === undefined ? '' : ` (+${faulty.aftermath} after)`}` : '-',
        degraded ? `${degraded.blastRadius} (${degraded.failed.total})` : '-',
        cases.map((c) => c.outcome).join('; '),
      ]);
      say(`  ${router} ${await restarts(dataPlane)}`);
      say(`  ${router} ${await podStalls(dataPlane, (Date.now() - routerStarted) / 1000)}`);
      if (canaried?.shares)
        say(
          `  ${router} canary shares: ${canaried.shares.map((s) => `${s.weight} % set, ${s.served.toFixed(2)} % served of ${s.requests}`).join('; ')}`,
        );
    }
  } finally {
    await dataPlane.stop();
  }
  const titles = [
    'entry point',
    'failed: switch',
    'aborts',
    'scale-down',
    'write→new ms',
    'write→last old ms',
    'new conns at monitor',
    'abort→read back ms',
    'abort→last aborted ms',
    'canary Δ pp',
    'crash: failed',
    'degrades: its 5xx (other failures)',
    'outcomes',
  ];
  const widths = titles.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join(' | ');
  say('');
  say(line(titles));
  for (const row of rows) say(line(row));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench:dataplane: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
