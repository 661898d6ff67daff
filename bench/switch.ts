/**
 * bench:switch: zero downtime across switches and rollbacks on the embedded default. A steady
 * load (RATE requests/s, at least MIN_REQUESTS in all) goes through the local platform's router
 * while one deployment goes live and then ABORTS deployments are aborted during monitoring. Prints
 * the requests, connection-level failures, 5xx, p50 and p99 latency, and the time from each abort
 * signal to traffic restored (selector back on the old slot and every endpoint in it), with the
 * median. Everything runs on 127.0.0.1 on free ports and stops by itself.
 *
 *   npm run bench:switch
 *   RATE=300 ABORTS=5 MIN_REQUESTS=30000 npm run bench:switch
 */
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { DETECTION_API_TARGET, EmbeddedStack, freeStackPorts } from '../src/demo/stack.js';
import { TrafficGenerator } from '../src/demo/traffic.js';
import type { Slot } from '../src/shared/slots.js';
import { parseDeploymentSpec } from '../src/deployment-spec/deployment-spec.js';
import { untilMonitoring } from './deployments.js';
import { median } from './statistics.js';
import { deploymentResult } from '../src/client/deployment-client.js';

const RATE = Number(process.env['RATE'] ?? 250);
const ABORTS = Number(process.env['ABORTS'] ?? 5);
const MIN_REQUESTS = Number(process.env['MIN_REQUESTS'] ?? 20_000);

const say = (line: string) => process.stdout.write(`${line}\n`);

const spec = (tag: string, monitorSeconds: number) =>
  parseDeploymentSpec({
    app: 'detection-api',
    image: `registry.internal/detection-api:${tag}`,
    replicas: 2,
    readinessTimeoutSeconds: 60,
    monitor: { durationSeconds: monitorSeconds, intervalSeconds: 2, window: '5s' },
    scaleDownDelaySeconds: 1,
  });

async function main(): Promise<void> {
  const stack = new EmbeddedStack({
    stateDir: mkdtempSync(join(tmpdir(), 'bench-switch-')),
    ports: await freeStackPorts(),
    replicaEnv: { LOG_LEVEL: 'error' },
  });
  await stack.start();
  const traffic = new TrafficGenerator(stack.local!.routerUrl, RATE, 128);
  try {
    await stack.waitForInitialSlot();
    traffic.start();
    const client = stack.deployments!;
    const platform = stack.local!.platform;

    const live = await client.start(spec('v2.2.0', 10));
    const result = await deploymentResult(live);
    say(`deployment v2.2.0: ${result.outcome} (${result.fromSlot} -> ${result.toSlot})`);
    if (result.outcome !== 'Succeeded') throw new Error(`the first deployment did not go live: ${result.message}`);

    const restoredMs: number[] = [];
    for (let i = 1; i <= ABORTS; i++) {
      const before = await platform.describe(DETECTION_API_TARGET);
      const oldSlot: Slot = before.activeSlot;
      const handle = await client.start(spec(`v2.2.${i}`, 120));
      await untilMonitoring(client, 'default', 'detection-api');
      const signalled = performance.now();
      await client
        .abort('default', 'detection-api', { reason: `bench:switch abort ${i}`, by: 'bench' })
        .catch(async (error: unknown) => {
          const ended = await deploymentResult(handle);
          throw new Error(
            `abort ${i} refused (${(error as Error).message}); the deployment ended ${ended.outcome}: ${ended.message}`,
            { cause: error },
          );
        });
      // Restored: the Service selects the old slot again and every endpoint is in it.
      for (;;) {
        const response = await fetch(
          `${stack.local!.controlUrl}/api/v1/namespaces/default/services/detection-api-service`,
        );
        const service = (await response.json()) as {
          selector: Record<string, string>;
          endpoints: { labels: Record<string, string> }[];
        };
        if (
          service.selector['slot'] === oldSlot &&
          service.endpoints.length > 0 &&
          service.endpoints.every((e) => e.labels['slot'] === oldSlot)
        )
          break;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      restoredMs.push(performance.now() - signalled);
      const aborted = await deploymentResult(handle);
      say(
        `abort ${i}: traffic back on ${oldSlot} ${restoredMs.at(-1)!.toFixed(0)} ms after the signal; deployment ${aborted.outcome} (${aborted.reason})`,
      );
    }

    while (traffic.snapshot().sent < MIN_REQUESTS) await new Promise((resolve) => setTimeout(resolve, 250));
    const report = await traffic.stop();
    say('');
    say(
      `bench:switch on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString().slice(0, 10)}`,
    );
    say(
      `load: ${RATE} requests/s target, ${(report.sent / report.seconds).toFixed(0)} achieved, through detection-api-service`,
    );
    say(
      `requests ${report.sent}, 2xx ${report.ok}, 5xx ${report.serverErrors}, other ${report.otherAnswers}, connection failures ${report.connectionFailures}`,
    );
    if (report.failureSamples.length) say(`  failures: ${report.failureSamples.join('; ')}`);
    say(`latency p50 ${report.p50Ms.toFixed(1)} ms, p99 ${report.p99Ms.toFixed(1)} ms`);
    say(
      `served by: ${Object.entries(report.servedBy)
        .map(([d, n]) => `${d} ${n}`)
        .join(', ')}`,
    );
    say(
      `abort signal to traffic restored: median ${median(restoredMs).toFixed(0)} ms, max ${Math.max(...restoredMs).toFixed(0)} ms over ${restoredMs.length} aborts (target < 1000 ms)`,
    );
    process.exitCode = report.connectionFailures === 0 ? 0 : 1;
  } finally {
    await traffic.stop().catch(() => undefined);
    await stack.stop();
  }
}

await main();
