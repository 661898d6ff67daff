/**
 * bench:service: latency (p50, p99) and throughput of POST /api/detections at fixed request rates
 * on loopback, for the detection API (TAK connected, so every request is committed to SQLite and
 * delivered before it is answered) and, in the same run and turn about, for two floors: a bare
 * Fastify handler (bare-handler.ts), and that handler plus the commit and the delivery the
 * contract requires, done by the service's own modules (durable-handler.ts). Each figure is the
 * median of RUNS runs. Everything runs on 127.0.0.1 and stops by itself.
 *
 * The load comes from vegeta (scripts/setup.sh --load-generator installs it into .tools/): it is
 * open-loop, sending one request every 1/rate seconds whatever the answers do, and it times each
 * request in nanoseconds. autocannon, used before, sends each connection's quota for the second
 * back to back and then waits for the next second, so its "1,000 requests/s" measured bursts at
 * full speed, in whole milliseconds.
 *
 *   npm run bench:service                 # rates 500,1000,2000 req/s, 10 s each, 3 runs
 *   RATES=1000 SECONDS=20 RUNS=5 npm run bench:service
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  freePort,
  postDetection,
  SEED_DETECTION,
  startDetectionApi,
  tempQueuePath,
} from '../test/helpers/detection-api-process.js';
import { waitUntilReady } from '../src/processes/processes.js';
import { median, percentile } from './statistics.js';

const RATES = (process.env['RATES'] ?? '500,1000,2000').split(',').map(Number);
const SECONDS = Number(process.env['SECONDS'] ?? 10);
const RUNS = Number(process.env['RUNS'] ?? 3);
/** Connections for the maximum-throughput row, where vegeta waits for each answer. */
const CONNECTIONS = 16;
const VEGETA = fileURLToPath(new URL('../.tools/vegeta', import.meta.url));
const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'bench-service-'));

interface Figures {
  p50: number;
  p99: number;
  rps: number;
  errors: number;
}

/**
 * One vegeta attack on POST /api/detections; `rate` 0 means as fast as CONNECTIONS connections
 * go. Latencies come from every request's own result (vegeta's CSV), in milliseconds.
 */
async function measure(url: string, rate: number, seconds: number): Promise<Figures> {
  const targets = join(work, 'targets.json');
  const results = join(work, 'results.bin');
  const body = Buffer.from(JSON.stringify(SEED_DETECTION)).toString('base64');
  writeFileSync(
    targets,
    JSON.stringify({
      method: 'POST',
      url: `${url}/api/detections`,
      header: { 'Content-Type': ['application/json'] },
      body,
    }) + '\n',
  );
  const pacing =
    rate > 0 ? [`-rate=${rate}/1s`] : ['-rate=0', `-max-workers=${CONNECTIONS}`, `-workers=${CONNECTIONS}`];
  await run(VEGETA, [
    'attack',
    '-format=json',
    `-targets=${targets}`,
    `-duration=${seconds}s`,
    `-output=${results}`,
    ...pacing,
  ]);
  const { stdout } = await run(VEGETA, ['encode', '--to=csv', results], { maxBuffer: 1 << 30 });
  const latencies: number[] = [];
  let errors = 0;
  let first = Infinity;
  let last = 0;
  // timestamp (ns since epoch), status code, latency (ns), ...
  for (const line of stdout.split('\n')) {
    if (!line) continue;
    const [timestamp, code, latency] = line.split(',', 3);
    const sentAt = Number(timestamp) / 1e6;
    const ms = Number(latency) / 1e6;
    first = Math.min(first, sentAt);
    last = Math.max(last, sentAt + ms);
    if (code === '201') latencies.push(ms);
    else errors++;
  }
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    rps: (latencies.length * 1000) / (last - first),
    errors,
  };
}

async function startHandler(file: string, takPort: number): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(file, import.meta.url))], {
    env: { ...process.env, PORT: String(port), TAK_PORT: String(takPort) },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady(file, child, `${url}/ready`);
  return { url, stop: () => child.kill('SIGKILL') };
}

