/**
 * bench:canary: the canary strategy on the embedded stack (dev server, worker process, local
 * platform, Prometheus every 1 s), with a steady stream of detections through the local Gateway
 * (the HTTPRoute's listener).
 *
 * 1. Abort, for each splitting router (replica-ratio, gateway-api, ingress): `ABORTS` canaries
 *    aborted at their first step (33 %: one canary replica beside two); from the abort (Update
 *    accepted, in the history) to weight 0 verified, read back from the router's objects.
 * 2. Shares: a good version through the HTTPRoute, steps 5, 25, 50 and 100 %, each held long
 *    enough for at least 2,000 requests; per step, the share the route's own counts say the
 *    canary served, beside the weight set and the share Prometheus saw.
 * 3. Blast radius: a faulty version (a quarter of its answers 500, from 8 s after its pods start)
 *    as a canary at 5 % and as a blue-green deployment (v2.3.0-rebuild, the same fault under
 *    another tag), at the same rate and with the same monitor:
 *    the requests it answered before traffic left it, and how many of them were errors.
 *    Both through the HTTPRoute: blue-green is its 0/100 switch.
 * And over all of it: connection-level failures (no HTTP answer at all).
 *
 *   npm run bench:canary
 *   RATE=300 HOLD_SECONDS=10 ABORTS=9 npm run bench:canary
 */
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { deploymentResult } from '../src/client/deployment-client.js';
import type { DeploymentClient } from '../src/client/deployment-client.js';
import { followCanary } from '../src/demo/canary-shares.js';
import { EmbeddedStack, freeStackPorts } from '../src/demo/stack.js';
import { TrafficGenerator } from '../src/demo/traffic.js';
import { TrafficRouter } from '../src/shared/traffic.js';
import type { DeploymentSpecInput } from '../src/deployment-spec/deployment-spec.js';
import { testSpec } from '../test/helpers/deployment-harness.js';
import { DETECTION_API_IMAGE, untilPhase } from '../test/helpers/embedded-stack.js';
import { abortToRestored } from './histories.js';
import { median } from './statistics.js';

const RATE = Number(process.env['RATE'] ?? 200);
const HOLD_SECONDS = Number(process.env['HOLD_SECONDS'] ?? Math.ceil(2400 / RATE));
const ABORTS = Number(process.env['ABORTS'] ?? 5);
const ROUTERS = [TrafficRouter.ReplicaRatio, TrafficRouter.GatewayApi, TrafficRouter.Ingress];
const say = (line: string) => process.stdout.write(`${line}\n`);

const stack = new EmbeddedStack({
  stateDir: mkdtempSync(join(tmpdir(), 'bench-canary-')),
  ports: await freeStackPorts(),
  replicaEnv: { LOG_LEVEL: 'error', SHUTDOWN_DRAIN_MS: '100' },
});
await stack.start();
await stack.waitForInitialSlot();
const traffic = new TrafficGenerator(stack.local!.entryUrls[TrafficRouter.GatewayApi], RATE);
traffic.start();
const client: DeploymentClient = stack.deployments!;

function spec(tag: string, overrides: Partial<DeploymentSpecInput>) {
  return testSpec({
    image: DETECTION_API_IMAGE(tag),
    replicas: 2,
    readinessTimeoutSeconds: 60,
    monitor: { durationSeconds: 20, intervalSeconds: 2, window: '5s' },
    scaleDownDelaySeconds: 1,
    traffic: { router: TrafficRouter.GatewayApi },
    ...overrides,
  });
}

function canary(tag: string, weights: number[], holdSeconds: number, router: TrafficRouter = TrafficRouter.GatewayApi) {
  return spec(tag, {
    strategy: 'canary',
    traffic: { router },
    canary: { steps: weights.map((weight) => ({ weight, holdSeconds })), minRequests: 5, maxHoldExtensionSeconds: 20 },
  });
}

