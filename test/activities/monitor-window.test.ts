/**
 * The monitor window's loop (src/activities/monitor-window.ts) on a clock the test keeps: when it
 * measures, what it judges, what it heartbeats, how it resumes, and how it stops.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { runMonitorWindow } from '../../src/activities/monitor-window.js';
import type { Clock } from '../../src/activities/monitor-window.js';
import type { MonitorWindowRequest } from '../../src/activities/contract.js';
import { judgeValue } from '../../src/shared/analysis.js';
import type { Measurement } from '../../src/shared/analysis.js';
import { judgeCanaryMeasurements, MonitorVerdict, restartsMeasurement } from '../../src/shared/monitor-window.js';
import type { CanaryRules, HoldPolicy, MonitorWindowState } from '../../src/shared/monitor-window.js';
import { REFERENCE_TARGET } from '../helpers/deployment-harness.js';

const START = Date.parse('2026-12-06T08:00:00Z');

/** Time that passes only when the loop sleeps; each sleep is recorded. */
function testClock(): Clock & { t: number; sleeps: number[] } {
  const clock = {
    t: START,
    sleeps: [] as number[],
    now: async () => clock.t,
    sleep: async (ms: number, signal: AbortSignal) => {
      signal.throwIfAborted();
      clock.sleeps.push(ms);
      clock.t += ms;
    },
  };
  return clock;
}

function windowRequest(overrides: Partial<MonitorWindowRequest> = {}): MonitorWindowRequest {
  return {
    target: REFERENCE_TARGET,
    slot: 'green',
    version: 'v2.2.0',
    window: '1m',
    slos: [],
    restarts: { baseline: null, limit: 0 },
    limits: { failureLimit: 0, consecutiveErrorLimit: 4, inconclusiveLimit: 2 },
    intervalSeconds: 5,
    warmUpUntil: null,
    consecutive: true,
    counters: { failed: 0, consecutiveErrors: 0, inconclusive: 0 },
    progress: {
      tick: 0,
      ticks: 6,
      durationSeconds: 30,
      intervalSeconds: 5,
      successful: 0,
      failed: 0,
      inconclusive: 0,
      errors: 0,
      consecutiveErrors: 0,
      restarts: 0,
      latest: {},
    },
    policy: { kind: 'window' },
    ...overrides,
  };
}

const errorRate = (value: number | null): Measurement => ({
  name: 'error-rate',
  value,
  comparison: '<',
  threshold: 0.01,
  gate: true,
  result: judgeValue(value, '<', 0.01),
});

/** A window over `values` (one error rate per tick; a thrown error for 'error'), with restarts at 2 throughout. */
async function run(
  values: (number | null | 'error')[],
  overrides: Partial<MonitorWindowRequest> = {},
  resumeFrom?: MonitorWindowState,
) {
  const clock = testClock();
  const beats: MonitorWindowState[] = [];
  const measuredAt: number[] = [];
  let tick = 0;
  const answer = await runMonitorWindow(windowRequest(overrides), {
    readRestarts: async () => 2,
    measure: async (baseline) => {
      measuredAt.push(clock.t - START);
      const value = values[Math.min(tick++, values.length - 1)]!;
      if (value === 'error') throw new Error('Prometheus unreachable');
      return { measurements: [errorRate(value), restartsMeasurement(2, baseline, 0)] };
    },
    clock,
    progress: {
      heartbeat: (details) => beats.push(structuredClone(details as MonitorWindowState)),
      signal: new AbortController().signal,
    },
    cancelRequested: () => false,
    resumeFrom,
  });
  return { answer, beats, measuredAt, clock };
}

