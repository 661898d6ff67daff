/**
 * Whole deployments on the embedded default: the real Temporal dev server, the worker as its own
 * process on the `local` platform, the local platform's routers and detection-API replicas, and a
 * real Prometheus scraping them, with a steady stream of detections through the switched Service.
 * A good version goes live without a connection-level failure; a regression that passes smoke is
 * rolled back by the monitor; an abort during monitoring restores the old slot; a worker killed
 * mid-deployment is replaced and the deployment finishes, the slots untouched meanwhile; undo puts
 * the version before the last success back under traffic. A version
 * that degrades once live makes the next deployment's preflight refuse, naming the SLO Prometheus
 * sees breached, until the fix is let through with allowUnstableActive. A fix pushed under the tag
 * that just failed, and redeployed at once to the same slot, is judged on its own run's series.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LiveState } from '../../src/activities/contract.js';
import { EmbeddedStack, freeStackPorts } from '../../src/demo/stack.js';
import { TrafficGenerator } from '../../src/demo/traffic.js';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import { PrometheusSloSource } from '../../src/checks/prometheus-slo-source.js';
import { PrometheusConfigSchema } from '../../src/config/worker-settings.js';
import { parseEnv } from '../../src/config/env.js';
import { DETECTION_API_SLOS, REFERENCE_TARGET, testSpec } from '../helpers/deployment-harness.js';
import { eventually } from '../helpers/eventually.js';
import { DETECTION_API_IMAGE, deployTag, unanswered, untilPhase } from '../helpers/embedded-stack.js';
import { deploymentResult } from '../../src/client/deployment-client.js';
import { renderTemplate } from '../../src/shared/template.js';

const IMAGE = DETECTION_API_IMAGE;
const BLUEGREEN = fileURLToPath(new URL('../../bin/bluegreen.js', import.meta.url));

describe('deployments on the embedded default (dev server, local platform, Prometheus, worker process)', () => {
  let stack: EmbeddedStack;
  let traffic: TrafficGenerator;
  // The team's chat webhook and its incident tool, both real HTTP receivers.
  let receiver: Server;
  const received: { path: string; body: Record<string, unknown> }[] = [];

  before(async () => {
    receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        received.push({ path: request.url ?? '', body: JSON.parse(body) as Record<string, unknown> });
        response.writeHead(202).end('{"status":"success"}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    stack = new EmbeddedStack({
      stateDir: mkdtempSync(join(tmpdir(), 'embedded-stack-')),
      ports: await freeStackPorts(),
      taskQueue: 'bluegreen-embedded-e2e',
      replicaEnv: { SHUTDOWN_DRAIN_MS: '100' },
      workerEnv: {
        BLUEGREEN_WEBHOOK_URL: `${receiverUrl}/hooks/deployments`,
        BLUEGREEN_PAGERDUTY_ROUTING_KEY: 'e2e-routing-key',
        BLUEGREEN_PAGERDUTY_URL: `${receiverUrl}/v2/enqueue`,
      },
    });
    await stack.start();
    await stack.waitForInitialSlot();
  });

  after(async () => {
    await traffic?.stop();
    await stack?.stop();
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  const describeLive = (): Promise<LiveState> => stack.local!.platform.describe(REFERENCE_TARGET);

  const start = (tag: string, monitorSeconds = 12) =>
    deployTag(stack, tag, { monitorSeconds, intervalSeconds: 2, scaleDownDelaySeconds: 1 });
  const until = (phase: string) => untilPhase(stack, phase);

  it('plans a release on the local platform with nothing changed, and names an image no entry runs', async () => {
    const before = await describeLive();
    const spec = (image: string) =>
      testSpec({ image, replicas: 2, monitor: { durationSeconds: 12, intervalSeconds: 2, window: '5s' } });
    const good = await stack.deployments!.plan(spec(IMAGE('v2.2.0')));
    assert.equal(good.plan?.proceeds, true, JSON.stringify(good.plan?.checks ?? good.error));
    assert.deepEqual(
      good.plan!.checks.filter((c) => c.kind === 'write').map((c) => [c.name, c.verdict]),
      [
        ['deploy v2.2.0 to detection-api-green x2', 'ok'],
        ['switch detection-api-service to green', 'ok'],
        ['scale detection-api-blue to 0 at the cleanup', 'ok'],
      ],
    );
    assert.match(
      good.plan!.checks.find((c) => c.kind === 'smoke')!.detail,
      /^http:\/\/detection-api-green\.default\.svc:8000 resolves \(127\.0\.0\.1 is 127\.0\.0\.1, through http:\/\/127\.0\.0\.1:[0-9]+\)$/,
    );
    const unknown = await stack.deployments!.plan(spec('registry.internal/detection-apj:v2.2.0'));
    assert.equal(unknown.plan?.proceeds, false);
    const refused = unknown.plan!.checks.filter((c) => c.verdict === 'fail');
    assert.deepEqual(
      refused.map((c) => c.name),
      ['deploy v2.2.0 to detection-api-green x2'],
    );
    assert.match(refused[0]!.detail, /no entry in 'images' runs registry\.internal\/detection-apj/);
    assert.deepEqual(await describeLive(), before, 'the plans changed nothing');
  });

  it('puts a good version live under steady traffic with no connection-level failure', async () => {
    traffic = new TrafficGenerator(stack.local!.routerUrl, 40);
    traffic.start();
    const before = traffic.snapshot();
    const handle = await start('v2.2.0');
    const result: DeploymentResult = await deploymentResult(handle);
    const score = traffic.snapshot();
    assert.equal(result.outcome, 'Succeeded', result.message);
    assert.deepEqual([result.fromSlot, result.toSlot], ['blue', 'green']);
    const live = await describeLive();
    assert.equal(live.activeSlot, 'green');
    assert.deepEqual([live.slots.green.image, live.slots.green.readyReplicas], [IMAGE('v2.2.0'), 2]);
    assert.deepEqual(
      [live.slots.blue.replicas, live.slots.blue.readyReplicas],
      [0, 0],
      'the old slot is scaled to zero',
    );
    assert.equal(score.connectionFailures, 0, unanswered(score, stack));
    assert.equal(score.serverErrors - before.serverErrors, 0);
    assert.ok(
      (score.servedBy['detection-api-blue'] ?? 0) > 0 && (score.servedBy['detection-api-green'] ?? 0) > 0,
      JSON.stringify(score.servedBy),
    );
    assert.equal(result.status.smoke?.passed, true);
    assert.ok(result.status.monitor!.successful >= 1, JSON.stringify(result.status.monitor));
  });

  it('rolls back a regression that passed its smoke tests when the monitor sees its error rate, and raises the incident in both formats', async () => {
    received.length = 0;
    const handle = await start('v2.3.0', 20);
    const result = await deploymentResult(handle);
    assert.equal(result.outcome, 'RolledBack', result.message);
    assert.equal(result.reason, 'SloBreach');
    assert.equal(result.failedCheck, 'error-rate');
    // The incident, as the chat webhook and the incident tool received it.
    await eventually(async () => received.length === 2, 'both incident messages');
    const slack = received.find((r) => r.path === '/hooks/deployments')!.body as {
      text: string;
      links: { href: string }[];
      incident: { breach: { query: string; from: string; to: string } };
    };
    const pagerDuty = received.find((r) => r.path === '/v2/enqueue')!.body as {
      event_action: string;
      dedup_key: string;
      payload: { severity: string; class: string };
    };
    assert.match(slack.text, /^:rewind: default\/detection-api v2\.3\.0: SLO 'error-rate' breached/);
    assert.match(slack.text, /breached: error-rate = [0-9.]+ \(must be < 0\.01\) on blue/);
    assert.equal(
      slack.links[0]!.href,
      `http://127.0.0.1:${stack.options.ports.ui}/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}/${handle.firstExecutionRunId}/history`,
    );
    assert.deepEqual(
      [pagerDuty.event_action, pagerDuty.dedup_key, pagerDuty.payload.severity, pagerDuty.payload.class],
      ['trigger', `${handle.workflowId}/${handle.firstExecutionRunId}`, 'error', 'SloBreach'],
    );
    // The graph link, run on the real Prometheus over the span it shows, shows the breach. (The
    // incident's own span can end within a second of the breach, before a 1 s step reaches it.)
    const graph = new URL(slack.links[1]!.href).searchParams;
    const expr = graph.get('g0.expr')!;
    assert.equal(expr, slack.incident.breach.query);
    const graphEnd = Date.parse(`${graph.get('g0.end_input')!.replace(' ', 'T')}Z`) / 1000;
    const graphStart = graphEnd - Number(graph.get('g0.range_input')!.replace(/s$/, ''));
    assert.ok(
      graphStart <= Date.parse(slack.incident.breach.from) / 1000 &&
        graphEnd >= Date.parse(slack.incident.breach.to) / 1000,
      'the graph spans the incident',
    );
    const range = (await (
      await fetch(
        `${stack.prometheus!.url}/api/v1/query_range?${new URLSearchParams({ query: expr, start: String(graphStart), end: String(graphEnd), step: '1' })}`,
      )
    ).json()) as { status: string; data: { result: { values: [number, string][] }[] } };
    assert.equal(range.status, 'success');
    const values = range.data.result.flatMap((series) => series.values.map(([, value]) => Number(value)));
    assert.ok(
      values.some((value) => value >= 0.01),
      `the graph shows the error rate over 0.01: ${JSON.stringify(values)}`,
    );

    // The evidence, captured before blue (where v2.3.0 ran) was scaled down, written out by the CLI.
    const summary = result.status.evidence!;
    assert.match(summary.breach ?? '', /^error-rate = [0-9.]+ \(must be < 0\.01\)$/);
    assert.match(
      summary.errorLines[0] ?? '',
      /^detection-api-blue-[0-9]+: .*request failed: injected fault, answering 500/,
      'the failing requests, from the logs',
    );
    const dir = mkdtempSync(join(tmpdir(), 'evidence-'));
    const written = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [
          BLUEGREEN,
          '--address',
          stack.temporalAddress,
          '--task-queue',
          'bluegreen-embedded-e2e',
          'evidence',
          'detection-api',
          '--run',
          handle.firstExecutionRunId,
          '-o',
          dir,
          '--json',
        ],
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      ),
    );
    assert.equal(written.code, 0, written.stderr);
    const files = (JSON.parse(written.stdout) as { files: { path: string; bytes: number }[] }).files.map((f) => f.path);
    const logs = files.filter((f) => f.startsWith('logs/detection-api-blue-'));
    assert.equal(logs.length, 2, `a log per replica of v2.3.0: ${files.join(', ')}`);
    assert.ok(files.includes('summary.md') && files.includes('events.txt') && files.includes('template-diff.txt'));
    const events = readFileSync(join(dir, 'events.txt'), 'utf8');
    assert.match(
      events,
      /\tNormal\tStarted\tPod\/detection-api-blue-[0-9]+\t1\tStarted container detection-api-blue \(registry\.internal\/detection-api:v2\.3\.0\)/,
    );
    assert.match(events, /\tNormal\tScalingReplicaSet\tDeployment\/detection-api-blue\t/);
    assert.match(
      readFileSync(join(dir, 'template-diff.txt'), 'utf8'),
      /^image: "registry\.internal\/detection-api:v2\.2\.0" → "registry\.internal\/detection-api:v2\.3\.0"$/m,
    );
    const csv = readFileSync(join(dir, 'series/error-rate.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => Number(line.split(',')[2]));
    assert.ok(
      csv.some((value) => value >= 0.01),
      'the series holds the breach',
    );
    const svg = readFileSync(join(dir, 'charts/error-rate.svg'), 'utf8');
    assert.match(svg, /<line class="threshold"/);
    assert.match(svg, /<line class="switch"/);
    assert.match(
      svg,
      /<circle class="breach"[^>]*\/>\n<text[^>]*>breach: [0-9.]+ at [0-9:]{8}<\/text>/,
      'the chart marks the breach',
    );
    assert.equal(result.status.smoke?.passed, true, 'the fault began after the smoke suite');
    const live = await describeLive();
    assert.equal(live.activeSlot, 'green', 'traffic is back on v2.2.0');
    assert.deepEqual(
      [live.slots.blue.replicas, live.slots.blue.image],
      [0, IMAGE('v2.1.0')],
      'the idle slot is restored as it was',
    );
    assert.equal(traffic.snapshot().connectionFailures, 0, unanswered(traffic.snapshot(), stack));
    const answer = await fetch(`${stack.local!.routerUrl}/ready`);
    assert.deepEqual(await answer.json(), { status: 'ready', version: 'v2.2.0', slot: 'green' });
  });

  it('restores the old slot when an operator aborts during monitoring', async () => {
    const handle = await start('v2.2.1', 60);
    await until('Monitoring');
    assert.equal((await describeLive()).activeSlot, 'blue', 'switched to the new slot');
    await stack.deployments!.abort('default', 'detection-api', { reason: 'operator saw something', by: 'e2e' });
    const result = await deploymentResult(handle);
    assert.equal(result.outcome, 'RolledBack');
    assert.equal(result.reason, 'Aborted');
    const live = await describeLive();
    assert.equal(live.activeSlot, 'green');
    assert.equal(live.slots.blue.replicas, 0);
    assert.equal(traffic.snapshot().connectionFailures, 0, unanswered(traffic.snapshot(), stack));
  });

  it('finishes a deployment whose worker was killed mid-monitoring, once a new worker starts', async () => {
    const handle = await start('v2.2.2', 16);
    await until('Monitoring');
    await stack.killWorker();
    const frozen = await describeLive();
    await new Promise((resolve) => setTimeout(resolve, 4000));
    assert.deepEqual(await describeLive(), frozen, 'nothing touched the slots while no worker ran');
    assert.equal(frozen.activeSlot, 'blue');
    await stack.startWorker();
    const result = await deploymentResult(handle);
    assert.equal(result.outcome, 'Succeeded', result.message);
    const live = await describeLive();
    assert.equal(live.activeSlot, 'blue');
    assert.deepEqual([live.slots.blue.image, live.slots.green.replicas], [IMAGE('v2.2.2'), 0]);
    const score = await traffic.stop();
    assert.equal(score.connectionFailures, 0, unanswered(score, stack));
    assert.ok(score.ok > 500, `traffic flowed throughout: ${JSON.stringify(score)}`);
  });

  it('undo puts the version live before the last success back, under traffic with no connection failure', async () => {
    traffic = new TrafficGenerator(stack.local!.routerUrl, 40);
    traffic.start();
    const before = traffic.snapshot();
    const plan = await stack.deployments!.planUndo('default', 'detection-api');
    assert.deepEqual(
      [plan.undone.version, plan.spec.image, plan.spec.version, plan.spec.undoOf?.version],
      ['v2.2.2', IMAGE('v2.2.0'), 'v2.2.0', 'v2.2.2'],
    );
    const result = await deploymentResult(await stack.deployments!.start(plan.spec));
    assert.equal(result.outcome, 'Succeeded', result.message);
    const live = await describeLive();
    assert.deepEqual(
      [live.activeSlot, live.slots.green.image, live.slots.blue.replicas],
      ['green', IMAGE('v2.2.0'), 0],
    );
    const score = await traffic.stop();
    assert.equal(score.connectionFailures, 0, unanswered(score, stack));
    assert.equal(score.serverErrors - before.serverErrors, 0);
    assert.ok((score.servedBy['detection-api-green'] ?? 0) > 0, JSON.stringify(score.servedBy));
  });

  it('refuses to deploy onto a live slot whose error rate Prometheus sees breached, and lets the fix through with allowUnstableActive', async () => {
    traffic = new TrafficGenerator(stack.local!.routerUrl, 40);
    traffic.start();
    const degrading = await deploymentResult(await start('v2.2.1-degrades', 8));
    assert.equal(degrading.outcome, 'Succeeded', degrading.message);
    const live = await describeLive();
    const from = live.activeSlot;
    // Until the live version's 500s show in Prometheus, over the window the specs use.
    const prometheus = new PrometheusSloSource(
      parseEnv(PrometheusConfigSchema, { PROMETHEUS_URL: stack.prometheus!.url }),
    );
    const errorRate = DETECTION_API_SLOS.filter((slo) => slo.name === 'error-rate');
    await eventually(
      async () =>
        (
          await prometheus.evaluateSlos({
            target: REFERENCE_TARGET,
            slot: from,
            version: 'v2.2.1-degrades',
            run: live.slots[from].run ?? '',
            window: '5s',
            slos: errorRate,
          })
        )[0]!.result === 'Failed',
      'the live slot breaching its error rate',
      90_000,
    );

    const refused = await deploymentResult(await start('v2.2.3'));
    assert.deepEqual(
      [refused.outcome, refused.reason, refused.failedCheck, refused.liveSlot],
      ['Failed', 'ActiveSlotUnstable', 'error-rate', from],
      refused.message,
    );
    assert.match(
      refused.message,
      new RegExp(
        `the active slot ${from} \\(detection-api-${from}, v2\\.2\\.1-degrades\\) breaches SLO 'error-rate': [0-9.]+ \\(must be < 0\\.01\\)`,
      ),
    );
    assert.deepEqual(await describeLive(), live, 'nothing changed in either slot');

    const fix = await deploymentResult(
      await stack.deployments!.start(
        testSpec({
          image: IMAGE('v2.2.3'),
          replicas: 2,
          readinessTimeoutSeconds: 60,
          monitor: { durationSeconds: 8, intervalSeconds: 2, window: '5s' },
          scaleDownDelaySeconds: 1,
          allowUnstableActive: true,
        }),
      ),
    );
    assert.equal(fix.outcome, 'Succeeded', fix.message);
    assert.deepEqual([fix.status.activeCheck?.verdict, fix.status.activeCheck?.allowedUnstable], ['breaching', true]);
    assert.match(
      fix.warnings.join('\n'),
      /deployed onto an unstable active slot: the active slot (blue|green) breaches SLO 'error-rate'/,
    );
    assert.equal((await describeLive()).slots[fix.toSlot!].image, IMAGE('v2.2.3'));
    const score = await traffic.stop();
    assert.equal(score.connectionFailures, 0, unanswered(score, stack));
  });

  it('judges a redeploy under the same tag, to the slot where that tag just failed, on its own series: the fixed build goes live', async () => {
    traffic = new TrafficGenerator(stack.local!.routerUrl, 40);
    traffic.start();
    // A window of a minute: the failed run's errors are still in it when the fix is monitored.
    const deploy = () =>
      stack.deployments!.start(
        testSpec({
          image: IMAGE('v2.3.0'),
          replicas: 2,
          readinessTimeoutSeconds: 60,
          monitor: { durationSeconds: 20, intervalSeconds: 2, window: '1m' },
          scaleDownDelaySeconds: 1,
        }),
      );
    const failedHandle = await deploy();
    const failed = await deploymentResult(failedHandle);
    assert.deepEqual(
      [failed.outcome, failed.reason, failed.failedCheck],
      ['RolledBack', 'SloBreach', 'error-rate'],
      failed.message,
    );

    // The fix is pushed under the same tag (the tag's pods now answer without the fault) and deployed at once.
    const pushed = await fetch(`${stack.local!.controlUrl}/api/v1/images`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: IMAGE('v2.3.0'), env: {} }),
    });
    assert.equal(pushed.status, 201);
    const fixedHandle = await deploy();
    const fixed = await deploymentResult(fixedHandle);
    assert.equal(fixed.outcome, 'Succeeded', fixed.message);
    assert.equal(fixed.toSlot, failed.toSlot, 'the same slot');
    const live = await describeLive();
    assert.deepEqual(
      [live.activeSlot, live.slots[fixed.toSlot!].image, live.slots[fixed.toSlot!].run],
      [fixed.toSlot, IMAGE('v2.3.0'), fixedHandle.firstExecutionRunId],
    );
    const monitor = fixed.status.monitor!;
    assert.ok(monitor.successful >= 1 && monitor.failed === 0, JSON.stringify(monitor));
    assert.ok(monitor.latest['error-rate']!.value! < 0.01, JSON.stringify(monitor.latest['error-rate']));

    // The same error rate over the slot and version alone, every run's series, during the fix's
    // monitor window: the failed run's 500s are there, and would have rolled the fix back.
    const errorRate = DETECTION_API_SLOS.find((slo) => slo.name === 'error-rate')!;
    const everyRun = renderTemplate(errorRate.query, {
      app: 'detection-api',
      namespace: 'default',
      slot: fixed.toSlot!,
      version: 'v2.3.0',
      run: '.*',
      window: '1m',
    });
    const monitoring = Date.parse(fixed.status.transitions.find((t) => t.phase === 'Monitoring')!.at) / 1000;
    const range = (await (
      await fetch(
        `${stack.prometheus!.url}/api/v1/query_range?${new URLSearchParams({ query: everyRun, start: String(monitoring), end: String(monitoring + 20), step: '2' })}`,
      )
    ).json()) as { status: string; data: { result: { values: [number, string][] }[] } };
    assert.equal(range.status, 'success');
    const unscoped = range.data.result.flatMap((series) => series.values.map(([, value]) => Number(value)));
    assert.ok(
      unscoped.some((value) => value >= 0.01),
      `the slot and version's series hold the failed run's errors: ${JSON.stringify(unscoped)}`,
    );
    const score = await traffic.stop();
    assert.equal(score.connectionFailures, 0, unanswered(score, stack));
  });
});
