/**
 * `npm run demo`: the whole procedure on one machine. Starts the embedded stack (Temporal dev
 * server with its Web UI, the local platform with detection-api v2.1.0 live on blue, Prometheus,
 * the worker), sends a steady stream of detections through the switched Service, deploys a good
 * version that goes live and then a faulty one that the monitor rolls back, and prints what the
 * traffic saw. Each deployment uses the service's own spec, examples/detection-api/bluegreen.yaml.
 *
 * `--strategy canary`: every deployment through the HTTPRoute (traffic enters at the local Gateway's
 * listener): the good version as a canary (5, 25, 50, 100 % by weight), each step's set weight
 * beside the share the route served; then the faulty version as a canary, rolled back at 5 %,
 * beside the same faulty version deployed blue-green (a 0/100 switch of the route): the requests
 * each let it answer.
 *
 * `--platform kubernetes` (as root): the two deployments on a real node, through kube-proxy or
 * Traefik (scripts/demo-kubernetes.ts).
 *
 * `--keep` leaves everything up for the Web UI and for trying `abort` by hand. Exit code 0 when
 * every deployment ended as it should and no request went unanswered.
 */
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Command } from 'commander';
import { ProgressPrinter } from '../src/client/render.js';
import { followCanary } from '../src/demo/canary-shares.js';
import type { StepServed } from '../src/demo/canary-shares.js';
import { ROOT } from '../src/demo/simulator-process.js';
import { DEMO_PORTS, EmbeddedStack } from '../src/demo/stack.js';
import type { StackPorts } from '../src/demo/stack.js';
import { TrafficGenerator } from '../src/demo/traffic.js';
import type { TrafficScore } from '../src/demo/traffic.js';
import type { DeploymentResult } from '../src/shared/deployment-status.js';
import { loadSpec } from '../src/client/spec-source.js';
import { formatShare, TrafficRouter } from '../src/shared/traffic.js';

const program = new Command('demo')
  .description('a good deployment and a rolled-back one, on the embedded default')
  .option('--keep', 'leave everything running at the end, the traffic flowing (Ctrl+C stops it)')
  .option(
    '--platform <platform>',
    'local (the embedded default), or kubernetes: a real node on this machine, as root (scripts/demo-kubernetes.ts)',
    'local',
  )
  .option(
    '--router <router>',
    'with --platform kubernetes: service-selector, gateway-api or ingress',
    'service-selector',
  )
  .option('--rate <n>', 'detections per second through the router', '50')
  .option('--scrape-interval <seconds>', 'how often Prometheus scrapes the replicas (teams run 15 s to 1 min)', '15')
  .option(
    '--monitor-seconds <n>',
    'monitor window of each deployment (default: the warm-up the scrape interval needs, plus 30 s)',
  )
  .option(
    '--strategy <strategy>',
    'blueGreen, or canary: the good version step by step, and the faulty one stopped at 5 % beside blue-green',
    'blueGreen',
  )
  .parse();
const options = program.opts<{
  keep?: boolean;
  platform: string;
  router: string;
  rate: string;
  scrapeInterval: string;
  monitorSeconds?: string;
  strategy: string;
}>();
if (options.strategy !== 'blueGreen' && options.strategy !== 'canary') {
  process.stderr.write(`demo: --strategy must be blueGreen or canary, not '${options.strategy}'\n`);
  process.exit(2);
}
const scrapeSeconds = Number(options.scrapeInterval);
/** The blue-green demo switches the Service's selector; the canary demo goes through the HTTPRoute (the local Gateway's listener). */
const ROUTER: TrafficRouter = options.strategy === 'canary' ? TrafficRouter.GatewayApi : TrafficRouter.ServiceSelector;
const ENTRY = ROUTER === TrafficRouter.GatewayApi ? 'the gateway (httproute detection-api)' : 'detection-api-service';

const say = (line = '') => process.stdout.write(`${line}\n`);
const IMAGE = 'registry.internal/detection-api';

async function assertPortsFree(ports: StackPorts): Promise<void> {
  for (const [name, port] of Object.entries(ports)) {
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (!free)
      throw new Error(
        `port ${port} (${name}) is in use on 127.0.0.1: stop what holds it (a demo left running with --keep?) and run again`,
      );
  }
}

