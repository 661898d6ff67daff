import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDeploymentSpec, SpecValidationError } from '../../src/spec/deployment-spec.js';

function issuesOf(input: unknown): Record<string, string> {
  try {
    parseDeploymentSpec(input);
  } catch (error) {
    assert.ok(error instanceof SpecValidationError);
    return Object.fromEntries(error.issues.map((i) => [i.path, i.message]));
  }
  assert.fail('the spec was accepted');
}

describe('deployment spec', () => {
  it('fills in the seed procedure numbers as defaults', () => {
    const spec = parseDeploymentSpec({ app: 'detection-api', image: 'registry.internal/detection-api:v2.2.0' });
    assert.equal(spec.namespace, 'default');
    assert.equal(spec.version, 'v2.2.0');
    assert.equal(spec.replicas, 3);
    assert.equal(spec.readinessTimeoutSeconds, 180);
    assert.equal(spec.service, 'detection-api-service');
    assert.equal(spec.container, 'detection-api');
    assert.equal(spec.slotLabelKey, 'slot');
    assert.deepEqual(
      [spec.smoke.timeoutSeconds, spec.smoke.latencyBudgetMs, spec.smoke.latencyBudgetAction, spec.smoke.suite],
      [5, 100, 'warn', 'detection-api'],
    );
    assert.deepEqual([spec.monitor.durationSeconds, spec.monitor.intervalSeconds], [300, 5]);
    assert.equal(spec.monitor.consecutiveErrorLimit, 4);
    assert.equal(spec.monitor.restartLimit, 0);
    assert.deepEqual([spec.gates.approveBeforeSwitch, spec.gates.approveBeforeCleanup], [false, false]);
    assert.deepEqual(
      spec.monitor.slos.map((s) => [s.name, s.comparison, s.threshold, s.gate]),
      [
        ['error-rate', '<', 0.01, true],
        ['p95-latency', '<', 0.5, true],
        ['tak-output-latency', '<', 2, true],
        ['geolocation-accuracy', '>', 0.95, true],
        ['cpu-per-pod', '<', 0.7, false],
        ['memory-per-pod', '<', 402653184, false],
      ],
    );
  });

  it('scopes every default SLO query to the app, namespace and slot, and makes the error rate a ratio', () => {
    const spec = parseDeploymentSpec({ app: 'a', image: 'a:1' });
    for (const slo of spec.monitor.slos) {
      assert.match(slo.query, /app="\{\{app\}\}",namespace="\{\{namespace\}\}",slot="\{\{slot\}\}"/, slo.name);
    }
    const errorRate = spec.monitor.slos.find((s) => s.name === 'error-rate')!.query;
    const selector = 'app="{{app}}",namespace="{{namespace}}",slot="{{slot}}",version="{{version}}"';
    assert.equal(
      errorRate,
      `(sum(rate(http_requests_total{${selector},status=~"5.."}[{{window}}])) or vector(0)) / sum(rate(http_requests_total{${selector}}[{{window}}]))`,
    );
  });

  it('lists every offending field with its path and rule at once', () => {
    const issues = issuesOf({
      app: 'Detection_API',
      image: 'registry.internal/detection-api',
      replicas: 0,
      monitor: { intervalSeconds: 600, slos: [{ name: 'x', query: 'up{slot="{{slt}}"}', comparison: '<', threshold: 1 }] },
      gates: { approveBeforeSwitch: 'yes' },
      smoke: { suite: 'http' },
      replica: 3,
    });
    assert.deepEqual(Object.keys(issues).sort(), [
      '(spec)',
      'app',
      'gates.approveBeforeSwitch',
      'image',
      'monitor.intervalSeconds',
      'monitor.slos.0.query',
      'replicas',
      'smoke.checks',
    ]);
    assert.match(issues['app']!, /RFC 1123 label/);
    assert.match(issues['image']!, /must name a tag or a digest/);
    assert.match(issues['replicas']!, /at least 1/);
    assert.match(issues['monitor.intervalSeconds']!, /must not exceed monitor.durationSeconds \(300\)/);
    assert.match(issues['monitor.slos.0.query']!, /unknown placeholder \{\{slt\}\}/);
    assert.match(issues['smoke.checks']!, /suite 'http' needs at least one check/);
    assert.match(issues['(spec)']!, /Unrecognized key\(s\) in object: 'replica'/);
  });

  it('requires app and image and names them', () => {
    assert.deepEqual(Object.keys(issuesOf({})).sort(), ['app', 'image']);
  });

  it('accepts OCI references with registries, ports, paths, tags and digests', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    for (const image of [
      'detection-api:v2.2.0',
      'registry.internal/detection-api:v2.2.0',
      'localhost:5000/team/detection-api:2.2.0-rc.1',
      'ghcr.io/org/sub/detection-api:latest',
      `registry.internal/detection-api@${digest}`,
      `registry.internal/detection-api:v2.2.0@${digest}`,
    ]) {
      assert.equal(parseDeploymentSpec({ app: 'a', image }).image, image);
    }
    assert.equal(parseDeploymentSpec({ app: 'a', image: `r/a@${digest}` }).version, 'aaaaaaaaaaaa');
  });

  it('rejects references that are not OCI references or name no tag or digest', () => {
    for (const image of ['Detection-API:v1', 'registry.internal/detection-api', 'a:b:c', 'a:', 'a@sha256:short', ' a:1', 'a:-bad']) {
      assert.ok('image' in issuesOf({ app: 'a', image }), image);
    }
  });

  it('renders declarative smoke checks with their defaults', () => {
    const spec = parseDeploymentSpec({
      app: 'a',
      image: 'a:1',
      smoke: { suite: 'http', checks: [{ name: 'home', path: '/', expectJson: { status: ['ok', 'degraded'] } }] },
    });
    assert.deepEqual(spec.smoke.checks[0], {
      name: 'home',
      method: 'GET',
      path: '/',
      headers: {},
      expectStatus: 200,
      expectJson: { status: ['ok', 'degraded'] },
      expectPresent: [],
    });
  });
});
