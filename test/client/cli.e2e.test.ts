/**
 * The `bluegreen` CLI end to end, as CI and operators run it: a real Temporal dev server
 * (`temporal server start-dev`), a worker built by the product's own code with the recording
 * double as its platform, and the CLI as a child process whose exit codes and output are checked.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { z } from 'zod';
import { Client } from '@temporalio/client';
import { createActivities } from '../../src/activities/index.js';
import { DeploymentClient, deploymentResult } from '../../src/client/deployment-client.js';
import { testSpec } from '../helpers/deployment-harness.js';
import {
  DeploymentResultSchema,
  DeploymentSnapshotSchema,
  DeploymentStatusSchema,
  DeploymentSummarySchema,
  OperatorAnswerSchema,
  StartedSchema,
} from '../../src/client/output-schemas.js';
import type { DeploymentStatus } from '../../src/shared/deployment-status.js';
import { createDeploymentWorker } from '../../src/worker/worker.js';
import { deploymentWorkflowId } from '../../src/shared/workflow-id.js';
import { eventually } from '../helpers/eventually.js';
import { RecordingPlatformDouble } from '../helpers/recording-platform-double.js';
import { sample } from '../helpers/prometheus-text.js';
import { startDevServer, TEMPORAL_CLI, WORKER_METRICS_URL, workflowBundle } from '../helpers/temporal-servers.js';

const BIN = fileURLToPath(new URL('../../bin/bluegreen.js', import.meta.url));
const TASK_QUEUE = 'bluegreen-e2e';
const FAST = [
  '--set',
  'monitor.durationSeconds=3',
  '--set',
  'monitor.intervalSeconds=1',
  '--set',
  'scaleDownDelaySeconds=0',
];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('bluegreen CLI against the Temporal dev server', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  const double = new RecordingPlatformDouble();

  function cli(...args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [BIN, '--address', env.address, '--task-queue', TASK_QUEUE, ...args],
        { timeout: 60_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  /** The CLI as a running child, for tests that signal it. */
  function cliProcess(...args: string[]): { child: ChildProcess; stdout: () => string; done: Promise<Run> } {
    let stdout = '';
    let stderr = '';
    const child = spawn(process.execPath, [BIN, '--address', env.address, '--task-queue', TASK_QUEUE, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const done = new Promise<Run>((resolve) =>
      child.once('exit', (code) => resolve({ code: code ?? -1, stdout, stderr })),
    );
    return { child, stdout: () => stdout, done };
  }

  async function status(app: string): Promise<DeploymentStatus> {
    const run = await cli('status', app, '--json');
    assert.equal(run.code, 0, run.stderr);
    return DeploymentStatusSchema.parse(JSON.parse(run.stdout)) as DeploymentStatus;
  }

  /** A worker with the double as its platform, running until `worker.shutdown()`. */
  async function startWorker(): Promise<void> {
    worker = await createDeploymentWorker({
      connection: env.nativeConnection,
      namespace: 'default',
      taskQueue: TASK_QUEUE,
      activities: createActivities({ platform: double, smoke: double, slo: double }),
      workflowBundle: await workflowBundle(),
    });
    running = worker.run();
  }

  before(async () => {
    env = await startDevServer();
    await startWorker();
  });

  after(async () => {
    double.releaseAll();
    worker?.shutdown();
    await running;
    await env?.teardown();
  });

  it('deploy --wait prints the phases as they pass and exits 0 when the version goes live', async () => {
    const run = await cli(
      'deploy',
      '--app',
      'detection-api',
      '--image',
      'registry.internal/detection-api:v2.2.0',
      ...FAST,
      '--wait',
    );
    assert.equal(run.code, 0, run.stderr);
    const phases = run.stdout
      .split('\n')
      .map((line) => /^\[\d\d:\d\d:\d\d\] (\w+)/.exec(line)?.[1])
      .filter(Boolean);
    assert.deepEqual(phases, [
      'Preflight',
      'Deploying',
      'SmokeTesting',
      'Switching',
      'Monitoring',
      'CleaningUp',
      'Succeeded',
    ]);
    assert.match(run.stdout, /started bluegreen\/bluegreen-e2e\/default\/detection-api \(run [0-9a-f-]+\)/, run.stdout);
    assert.match(run.stdout, /smoke passed +health/);
    assert.match(run.stdout, /monitor 3\/3: error-rate=0\.001 \(< 0\.01\) ok/);
    assert.match(run.stdout, /Succeeded: v2\.2\.0 is live on green/);
    assert.equal(double.selector, 'green');
    assert.equal(double.slots.blue.replicas, 0);

    const shown = await status('detection-api');
    assert.equal(shown.phase, 'Succeeded');

    // Readable in the Temporal UI without our CLI: a summary, details, and a summary per event.
    const handle = env.client.workflow.getHandle(deploymentWorkflowId('default', 'detection-api', TASK_QUEUE));
    const description = await handle.describe();
    assert.equal(await description.staticSummary(), 'deploy detection-api v2.2.0 in default');
    assert.match(
      (await description.staticDetails()) ?? '',
      /\| detection-api \| default \| v2\.2\.0 \| registry\.internal\/detection-api:v2\.2\.0 \| 3 \|/,
    );
    const converter = env.client.options.loadedDataConverter.payloadConverter;
    const summaries = ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
      const summary = e.userMetadata?.summary;
      return summary ? [converter.fromPayload<string>(summary)] : [];
    });
    assert.deepEqual(summaries.slice(0, 7), [
      'deploy detection-api v2.2.0 in default',
      "validate the spec, read the live state, the active slot's SLOs and the scrape interval",
      'deploy v2.2.0 to green x3',
      'wait for 3 ready replicas of green',
      'smoke suite http against green',
      'switch detection-api-service to green',
      'verify detection-api-service serves green',
    ]);
    assert.ok(
      summaries.includes('monitor green: ticks 1 to 3, every 1 s'),
      `the monitor window is one activity: ${summaries.join(' | ')}`,
    );
    const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    assert.match(metadata.currentDetails ?? '', /^\*\*Succeeded\*\*: v2\.2\.0 is live on green/);
    assert.match(metadata.currentDetails ?? '', /\| error-rate \| 0\.001 \| < 0\.01 \| Successful \|/);
    // This worker has no webhook and no incident tool: nothing is scheduled to notify anyone.
    assert.deepEqual(summaries.slice(-1), ['scale blue to zero']);
    assert.ok(!summaries.some((summary) => summary.startsWith('notify')), summaries.join(' | '));
    const text = await cli('status', 'detection-api');
    assert.match(text.stdout, /phase: +Succeeded/);
    assert.match(text.stdout, /gate +error-rate=0\.001/);
  });

  it('deploy --wait exits 1 with the reason when the deployment rolls back', async () => {
    double.behaviour = { failSmokeCheck: 'metrics' };
    try {
      const run = await cli(
        'deploy',
        '--app',
        'detection-api',
        '--image',
        'registry.internal/detection-api:v2.3.0',
        ...FAST,
        '--wait',
        '--json',
      );
      assert.equal(run.code, 1, run.stderr);
      const result = DeploymentResultSchema.parse(JSON.parse(run.stdout));
      assert.equal(result.outcome, 'RolledBack');
      assert.equal(result.reason, 'SmokeFailed');
      assert.equal(result.failedCheck, 'metrics');
      assert.equal(result.liveSlot, 'green');
      assert.equal(double.selector, 'green');
      assert.equal(double.slots.blue.replicas, 0, 'the idle slot is restored to zero replicas');
    } finally {
      double.behaviour = {};
    }
  });

  it('refuses a second deploy of a running app, then aborts the running one', async () => {
    const live = double.selector;
    const liveImage = double.slots[live].image;
    const first = await cli(
      'deploy',
      '--app',
      'detection-api',
      '--image',
      'registry.internal/detection-api:v2.4.0',
      '--set',
      'gates.approveBeforeSwitch=true',
    );
    assert.equal(first.code, 0, first.stderr);
    await eventually(async () => (await status('detection-api')).phase === 'AwaitingApproval');

    const second = await cli('deploy', '--app', 'detection-api', '--image', 'registry.internal/detection-api:v2.5.0');
    assert.equal(second.code, 4, second.stderr);
    assert.match(
      second.stderr,
      /a deployment of this app is already running: v2\.4\.0 \(registry\.internal\/detection-api:v2\.4\.0\), phase AwaitingApproval; workflow bluegreen\/bluegreen-e2e\/default\/detection-api run [0-9a-f-]+/,
    );

    const abort = await cli('abort', 'detection-api', '--reason', 'wrong build', '--by', 'alice');
    assert.equal(abort.code, 0, abort.stderr);
    assert.match(abort.stdout, /abort default\/detection-api: abort accepted in AwaitingApproval: rolling back/);
    await eventually(async () => (await status('detection-api')).phase === 'RolledBack');
    const final = await status('detection-api');
    assert.deepEqual(final.abort && { by: final.abort.by, reason: final.abort.reason }, {
      by: 'alice',
      reason: 'wrong build',
    });
    assert.equal(double.selector, live);
    assert.equal(double.slots[live].image, liveImage, 'the live version is untouched');
    assert.equal(double.slots[live === 'blue' ? 'green' : 'blue'].replicas, 0, 'the idle slot is back to zero');

    const late = await cli('abort', 'detection-api', '--reason', 'again');
    assert.equal(late.code, 4, late.stderr);
    assert.match(late.stderr, /abort rejected: the deployment is over \(FAILED\)/);
    const approve = await cli('approve', 'detection-api');
    assert.equal(approve.code, 4, approve.stderr);
    assert.match(approve.stderr, /approve rejected: the deployment is over/);
  });

  it('status and abort reach a deployment started under the id from before the id carried the queue', async () => {
    // Started as before: `bluegreen/<namespace>/<app>`, on this (not the default) queue.
    const earlier = await env.client.workflow.start('blueGreenDeploymentWorkflow', {
      workflowId: 'bluegreen/default/earlier',
      taskQueue: TASK_QUEUE,
      args: [testSpec({ app: 'earlier', image: 'registry.internal/earlier:v1', gates: { approveBeforeSwitch: true } })],
    });
    await eventually(async () => (await status('earlier')).phase === 'AwaitingApproval');
    const abort = await cli('abort', 'earlier', '--reason', 'found by its old id', '--by', 'alice');
    assert.equal(abort.code, 0, abort.stderr);
    assert.match(abort.stdout, /abort default\/earlier: abort accepted in AwaitingApproval/);
    assert.equal((await deploymentResult(earlier)).outcome, 'RolledBack');
  });

  it('approve lets a deployment through its gate', async () => {
    const start = await cli(
      'deploy',
      '--app',
      'gated',
      '--image',
      'registry.internal/gated:v1',
      ...FAST,
      '--set',
      'gates.approveBeforeSwitch=true',
      '--json',
    );
    assert.equal(start.code, 0, start.stderr);
    assert.equal(
      StartedSchema.parse(JSON.parse(start.stdout)).workflowId,
      'bluegreen/bluegreen-e2e/default/gated',
      'with --json, stdout is only JSON',
    );
    await eventually(async () => (await status('gated')).phase === 'AwaitingApproval');
    const wrongGate = await cli('approve', 'gated', '--gate', 'beforeCleanup');
    assert.equal(wrongGate.code, 4, 'the workflow refuses an approval of a gate it does not wait at');
    assert.match(wrongGate.stderr, /the deployment waits at gate 'beforeSwitch', not 'beforeCleanup'/);
    const approve = await cli('approve', 'gated', '--gate', 'beforeSwitch', '--by', 'bob', '--json');
    assert.equal(approve.code, 0, approve.stderr);
    assert.deepEqual(OperatorAnswerSchema.parse(JSON.parse(approve.stdout)), {
      verb: 'approve',
      delivery: 'accepted',
      message: 'approved gate beforeSwitch',
      phase: 'AwaitingApproval',
    });
    await eventually(async () => (await status('gated')).phase === 'Succeeded');
  });

  it('Ctrl+C only stops watching, unless --abort-on-interrupt: then the deployment rolls back', async () => {
    const waiting = cliProcess(
      'deploy',
      '--app',
      'interrupted',
      '--image',
      'registry.internal/interrupted:v1',
      ...FAST,
      '--set',
      'gates.approveBeforeSwitch=true',
      '--wait',
    );
    await eventually(async () => waiting.stdout().includes('AwaitingApproval'), 'the gate is reached');
    waiting.child.kill('SIGINT');
    const stopped = await waiting.done;
    assert.equal(stopped.code, 130);
    assert.match(stopped.stderr, /stopped watching; the deployment goes on \(bluegreen watch interrupted -n default\)/);
    assert.equal((await status('interrupted')).phase, 'AwaitingApproval', 'the deployment went on');

    const watching = cliProcess('watch', 'interrupted', '--abort-on-interrupt');
    await eventually(async () => watching.stdout().includes('AwaitingApproval'), 'watch has attached');
    watching.child.kill('SIGINT');
    const rolledBack = await watching.done;
    assert.equal(rolledBack.code, 1, rolledBack.stderr);
    assert.match(rolledBack.stdout, /RolledBack: aborted by .+: interrupted \(Ctrl\+C\) during --wait/);
    assert.equal((await status('interrupted')).phase, 'RolledBack');
  });

  it('promote ends a canary step held until promoted; status shows the step, the weight and the share', async () => {
    const steps = 'canary.steps=[{weight: 25, untilPromote: true}, {weight: 100, holdSeconds: 2}]';
    const start = await cli(
      'deploy',
      '--app',
      'canaried',
      '--image',
      'registry.internal/canaried:v1',
      ...FAST,
      '--set',
      'strategy=canary',
      '--set',
      'traffic.router=gateway-api',
      '--set',
      steps,
      '--json',
    );
    assert.equal(start.code, 0, start.stderr);
    await eventually(
      async () => (await status('canaried')).canary?.hold?.untilPromote === true,
      'the step held until promoted',
    );
    const shown = await cli('status', 'canaried');
    assert.match(
      shown.stdout,
      /canary: +step 1\/2: 25 % set, 5 % observed \(500 canary requests in the window\), canary replicas: 1/,
    );
    assert.match(shown.stdout, /hold: +since .+, until promoted/);
    const promote = await cli('promote', 'canaried', '--by', 'carol', '--json');
    assert.equal(promote.code, 0, promote.stderr);
    const answer = OperatorAnswerSchema.parse(JSON.parse(promote.stdout));
    assert.deepEqual([answer.verb, answer.delivery], ['promote', 'accepted']);
    assert.match(answer.message, /promoted: step 1\/2 \(25 %\) ends its hold now/);
    await eventually(
      async () => (await status('canaried')).phase === 'Succeeded',
      'the canary at 100 % and cleaned up',
    );
    const over = await cli('promote', 'canaried');
    assert.equal(over.code, 4, 'nothing to promote once the deployment is over');
    assert.match(over.stderr, /promote rejected: the deployment is over/);
    const notCanary = await cli(
      'deploy',
      '--app',
      'canaried',
      '--image',
      'registry.internal/canaried:v2',
      '--set',
      'strategy=canary',
      '--replicas',
      '3',
      '--json',
    );
    assert.equal(notCanary.code, 2, 'a plan replica-ratio cannot express is refused before anything starts');
    assert.match(
      notCanary.stderr,
      /canary\.steps\.0\.weight: 5 % cannot be expressed by replica-ratio with replicas 3/,
    );
  });

  it('lists recent deployments with their outcomes', async () => {
    let listed: {
      app: string;
      version: string;
      strategy: string;
      status: string;
      outcome: string | null;
      reason: string | null;
    }[] = [];
    await eventually(async () => {
      const run = await cli('list', '--json');
      assert.equal(run.code, 0, run.stderr);
      listed = z.array(DeploymentSummarySchema).parse(JSON.parse(run.stdout));
      return listed.filter((d) => d.status !== 'RUNNING').length >= 5;
    }, 'visibility lists the finished deployments');
    const line = (app: string, version: string) => listed.find((d) => d.app === app && d.version === version);
    assert.deepEqual(line('detection-api', 'v2.2.0') && [line('detection-api', 'v2.2.0')!.outcome], ['Succeeded']);
    assert.deepEqual(
      line('detection-api', 'v2.3.0') && [
        line('detection-api', 'v2.3.0')!.outcome,
        line('detection-api', 'v2.3.0')!.reason,
      ],
      ['RolledBack', 'SmokeFailed'],
    );
    assert.equal(line('gated', 'v1')?.outcome, 'Succeeded');
    assert.equal(line('interrupted', 'v1')?.reason, 'Aborted');
    assert.deepEqual([line('canaried', 'v1')?.strategy, line('gated', 'v1')?.strategy], ['canary', 'blueGreen']);
    const table = await cli('list');
    // The execution status follows the outcome: a rollback is FAILED, a success COMPLETED.
    assert.match(table.stdout, /default\/detection-api +v2\.3\.0 +blueGreen +FAILED +RolledBack \(SmokeFailed\)/);
    assert.match(table.stdout, /default\/gated +v1 +blueGreen +COMPLETED +Succeeded/);
    assert.match(table.stdout, /default\/canaried +v1 +canary +COMPLETED +Succeeded/, 'both strategies are listed');

    // By search attribute: bluegreen's filters, and the same query through the Temporal CLI.
    const byApp = JSON.parse((await cli('list', '--app', 'interrupted', '--json')).stdout) as {
      app: string;
      phase: string;
    }[];
    assert.deepEqual(
      byApp.map((d) => [d.app, d.phase]),
      [['interrupted', 'RolledBack']],
    );
    const rolledBack = JSON.parse((await cli('list', '--outcome', 'RolledBack', '--json')).stdout) as {
      app: string;
      version: string;
    }[];
    assert.deepEqual(rolledBack.map((d) => `${d.app} ${d.version}`).sort(), [
      'detection-api v2.3.0',
      'detection-api v2.4.0',
      'interrupted v1',
    ]);
    const temporal = await new Promise<string>((resolve, reject) =>
      execFile(
        TEMPORAL_CLI(),
        [
          'workflow',
          'list',
          '--address',
          env.address,
          '--query',
          "BlueGreenOutcome = 'RolledBack' AND BlueGreenApp = 'interrupted'",
          '-o',
          'json',
        ],
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      ),
    );
    assert.match(temporal, /"workflowId": "bluegreen\/bluegreen-e2e\/default\/interrupted"/);
    // What the Temporal UI's Failures view asks for.
    const failed = await new Promise<string>((resolve, reject) =>
      execFile(
        TEMPORAL_CLI(),
        ['workflow', 'list', '--address', env.address, '--query', "ExecutionStatus = 'Failed'", '-o', 'json'],
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      ),
    );
    assert.match(failed, /"workflowId": "bluegreen\/bluegreen-e2e\/default\/interrupted"/);
    assert.doesNotMatch(failed, /"workflowId": "bluegreen\/bluegreen-e2e\/default\/gated"/);
  });

  it('counts deployments by outcome and times phases in the worker metrics', async () => {
    const exposition = await (await fetch(WORKER_METRICS_URL)).text();
    const tags = `namespace="default",taskQueue="${TASK_QUEUE}",workflowType="blueGreenDeploymentWorkflow"`;
    assert.equal(sample(exposition, `bluegreen_deployments_started{app="detection-api",${tags}}`), 3);
    assert.equal(
      sample(
        exposition,
        `bluegreen_deployments_finished{app="detection-api",outcome="Succeeded",reason="none",${tags}}`,
      ),
      1,
    );
    assert.equal(
      sample(
        exposition,
        `bluegreen_deployments_finished{app="detection-api",outcome="RolledBack",reason="SmokeFailed",${tags}}`,
      ),
      1,
    );
    assert.equal(
      sample(
        exposition,
        `bluegreen_deployments_finished{app="interrupted",outcome="RolledBack",reason="Aborted",${tags}}`,
      ),
      1,
    );
    assert.ok(
      (sample(exposition, `bluegreen_phase_duration_count{app="detection-api",phase="Monitoring",${tags}}`) ?? 0) >= 1,
    );
    assert.ok(
      (sample(exposition, `bluegreen_phase_duration_sum{app="gated",phase="Monitoring",${tags}}`) ?? 0) >= 2000,
      'a 3 s window, measured',
    );
    assert.match(exposition, /^temporal_workflow_completed\{/m, "the SDK's own metrics are exported too");
  });

  it('rejects an invalid spec with exit 2 and every field path, before connecting anywhere', async () => {
    const run = await cli(
      '--address',
      '127.0.0.1:1',
      'deploy',
      '--app',
      'Bad_Name',
      '--image',
      'no-tag',
      '--replicas',
      '0',
    );
    assert.equal(run.code, 2);
    assert.match(run.stderr, /invalid deployment spec:/);
    assert.match(run.stderr, /- app: app must be an RFC 1123 label/);
    assert.match(run.stderr, /- image: image must name a tag or a digest/);
    assert.match(run.stderr, /- replicas: replicas must be at least 1/);
    assert.doesNotMatch(run.stderr, /cannot reach Temporal/);
  });

  it('exits 3 when Temporal cannot be reached, and 2 for an app with no deployment', async () => {
    const unreachable = await cli('--address', '127.0.0.1:1', 'status', 'detection-api');
    assert.equal(unreachable.code, 3);
    assert.match(unreachable.stderr, /cannot reach Temporal at 127\.0\.0\.1:1/);
    const unknown = await cli('status', 'never-deployed');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no deployment found/);
  });

  it('undo redeploys the version live before the last success, with its spec, recorded as an undo', async () => {
    const nothing = await cli('undo', 'never-deployed');
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /no successful deployment of default\/never-deployed to undo/);
    for (const version of ['v1', 'v2']) {
      const run = await cli(
        'deploy',
        '--app',
        'undone',
        '--image',
        `registry.internal/undone:${version}`,
        '--set',
        'monitor.window=30s',
        ...FAST,
        '--wait',
      );
      assert.equal(run.code, 0, run.stderr);
    }
    const v2 = await env.client.workflow.getHandle(deploymentWorkflowId('default', 'undone', TASK_QUEUE)).describe();
    // Right after v2 ends: the latest run is read directly, not from visibility, which lags.
    const undo = await cli('undo', 'undone', '--wait', '--json');
    assert.equal(undo.code, 0, undo.stderr);
    const result = DeploymentResultSchema.parse(JSON.parse(undo.stdout));
    assert.deepEqual(
      [result.outcome, result.image, result.version, result.status.previous?.image],
      ['Succeeded', 'registry.internal/undone:v1', 'v1', 'registry.internal/undone:v2'],
    );
    assert.equal(double.slots[double.selector].image, 'registry.internal/undone:v1', 'v1 is live again');
    const handle = env.client.workflow.getHandle(deploymentWorkflowId('default', 'undone', TASK_QUEUE));
    const description = await handle.describe();
    assert.equal(await description.staticSummary(), 'undo undone to v1 (undoing v2) in default');
    assert.deepEqual(description.memo?.['undoOf'], { runId: v2.runId, version: 'v2' });
    // The same spec as the deployment undone: its monitor window, not the default.
    const started = (await handle.fetchHistory()).events![0]!.workflowExecutionStartedEventAttributes!.input!
      .payloads![0]!;
    const spec = env.client.options.loadedDataConverter.payloadConverter.fromPayload<{
      monitor: { window: string };
      undoOf: unknown;
      allowUnstableActive: boolean;
    }>(started);
    assert.deepEqual(
      [spec.monitor.window, spec.undoOf, spec.allowUnstableActive],
      ['30s', { runId: v2.runId, version: 'v2' }, true],
    );
  });

  it('with no worker running: abort is recorded (exit 5), status says so, and the next worker rolls back', async () => {
    const live = double.selector;
    const start = await cli(
      'deploy',
      '--app',
      'detection-api',
      '--image',
      'registry.internal/detection-api:v2.6.0',
      '--set',
      'gates.approveBeforeSwitch=true',
    );
    assert.equal(start.code, 0, start.stderr);
    await eventually(async () => (await status('detection-api')).phase === 'AwaitingApproval');
    worker.shutdown();
    await running;

    const began = Date.now();
    const abort = await cli('abort', 'detection-api', '--reason', 'worker crashed, pull it back', '--by', 'carol');
    const seconds = (Date.now() - began) / 1000;
    assert.equal(abort.code, 5, abort.stdout + abort.stderr);
    assert.match(
      abort.stdout,
      /abort default\/detection-api RECORDED, not yet answered: no worker answered within 5 s( \([^)]*\))?: the abort is recorded by Temporal and takes effect as soon as a worker runs/,
    );
    assert.ok(
      seconds < 15,
      `the CLI answers within the answer timeout, not a query's 30 s (took ${seconds.toFixed(1)} s)`,
    );

    const snapshot = await cli('status', 'detection-api', '--json');
    assert.equal(snapshot.code, 0, snapshot.stderr);
    const held = DeploymentSnapshotSchema.parse(JSON.parse(snapshot.stdout));
    assert.equal(held.executionStatus, 'RUNNING');
    assert.equal(held.phase, 'AwaitingApproval', 'the last phase the workflow recorded');
    // The server lists a worker it heard from within the last minute: a just-killed one still shows.
    assert.match(held.why, /no worker polls task queue 'bluegreen-e2e'|no worker answered within 5 s \([0-9]+ polled/);
    assert.deepEqual(
      held.pendingSignals.map((s) => [s.name, s.input]),
      [['abort', { reason: 'worker crashed, pull it back', by: 'carol' }]],
    );
    const text = await cli('status', 'detection-api');
    assert.match(text.stdout, /waiting for a worker: abort recorded at/);
    assert.equal(double.selector, live, 'nothing happens without a worker');

    await startWorker();
    await eventually(
      async () => (await status('detection-api')).phase === 'RolledBack',
      'the new worker takes the recorded abort',
    );
    const final = await status('detection-api');
    assert.deepEqual(final.abort && [final.abort.by, final.abort.reason], ['carol', 'worker crashed, pull it back']);
    assert.equal(double.selector, live);
    assert.equal(double.slots[live === 'blue' ? 'green' : 'blue'].replicas, 0, 'the idle slot is back to zero');
  });

  it('shows the monitor window as a progress bar with the latest SLO values on a terminal', async () => {
    // `script` gives the CLI a pseudo-terminal, as a person's shell would. Last in this file: the
    // platform double is shared, and this deployment moves its selector.
    const command = [
      process.execPath,
      BIN,
      '--address',
      env.address,
      '--task-queue',
      TASK_QUEUE,
      'deploy',
      '--app',
      'on-a-tty',
      '--image',
      'registry.internal/on-a-tty:v1',
      ...FAST,
      '--wait',
    ]
      .map((arg) => `'${arg}'`)
      .join(' ');
    const run = await new Promise<Run>((resolve) =>
      execFile('script', ['-qec', command, '/dev/null'], { timeout: 60_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      ),
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /monitor \[=+-+\] 1\/3 \| error-rate=0\.001 \(< 0\.01\) ok/);
    assert.match(
      run.stdout,
      /monitor \[={24}\] 3\/3 \| error-rate=0\.001 \(< 0\.01\) ok, p95-latency=0\.08 \(< 0\.5\) ok/,
    );
    assert.doesNotMatch(run.stdout, /monitor 1\/3:/, 'no plain tick lines on a terminal');
    assert.match(run.stdout, /Succeeded: v1 is live on (blue|green)/);
  });

  it('ends the deployments left running in a kept history, recording why (the embedded default starting afresh)', async () => {
    // A deployment nobody works on: its task queue has no worker.
    const orphaned = new DeploymentClient(
      new Client({ connection: env.connection, namespace: 'default' }),
      'no-worker-polls-this',
    );
    const handle = await orphaned.start(testSpec({ app: 'leftover', image: 'registry.internal/leftover:v1' }));
    let ended: string[] = [];
    await eventually(
      async () => (ended = await orphaned.endRunning('the platform was started afresh')).length > 0,
      'visibility lists the running deployment',
    );
    assert.deepEqual(ended, ['bluegreen/no-worker-polls-this/default/leftover']);
    const description = await handle.describe();
    assert.equal(description.status.name, 'TERMINATED');
    const history = await handle.fetchHistory();
    const terminated = (history.events ?? []).find((e) => e.workflowExecutionTerminatedEventAttributes);
    assert.equal(terminated?.workflowExecutionTerminatedEventAttributes?.reason, 'the platform was started afresh');
  });
});