async function deploy(
  stack: EmbeddedStack,
  version: string,
  what: string,
  strategy: 'blueGreen' | 'canary',
): Promise<{ result: DeploymentResult; steps: StepServed[] }> {
  const monitorSeconds = Number(options.monitorSeconds ?? 2 * scrapeSeconds + 5 + 30);
  // The service's own spec, as its pipeline would pass it, with the demo's sizes on top: a rate
  // window of 4 scrapes; the monitor waits out the warm-up (2 scrapes and a tick) that it reads
  // from Prometheus, then judges 30 s. A canary step is held 2 scrapes and 10 s.
  const set = [
    'readinessTimeoutSeconds=60',
    `monitor.durationSeconds=${monitorSeconds}`,
    'monitor.intervalSeconds=5',
    `monitor.window=${4 * scrapeSeconds}s`,
    'scaleDownDelaySeconds=5',
  ];
  // The canary demo routes every deployment through the HTTPRoute: a canary by weights, blue-green as a 0/100 switch.
  if (ROUTER === TrafficRouter.GatewayApi) set.push('traffic.router=gateway-api');
  if (strategy === 'canary') {
    const hold = 2 * scrapeSeconds + 10;
    set.push(
      'strategy=canary',
      `canary.steps=[${[5, 25, 50, 100].map((weight) => `{weight: ${weight}, holdSeconds: ${hold}}`).join(', ')}]`,
    );
  }
  const spec = loadSpec({
    file: join(ROOT, 'examples/detection-api/bluegreen.yaml'),
    image: `${IMAGE}:${version}`,
    replicas: '2',
    set,
  });
  say();
  say(`━━ deploying ${version}${strategy === 'canary' ? ' as a canary' : ''}: ${what}`);
  const handle = await stack.deployments!.start(spec);
  say(
    `   Temporal UI: ${stack.uiUrl}/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}/${handle.firstExecutionRunId}/history`,
  );
  const printer = new ProgressPrinter((line) => say(`   ${line}`), process.stdout.isTTY ? process.stdout : null);
  const { result, steps } = await followCanary(stack, (status) => printer.update(status), { router: ROUTER });
  printer.stopBar();
  say(`   => ${result.outcome}${result.reason ? ` (${result.reason})` : ''}: ${result.message}`);
  return { result, steps };
}

/** What the faulty slot answered during a deployment, by the router's counts and the traffic's 5xx. */
async function blastRadius(
  stack: EmbeddedStack,
  traffic: TrafficGenerator,
  run: () => Promise<DeploymentResult>,
): Promise<{ result: DeploymentResult; answered: number; errors: number }> {
  const before = await stack.servedBy(ROUTER);
  const errorsBefore = traffic.snapshot().serverErrorsBy;
  const result = await run();
  const slot = `detection-api-${result.toSlot}`;
  const after = await stack.servedBy(ROUTER);
  return {
    result,
    answered: (after[slot] ?? 0) - (before[slot] ?? 0),
    errors: (traffic.snapshot().serverErrorsBy[slot] ?? 0) - (errorsBefore[slot] ?? 0),
  };
}

function trafficLines(report: TrafficScore, faultyErrors: number): string[] {
  const served = Object.entries(report.servedBy)
    .map(([deployment, n]) => `${deployment} ${n}`)
    .join(', ');
  return [
    `requests sent through ${ENTRY}: ${report.sent} in ${report.seconds.toFixed(0)} s`,
    `  answered 2xx:                            ${report.ok}`,
    `  connection-level failures (target 0):     ${report.connectionFailures}${report.failureSamples.length ? `  e.g. ${report.failureSamples[0]}` : ''}`,
    ...(report.resentAfterIdleClose > 0
      ? [`  sent again, their kept-alive connection closed as idle: ${report.resentAfterIdleClose}`]
      : []),
    `  5xx from the faulty version before its rollback: ${faultyErrors}`,
    `  other 5xx:                               ${report.serverErrors - faultyErrors}`,
    `  served by: ${served}`,
    `  latency p50 ${report.p50Ms.toFixed(1)} ms, p99 ${report.p99Ms.toFixed(1)} ms`,
  ];
}