if (!existsSync(VEGETA))
  throw new Error(`${VEGETA} is missing: run bash scripts/setup.sh --load-generator (npm run bench:service does)`);

const takPort = await freePort();
const tak = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('tak-sink.ts', import.meta.url))], {
  env: { ...process.env, PORT: String(takPort) },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let sinkOutput = '';
tak.stdout!.on('data', (chunk) => (sinkOutput += chunk));
while (!sinkOutput.includes('listening')) await new Promise((resolve) => setTimeout(resolve, 50));
const service = await startDetectionApi({
  TAK_ADDRESS: `127.0.0.1:${takPort}`,
  QUEUE_PATH: tempQueuePath(),
  LOG_LEVEL: 'warn',
});
const bare = await startHandler('bare-handler.ts', takPort);
const durable = await startHandler('durable-handler.ts', takPort);
const targets = [
  { name: 'detection-api', url: service.url },
  { name: 'durable floor', url: durable.url },
  { name: 'bare fastify', url: bare.url },
];
try {
  for (const target of targets.slice(0, 2)) {
    const check = await postDetection(target.url, SEED_DETECTION);
    if (check.body['status'] !== 'SYNCED')
      throw new Error(`${target.name} should deliver to TAK: ${JSON.stringify(check.body)}`);
  }
  // Warm them up (JIT, SQLite page cache) before anything is measured.
  for (const target of targets) await measure(target.url, 1000, 5);

  const version =
    (await run('go', ['version', '-m', VEGETA])).stdout.match(/mod\s+github.com\/tsenart\/vegeta\/v12\s+(\S+)/)?.[1] ??
    '?';
  console.log(
    `bench:service  ${new Date().toISOString()}  ${cpus().length} cores (${cpus()[0]?.model}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
  );
  console.log(
    `POST /api/detections, vegeta ${version} open-loop at fixed rates, ${SECONDS} s per run, median of ${RUNS} runs; latency in ms\n`,
  );
  console.log('rate/s | target        |   p50 |   p99 | achieved/s | errors | p99 vs bare');
  console.log('-------|---------------|-------|-------|------------|--------|------------');
  // 0: as fast as it goes, CONNECTIONS at a time: the maximum throughput.
  for (const rate of [...RATES, 0]) {
    const runs = targets.map(() => [] as Figures[]);
    for (let i = 0; i < RUNS; i++) {
      for (const [t, target] of targets.entries()) runs[t]!.push(await measure(target.url, rate, SECONDS));
    }
    const figures = runs.map((each) => ({
      p50: median(each.map((f) => f.p50)),
      p99: median(each.map((f) => f.p99)),
      rps: median(each.map((f) => f.rps)),
      errors: each.reduce((sum, f) => sum + f.errors, 0),
    }));
    const floor = figures.at(-1)!;
    const label = rate > 0 ? String(rate) : 'max';
    for (const [t, f] of figures.entries()) {
      const ratio = t < figures.length - 1 ? `${(f.p99 / floor.p99).toFixed(2)}x` : '';
      console.log(
        `${label.padStart(6)} | ${targets[t]!.name.padEnd(13)} | ${f.p50.toFixed(2).padStart(5)} | ${f.p99.toFixed(2).padStart(5)} | ${f.rps.toFixed(0).padStart(10)} | ${String(f.errors).padStart(6)} | ${ratio}`,
      );
    }
  }
  const stopped = new Promise((resolve) => tak.once('exit', resolve));
  tak.kill('SIGTERM');
  await stopped;
  console.log(`\ndelivered to the TAK listener: ${sinkOutput.replace('listening', '').trim()} CoT events`);
  console.log(`max: as fast as ${CONNECTIONS} connections go, each waiting for its answer`);
} finally {
  service.kill('SIGKILL');
  bare.stop();
  durable.stop();
  tak.kill('SIGKILL');
}
process.exit(0);
