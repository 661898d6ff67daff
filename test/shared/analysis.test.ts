/**
 * The monitor's arithmetic as pure functions: its limits tick by tick, the warm-up derived from the
 * scrape interval, and the durations and values people read.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  AnalysisResult,
  CANARY_REQUESTS_MEASUREMENT,
  formatValue,
  judgeCanaryTick,
  judgeMonitorTick,
  judgeValue,
  MonitorDecision,
  monitorWarmUp,
  promDurationSeconds,
  worst,
} from '../../src/shared/analysis.js';
import type { MonitorCounters } from '../../src/shared/analysis.js';
import {
  canaryReplicasFor,
  replicaRatioReplicas,
  replicaRatioShare,
  replicasNeededFor,
} from '../../src/shared/traffic.js';

const LIMITS = { failureLimit: 0, consecutiveErrorLimit: 4, inconclusiveLimit: 2 };
const ZERO: MonitorCounters = { failed: 0, consecutiveErrors: 0, inconclusive: 0 };
const { Successful, Failed, Inconclusive, Error } = AnalysisResult;

/** Runs a sequence of results through the limits; returns each decision. */
function decisions(
  results: AnalysisResult[],
  options: { warmUpTicks?: number; consecutive?: boolean; limits?: typeof LIMITS } = {},
): string[] {
  let counters = ZERO;
  return results.map((result, index) => {
    const judged = judgeMonitorTick(options.limits ?? LIMITS, counters, result, {
      warmingUp: index < (options.warmUpTicks ?? 0),
      consecutive: options.consecutive ?? true,
    });
    counters = judged.counters;
    return judged.decision;
  });
}

describe('judgeMonitorTick: the monitor limits', () => {
  it('breaches on the first failed tick with failureLimit 0, and after the limit otherwise', () => {
    assert.deepEqual(decisions([Successful, Failed]), ['Continue', 'Breach']);
    assert.deepEqual(decisions([Failed, Successful, Failed], { limits: { ...LIMITS, failureLimit: 1 } }), [
      'Continue',
      'Continue',
      'Breach',
    ]);
  });

  it('ends at consecutiveErrorLimit errors in a row; any other result resets the run', () => {
    assert.deepEqual(decisions([Error, Error, Error, Error]), ['Continue', 'Continue', 'Continue', 'ErrorLimit']);
    assert.deepEqual(
      decisions([Error, Error, Error, Inconclusive, Error, Error, Error]).includes(MonitorDecision.ErrorLimit),
      false,
    );
  });

  it('pauses after more than inconclusiveLimit Inconclusive ticks in a row, and counts afresh after the pause', () => {
    assert.deepEqual(decisions([Inconclusive, Inconclusive, Inconclusive]), ['Continue', 'Continue', 'Pause']);
    assert.deepEqual(decisions([Inconclusive, Inconclusive, Inconclusive, Inconclusive, Inconclusive, Inconclusive]), [
      'Continue',
      'Continue',
      'Pause',
      'Continue',
      'Continue',
      'Pause',
    ]);
  });

  it('does not count Inconclusive during the warm-up, but a breach there is a breach', () => {
    assert.deepEqual(decisions([Inconclusive, Inconclusive, Inconclusive, Inconclusive], { warmUpTicks: 3 }), [
      'Continue',
      'Continue',
      'Continue',
      'Continue',
    ]);
    assert.deepEqual(decisions([Inconclusive, Failed], { warmUpTicks: 3 }), ['Continue', 'Breach']);
  });

  it('counts "still no data", not "no data once": a Successful tick resets the run (not so before the warm-up existed)', () => {
    const scattered = [Inconclusive, Inconclusive, Successful, Inconclusive, Inconclusive, Successful, Inconclusive];
    assert.ok(!decisions(scattered).includes(MonitorDecision.Pause));
    assert.deepEqual(decisions(scattered, { consecutive: false }).indexOf(MonitorDecision.Pause), 3);
  });

  it('never passes on missing data: whatever the sequence, a Successful tick is never a breach or a pause', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(Successful, Failed, Inconclusive, Error), { maxLength: 60 }), (results) => {
        const out = decisions(results);
        results.forEach((result, i) => {
          if (result === Successful) assert.equal(out[i], MonitorDecision.Continue);
          if (out[i] === MonitorDecision.Pause) assert.equal(result, Inconclusive);
          if (out[i] === MonitorDecision.Breach) assert.equal(result, Failed);
        });
      }),
    );
  });
});

