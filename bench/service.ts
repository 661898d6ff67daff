/**
 * bench:service: latency (p50, p99) and throughput of POST /api/detections at fixed request rates
 * on loopback, measured with autocannon, for the detection API (TAK connected, so every request
 * is committed to SQLite and delivered) and, in the same run, for a bare Fastify handler as the
 * floor. Each figure is the median of RUNS runs. Everything runs on 127.0.0.1 and stops by itself.
 *
 *   npm run bench:service                 # rates 500,1000,2000 req/s, 5 s each, 3 runs
 *   RATES=1000 SECONDS=10 RUNS=5 npm run bench:service
 */
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { freePort, postDetection, SEED_DETECTION, startDetectionApi, tempQueuePath } from '../test/helpers/detection-api-process.js';
import { waitUntilReady } from '../src/local-platform/processes.js';
import { median } from './statistics.js';

const RATES = (process.env['RATES'] ?? '500,1000,2000').split(',').map(Number);
const SECONDS = Number(process.env['SECONDS'] ?? 5);
const RUNS = Number(process.env['RUNS'] ?? 3);
const CONNECTIONS = 16;

interface Figures {
  p50: number;
  p99: number;
  rps: number;
  errors: number;
}


async function measure(url: string, rate: number, seconds: number): Promise<Figures> {
  const result = await autocannon({
    url: `${url}/api/detections`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(SEED_DETECTION),
    connections: CONNECTIONS,
    overallRate: rate,
    duration: seconds,
  });
  return {
    p50: result.latency.p50,
    p99: result.latency.p99,
    rps: result.requests.average,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

async function startBare(): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('bare-handler.ts', import.meta.url))], {
    env: { ...process.env, PORT: String(port) },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady('the bare handler', child, `${url}/ready`);
  return { url, stop: () => child.kill('SIGKILL') };
}

const takPort = await freePort();
const tak = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('tak-sink.ts', import.meta.url))], {
  env: { ...process.env, PORT: String(takPort) },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let sinkOutput = '';
tak.stdout!.on('data', (chunk) => (sinkOutput += chunk));
while (!sinkOutput.includes('listening')) await new Promise((resolve) => setTimeout(resolve, 50));
const service = await startDetectionApi({ TAK_ADDRESS: `127.0.0.1:${takPort}`, QUEUE_PATH: tempQueuePath(), LOG_LEVEL: 'warn' });
const bare = await startBare();
try {
  const check = await postDetection(service.url, SEED_DETECTION);
  if (check.body['status'] !== 'SYNCED') throw new Error(`the service should deliver to TAK: ${JSON.stringify(check.body)}`);
  // Warm both up (JIT, SQLite page cache) before anything is measured.
  await measure(service.url, 1000, 5);
  await measure(bare.url, 1000, 5);

  console.log(`bench:service  ${new Date().toISOString()}  ${cpus().length} cores (${cpus()[0]?.model}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  console.log(`POST /api/detections, ${CONNECTIONS} connections, ${SECONDS} s per run, median of ${RUNS} runs; latency in ms\n`);
  console.log('rate/s | target       |  p50 |  p99 | achieved/s | errors | p99 vs bare');
  console.log('-------|--------------|------|------|------------|--------|------------');
  for (const rate of RATES) {
    const runs: Record<'service' | 'bare', Figures[]> = { service: [], bare: [] };
    for (let run = 0; run < RUNS; run++) {
      runs.service.push(await measure(service.url, rate, SECONDS));
      runs.bare.push(await measure(bare.url, rate, SECONDS));
    }
    const summary = (figures: Figures[]) => ({
      p50: median(figures.map((f) => f.p50)),
      p99: median(figures.map((f) => f.p99)),
      rps: median(figures.map((f) => f.rps)),
      errors: figures.reduce((sum, f) => sum + f.errors, 0),
    });
    const s = summary(runs.service);
    const b = summary(runs.bare);
    const row = (name: string, f: Figures, ratio: string) =>
      console.log(`${String(rate).padStart(6)} | ${name.padEnd(12)} | ${f.p50.toFixed(1).padStart(4)} | ${f.p99.toFixed(1).padStart(4)} | ${f.rps.toFixed(0).padStart(10)} | ${String(f.errors).padStart(6)} | ${ratio}`);
    row('detection-api', s, b.p99 > 0 ? `${(s.p99 / b.p99).toFixed(2)}x` : `+${(s.p99 - b.p99).toFixed(1)} ms`);
    row('bare fastify', b, '');
  }
  const stopped = new Promise((resolve) => tak.once('exit', resolve));
  tak.kill('SIGTERM');
  await stopped;
  console.log(`\ndelivered to the TAK listener: ${sinkOutput.replace('listening', '').trim()} CoT events`);
} finally {
  service.kill('SIGKILL');
  bare.stop();
  tak.kill('SIGKILL');
}
process.exit(0);
