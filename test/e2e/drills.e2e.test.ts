/**
 * Resilience drills on the embedded stack (dev server with a database file, worker process, local
 * platform, Prometheus): the worker SIGKILLed in each phase it spends time in and a new one
 * started; the Temporal server restarted during monitoring; Prometheus stopped during monitoring.
 * Every deployment ends with the right outcome and the slots are checked. The worker connects to
 * Temporal with mutual TLS and an API key (through a TLS terminator, as the dev server takes no
 * TLS) and holds a Prometheus token and a webhook secret: last, none of these credentials appears
 * anywhere in the histories of these runs. The worker loads its workflows bundled ahead of time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DETECTION_API_TARGET, EmbeddedStack, freeStackPorts } from '../../src/demo/stack.js';
import { TrafficGenerator } from '../../src/demo/traffic.js';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import type { Slot } from '../../src/shared/slots.js';
import { DETECTION_API_IMAGE, deployTag, unanswered, untilPhase } from '../helpers/embedded-stack.js';
import { makeCredentials, TemporalTlsTerminator } from '../helpers/temporal-tls-terminator.js';
import { deploymentResult } from '../../src/client/deployment-client.js';
import { workflowBundleFile } from '../helpers/workflow-bundle-file.js';

const IMAGE = DETECTION_API_IMAGE;
const PROMETHEUS_TOKEN = `prometheus-token-${randomBytes(12).toString('hex')}`;
const WEBHOOK_SECRET = `webhook-secret-${randomBytes(12).toString('hex')}`;
const TEMPORAL_API_KEY = `temporal-api-key-${randomBytes(12).toString('hex')}`;

describe('resilience drills on the embedded stack', () => {
  let stack: EmbeddedStack;
  let traffic: TrafficGenerator;
  let tls: TemporalTlsTerminator;
  let clientKey: string;

  before(async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'drills-'));
    const ports = await freeStackPorts();
    // The worker reaches Temporal as production does: mutual TLS and an API key.
    const credentials = await makeCredentials(stateDir);
    clientKey = readFileSync(credentials.keyFile, 'utf8');
    tls = await TemporalTlsTerminator.start({ upstreamPort: ports.temporal, ...credentials });
    // And with its workflows bundled ahead of time, as the Dockerfile builds it.
    const bundle = await workflowBundleFile(stateDir);
    stack = new EmbeddedStack({
      stateDir,
      ports,
      taskQueue: 'bluegreen-drills',
      replicaEnv: { SHUTDOWN_DRAIN_MS: '100' },
      // Credentials the worker holds: they must never reach a history.
      workerEnv: {
        PROMETHEUS_BEARER_TOKEN: PROMETHEUS_TOKEN,
        BLUEGREEN_WEBHOOK_URL: `http://127.0.0.1:9/hook?secret=${WEBHOOK_SECRET}`,
        TEMPORAL_ADDRESS: tls.address,
        TEMPORAL_TLS_CA_PATH: credentials.caFile,
        TEMPORAL_TLS_CERT_PATH: credentials.certFile,
        TEMPORAL_TLS_KEY_PATH: credentials.keyFile,
        TEMPORAL_TLS_SERVER_NAME: credentials.serverName,
        TEMPORAL_API_KEY,
        BLUEGREEN_WORKFLOW_BUNDLE: bundle,
      },
    });
    await stack.start();
    await stack.waitForInitialSlot();
    // The SLOs need traffic to measure; the drills also prove none of it goes unanswered.
    traffic = new TrafficGenerator(stack.local!.routerUrl, 20);
    traffic.start();
  });

  after(async () => {
    const score = await traffic?.stop();
    await stack?.stop();
    await tls?.close();
    assert.ok(score, 'the traffic ran');
    assert.equal(score.connectionFailures, 0, `during the drills, ${unanswered(score, stack)}`);
  });

  const live = () => stack.local!.platform.describe(DETECTION_API_TARGET);

  const start = (tag: string, monitorSeconds = 8) =>
    deployTag(stack, tag, { monitorSeconds, intervalSeconds: 1, scaleDownDelaySeconds: 4 });
  const until = (phase: string) => untilPhase(stack, phase);

  /** The result, waiting through a server restart (the long poll fails while it is down). */
  async function result(handle: { result(): Promise<DeploymentResult> }): Promise<DeploymentResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await deploymentResult(handle);
      } catch (error) {
        if (attempt > 30) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  async function assertLive(slot: Slot, tag: string): Promise<void> {
    const state = await live();
    assert.equal(state.activeSlot, slot);
    assert.deepEqual([state.slots[slot].image, state.slots[slot].readyReplicas], [IMAGE(tag), 2]);
    const other = slot === 'blue' ? 'green' : 'blue';
    assert.deepEqual(
      [state.slots[other].replicas, state.slots[other].readyReplicas],
      [0, 0],
      `${other} scaled to zero`,
    );
  }

  for (const [phase, tag] of [
    ['Deploying', 'v2.2.1'],
    ['SmokeTesting', 'v2.2.9-slow'],
    ['Monitoring', 'v2.2.2'],
    ['CleaningUp', 'v2.2.3'],
  ] as const) {
    it(`finishes a deployment whose worker was SIGKILLed while ${phase}, once a new worker runs`, async () => {
      const from = (await live()).activeSlot;
      const to: Slot = from === 'blue' ? 'green' : 'blue';
      const handle = await start(tag);
      await until(phase);
      await stack.killWorker();
      const frozen = await live();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      assert.equal((await live()).activeSlot, frozen.activeSlot, 'no worker, no switch');
      await stack.startWorker();
      const outcome = await result(handle);
      assert.equal(outcome.outcome, 'Succeeded', outcome.message);
      await assertLive(to, tag);
    });
  }

  it('rolls back a faulty version whose worker was SIGKILLed during monitoring', async () => {
    const from = (await live()).activeSlot;
    const handle = await start('v2.3.0', 30);
    await until('Monitoring');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await stack.killWorker();
    await new Promise((resolve) => setTimeout(resolve, 6000));
    await stack.startWorker();
    const outcome = await result(handle);
    assert.equal(outcome.outcome, 'RolledBack', outcome.message);
    assert.equal(outcome.reason, 'SloBreach');
    assert.equal((await live()).activeSlot, from);
  });

  it('finishes a deployment when the Temporal server restarts during monitoring', async () => {
    const from = (await live()).activeSlot;
    const to: Slot = from === 'blue' ? 'green' : 'blue';
    const handle = await start('v2.2.4', 10);
    await until('Monitoring');
    await stack.restartTemporal();
    const outcome = await result(handle);
    assert.equal(outcome.outcome, 'Succeeded', outcome.message);
    await assertLive(to, 'v2.2.4');
  });

  it('rolls back after consecutiveErrorLimit measurement errors when Prometheus stops during monitoring, never reporting success', async () => {
    const from = (await live()).activeSlot;
    const handle = await start('v2.2.5', 60);
    const status = await until('Monitoring');
    assert.equal(status.phase, 'Monitoring');
    await stack.stopPrometheus();
    try {
      const outcome = await result(handle);
      assert.equal(outcome.outcome, 'RolledBack', outcome.message);
      assert.equal(outcome.reason, 'MeasurementErrors');
      assert.ok((outcome.status.monitor?.errors ?? 0) >= 4, JSON.stringify(outcome.status.monitor));
      assert.equal((await live()).activeSlot, from);
    } finally {
      await stack.startPrometheus();
    }
  });

  it('keeps every credential the worker holds out of every history', async () => {
    const client = stack.deployments!;
    const runs = await client.list({ limit: 50 });
    assert.ok(runs.length >= 7, `the drills' deployments are listed (${runs.length})`);
    const workflow = new (await import('@temporalio/client')).Client({
      connection: stack.connection!,
      namespace: 'default',
    }).workflow;
    // The worker's connections all came through mutual TLS; none was refused.
    assert.ok(
      tls.accepted >= 1 && tls.refused === 0,
      `TLS connections: ${tls.accepted} accepted, ${tls.refused} refused`,
    );
    const keyLines = clientKey.split('\n').filter((line) => line.length > 40);
    assert.ok(keyLines.length > 5);
    let bytes = 0;
    for (const run of runs) {
      const history = await workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      const text = JSON.stringify(history, (_key, value: unknown) =>
        value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value,
      );
      bytes += text.length;
      assert.ok(!text.includes(PROMETHEUS_TOKEN), `the Prometheus token is in ${run.workflowId}/${run.runId}`);
      assert.ok(!text.includes(WEBHOOK_SECRET), `the webhook URL's secret is in ${run.workflowId}/${run.runId}`);
      assert.ok(!text.includes(TEMPORAL_API_KEY), `the Temporal API key is in ${run.workflowId}/${run.runId}`);
      for (const line of keyLines)
        assert.ok(!text.includes(line), `the worker's TLS key is in ${run.workflowId}/${run.runId}`);
    }
    assert.ok(bytes > 10_000, 'the histories were read');
  });
});