describe('monitorWarmUp: the warm-up from the scrape interval', () => {
  it('waits two scrapes and one tick; the spec may set it outright', () => {
    for (const [scrape, expected] of [
      [1, 7],
      [15, 35],
      [30, 65],
      [60, 125],
    ] as const) {
      const warmUp = monitorWarmUp({
        windowSeconds: 4 * scrape,
        intervalSeconds: 5,
        durationSeconds: 600,
        scrapeIntervalSeconds: scrape,
      });
      assert.deepEqual(
        [warmUp.seconds, warmUp.scrapeIntervalSeconds, warmUp.warnings],
        [expected, scrape, []],
        `scrape ${scrape} s`,
      );
    }
    assert.deepEqual(
      monitorWarmUp({
        windowSeconds: 60,
        intervalSeconds: 5,
        durationSeconds: 600,
        scrapeIntervalSeconds: 30,
        initialDelaySeconds: 10,
      }).seconds,
      10,
    );
  });

  it("assumes Prometheus's default 60 s when the interval cannot be read, and says so", () => {
    const warmUp = monitorWarmUp({
      windowSeconds: 60,
      intervalSeconds: 5,
      durationSeconds: 300,
      scrapeIntervalSeconds: null,
    });
    assert.equal(warmUp.seconds, 125);
    assert.match(
      warmUp.warnings[0]!,
      /monitor\.window \(60 s\) holds fewer than 2 scrapes at the targets' scrape interval \(Prometheus's default 60 s, assumed\)/,
    );
  });

  it('warns of a monitor that cannot judge at least 3 ticks after its warm-up', () => {
    const warmUp = monitorWarmUp({
      windowSeconds: 120,
      intervalSeconds: 10,
      durationSeconds: 60,
      scrapeIntervalSeconds: 15,
    });
    assert.deepEqual(warmUp.warnings, [
      'monitor.durationSeconds (60 s) leaves 2 judged tick(s) after a 40 s warm-up (scrape interval 15 s); make it at least 70 s',
    ]);
  });
});

describe('small arithmetic', () => {
  it('reads Prometheus durations', () => {
    assert.deepEqual(['1m', '1m30s', '500ms', '2h', '', '5x'].map(promDurationSeconds), [
      60,
      90,
      0.5,
      7200,
      Number.NaN,
      Number.NaN,
    ]);
  });

  it('rounds values for people', () => {
    assert.deepEqual([0.08728129174914948, 123.456, 3, null].map(formatValue), ['0.0873', '123', '3', 'no data']);
  });

  it('combines results with worst()', () => {
    assert.equal(worst([Successful, Inconclusive, Error]), Error);
    assert.equal(worst([]), Successful);
  });
});