try {
  // 1. Abort at the first step, through each router: from the abort to weight 0 verified. First,
  //    while every router's objects still agree that blue is live (the runs below move the route).
  const aborts = new Map<TrafficRouter, number[]>();
  for (const router of ROUTERS) {
    aborts.set(router, []);
    for (let run = 1; run <= ABORTS; run++) {
      const aborted = await client.start(canary(`v2.2.${run}`, [33, 100], 120, router));
      await untilPhase(stack, 'Monitoring');
      await client.abort('default', 'detection-api', { reason: `bench run ${run}`, by: 'bench:canary' });
      const result = await deploymentResult(aborted);
      if (result.reason !== 'Aborted') throw new Error(`abort run ${run} through ${router}: ${result.message}`);
      aborts.get(router)!.push(abortToRestored((await aborted.fetchHistory()).events ?? []));
      say(
        `abort ${run}/${ABORTS} through ${router}: weight 0 verified ${aborts.get(router)!.at(-1)} ms after the abort`,
      );
    }
  }

  // 2. The share each step served, by the route's counts during the step's hold.
  await client.start(canary('v2.2.0', [5, 25, 50, 100], HOLD_SECONDS));
  const { result: good, steps: holds } = await followCanary(stack, undefined, { router: TrafficRouter.GatewayApi });
  if (good.outcome !== 'Succeeded') throw new Error(`the good version did not go live: ${good.message}`);
  say(
    `shares: ${good.outcome}, ${good.status.canary?.completed.length} steps held ${HOLD_SECONDS} s at ${RATE} requests/s`,
  );

  // 3. The blast radius of a faulty version: canary at 5 %, and blue-green, on the same fault.
  const blast = async (label: string, input: ReturnType<typeof spec>) => {
    const before = await stack.servedBy(TrafficRouter.GatewayApi);
    const errorsBefore = traffic.snapshot().serverErrorsBy;
    const run = await client.start(input);
    const result = await deploymentResult(run);
    if (result.outcome !== 'RolledBack')
      throw new Error(`${label}: the faulty version was not rolled back: ${result.message}`);
    const slot = `detection-api-${result.toSlot}`;
    const after = await stack.servedBy(TrafficRouter.GatewayApi);
    const answered = (after[slot] ?? 0) - (before[slot] ?? 0);
    const errors = (traffic.snapshot().serverErrorsBy[slot] ?? 0) - (errorsBefore[slot] ?? 0);
    say(
      `${label}: ${result.reason} (${result.failedCheck}); the faulty slot answered ${answered} requests, ${errors} of them 5xx`,
    );
    return { label, answered, errors, reason: `${result.reason} (${result.failedCheck})` };
  };
  const radius = [
    await blast('canary at 5 %', canary('v2.3.0', [5, 100], 60)),
    // The same fault under another tag: v2.3.0's series from the canary are still in the window.
    await blast(
      'blue-green',
      spec('v2.3.0-rebuild', { monitor: { durationSeconds: 60, intervalSeconds: 2, window: '5s' } }),
    ),
  ];

  const score = await traffic.stop();
  say('');
  say(
    `bench:canary on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString().slice(0, 16)}; ${RATE} requests/s through the gateway (httproute detection-api); Prometheus every 1 s`,
  );
  say('weight set | served by the canary (router counts) | requests in the hold | share Prometheus saw (last tick)');
  for (const hold of holds) {
    const share = (100 * hold.canary) / Math.max(1, hold.total);
    const prometheus = hold.observedShare;
    say(
      `${`${hold.weight} %`.padStart(10)} | ${`${share.toFixed(2)} % (${(share - hold.weight >= 0 ? '+' : '') + (share - hold.weight).toFixed(2)} pp)`.padStart(36)} | ${String(hold.total).padStart(20)} | ${prometheus == null ? 'no data' : `${prometheus.toFixed(1)} %`}`,
    );
  }
  for (const [router, times] of aborts) {
    say(
      `abort -> weight 0 verified, ${router.padEnd(13)}: median ${median(times)} ms, min ${Math.min(...times)} ms, max ${Math.max(...times)} ms over ${times.length} aborts`,
    );
  }
  for (const row of radius)
    say(
      `blast radius, ${row.label.padEnd(13)}: ${String(row.answered).padStart(5)} requests answered by the faulty version, ${String(row.errors).padStart(4)} of them 5xx (${row.reason})`,
    );
  say(
    `connection-level failures: ${score.connectionFailures} of ${score.sent} requests${score.failureSamples.length ? ` (${score.failureSamples.join('; ')})` : ''}`,
  );
} finally {
  await traffic.stop().catch(() => undefined);
  await stack.stop();
}
