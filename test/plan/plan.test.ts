/**
 * The plan's pure parts: what changed in the live state since a plan read it, and the SLO checks'
 * verdicts from the measurements a plan took.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { liveChanges, replicaRatioMismatch, sloChecks } from '../../src/plan/plan.js';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import type { LiveState } from '../../src/shared/slots.js';
import type { Measurement } from '../../src/shared/analysis.js';

const slot = (name: 'blue' | 'green', image: string, replicas: number, run: string | null = null) => ({
  slot: name,
  deployment: `app-${name}`,
  image,
  version: image.split(':')[1]!,
  run,
  replicas,
  readyReplicas: replicas,
  updatedReplicas: replicas,
  availableReplicas: replicas,
});
const planned: LiveState = {
  activeSlot: 'blue',
  routing: 'httproute app weighs app-blue 100, app-green 0',
  slots: { blue: slot('blue', 'r/app:v1', 3), green: slot('green', 'r/app:v0', 0) },
};

describe('liveChanges', () => {
  it('finds nothing when nothing changed', () => {
    assert.deepEqual(liveChanges(planned, structuredClone(planned)), []);
  });

  it('names each change: the live slot, an image, replicas, a new rollout, the router', () => {
    assert.deepEqual(liveChanges(planned, { ...planned, activeSlot: 'green' }), ['the live slot was blue, is green']);
    const now = structuredClone(planned);
    now.slots.green = slot('green', 'r/app:v9', 2, 'run-9');
    now.routing = 'httproute app weighs app-blue 90, app-green 10';
    assert.deepEqual(liveChanges(planned, now), [
      'the router held "httproute app weighs app-blue 100, app-green 0", holds "httproute app weighs app-blue 90, app-green 10"',
      "green's image was r/app:v0, is r/app:v9",
      "green's replicas were 0, are 2",
      'green was rolled out again since (run run-9)',
    ]);
  });
});

describe('replicaRatioMismatch', () => {
  const spec = (router: string, strategy = 'canary') =>
    parseDeploymentSpec({
      app: 'app',
      image: 'r/app:v2',
      replicas: 2,
      strategy,
      traffic: { router },
      ...(strategy === 'canary'
        ? {
            canary: {
              steps: [
                { weight: 50, holdSeconds: 60 },
                { weight: 100, holdSeconds: 60 },
              ],
            },
          }
        : {}),
    });

  it('refuses a replica-ratio canary whose live slot runs another count than replicas, naming the field and both counts', () => {
    assert.equal(
      replicaRatioMismatch(spec('replica-ratio'), slot('blue', 'r/app:v1', 3)),
      'replicas: replica-ratio splits traffic by replica counts, and its steps are sized beside 2 stable ' +
        'replicas, but the live slot blue (app-blue) runs 3: set replicas to 3, or scale app-blue to 2 before the canary',
    );
  });

  it('lets through equal counts, and another router', () => {
    assert.equal(replicaRatioMismatch(spec('replica-ratio'), slot('blue', 'r/app:v1', 2)), null);
    assert.equal(replicaRatioMismatch(spec('gateway-api'), slot('blue', 'r/app:v1', 3)), null);
    assert.equal(replicaRatioMismatch(spec('service-selector', 'blueGreen'), slot('blue', 'r/app:v1', 3)), null);
  });
});

describe('sloChecks', () => {
  const m = (
    name: string,
    result: Measurement['result'],
    value: number | null,
    gate = true,
    message?: string,
  ): Measurement => ({
    name,
    value,
    comparison: '<',
    threshold: 0.01,
    gate,
    result,
    ...(message ? { message } : {}),
  });

  it("judges the live slot's values now and the new version's query, each with its reason", () => {
    const checks = sloChecks(
      {
        live: [
          m('error-rate', 'Successful', 0.001),
          m('p95', 'Failed', 0.9),
          m('cpu', 'Failed', 0.9, false),
          m('queue', 'Inconclusive', null, true, 'no data'),
        ],
        next: [
          m('error-rate', 'Inconclusive', null),
          m('p95', 'Error', null, true, 'query rejected (bad_data): parse error'),
          m('cpu', 'Successful', 0.2),
        ],
      },
      'blue',
    );
    assert.deepEqual(
      checks.map((c) => [c.name, c.verdict]),
      [
        ['error-rate on blue', 'ok'],
        ['p95 on blue', 'fail'],
        ['cpu on blue', 'warning'],
        ['queue on blue', 'warning'],
        ['error-rate for the new version', 'ok'],
        ['p95 for the new version', 'fail'],
        ['cpu for the new version', 'warning'],
      ],
    );
    assert.match(checks[1]!.detail, /the stability check would refuse to deploy onto it/);
    assert.equal(checks[5]!.detail, 'query rejected (bad_data): parse error');
    assert.match(checks[6]!.detail, /already has data \(0\.2\)/);
  });
});
