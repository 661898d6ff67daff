import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDeploymentSpec, SpecValidationError } from '../../src/deployment-spec/deployment-spec.js';
import { routeName, targetOf } from '../../src/shared/target.js';
import { formatShare, smallestStep, TRAFFIC_ROUTERS } from '../../src/shared/traffic.js';

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
  it("fills in the procedure's numbers, and checks any HTTP service has, as defaults", () => {
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
      [5, 100, 'warn', 'http'],
    );
    assert.deepEqual(
      spec.smoke.checks.map((c) => [c.name, c.method, c.path, c.expectStatus]),
      [
        ['health', 'GET', '/health', 200],
        ['ready', 'GET', '/ready', 200],
      ],
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
      ],
    );
  });

  it("keeps the detection API's procedure table and seven checks as its preset, in its example spec", async () => {
    const { loadSpec } = await import('../../src/client/spec-source.js');
    const spec = loadSpec({ file: 'examples/detection-api/bluegreen.yaml' });
    assert.equal(spec.smoke.suite, 'detection-api');
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
    for (const slo of spec.monitor.slos)
      assert.match(
        slo.query,
        /app="\{\{app\}\}",namespace="\{\{namespace\}\}",slot="\{\{slot\}\}",version="\{\{version\}\}"/,
        slo.name,
      );
  });

  it('scopes every default SLO query to the app, namespace, slot, version and run, and makes the error rate a ratio', () => {
    const spec = parseDeploymentSpec({ app: 'a', image: 'a:1' });
    for (const slo of spec.monitor.slos) {
      assert.match(slo.query, /app="\{\{app\}\}",namespace="\{\{namespace\}\}",slot="\{\{slot\}\}"/, slo.name);
    }
    const errorRate = spec.monitor.slos.find((s) => s.name === 'error-rate')!.query;
    const selector = 'app="{{app}}",namespace="{{namespace}}",slot="{{slot}}",version="{{version}}",run=~"{{run}}|"';
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
      monitor: {
        intervalSeconds: 600,
        slos: [{ name: 'x', query: 'up{slot="{{slt}}"}', comparison: '<', threshold: 1 }],
      },
      gates: { approveBeforeSwitch: 'yes' },
      smoke: { suite: 'http', checks: [] },
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
    for (const image of [
      'Detection-API:v1',
      'registry.internal/detection-api',
      'a:b:c',
      'a:',
      'a@sha256:short',
      ' a:1',
      'a:-bad',
    ]) {
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

describe('deployment spec: the canary strategy', () => {
  const base = { app: 'detection-api', image: 'registry.internal/detection-api:v2.2.0' };

  it('defaults to blue-green through the Service selector, and to the procedure steps for a canary by replica ratio', () => {
    const blueGreen = parseDeploymentSpec(base);
    assert.deepEqual([blueGreen.strategy, blueGreen.traffic.router], ['blueGreen', 'service-selector']);
    const canary = parseDeploymentSpec({ ...base, strategy: 'canary', replicas: 20 });
    assert.deepEqual([canary.strategy, canary.traffic.router], ['canary', 'replica-ratio']);
    assert.deepEqual(
      canary.canary.steps.map((s) => [s.weight, s.holdSeconds, s.untilPromote]),
      [
        [5, 600, false],
        [25, 600, false],
        [50, 600, false],
        [100, 600, false],
      ],
    );
    assert.deepEqual([canary.canary.minRequests, canary.canary.maxHoldExtensionSeconds], [50, 600]);
  });

  it('rejects a plan replica-ratio cannot express, naming the step, what it can set and what would do', () => {
    const issues = issuesOf({ ...base, strategy: 'canary', replicas: 3 });
    assert.match(
      issues['canary.steps.0.weight'] ?? '',
      /^5 % cannot be expressed by replica-ratio with replicas 3: beside the fully scaled stable slot the canary's share is c\/\(3\+c\), so the weights it can set \(within 1 point\) are 25, 40, 50 and 100; set one of those, replicas to 16 \(the fewest that can\), or traffic.router gateway-api or ingress$/,
    );
    assert.equal(issues['canary.steps.1.weight'], undefined, '25 % is 1 canary beside 3 stable replicas');
    assert.doesNotThrow(() =>
      parseDeploymentSpec({ ...base, strategy: 'canary', replicas: 3, traffic: { router: 'gateway-api' } }),
    );
    assert.doesNotThrow(() =>
      parseDeploymentSpec({
        ...base,
        strategy: 'canary',
        replicas: 3,
        canary: { steps: [{ weight: 25 }, { weight: 50 }, { weight: 100 }] },
      }),
    );
  });

  it('rejects steps that do not rise, a last step short of 100 %, and routers that do not fit the strategy', () => {
    const steps = issuesOf({
      ...base,
      strategy: 'canary',
      traffic: { router: 'gateway-api' },
      canary: { steps: [{ weight: 50 }, { weight: 20 }, { weight: 90 }] },
    });
    assert.equal(steps['canary.steps.1.weight'], 'weights must rise step by step: 20 follows 50');
    assert.equal(steps['canary.steps.2.weight'], 'the last step must send 100 % to the canary (it sends 90)');
    assert.match(
      issuesOf({ ...base, traffic: { router: 'replica-ratio' } })['traffic.router'] ?? '',
      /strategy blueGreen switches all traffic at once/,
    );
    assert.match(
      issuesOf({ ...base, strategy: 'canary', traffic: { router: 'service-selector' } })['traffic.router'] ?? '',
      /a canary needs replica-ratio, gateway-api, ingress/,
    );
    assert.match(
      issuesOf({ ...base, strategy: 'canary', canary: { steps: [{ weight: 0 }] } })['canary.steps.0.weight'] ?? '',
      /weight must be at least 1/,
    );
    assert.match(issuesOf({ ...base, strategy: 'rolling' })['strategy'] ?? '', /Invalid enum value/);
  });

  it('names the objects each router writes, with defaults, and refuses a field for a router that never reads it', () => {
    const gateway = parseDeploymentSpec({ ...base, strategy: 'canary', traffic: { router: 'gateway-api' } });
    assert.deepEqual(gateway.traffic, {
      router: 'gateway-api',
      slotServicePattern: '{{app}}-{{slot}}',
      httpRoute: 'detection-api',
    });
    const ingress = parseDeploymentSpec({ ...base, traffic: { router: 'ingress', ingress: 'edge' } });
    assert.deepEqual(
      [ingress.strategy, ingress.traffic.ingress, ingress.traffic.canaryIngress],
      ['blueGreen', 'edge', 'edge-canary'],
      'blue-green through an Ingress is its backend switch',
    );
    assert.deepEqual(targetOf(ingress).traffic, {
      router: 'ingress',
      slotServices: { blue: 'detection-api-blue', green: 'detection-api-green' },
      ingress: 'edge',
      canaryIngress: 'edge-canary',
    });
    assert.equal(routeName(targetOf(ingress)), 'ingress edge');
    assert.equal(routeName(targetOf(gateway)), 'httproute detection-api');
    assert.equal(routeName(targetOf(parseDeploymentSpec(base))), 'detection-api-service');
    const custom = targetOf(
      parseDeploymentSpec({
        ...base,
        traffic: { router: 'gateway-api', slotServicePattern: '{{app}}-{{slot}}-svc', httpRoute: 'edge-route' },
      }),
    );
    assert.deepEqual(custom.traffic, {
      router: 'gateway-api',
      slotServices: { blue: 'detection-api-blue-svc', green: 'detection-api-green-svc' },
      httpRoute: 'edge-route',
    });

    const misplaced = issuesOf({
      ...base,
      traffic: { router: 'gateway-api', ingress: 'edge', canaryIngress: 'edge-canary' },
    });
    assert.equal(
      misplaced['traffic.ingress'],
      'ingress is read only by traffic.router ingress (the router is gateway-api)',
    );
    assert.equal(
      misplaced['traffic.canaryIngress'],
      'canaryIngress is read only by traffic.router ingress (the router is gateway-api)',
    );
    assert.equal(
      issuesOf({ ...base, traffic: { httpRoute: 'edge' } })['traffic.httpRoute'],
      'httpRoute is read only by traffic.router gateway-api (the router is service-selector)',
    );
    assert.equal(
      issuesOf({ ...base, traffic: { router: 'gateway-api', slotServicePattern: '{{app}}-svc' } })[
        'traffic.slotServicePattern'
      ],
      'slotServicePattern must contain {{slot}} so the two slots differ',
    );
    assert.match(
      issuesOf({ ...base, traffic: { router: 'ingress', ingress: 'Not_A_Name' } })['traffic.ingress'] ?? '',
      /ingress must be an RFC 1123 subdomain/,
    );
  });

  it('knows the smallest step of each router', () => {
    assert.deepEqual(
      TRAFFIC_ROUTERS.map((router) => [router, formatShare(smallestStep(router, 3))]),
      [
        ['service-selector', '100'],
        ['replica-ratio', '25'],
        ['gateway-api', '1'],
        ['ingress', '1'],
      ],
    );
    assert.equal(formatShare(smallestStep('replica-ratio', 19)), '5');
  });

  it('takes an SLO held against the stable slot, with a factor or an offset', () => {
    const spec = parseDeploymentSpec({
      ...base,
      monitor: {
        slos: [
          { name: 'error-rate', query: 'up', comparison: '<=', threshold: 0.05, comparedToStable: { offset: 0.005 } },
        ],
      },
    });
    assert.deepEqual(spec.monitor.slos[0]?.comparedToStable, { factor: 1, offset: 0.005 });
    const bad = issuesOf({
      ...base,
      monitor: { slos: [{ name: 'p95', query: 'up', comparison: '<', threshold: 1, comparedToStable: { factor: 0 } }] },
    });
    assert.equal(bad['monitor.slos.0.comparedToStable.factor'], 'comparedToStable.factor must be greater than 0');
  });
});
