/**
 * bench:rollback: what the orchestration itself costs, read from the workflow histories of real
 * deployments on the embedded stack (steady traffic through the router, free loopback ports).
 *
 * - Orchestration overhead of a good deployment: its wall time minus the waits it was configured
 *   or forced to make (waiting for readiness, and every timer: the monitor's intervals and the
 *   scale-down delay). Target under 2 s.
 * - SLO breach to traffic restored, for a faulty version: from the completion of the monitor tick
 *   that saw the breach to the completion of the rollback's verifyTraffic (selector back on the
 *   old slot, every endpoint in it). Target under 1 s. Measured with the evidence capture on and
 *   off (rollback.captureEvidence): the capture runs after the restore, so it must not delay it;
 *   the rollback's whole time and the evidence's size are printed beside.
 *
 * Each figure is printed per run and as the median of RUNS runs.
 *
 *   npm run bench:rollback
 *   RUNS=5 npm run bench:rollback
 */
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStack, freeStackPorts } from '../src/demo/stack.js';
import { TrafficGenerator } from '../src/demo/traffic.js';
import { parseDeploymentSpec } from '../src/deployment-spec/deployment-spec.js';
import { breachToRestored, overhead } from './histories.js';
import { median } from './statistics.js';
import { deploymentResult } from '../src/client/deployment-client.js';

const RUNS = Number(process.env['RUNS'] ?? 3);
const say = (line: string) => process.stdout.write(`${line}\n`);

const spec = (tag: string, captureEvidence = true) =>
  parseDeploymentSpec({
    app: 'detection-api',
    image: `registry.internal/detection-api:${tag}`,
    replicas: 2,
    readinessTimeoutSeconds: 60,
    monitor: { durationSeconds: 20, intervalSeconds: 2, window: '5s' },
    scaleDownDelaySeconds: 2,
    rollback: { captureEvidence },
  });

async function main(): Promise<void> {
  const stack = new EmbeddedStack({
    stateDir: mkdtempSync(join(tmpdir(), 'bench-rollback-')),
    ports: await freeStackPorts(),
    replicaEnv: { LOG_LEVEL: 'error' },
  });
  await stack.start();
  const traffic = new TrafficGenerator(stack.local!.routerUrl, 50);
  try {
    await stack.waitForInitialSlot();
    traffic.start();
    const overheads: number[] = [];
    const breaches: Record<'on' | 'off', number[]> = { on: [], off: [] };
    const rollbacks: Record<'on' | 'off', number[]> = { on: [], off: [] };
    const sizes: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const good = await stack.deployments!.start(spec(`v2.2.${run}`));
      const result = await deploymentResult(good);
      if (result.outcome !== 'Succeeded')
        throw new Error(`run ${run}: the good version did not go live: ${result.message}`);
      const figures = overhead((await good.fetchHistory()).events ?? []);
      overheads.push(figures.overhead);
      say(
        `run ${run}: good deployment ${(figures.wall / 1000).toFixed(2)} s wall, ${(figures.waits / 1000).toFixed(2)} s of waits, overhead ${figures.overhead} ms`,
      );

      for (const capture of ['on', 'off'] as const) {
        const faulty = await stack.deployments!.start(spec('v2.3.0', capture === 'on'));
        const rolled = await deploymentResult(faulty);
        if (rolled.outcome !== 'RolledBack')
          throw new Error(`run ${run}: the faulty version was not rolled back: ${rolled.message}`);
        const restored = breachToRestored((await faulty.fetchHistory()).events ?? []);
        breaches[capture].push(restored);
        rollbacks[capture].push(Math.round((rolled.rollbackSeconds ?? 0) * 1000));
        if (rolled.status.evidence) sizes.push(rolled.status.evidence.bytes);
        say(
          `run ${run}: faulty deployment rolled back (${rolled.failedCheck}), evidence ${capture}: breach seen to traffic restored ${restored} ms, ` +
            `whole rollback ${Math.round((rolled.rollbackSeconds ?? 0) * 1000)} ms${rolled.status.evidence ? `, evidence ${rolled.status.evidence.bytes} bytes` : ''}`,
        );
      }
    }
    const score = await traffic.stop();
    say('');
    say(
      `bench:rollback on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString().slice(0, 10)}, ${RUNS} runs`,
    );
    say(`orchestration overhead of a deployment: median ${median(overheads)} ms (target < 2000 ms)`);
    say(
      `SLO breach seen to traffic restored: median ${median(breaches.on)} ms with the evidence capture, ${median(breaches.off)} ms without (target < 1000 ms)`,
    );
    say(
      `whole rollback (restore, evidence, idle slot scaled back): median ${median(rollbacks.on)} ms with the capture, ${median(rollbacks.off)} ms without`,
    );
    say(`evidence kept in the history: median ${median(sizes)} bytes (bound ${512 * 1024})`);
    say(
      `traffic throughout: ${score.sent} requests, ${score.connectionFailures} connection failures, ${score.serverErrors} 5xx`,
    );
  } finally {
    await traffic.stop().catch(() => undefined);
    await stack.stop();
  }
}

await main();