describe('judgeCanaryTick: a canary tick against its thresholds, the stable slot and its requests', () => {
  const m = (name: string, value: number | null, threshold: number, comparison: '<' | '>' = '<') => ({
    name,
    value,
    comparison,
    threshold,
    gate: true,
    result: judgeValue(value, comparison, threshold),
  });
  const input = (
    canary: ReturnType<typeof m>[],
    stable: ReturnType<typeof m>[],
    canaryRequests: number | null = 500,
  ) => ({
    canary,
    stable,
    canaryRequests,
    stableRequests: 9500,
    minRequests: 100,
    comparedToStable: {},
  });

  it('is Successful with enough requests, and reports the share the canary served', () => {
    const tick = judgeCanaryTick(input([m('error-rate', 0.001, 0.01)], [m('error-rate', 0.002, 0.01)]));
    assert.equal(tick.result, AnalysisResult.Successful);
    assert.equal(tick.observedShare, 5);
    assert.equal(tick.sharedCause, null);
    assert.deepEqual(tick.measurements.at(-1), {
      name: CANARY_REQUESTS_MEASUREMENT,
      value: 500,
      comparison: '>=',
      threshold: 100,
      gate: true,
      result: 'Successful',
    });
  });

  it('is never Successful below minRequests: Inconclusive, not Failed', () => {
    assert.equal(judgeCanaryTick(input([m('error-rate', 0.001, 0.01)], [], 99)).result, AnalysisResult.Inconclusive);
    assert.equal(judgeCanaryTick(input([m('error-rate', 0.001, 0.01)], [], null)).result, AnalysisResult.Inconclusive);
    assert.equal(
      judgeCanaryTick(input([m('error-rate', 0.2, 0.01)], [m('error-rate', 0.001, 0.01)], 3)).result,
      AnalysisResult.Failed,
      'a breach is a breach, however few requests',
    );
  });

  it('holds an SLO against the stable slot: threshold = stable x factor + offset', () => {
    const tick = judgeCanaryTick({
      ...input([m('error-rate', 0.008, 0.01)], [m('error-rate', 0.001, 0.01)]),
      comparedToStable: { 'error-rate': { factor: 1, offset: 0.005 } },
    });
    assert.equal(tick.result, AnalysisResult.Failed);
    assert.deepEqual(tick.measurements[0]?.stable, { value: 0.001, threshold: 0.006 });
    const p95 = judgeCanaryTick({
      ...input([m('p95', 0.3, 0.5)], [m('p95', 0.25, 0.5)]),
      comparedToStable: { p95: { factor: 1.25, offset: 0 } },
    });
    assert.equal(p95.result, AnalysisResult.Successful, '0.3 is within 1.25 x 0.25');
    const noBaseline = judgeCanaryTick({
      ...input([m('p95', 0.3, 0.5)], [m('p95', null, 0.5)]),
      comparedToStable: { p95: { factor: 1.25, offset: 0 } },
    });
    assert.equal(noBaseline.result, AnalysisResult.Inconclusive, 'no stable value: nothing to compare with');
  });

  it('tells a breach both slots share from the canary own', () => {
    const shared = judgeCanaryTick(input([m('error-rate', 0.3, 0.01)], [m('error-rate', 0.29, 0.01)]));
    assert.equal(shared.result, AnalysisResult.Failed);
    assert.match(
      shared.sharedCause ?? '',
      /'error-rate' is 0\.3 on the canary and 0\.29 on the stable slot \(must be < 0\.01\)/,
    );
    const own = judgeCanaryTick(input([m('error-rate', 0.3, 0.01)], [m('error-rate', 0.002, 0.01)]));
    assert.equal(own.sharedCause, null);
    const mixed = judgeCanaryTick(
      input([m('error-rate', 0.3, 0.01), m('p95', 2, 0.5)], [m('error-rate', 0.29, 0.01), m('p95', 0.1, 0.5)]),
    );
    assert.equal(mixed.sharedCause, null, 'one breach of its own is enough to roll back');
    const worseThanShared = judgeCanaryTick({
      ...input([m('error-rate', 0.5, 0.01)], [m('error-rate', 0.2, 0.01)]),
      comparedToStable: { 'error-rate': { factor: 1.25, offset: 0 } },
    });
    assert.equal(worseThanShared.sharedCause, null, 'worse than the stable allows is the canary own breach');
  });
});

describe('traffic routers: what replica-ratio can express', () => {
  it('finds the canary replicas beside a fully scaled stable slot, within one point', () => {
    assert.equal(replicaRatioReplicas(3, 5), null);
    assert.equal(replicaRatioReplicas(3, 25), 1);
    assert.equal(replicaRatioReplicas(3, 50), 3);
    assert.equal(replicaRatioReplicas(19, 5), 1);
    assert.equal(replicaRatioReplicas(20, 25), 7, '7 of 27 is 25.9 %');
    assert.equal(replicaRatioReplicas(3, 100), 3);
    assert.equal(replicasNeededFor(5), 16, '1 of 17 is 5.9 %');
  });

  it('gives weighted routing enough canary replicas for its share, at least one', () => {
    assert.deepEqual(
      [5, 25, 50, 100].map((w) => canaryReplicasFor('gateway-api', 3, w)),
      [1, 1, 2, 3],
    );
    assert.deepEqual(
      [25, 50, 100].map((w) => canaryReplicasFor('replica-ratio', 3, w)),
      [1, 3, 3],
    );
  });

  it('never offers a share that a count does not give (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 99 }), (replicas, weight) => {
        const canary = replicaRatioReplicas(replicas, weight);
        if (canary === null) return true;
        return canary >= 1 && canary <= replicas && Math.abs(replicaRatioShare(replicas, canary) - weight) <= 1;
      }),
    );
  });
});
