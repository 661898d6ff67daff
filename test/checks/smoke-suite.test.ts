/**
 * The smoke suite against the real reference service: a healthy version passes all seven checks,
 * and each injected fault fails at the check that should catch it, with a message that says so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HttpSmokeRunner, SMOKE_CONNECT_GRACE_SECONDS } from '../../src/checks/smoke-suite.js';
import type { SmokeReport } from '../../src/activities/contract.js';
import type { DeploymentSpecInput } from '../../src/deployment-spec/deployment-spec.js';
import { REFERENCE_TARGET, testSpec } from '../helpers/deployment-harness.js';
import {
  freePort,
  postDetection,
  SEED_DETECTION,
  startDetectionApi,
  TakListener,
  tempQueuePath,
} from '../helpers/detection-api-process.js';

const runner = new HttpSmokeRunner();
const progress = { heartbeat: () => undefined, signal: new AbortController().signal };

async function smoke(
  endpoint: string,
  overrides: Partial<NonNullable<DeploymentSpecInput['smoke']>> = {},
): Promise<SmokeReport> {
  const spec = testSpec({ smoke: { endpoint, ...overrides } });
  return await runner.runSmokeSuite({ target: REFERENCE_TARGET, slot: 'green', smoke: spec.smoke }, progress);
}

/**
 * A latency budget that a loaded machine cannot miss, for the tests whose subject is not latency:
 * the preset's 100 ms turns a check answered slowly under the suite's load into a warning.
 */
const UNHURRIED = { latencyBudgetMs: 5000 };

const verdicts = (report: SmokeReport) => Object.fromEntries(report.checks.map((c) => [c.name, c.verdict]));
const message = (report: SmokeReport, name: string) => report.checks.find((c) => c.name === name)?.message ?? '';

async function withService<T>(env: Record<string, string>, body: (url: string) => Promise<T>): Promise<T> {
  const api = await startDetectionApi({ TAK_ADDRESS: '127.0.0.1:1', QUEUE_PATH: tempQueuePath(), ...env });
  try {
    return await body(api.url);
  } finally {
    api.kill('SIGKILL');
    await api.exited;
  }
}

describe('smoke suite against the reference detection API', () => {
  let tak: TakListener;
  before(async () => {
    tak = await TakListener.start();
  });
  after(async () => {
    await tak?.close();
  });

  it('passes all seven checks of a healthy version', async () => {
    const report = await withService({ TAK_ADDRESS: `127.0.0.1:${tak.port}` }, (url) => smoke(url, UNHURRIED));
    assert.equal(report.passed, true, JSON.stringify(report.checks));
    assert.deepEqual(verdicts(report), {
      health: 'passed',
      ready: 'passed',
      'api-happy-path': 'passed',
      'accuracy-flag': 'passed',
      'offline-queue': 'passed',
      metrics: 'passed',
      latency: 'passed',
    });
    assert.match(message(report, 'accuracy-flag'), /accuracy_flag GREEN/);
    assert.match(message(report, 'offline-queue'), /status SYNCED/);
    assert.ok(report.checks.every((c) => typeof c.latencyMs === 'number'));
  });

  it('fails the API checks when the version answers 5xx', async () => {
    const report = await withService({ FAULT_ERROR_RATE: '1' }, (url) => smoke(url, UNHURRIED));
    assert.equal(report.passed, false);
    assert.deepEqual(verdicts(report), {
      health: 'passed',
      ready: 'passed',
      'api-happy-path': 'failed',
      'accuracy-flag': 'failed',
      'offline-queue': 'failed',
      metrics: 'passed',
      latency: 'passed',
    });
    assert.match(
      message(report, 'api-happy-path'),
      /expected a 2xx answer with a detection_id, got HTTP 500 .*injected fault/,
    );
    assert.match(message(report, 'accuracy-flag'), /not checked: the API happy path failed/);
  });

  it('fails the health check when the version reports itself unhealthy', async () => {
    const report = await withService({ QUEUE_MAX_AGE_SECONDS: '0.5' }, async (url) => {
      await postDetection(url, SEED_DETECTION); // TAK is down: it stays queued and ages
      await new Promise((resolve) => setTimeout(resolve, 800));
      return await smoke(url);
    });
    assert.equal(verdicts(report)['health'], 'failed');
    assert.match(
      message(report, 'health'),
      /expected HTTP 200 \{"status":"healthy"\}, got HTTP 503 .*oldest undelivered detection waits/,
    );
  });

  it('warns on a slow answer by default, and fails it when the spec says so', async () => {
    await withService({ FAULT_LATENCY_MS: '150' }, async (url) => {
      const warned = await smoke(url);
      assert.equal(verdicts(warned)['latency'], 'warning');
      assert.equal(warned.passed, true);
      assert.match(message(warned, 'latency'), /\d+ ms, over the 100 ms budget/);
      const strict = await smoke(url, { latencyBudgetAction: 'fail' });
      assert.equal(verdicts(strict)['latency'], 'failed');
      assert.equal(strict.passed, false);
    });
  });

  it('waits for an endpoint that refuses connections at first (a Service whose rules are still being written), then runs its checks', async () => {
    const port = await freePort();
    const started = performance.now();
    // The suite begins while nothing listens on the port; the version starts listening a while later.
    const report = smoke(`http://127.0.0.1:${port}`, UNHURRIED);
    const result = await withService(
      { TAK_ADDRESS: `127.0.0.1:${tak.port}`, PORT: String(port) },
      async () => await report,
    );
    assert.equal(result.passed, true, JSON.stringify(result.checks));
    assert.equal(result.checks.length, 7);
    assert.ok(performance.now() - started < SMOKE_CONNECT_GRACE_SECONDS * 1000, 'within the grace');
  });

  it('reports a version that does not answer as failed checks, not a crash, once its connection grace has passed', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const started = performance.now();
    const report = await new HttpSmokeRunner({ connectGraceSeconds: 1 }).runSmokeSuite(
      { target: REFERENCE_TARGET, slot: 'green', smoke: testSpec({ smoke: { endpoint: url } }).smoke },
      progress,
    );
    assert.ok(performance.now() - started >= 1000, 'it waited for the endpoint to accept a connection');
    assert.equal(report.passed, false);
    assert.equal(report.checks.length, 7);
    assert.ok(report.checks.every((c) => c.verdict === 'failed'));
    assert.equal(message(report, 'health'), `connection refused at ${url}/health`);
  });

  it('runs a declarative suite and names the field that did not match', async () => {
    const report = await withService({ APP_VERSION: 'v9' }, (url) =>
      smoke(url, {
        ...UNHURRIED,
        suite: 'http',
        checks: [
          {
            name: 'ready',
            path: '/ready',
            expectJson: { status: 'ready', version: ['v8', 'v9'] },
            expectPresent: ['slot'],
          },
          {
            name: 'create',
            method: 'POST',
            path: '/api/detections',
            body: SEED_DETECTION,
            expectStatus: 201,
            expectPresent: ['detection_id'],
          },
          { name: 'wrong-version', path: '/ready', expectJson: { version: 'v10' } },
          { name: 'missing', path: '/api/detections/nope', expectStatus: 200 },
        ],
      }),
    );
    assert.deepEqual(verdicts(report), {
      ready: 'passed',
      create: 'passed',
      'wrong-version': 'failed',
      missing: 'failed',
    });
    assert.equal(message(report, 'wrong-version'), 'expected version to be "v10", got "v9"');
    assert.match(message(report, 'missing'), /expected HTTP 200, got HTTP 404/);
  });
});