describe('the monitor window in one activity', () => {
  it('measures at once and every interval, then waits out the last one: the window passes with every sample', async () => {
    const { answer, measuredAt, clock } = await run([0.001]);
    assert.equal(answer.verdict, MonitorVerdict.Passed);
    assert.deepEqual(measuredAt, [0, 5_000, 10_000, 15_000, 20_000, 25_000]);
    assert.equal(clock.t - START, 30_000, 'the window is its duration');
    assert.deepEqual(
      answer.samples.map((s) => [s.tick, s.result]),
      [1, 2, 3, 4, 5, 6].map((t) => [t, 'Successful']),
    );
    assert.deepEqual(
      [answer.progress.tick, answer.progress.successful, answer.baseline, answer.progress.restarts],
      [6, 6, 2, 0],
    );
    assert.ok(
      clock.sleeps.every((ms) => ms <= 2_000),
      'it never sleeps longer than its heartbeat period',
    );
  });

  it('returns at a breach, with the measurements that decided it', async () => {
    const { answer } = await run([0.001, 0.2]);
    assert.equal(answer.verdict, MonitorVerdict.Breach);
    assert.equal(answer.progress.tick, 2);
    assert.equal(answer.last?.find((m) => m.name === 'error-rate')?.value, 0.2);
    assert.equal(answer.message, 'monitor tick 2/6: Failed');
  });

  it('counts a read that fails as an Error tick, and returns at the limit of errors in a row', async () => {
    const { answer } = await run(['error'], {
      limits: { failureLimit: 0, consecutiveErrorLimit: 3, inconclusiveLimit: 2 },
    });
    assert.equal(answer.verdict, MonitorVerdict.ErrorLimit);
    assert.deepEqual(
      answer.samples.map((s) => [s.result, s.error]),
      Array(3).fill(['Error', 'Prometheus unreachable']),
    );
  });

  it('does not count missing data in the warm-up; past it, pauses at the limit of missing data in a row', async () => {
    const { answer } = await run([null], { warmUpUntil: START + 12_000 });
    assert.equal(answer.verdict, MonitorVerdict.Pause);
    // Ticks at 0, 5 and 10 s warm up; 15, 20 and 25 s count: the third in a row is past the limit of 2.
    assert.equal(answer.progress.tick, 6);
    assert.match(answer.samples[0]!.result, /Inconclusive/);
    assert.equal(answer.message, 'monitor tick 6/6: Inconclusive');
  });

  it('paused, waits an interval first and ends by itself after enough Successful ticks in a row', async () => {
    const { answer, measuredAt } = await run([null, 0.001], {
      policy: { kind: 'paused', resumeAfter: 3 },
      restarts: { baseline: 2, limit: 0 },
    });
    assert.equal(answer.verdict, MonitorVerdict.Resumed);
    assert.deepEqual(measuredAt, [5_000, 10_000, 15_000, 20_000]);
    assert.deepEqual([answer.progress.pausedTicks, answer.successes, answer.progress.tick], [4, 3, 0]);
    assert.equal(answer.message, 'paused, still measuring: tick 4: Successful (3/3 successful in a row)');
  });

  it('heartbeats its counts at every tick, and a retry resumes from the last heartbeat, not from zero', async () => {
    const first = await run([0.001]);
    const third = first.beats.find((beat) => beat.progress.tick === 3)!;
    const resumed = await run([0.001], {}, third);
    assert.equal(resumed.answer.verdict, MonitorVerdict.Passed);
    assert.equal(resumed.measuredAt.length, 3, 'ticks 4 to 6 only');
    assert.deepEqual(
      resumed.answer.samples.map((s) => s.tick),
      [1, 2, 3, 4, 5, 6],
    );
    assert.equal(resumed.answer.baseline, 2);
  });

  it('stopped by the workflow, carries what it measured in its cancellation; stopped with its worker, fails so that it is retried', async () => {
    for (const requested of [true, false]) {
      const controller = new AbortController();
      const clock = testClock();
      const stopping = runMonitorWindow(windowRequest({ restarts: { baseline: 0, limit: 0 } }), {
        readRestarts: async () => 0,
        measure: async () => {
          if (clock.t - START >= 10_000) controller.abort();
          return { measurements: [errorRate(0.001)] };
        },
        clock,
        progress: { heartbeat: () => undefined, signal: controller.signal },
        cancelRequested: () => requested,
      });
      const error = await stopping.then(
        () => assert.fail('the window went on after its cancellation'),
        (e: unknown) => e,
      );
      if (requested) {
        assert.ok(error instanceof CancelledFailure);
        assert.equal((error.details[0] as MonitorWindowState).progress.tick, 3);
      } else {
        assert.ok(error instanceof ApplicationFailure && !error.nonRetryable);
        assert.match(error.message, /stopped with its worker at tick 3/);
      }
    }
  });

  it('observing, waits an interval first; cold, ends only at an SLO people have not been told of, and passes at its last tick; warm, a breach ends it', async () => {
    const cold = await run([0.001, 0.2], { policy: { kind: 'observe', warm: false, notified: [] } });
    assert.equal(cold.answer.verdict, MonitorVerdict.NewBreach);
    assert.deepEqual(cold.measuredAt, [5_000, 10_000]);
    assert.equal(cold.answer.message, 'observe tick 2/6: Failed');
    const told = await run([0.2], { policy: { kind: 'observe', warm: false, notified: ['error-rate'] } });
    assert.equal(told.answer.verdict, MonitorVerdict.Passed);
    assert.deepEqual(told.measuredAt, [5_000, 10_000, 15_000, 20_000, 25_000, 30_000]);
    assert.deepEqual([told.answer.progress.tick, told.answer.progress.failed], [6, 6]);
    const warm = await run([0.001, 0.2], { policy: { kind: 'observe', warm: true, notified: [] } });
    assert.equal(warm.answer.verdict, MonitorVerdict.Breach);
  });

  describe("a canary step's hold", () => {
    const rules: CanaryRules = {
      stable: 'blue',
      stableVersion: 'v2.1.0',
      requestsQuery: 'requests',
      minRequests: 100,
      comparedToStable: {},
      sharedCauseAccepted: false,
    };
    const policy: HoldPolicy = {
      kind: 'hold',
      label: 'step 1/4',
      weight: 5,
      startedAt: START,
      holdSeconds: 10,
      capSeconds: 20,
      untilPromote: false,
    };

    /** A hold whose ticks find these canary requests (and error rates, the stable's beside them). */
    async function hold(
      ticks: { requests: number; canary?: number; stable?: number }[],
      overrides: Partial<MonitorWindowRequest> = {},
    ) {
      const clock = testClock();
      const measuredAt: number[] = [];
      let tick = 0;
      const request = windowRequest({ policy, canary: rules, ...overrides });
      const answer = await runMonitorWindow(request, {
        readRestarts: async () => 0,
        measure: async (baseline) => {
          measuredAt.push(clock.t - START);
          const t = ticks[Math.min(tick++, ticks.length - 1)]!;
          return judgeCanaryMeasurements(request.canary!, {
            canary: [errorRate(t.canary ?? 0.001), restartsMeasurement(0, baseline, 0)],
            stable: [errorRate(t.stable ?? 0.001)],
            canaryRequests: t.requests,
            stableRequests: 9000,
          });
        },
        clock,
        progress: { heartbeat: () => undefined, signal: new AbortController().signal },
        cancelRequested: () => false,
      });
      return { answer, measuredAt };
    }

    it('measures at once; past its length, ends on the first Successful tick, never on too few requests', async () => {
      const { answer, measuredAt } = await hold([
        { requests: 12 },
        { requests: 12 },
        { requests: 12 },
        { requests: 400 },
      ]);
      assert.equal(answer.verdict, MonitorVerdict.Held);
      assert.deepEqual(measuredAt, [0, 5_000, 10_000, 15_000]);
      assert.deepEqual(
        answer.samples.map((s) => [s.result, s.canary?.canaryRequests]),
        [
          ['Inconclusive', 12],
          ['Inconclusive', 12],
          ['Inconclusive', 12],
          ['Successful', 400],
        ],
      );
      assert.deepEqual(
        [answer.canary?.analysis, answer.canary?.canaryRequests, answer.counters.inconclusive],
        ['Successful', 400, 0],
      );
    });

    it('is extended while no tick is Successful, and pauses at its cap, saying why in words', async () => {
      const { answer, measuredAt } = await hold([{ requests: 12 }]);
      assert.equal(answer.verdict, MonitorVerdict.Pause);
      assert.deepEqual(measuredAt, [0, 5_000, 10_000, 15_000, 20_000]);
      assert.equal(answer.canary?.extendedSeconds, 5, 'the extension as the last tick before the cap found it');
      assert.equal(
        answer.message,
        'step 1/4 tick 5: Inconclusive; 5 % set, 0.1 % observed (12 canary requests in the window, at least 100 needed)',
      );
    });

    it('ends at a breach both slots share, for an operator, without counting it against the canary; once accepted, such a tick is no data', async () => {
      const shared = [{ requests: 400, canary: 0.3, stable: 0.29 }];
      const { answer } = await hold(shared);
      assert.equal(answer.verdict, MonitorVerdict.SharedCause);
      assert.match(answer.canary?.sharedCause ?? '', /'error-rate' is 0\.3 on the canary and 0\.29 on the stable slot/);
      assert.equal(answer.counters.failed, 0);
      const accepted = await hold(shared, { canary: { ...rules, sharedCauseAccepted: true } });
      assert.equal(accepted.answer.verdict, MonitorVerdict.Pause, 'no Successful tick, and no breach either');
      assert.ok(accepted.answer.samples.every((s) => s.result === 'Inconclusive'));
    });

    it('a breach of its own rolls it back', async () => {
      const { answer } = await hold([{ requests: 400, canary: 0.2 }]);
      assert.equal(answer.verdict, MonitorVerdict.Breach);
      assert.equal(answer.progress.tick, 1);
    });
  });
});