async function main(): Promise<number> {
  if (options.platform === 'kubernetes') {
    const { runKubernetesDemo } = await import('./demo-kubernetes.js');
    return await runKubernetesDemo({ router: options.router, rate: Number(options.rate), keep: Boolean(options.keep) });
  }
  if (options.platform !== 'local') {
    process.stderr.write(`demo: --platform must be local or kubernetes, not '${options.platform}'\n`);
    return 2;
  }
  await assertPortsFree(DEMO_PORTS);
  const stack = new EmbeddedStack({
    stateDir: join(ROOT, '.state/demo'),
    ports: DEMO_PORTS,
    scrapeIntervalSeconds: scrapeSeconds,
    log: (line) => say(`   ${line}`),
    // The history is kept (the Web UI shows earlier demos); the local platform starts afresh.
    endLeftoverDeployments:
      'npm run demo started the local platform afresh: a deployment left running by an earlier demo cannot go on against it',
  });
  say('starting the embedded default:');
  let stopping: Promise<void> | null = null;
  const stop = () => (stopping ??= stack.stop());
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(143)));
  try {
    await stack.start();
    await stack.waitForInitialSlot();
    const entry = stack.local!.entryUrls[ROUTER];
    say(`   detection-api v2.1.0 live on blue (2 replicas) behind ${ENTRY} at ${entry}`);
    const traffic = new TrafficGenerator(entry, Number(options.rate));
    traffic.start();
    say(`   sending ${options.rate} detections/s through ${ENTRY}`);

    const canary = options.strategy === 'canary';
    const good = await deploy(
      stack,
      'v2.2.0',
      canary ? 'a good version, step by step; it should go live' : 'a good version; it should go live',
      canary ? 'canary' : 'blueGreen',
    );
    const beforeFaulty = traffic.snapshot();
    const fault = 'passes its smoke tests, then fails a quarter of its requests; the monitor should roll it back';
    const faulty = await blastRadius(
      stack,
      traffic,
      async () => (await deploy(stack, 'v2.3.0', fault, canary ? 'canary' : 'blueGreen')).result,
    );
    const compared = canary
      ? await blastRadius(
          stack,
          traffic,
          async () =>
            (await deploy(stack, 'v2.3.0-rebuild', `the same fault, blue-green: ${fault}`, 'blueGreen')).result,
        )
      : null;
    const afterFaulty = traffic.snapshot();
    // With --keep the traffic goes on (a deployment tried by hand is judged on it); the summary is
    // what it saw so far.
    const report = options.keep ? traffic.snapshot() : await traffic.stop();
    const faultyErrors = afterFaulty.serverErrors - beforeFaulty.serverErrors;

    say();
    say('━━ summary');
    say(`v2.2.0: ${good.result.outcome} (live slot ${good.result.liveSlot})`);
    if (canary) {
      say('  step | weight set | share the canary served (router) | requests in the hold | share Prometheus saw');
      for (const step of good.steps) {
        const share = (100 * step.canary) / Math.max(1, step.total);
        say(
          `  ${`${step.step}`.padStart(4)} | ${`${step.weight} %`.padStart(10)} | ${`${formatShare(share)} %`.padStart(32)} | ${String(step.total).padStart(20)} | ${step.observedShare === null ? 'no data' : `${formatShare(step.observedShare)} %`}`,
        );
      }
    }
    const outcome = (r: DeploymentResult) =>
      `${r.outcome}${r.reason ? ` on ${r.reason}` : ''}${r.failedCheck ? ` (${r.failedCheck})` : ''}`;
    say(
      `v2.3.0${canary ? ' as a canary' : ''}: ${outcome(faulty.result)} (live slot ${faulty.result.liveSlot}); it answered ${faulty.answered} requests, ${faulty.errors} of them 5xx`,
    );
    if (compared) {
      say(
        `v2.3.0-rebuild blue-green: ${outcome(compared.result)} (live slot ${compared.result.liveSlot}); it answered ${compared.answered} requests, ${compared.errors} of them 5xx`,
      );
      say(
        `  the canary at ${faulty.result.status.canary?.stepWeight ?? '?'} % let the faulty version answer ${faulty.answered} requests against blue-green's ${compared.answered}`,
      );
    }
    for (const line of trafficLines(report, faultyErrors)) say(line);
    const rolledBack =
      faulty.result.outcome === 'RolledBack' && (compared === null || compared.result.outcome === 'RolledBack');
    const ok = good.result.outcome === 'Succeeded' && rolledBack && report.connectionFailures === 0;
    say(
      ok
        ? 'demo passed: the good version went live, the faulty one was rolled back, no request went unanswered'
        : 'demo FAILED: see above',
    );

    if (options.keep) {
      say();
      say(`everything is still running (Ctrl+C stops it). Temporal UI: ${stack.uiUrl}`);
      say(`   the traffic goes on: ${options.rate} detections/s through ${ENTRY} at ${entry}, until Ctrl+C`);
      say('try a deployment and abort it from another terminal:');
      say(
        `  npx bluegreen deploy -f examples/detection-api/bluegreen.yaml --image ${IMAGE}:v2.2.1 --replicas 2 --wait`,
      );
      say('  npx bluegreen abort detection-api --reason "trying abort"');
      say(
        `  .venv/bin/temporal workflow signal --workflow-id bluegreen/default/detection-api --name abort --input '{"reason":"trying abort"}'`,
      );
      await new Promise(() => undefined);
    }
    return ok ? 0 : 1;
  } finally {
    if (!options.keep) await stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo: ${(error as Error).message}\n`);
    process.exit(1);
  },
);
