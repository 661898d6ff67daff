/**
 * Bad input, generated: thousands of specs built field by field from valid and invalid values,
 * where the generator knows which fields it broke. Every spec is accepted exactly when nothing was
 * broken; a rejected one names at least every broken field by its path; nothing else is ever
 * thrown; and the worker's validateSpec activity rejects it as non-retryable InvalidInput before
 * any platform call.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import fc from 'fast-check';
import { createActivities } from '../../src/activities/index.js';
import { ErrorType } from '../../src/shared/errors.js';
import { parseDeploymentSpec, SpecValidationError } from '../../src/deployment-spec/deployment-spec.js';
import { RecordingPlatformDouble } from '../helpers/recording-platform-double.js';

/** A field's value and, when it is invalid, the path the parser must name. */
interface Part {
  value: unknown;
  bad: string | null;
}

const ok = (arbitrary: fc.Arbitrary<unknown>): fc.Arbitrary<Part> => arbitrary.map((value) => ({ value, bad: null }));
const bad = (path: string, arbitrary: fc.Arbitrary<unknown>): fc.Arbitrary<Part> =>
  arbitrary.map((value) => ({ value, bad: path }));
/** Valid most of the time, so that whole valid specs are common too. */
const field = (valid: fc.Arbitrary<Part>, invalid: fc.Arbitrary<Part>) =>
  fc.oneof({ arbitrary: valid, weight: 8 }, { arbitrary: invalid, weight: 1 });

const dnsLabel = fc.stringMatching(/^[a-z]([-a-z0-9]{0,20}[a-z0-9])?$/);
const app = field(
  ok(dnsLabel),
  bad('app', fc.constantFrom('Detection_API', '', '-lead', 'trail-', 'a'.repeat(64), 42, null, ['x'])),
);
const image = field(
  ok(
    fc
      .tuple(
        fc.stringMatching(/^[a-z0-9]{1,8}(\/[a-z0-9]{1,8}){0,2}$/),
        fc.stringMatching(/^v?[0-9]{1,2}\.[0-9]{1,2}(-rc[0-9])?$/),
      )
      .map(([repo, tag]) => `${repo}:${tag}`),
  ),
  bad('image', fc.constantFrom('no-tag', 'Upper:v1', 'a:', 'a:b:c', '', 7, { name: 'a' }, 'a@sha256:short')),
);
const namespace = field(ok(dnsLabel), bad('namespace', fc.constantFrom('Prod!', 'x'.repeat(70), 3)));
const replicas = field(
  ok(fc.integer({ min: 1, max: 1000 })),
  bad('replicas', fc.constantFrom(0, -1, 1.5, 1001, 'three', null)),
);
const readiness = field(
  ok(fc.integer({ min: 1, max: 3600 })),
  bad('readinessTimeoutSeconds', fc.constantFrom(0, -5, 2.5, '60')),
);
const scaleDownDelay = field(
  ok(fc.integer({ min: 0, max: 600 })),
  bad('scaleDownDelaySeconds', fc.constantFrom(-1, 0.5, 'soon')),
);

const slo = field(
  ok(
    fc.record({
      name: fc.stringMatching(/^[a-z][-a-z0-9_]{0,15}$/),
      query: fc.constantFrom(
        'up{app="{{app}}",slot="{{slot}}"}',
        'sum(rate(x{version="{{version}}"}[{{window}}]))',
        'vector(1)',
      ),
      comparison: fc.constantFrom('<', '<=', '>', '>='),
      threshold: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
    }),
  ),
  fc.oneof(
    bad('monitor.slos.0.query', fc.constant({ name: 'x', query: 'up{slot="{{slt}}"}', comparison: '<', threshold: 1 })),
    bad('monitor.slos.0.comparison', fc.constant({ name: 'x', query: 'up', comparison: '!=', threshold: 1 })),
    bad('monitor.slos.0.threshold', fc.constant({ name: 'x', query: 'up', comparison: '<', threshold: 'one' })),
    bad('monitor.slos.0.name', fc.constant({ name: 'Has Spaces', query: 'up', comparison: '<', threshold: 1 })),
  ),
);

