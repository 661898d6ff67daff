/**
 * `npm run demo`: the whole procedure on one machine. Starts the embedded stack (Temporal dev
 * server with its Web UI, the local platform with detection-api v2.1.0 live on blue, Prometheus,
 * the worker), sends a steady stream of detections through the switched Service, deploys a good
 * version that goes live and then a faulty one that the monitor rolls back, and prints what the
 * traffic saw. `--keep` leaves everything up for the Web UI and for trying `abort` by hand.
 * Exit code 0 when both deployments ended as they should and no request went unanswered.
 */
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Command } from 'commander';
import { ProgressPrinter } from '../src/client/render.js';
import { ROOT } from '../src/embedded/local-platform-process.js';
import { DEMO_PORTS, EmbeddedStack } from '../src/embedded/stack.js';
import type { StackPorts } from '../src/embedded/stack.js';
import { TrafficGenerator } from '../src/embedded/traffic.js';
import type { TrafficReport } from '../src/embedded/traffic.js';
import type { DeploymentResult } from '../src/shared/deployment-status.js';
import { parseDeploymentSpec } from '../src/spec/deployment-spec.js';

const program = new Command('demo')
  .description('a good deployment and a rolled-back one, on the embedded default')
  .option('--keep', 'leave everything running at the end (Ctrl+C stops it)')
  .option('--rate <n>', 'detections per second through the router', '50')
  .option('--scrape-interval <seconds>', 'how often Prometheus scrapes the replicas (teams run 15 s to 1 min)', '15')
  .option('--monitor-seconds <n>', 'monitor window of each deployment (default: the warm-up the scrape interval needs, plus 30 s)')
  .parse();
const options = program.opts<{ keep?: boolean; rate: string; scrapeInterval: string; monitorSeconds?: string }>();
const scrapeSeconds = Number(options.scrapeInterval);

const say = (line = '') => process.stdout.write(`${line}\n`);
const IMAGE = 'registry.internal/detection-api';

async function assertPortsFree(ports: StackPorts): Promise<void> {
  for (const [name, port] of Object.entries(ports)) {
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (!free) throw new Error(`port ${port} (${name}) is in use on 127.0.0.1: stop what holds it (a demo left running with --keep?) and run again`);
  }
}

async function deploy(stack: EmbeddedStack, version: string, what: string): Promise<DeploymentResult> {
  const spec = parseDeploymentSpec({
    app: 'detection-api',
    image: `${IMAGE}:${version}`,
    replicas: 2,
    readinessTimeoutSeconds: 60,
    // As a team scraping every 15 s would write it: a rate window of 4 scrapes; the monitor waits
    // out the warm-up (2 scrapes and a tick) that it reads from Prometheus, then judges 30 s.
    monitor: { durationSeconds: Number(options.monitorSeconds ?? 2 * scrapeSeconds + 5 + 30), intervalSeconds: 5, window: `${4 * scrapeSeconds}s` },
    scaleDownDelaySeconds: 5,
  });
  say();
  say(`━━ deploying ${version}: ${what}`);
  const handle = await stack.deployments!.start(spec);
  say(`   Temporal UI: ${stack.uiUrl}/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}/${handle.firstExecutionRunId}/history`);
  const printer = new ProgressPrinter((line) => say(`   ${line}`), process.stdout.isTTY ? process.stdout : null);
  const result = await stack.deployments!.follow('default', 'detection-api', (status) => printer.update(status));
  printer.stopBar();
  say(`   => ${result.outcome}${result.reason ? ` (${result.reason})` : ''}: ${result.message}`);
  return result;
}

function trafficLines(report: TrafficReport, faultyErrors: number): string[] {
  const served = Object.entries(report.servedBy).map(([deployment, n]) => `${deployment} ${n}`).join(', ');
  return [
    `requests sent through detection-api-service: ${report.sent} in ${report.seconds.toFixed(0)} s`,
    `  answered 2xx:                            ${report.ok}`,
    `  connection-level failures (target 0):     ${report.connectionFailures}${report.failureSamples.length ? `  e.g. ${report.failureSamples[0]}` : ''}`,
    `  5xx from the faulty version before its rollback: ${faultyErrors}`,
    `  other 5xx:                               ${report.serverErrors - faultyErrors}`,
    `  served by: ${served}`,
    `  latency p50 ${report.p50Ms.toFixed(1)} ms, p99 ${report.p99Ms.toFixed(1)} ms`,
  ];
}

async function main(): Promise<number> {
  await assertPortsFree(DEMO_PORTS);
  const stack = new EmbeddedStack({
    stateDir: join(ROOT, '.state/demo'),
    ports: DEMO_PORTS,
    scrapeIntervalSeconds: scrapeSeconds,
    log: (line) => say(`   ${line}`),
    // The history is kept (the Web UI shows earlier demos); the local platform starts afresh.
    endLeftoverDeployments: 'npm run demo started the local platform afresh: a deployment left running by an earlier demo cannot go on against it',
  });
  say('starting the embedded default:');
  let stopping: Promise<void> | null = null;
  const stop = () => (stopping ??= stack.stop());
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(143)));
  try {
    await stack.start();
    await stack.waitForInitialSlot();
    say(`   detection-api v2.1.0 live on blue (2 replicas) behind ${stack.local!.routerUrl}`);
    const traffic = new TrafficGenerator(stack.local!.routerUrl, Number(options.rate));
    traffic.start();
    say(`   sending ${options.rate} detections/s through the router`);

    const good = await deploy(stack, 'v2.2.0', 'a good version; it should go live');
    const beforeFaulty = traffic.snapshot();
    const faulty = await deploy(stack, 'v2.3.0', 'passes its smoke tests, then fails a quarter of its requests; the monitor should roll it back');
    const afterFaulty = traffic.snapshot();
    const report = await traffic.stop();
    const faultyErrors = afterFaulty.serverErrors - beforeFaulty.serverErrors;

    say();
    say('━━ summary');
    say(`v2.2.0: ${good.outcome} (live slot ${good.liveSlot})`);
    say(`v2.3.0: ${faulty.outcome}${faulty.reason ? ` on ${faulty.reason}` : ''}${faulty.failedCheck ? ` (${faulty.failedCheck})` : ''} (live slot ${faulty.liveSlot})`);
    for (const line of trafficLines(report, faultyErrors)) say(line);
    const ok = good.outcome === 'Succeeded' && faulty.outcome === 'RolledBack' && report.connectionFailures === 0;
    say(ok ? 'demo passed: the good version went live, the faulty one was rolled back, no request went unanswered' : 'demo FAILED: see above');

    if (options.keep) {
      say();
      say(`everything is still running (Ctrl+C stops it). Temporal UI: ${stack.uiUrl}`);
      say('try a deployment and abort it from another terminal:');
      say(`  npx bluegreen deploy -f examples/detection-api/bluegreen.yaml --image ${IMAGE}:v2.2.1 --replicas 2 --wait`);
      say('  npx bluegreen abort detection-api --reason "trying abort"');
      say(`  .venv/bin/temporal workflow signal --workflow-id bluegreen/default/detection-api --name abort --input '{"reason":"trying abort"}'`);
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
