/**
 * The monitor window as one activity's loop: every interval, a tick (the slot's SLOs and restarts,
 * read side by side), judged by the pure rules of src/shared/monitor-window.ts, its counts
 * heartbeated, until a verdict. It costs the workflow one activity for the whole window where a
 * timer and an activity per tick cost it eleven events a tick.
 *
 * It heartbeats at least every HEARTBEAT_EVERY_MS, waiting or measuring, so a lost worker is
 * noticed within the heartbeat timeout whatever the interval; a retry resumes from the last
 * heartbeat (its counts and samples), not from zero. It only reads, so a cancellation (an abort)
 * just stops it; the cancellation carries what it measured.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Measurement } from '../shared/analysis.js';
import { judgeWindowTick, MonitorVerdict } from '../shared/monitor-window.js';
import type { CanaryMeasured, MonitorWindowResult, MonitorWindowState } from '../shared/monitor-window.js';
import type { MonitorWindowRequest, Progress } from './contract.js';

/** The time the loop keeps: the system's, or a test server's that skips time. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): Promise<number>;
  /** Resolves after `ms`; rejects when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: async () => Date.now(),
  sleep: async (ms, signal) => await delay(ms, undefined, { signal }),
};

/** The longest the loop goes without a heartbeat. */
export const HEARTBEAT_EVERY_MS = 2_000;

/** A tick's reads get this long; a read still going then is a measurement error (an Error tick). */
export const TICK_TIMEOUT_MS = 15_000;

export async function runMonitorWindow(
  request: MonitorWindowRequest,
  {
    readRestarts,
    measure,
    clock,
    progress,
    cancelRequested,
    resumeFrom,
  }: {
    /** The slot's restarts now: the baseline, when the request has none. */
    readRestarts(): Promise<number>;
    /**
     * One tick's measurements: the SLOs and the restarts since `baseline` (a canary's judged
     * against the stable slot's, with its traffic). Throws when they cannot be read.
     */
    measure(baseline: number): Promise<{ measurements: Measurement[]; canary?: CanaryMeasured }>;
    clock: Clock;
    progress: Progress;
    /** Whether the workflow asked for the cancellation (not a worker shutting down). */
    cancelRequested(): boolean;
    /** The last heartbeat of an earlier attempt. */
    resumeFrom?: MonitorWindowState | undefined;
  },
): Promise<MonitorWindowResult> {
  const state: MonitorWindowState = resumeFrom ?? {
    baseline: request.restarts.baseline,
    progress: structuredClone(request.progress),
    counters: { ...request.counters },
    successes: 0,
    message: '',
    samples: [],
    ...(request.canary
      ? {
          canary: {
            analysis: null,
            observedShare: null,
            canaryRequests: null,
            stableRequests: null,
            sharedCause: null,
            extendedSeconds: 0,
          },
        }
      : {}),
  };
  const beat = () => progress.heartbeat(state);
  // While a tick's reads run, too: a slow read must not look like a lost worker.
  const beating = setInterval(beat, HEARTBEAT_EVERY_MS);
  const until = async (at: number) => {
    for (let now = await clock.now(); now < at; now = await clock.now()) {
      beat();
      await clock.sleep(Math.min(HEARTBEAT_EVERY_MS, at - now), progress.signal);
    }
  };
  try {
    // Read once, kept in the heartbeat: a retry counts restarts from the same baseline.
    const baseline = (state.baseline ??= await readRestarts());
    const intervalMs = request.intervalSeconds * 1000;
    // A window, and a hold at its start, measure at once; a pause, observe and a hold going on
    // after an answer, after an interval; a retry of any, at once.
    const { kind } = request.policy;
    const atOnce = resumeFrom !== undefined || kind === 'window' || (kind === 'hold' && state.progress.tick === 0);
    let next = (await clock.now()) + (atOnce ? 0 : intervalMs);
    for (;;) {
      await until(next);
      if (request.policy.kind === 'window' && state.progress.tick >= state.progress.ticks) {
        return { ...state, verdict: MonitorVerdict.Passed, last: null };
      }
      const at = await clock.now();
      next = at + intervalMs;
      let tick: { measurements: Measurement[] | null; canary?: CanaryMeasured; error?: string } = {
        measurements: null,
      };
      try {
        tick = await within(measure(baseline), TICK_TIMEOUT_MS);
      } catch (cause) {
        if (progress.signal.aborted) throw cause;
        tick = { measurements: null, error: (cause as Error).message ?? String(cause) };
      }
      const { measurements } = tick;
      const verdict = judgeWindowTick(request, state, { ...tick, at: new Date(at) });
      beat();
      if (verdict) return { ...state, verdict, last: measurements };
      // The window's last tick is followed by its last interval (the `until` above).
    }
  } catch (error) {
    if (!progress.signal.aborted) throw error;
    // Cancelled by the workflow (an abort, an approval, the gate's timeout): what it measured goes
    // with the cancellation, into the history, for a workflow that waits for it. Stopped with its
    // worker: a failure, so that the retry resumes from the last heartbeat on another worker.
    if (cancelRequested()) throw new CancelledFailure('the monitor window was cancelled', [state]);
    throw ApplicationFailure.retryable(
      `the monitor window stopped with its worker at tick ${state.progress.tick}: it resumes from there`,
      'WorkerStopped',
    );
  } finally {
    clearInterval(beating);
  }
}

/** `work`, or a rejection once `ms` have passed without its answer. */
async function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