const monitor: fc.Arbitrary<Part[]> = fc
  .tuple(
    fc.integer({ min: 1, max: 3600 }),
    fc.double({ min: 0, max: 1, noNaN: true }),
    fc.constantFrom('30s', '1m', '5m', '1h30m'),
    fc.option(slo, { nil: undefined }),
    fc.nat(9),
  )
  .map(([duration, share, window, oneSlo, flaw]) => {
    const interval = Math.max(1, Math.floor(duration * share));
    const value: Record<string, unknown> = { durationSeconds: duration, intervalSeconds: interval, window };
    const parts: Part[] = [];
    if (oneSlo) {
      value['slos'] = [oneSlo.value];
      if (oneSlo.bad) parts.push({ value: null, bad: oneSlo.bad });
    }
    // One flaw in ten monitors: each breaks a different rule.
    if (flaw === 1) {
      value['intervalSeconds'] = duration + 1;
      parts.push({ value: null, bad: 'monitor.intervalSeconds' });
    } else if (flaw === 2) {
      value['window'] = 'soon';
      parts.push({ value: null, bad: 'monitor.window' });
    } else if (flaw === 3) {
      value['durationSeconds'] = 0;
      value['intervalSeconds'] = 1;
      parts.push({ value: null, bad: 'monitor.durationSeconds' });
    }
    return [{ value, bad: null }, ...parts];
  });

const specParts = fc.record(
  {
    app,
    image,
    namespace,
    replicas,
    readinessTimeoutSeconds: readiness,
    scaleDownDelaySeconds: scaleDownDelay,
    monitor,
    // A misspelt key (replica for replicas), now and then: strict parsing names it.
    replica: field(ok(fc.constant(undefined)), bad('(spec)', fc.constant(3))),
  },
  { requiredKeys: ['app', 'image'] },
);

function assemble(parts: Record<string, Part | Part[]>): { spec: Record<string, unknown>; broken: Set<string> } {
  const spec: Record<string, unknown> = {};
  const broken = new Set<string>();
  for (const [key, part] of Object.entries(parts)) {
    const [head, ...rest] = Array.isArray(part) ? part : [part];
    if (head!.value !== undefined) spec[key] = head!.value;
    for (const p of [head!, ...rest]) if (p.bad) broken.add(p.bad);
  }
  return { spec, broken };
}

describe('deployment spec: generated input', () => {
  it('accepts a spec exactly when no field was broken, and names every broken field otherwise', () => {
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(specParts, (parts) => {
        const { spec, broken } = assemble(parts as Record<string, Part | Part[]>);
        let error: unknown = null;
        try {
          const parsed = parseDeploymentSpec(spec);
          assert.ok(parsed.monitor.intervalSeconds <= parsed.monitor.durationSeconds);
          assert.match(parsed.version, /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);
        } catch (e) {
          error = e;
        }
        if (broken.size === 0) {
          assert.equal(error, null, `a valid spec was rejected: ${JSON.stringify(spec)}: ${String(error)}`);
          accepted += 1;
          return;
        }
        assert.ok(
          error instanceof SpecValidationError,
          `expected a SpecValidationError for ${JSON.stringify(spec)}, got ${String(error)}`,
        );
        const paths = new Set(error.issues.map((i) => i.path));
        for (const path of broken)
          assert.ok(paths.has(path), `${path} not named for ${JSON.stringify(spec)}: ${[...paths].join(', ')}`);
        assert.ok(error.issues.every((i) => i.message.length > 0));
        rejected += 1;
      }),
      { numRuns: 3000 },
    );
    // The generator must exercise both sides, or the property proves little.
    assert.ok(accepted > 300 && rejected > 300, `accepted ${accepted}, rejected ${rejected}`);
  });

  it('rejects every invalid spec in the worker before any platform call, as non-retryable InvalidInput', async () => {
    const double = new RecordingPlatformDouble();
    const activities = createActivities({ platform: double, smoke: double, slo: double });
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(specParts, async (parts) => {
        const { spec, broken } = assemble(parts as Record<string, Part | Part[]>);
        if (broken.size === 0) return;
        const error = await activities.validateSpec(spec).then(
          () => null,
          (e: unknown) => e,
        );
        assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(error)}`);
        assert.equal(error.type, ErrorType.InvalidInput);
        assert.equal(error.nonRetryable, true);
        for (const path of broken)
          assert.ok(error.message.includes(`${path}:`), `${path} missing from: ${error.message}`);
        rejected += 1;
      }),
      { numRuns: 2000 },
    );
    assert.ok(rejected > 300, `only ${rejected} invalid specs generated`);
    assert.deepEqual(double.calls, [], 'no platform call was made');
  });
});
