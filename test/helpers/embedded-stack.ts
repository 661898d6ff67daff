/** Deployments of the detection API on the embedded stack, for the end-to-end tests and drills. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DETECTION_API_TARGET, EmbeddedStack, freeStackPorts } from '../../src/demo/stack.js';
import type { StackOptions, StackPorts } from '../../src/demo/stack.js';
import { TrafficGenerator } from '../../src/demo/traffic.js';
import type { TrafficScore } from '../../src/demo/traffic.js';
import type { DeploymentStatus } from '../../src/shared/deployment-status.js';
import type { Slot } from '../../src/shared/slots.js';
import { TRAFFIC_ROUTERS } from '../../src/shared/traffic.js';
import { testSpec } from './deployment-harness.js';
import { eventually } from './eventually.js';
import { trafficThrough } from '../../src/activities/traffic.js';

export const DETECTION_API_IMAGE = (tag: string) => `registry.internal/detection-api:${tag}`;

/** Starts a deployment of `tag` with two replicas and a short monitor window. */
export function deployTag(
  stack: EmbeddedStack,
  tag: string,
  {
    monitorSeconds,
    intervalSeconds,
    scaleDownDelaySeconds,
  }: { monitorSeconds: number; intervalSeconds: number; scaleDownDelaySeconds: number },
) {
  return stack.deployments!.start(
    testSpec({
      image: DETECTION_API_IMAGE(tag),
      replicas: 2,
      readinessTimeoutSeconds: 60,
      monitor: { durationSeconds: monitorSeconds, intervalSeconds, window: '5s' },
      scaleDownDelaySeconds,
    }),
  );
}

/** Waits until the running deployment of the detection API is in `phase`. */
export async function untilPhase(stack: EmbeddedStack, phase: string): Promise<DeploymentStatus> {
  let status: DeploymentStatus | null = null;
  await eventually(
    async () => {
      status = await stack.deployments!.status('default', 'detection-api').catch(() => null);
      return status?.phase === phase;
    },
    `phase ${phase}`,
    60_000,
  );
  return status!;
}

/**
 * A deployment of `tag` as a team scraping every `scrapeSeconds` would write it: ticks every 5 s, a
 * rate window of 4 scrapes, and a window long enough for 30 s of judged ticks after the warm-up
 * the monitor derives (2 scrapes and a tick). Nothing else is tuned to the interval.
 */
export function deployTagAtScrapeInterval(stack: EmbeddedStack, tag: string, scrapeSeconds: number) {
  return stack.deployments!.start(
    testSpec({
      image: DETECTION_API_IMAGE(tag),
      replicas: 2,
      readinessTimeoutSeconds: 60,
      monitor: { durationSeconds: 2 * scrapeSeconds + 5 + 30, intervalSeconds: 5, window: `${4 * scrapeSeconds}s` },
      scaleDownDelaySeconds: 1,
    }),
  );
}

export interface StackUnderTraffic {
  stack: EmbeddedStack;
  traffic: TrafficGenerator;
}

/**
 * An embedded stack in a temporary directory (on `ports`, or free ones), the detection API live on
 * blue and discovered by Prometheus, and `rate` requests/s through its router.
 */
export async function startStackUnderTraffic(
  options: Omit<StackOptions, 'stateDir' | 'ports'> & { ports?: StackPorts },
  rate = 20,
): Promise<StackUnderTraffic> {
  const stack = new EmbeddedStack({
    stateDir: mkdtempSync(join(tmpdir(), 'embedded-stack-')),
    ports: options.ports ?? (await freeStackPorts()),
    replicaEnv: { SHUTDOWN_DRAIN_MS: '100' },
    ...options,
  });
  await stack.start();
  await stack.waitForInitialSlot();
  const traffic = new TrafficGenerator(stack.local!.routerUrl, rate);
  traffic.start();
  return { stack, traffic };
}

/**
 * Points every router's objects at `slot` (the Service's selector, the HTTPRoute's weights, the
 * Ingress's backend), as a team moving to another router would: each router reads the live slot
 * from its own objects, so tests that change routers keep them in agreement.
 */
export async function routeAllTo(stack: EmbeddedStack, slot: Slot): Promise<void> {
  for (const router of TRAFFIC_ROUTERS) {
    await trafficThrough(stack.local!.platform.routers).switchTraffic({
      target: { ...DETECTION_API_TARGET, traffic: { ...DETECTION_API_TARGET.traffic!, router } },
      slot,
    });
  }
}

/** Stops the traffic and the stack; fails if any request went unanswered meanwhile. */
export async function stopStackUnderTraffic(running: Partial<StackUnderTraffic>): Promise<void> {
  const score = await running.traffic?.stop();
  await running.stack?.stop();
  if (score) assert.equal(score.connectionFailures, 0, unanswered(score, running.stack!));
}

/**
 * What went unanswered, how long the generator itself stalled (its own timer times requests out),
 * and what the local platform warned of meanwhile: its routers' pods silent for 5 s, its own
 * event loop's stalls, its pods' failed probes. Together they say who held the requests.
 */
export const unanswered = (score: TrafficScore, stack: EmbeddedStack) =>
  `requests went unanswered: ${score.failureSamples.join('; ')} ` +
  `(the generator's own process stalled up to ${score.generatorStallMs} ms); ${warned(stack)}`;

/** The first 5xx answers (who gave them and what they said), and what the local platform warned of meanwhile. */
export const answered5xx = (score: TrafficScore, stack: EmbeddedStack) =>
  `no request answered 5xx: ${score.serverErrorSamples.join('; ')}; ${warned(stack)}`;

/** The local platform's log lines at warning level or above, the last 40. */
const warned = (stack: EmbeddedStack) =>
  `the local platform warned: ${
    (stack.local?.output() ?? '')
      .split('\n')
      .filter((line) => /"level":(4|5|6)0\b/.test(line))
      .slice(-40)
      .join('\n') || 'nothing'
  }`;
