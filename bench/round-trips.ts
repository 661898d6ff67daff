/**
 * bench:round-trips: what one deployment asks of the Temporal server, read from the histories of
 * real deployments on the embedded stack (dev server, worker process, local platform, Prometheus):
 * history events, workflow tasks, activities (remote, and local ones run inside a workflow task)
 * and timers. Per deployment, with a monitor of SHORT ticks and of LONG; per tick, the difference
 * between them, divided by the ticks between them. Blue-green, and a canary (one step held,
 * then promotion). Every figure is the median of RUNS runs; the counts vary only with how the
 * activities of a tick happen to complete (together, or each in its own workflow task).
 *
 * Then, RUNS times, the worker is SIGKILLed during a blue-green monitor window of LONG ticks and
 * started again at once: the time from the kill until the window's ticks go on (the heartbeat
 * the status shows counts past the tick seen at the kill); each deployment must still succeed.
 *
 *   npm run bench:round-trips
 *   RUNS=5 SHORT=3 LONG=30 npm run bench:round-trips
 */
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { deploymentResult } from '../src/client/deployment-client.js';
import { EmbeddedStack, freeStackPorts } from '../src/demo/stack.js';
import { TrafficGenerator } from '../src/demo/traffic.js';
import type { DeploymentSpecInput } from '../src/deployment-spec/deployment-spec.js';
import { testSpec } from '../test/helpers/deployment-harness.js';
import { DETECTION_API_IMAGE } from '../test/helpers/embedded-stack.js';
import { eventually } from '../test/helpers/eventually.js';
import { roundTrips } from './histories.js';
import type { RoundTrips } from './histories.js';
import { median } from './statistics.js';

const RUNS = Number(process.env['RUNS'] ?? 3);
const SHORT = Number(process.env['SHORT'] ?? 3);
const LONG = Number(process.env['LONG'] ?? 30);
const INTERVAL = 1;
/**
 * A gated SLO that always has data and always passes: every tick is conclusive and Successful,
 * so the counts are the protocol's, not Prometheus's timing (the stability check still runs).
 */
const SLOS = [{ name: 'always-met', query: 'vector(0)', comparison: '<=' as const, threshold: 1 }];
const say = (line: string) => process.stdout.write(`${line}\n`);

const blueGreen = (tag: string, ticks: number) =>
  testSpec({
    image: DETECTION_API_IMAGE(tag),
    replicas: 2,
    readinessTimeoutSeconds: 60,
    monitor: {
      durationSeconds: ticks * INTERVAL,
      intervalSeconds: INTERVAL,
      window: '5s',
      initialDelaySeconds: 0,
      slos: SLOS,
    },
    scaleDownDelaySeconds: 0,
  });
const canary = (tag: string, ticks: number): ReturnType<typeof testSpec> => {
  const input: Partial<DeploymentSpecInput> = {
    image: DETECTION_API_IMAGE(tag),
    replicas: 2,
    readinessTimeoutSeconds: 60,
    strategy: 'canary',
    traffic: { router: 'replica-ratio' },
    monitor: {
      durationSeconds: ticks * INTERVAL,
      intervalSeconds: INTERVAL,
      window: '5s',
      initialDelaySeconds: 0,
      slos: SLOS,
    },
    canary: {
      steps: [
        { weight: 50, holdSeconds: ticks * INTERVAL },
        { weight: 100, holdSeconds: INTERVAL },
      ],
      minRequests: 1,
      maxHoldExtensionSeconds: 0,
    },
    scaleDownDelaySeconds: 0,
  };
  return testSpec(input);
};

const stack = new EmbeddedStack({
  stateDir: mkdtempSync(join(tmpdir(), 'bench-round-trips-')),
  ports: await freeStackPorts(),
  replicaEnv: { LOG_LEVEL: 'error' },
});
await stack.start();
const traffic = new TrafficGenerator(stack.local!.routerUrl, 50);
const rows: string[] = [];
try {
  await stack.waitForInitialSlot();
  traffic.start();
  let version = 0;
  const deploy = async (spec: ReturnType<typeof testSpec>): Promise<RoundTrips> => {
    const handle = await stack.deployments!.start(spec);
    const result = await deploymentResult(handle);
    if (result.outcome !== 'Succeeded')
      throw new Error(`${spec.strategy} ${spec.version}: ${result.outcome}: ${result.message}`);
    return roundTrips((await handle.fetchHistory()).events ?? []);
  };
  for (const [strategy, make] of [
    ['blue-green', blueGreen],
    ['canary', canary],
  ] as const) {
    const short: RoundTrips[] = [];
    const long: RoundTrips[] = [];
    for (let run = 1; run <= RUNS; run++) {
      short.push(await deploy(make(`v2.2.${++version}`, SHORT)));
      long.push(await deploy(make(`v2.2.${++version}`, LONG)));
      say(
        `${strategy} run ${run}: ${SHORT} ticks ${JSON.stringify(short.at(-1))}; ${LONG} ticks ${JSON.stringify(long.at(-1))}`,
      );
    }
    const field = (runs: RoundTrips[], key: keyof RoundTrips) => median(runs.map((r) => r[key]));
    // A blue-green window and a canary's hold are each one activity, whatever their ticks.
    const ticks = LONG - SHORT;
    const perTick = (key: keyof RoundTrips) => ((field(long, key) - field(short, key)) / ticks).toFixed(1);
    rows.push(
      `${strategy.padEnd(10)} | per deployment (${SHORT} ticks): ${field(short, 'events')} events, ${field(short, 'workflowTasks')} workflow tasks, ` +
        `${field(short, 'activities')} activities, ${field(short, 'localActivities')} local activities, ${field(short, 'timers')} timers` +
        ` | (${LONG} ticks): ${field(long, 'events')} events, ${field(long, 'workflowTasks')} workflow tasks` +
        ` | per tick: ${perTick('events')} events, ${perTick('workflowTasks')} workflow tasks, ${perTick('activities')} activities`,
    );
  }
  const resumed: number[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const spec = blueGreen(`v2.2.${++version}`, LONG);
    const handle = await stack.deployments!.start(spec);
    const tick = async () =>
      (await stack.deployments!.status(spec.namespace, spec.app).catch(() => null))?.monitor?.tick ?? 0;
    await eventually(async () => (await tick()) >= 3, 'tick 3', 120_000);
    const seen = await tick();
    await stack.killWorker();
    const killed = performance.now();
    await stack.startWorker();
    await eventually(async () => (await tick()) > seen, `a tick after ${seen}`, 120_000);
    resumed.push(performance.now() - killed);
    const result = await deploymentResult(handle);
    if (result.outcome !== 'Succeeded') throw new Error(`after the SIGKILL: ${result.outcome}: ${result.message}`);
    say(
      `SIGKILL run ${run}: tick ${seen} seen at the kill, the window counted on ${(resumed.at(-1)! / 1000).toFixed(1)} s later; ${result.outcome}`,
    );
  }
  say('');
  say(
    `bench:round-trips on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString().slice(0, 10)}; medians of ${RUNS} runs; ticks every ${INTERVAL} s`,
  );
  for (const row of rows) say(row);
  say(
    `worker SIGKILLed during a ${LONG}-tick window and started again at once: ticks went on after median ${(median(resumed) / 1000).toFixed(1)} s, max ${(Math.max(...resumed) / 1000).toFixed(1)} s over ${RUNS} kills`,
  );
} finally {
  await traffic.stop().catch(() => undefined);
  await stack.stop();
}
