/**
 * bench:rollback: what the orchestration itself costs, read from the workflow histories of real
 * deployments on the embedded stack (steady traffic through the router, free loopback ports).
 *
 * - Orchestration overhead of a good deployment: its wall time minus the waits it was configured
 *   or forced to make (waiting for readiness, and every timer: the monitor's intervals and the
 *   scale-down delay). Target under 2 s.
 * - SLO breach to traffic restored, for a faulty version: from the completion of the monitor tick
 *   that saw the breach to the completion of the rollback's verifyTraffic (selector back on the
 *   old slot, every endpoint in it). Target under 1 s.
 *
 * Each figure is printed per run and as the median of RUNS runs.
 *
 *   npm run bench:rollback
 *   RUNS=5 npm run bench:rollback
 */
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStack, freeStackPorts } from '../src/embedded/stack.js';
import { TrafficGenerator } from '../src/embedded/traffic.js';
import { parseDeploymentSpec } from '../src/deployment-spec/deployment-spec.js';
import { breachToRestored, overhead } from './histories.js';
import { median } from './statistics.js';
import { deploymentResult } from '../src/client/deployment-client.js';

const RUNS = Number(process.env['RUNS'] ?? 3);
const say = (line: string) => process.stdout.write(`${line}\n`);

const spec = (tag: string) =>
  parseDeploymentSpec({
    app: 'detection-api',
    image: `registry.internal/detection-api:${tag}`,
    replicas: 2,
    readinessTimeoutSeconds: 60,
    monitor: { durationSeconds: 20, intervalSeconds: 2, window: '5s' },
    scaleDownDelaySeconds: 2,
  });

async function main(): Promise<void> {
  const stack = new EmbeddedStack({ stateDir: mkdtempSync(join(tmpdir(), 'bench-rollback-')), ports: await freeStackPorts(), replicaEnv: { LOG_LEVEL: 'error' } });
  await stack.start();
  const traffic = new TrafficGenerator(stack.local!.routerUrl, 50);
  try {
    await stack.waitForInitialSlot();
    traffic.start();
    const overheads: number[] = [];
    const breaches: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const good = await stack.deployments!.start(spec(`v2.2.${run}`));
      const result = await deploymentResult(good);
      if (result.outcome !== 'Succeeded') throw new Error(`run ${run}: the good version did not go live: ${result.message}`);
      const figures = overhead((await good.fetchHistory()).events ?? []);
      overheads.push(figures.overhead);
      say(`run ${run}: good deployment ${(figures.wall / 1000).toFixed(2)} s wall, ${(figures.waits / 1000).toFixed(2)} s of waits, overhead ${figures.overhead} ms`);

      const faulty = await stack.deployments!.start(spec('v2.3.0'));
      const rolled = await deploymentResult(faulty);
      if (rolled.outcome !== 'RolledBack') throw new Error(`run ${run}: the faulty version was not rolled back: ${rolled.message}`);
      const restored = breachToRestored((await faulty.fetchHistory()).events ?? []);
      breaches.push(restored);
      say(`run ${run}: faulty deployment rolled back (${rolled.failedCheck}), breach seen to traffic restored ${restored} ms`);
    }
    const score = await traffic.stop();
    say('');
    say(`bench:rollback on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString().slice(0, 10)}, ${RUNS} runs`);
    say(`orchestration overhead of a deployment: median ${median(overheads)} ms (target < 2000 ms)`);
    say(`SLO breach seen to traffic restored: median ${median(breaches)} ms (target < 1000 ms)`);
    say(`traffic throughout: ${score.sent} requests, ${score.connectionFailures} connection failures, ${score.serverErrors} 5xx`);
  } finally {
    await traffic.stop().catch(() => undefined);
    await stack.stop();
  }
}

await main();
