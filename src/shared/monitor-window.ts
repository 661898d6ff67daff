/**
 * A monitor window measured by one activity: what the workflow asks of it (the slot, the SLOs,
 * the limits and the policy of the phase) and what it answers (a verdict, the counts people see,
 * and every sample it took). The judging here is pure, so the activity that loops and the
 * workflow that reads its answer agree on every rule: the limits are `judgeMonitorTick`'s.
 * Pure module: safe to import from workflow code.
 */
import { AnalysisResult, judgeMonitorTick, judgeTick, judgeValue, MonitorDecision } from './analysis.js';
import type { Measurement, MonitorCounters, MonitorLimits } from './analysis.js';
import type { MonitorProgress } from './deployment-status.js';

/** The name of the restart measurement recorded beside the SLOs at every tick. */
export const RESTARTS_MEASUREMENT = 'pod-restarts';

/**
 * How the window runs:
 * - `window`: blue-green's monitor. A tick at once, then one every interval, up to `progress.ticks`,
 *   then one more interval; a breach, the error limit or missing data past its limit ends it early.
 * - `paused`: paused for missing data, still measuring. An interval first, then a tick, until a
 *   breach, the error limit, or `resumeAfter` Successful ticks in a row (0: never: only the
 *   workflow ends it, on an approval or the gate's timeout).
 */
export type MonitorPolicy = { kind: 'window' } | { kind: 'paused'; resumeAfter: number };

/** The rules a window is judged by (the activity's request adds what it measures). */
export interface MonitorWindowRules {
  limits: MonitorLimits;
  intervalSeconds: number;
  /** Until when (ms since the epoch) missing data is not counted; null: no warm-up. */
  warmUpUntil: number | null;
  /** Missing data counts only in a row (the scrape-aware monitor). */
  consecutive: boolean;
  policy: MonitorPolicy;
}

/** One tick as it was measured: kept in the activity's result, so the history holds every sample. */
export interface MonitorSample {
  tick: number;
  at: string;
  result: AnalysisResult;
  /** null: the tick could not be measured (an Error tick), `error` says why. */
  measurements: Measurement[] | null;
  error?: string;
  /** Measured while paused for missing data. */
  paused?: boolean;
}

export const MonitorVerdict = {
  /** The window's ticks are over. */
  Passed: 'Passed',
  /** More failed ticks than the limit: roll back. */
  Breach: 'Breach',
  /** Measurement errors in a row up to the limit: roll back. */
  ErrorLimit: 'ErrorLimit',
  /** Missing data past its limit: the workflow pauses for a decision. */
  Pause: 'Pause',
  /** Paused, then enough Successful ticks in a row: the pause ends by itself. */
  Resumed: 'Resumed',
} as const;
export type MonitorVerdict = (typeof MonitorVerdict)[keyof typeof MonitorVerdict];

/** Where the window stands: what each tick heartbeats, and what a retry resumes from. */
export interface MonitorWindowState {
  /** The slot's restarts when the window began: read by its first tick unless given. */
  baseline: number | null;
  progress: MonitorProgress;
  counters: MonitorCounters;
  /** Successful ticks in a row while paused. */
  successes: number;
  /** The status line of the last tick, for people. */
  message: string;
  samples: MonitorSample[];
}

export interface MonitorWindowResult extends MonitorWindowState {
  verdict: MonitorVerdict;
  /** The measurements of the tick that decided (a breach names its SLO from them). */
  last: Measurement[] | null;
}

/** The restarts since the baseline, as a gated measurement (the procedure: none tolerated, PROCEDURE §4). */
export function restartsMeasurement(restarts: number, baseline: number, limit: number): Measurement {
  const count = Math.max(0, restarts - baseline);
  return { name: RESTARTS_MEASUREMENT, value: count, comparison: '<=', threshold: limit, gate: true, result: judgeValue(count, '<=', limit) };
}

/** Keeps the counts people see in step with the monitor's counters. */
export function countTick(progress: MonitorProgress, result: AnalysisResult, counters: MonitorCounters): void {
  if (result === AnalysisResult.Successful) progress.successful++;
  if (result === AnalysisResult.Failed) progress.failed++;
  if (result === AnalysisResult.Error) progress.errors++;
  if (result === AnalysisResult.Inconclusive) progress.inconclusive++;
  progress.consecutiveErrors = counters.consecutiveErrors;
  if (progress.consecutiveInconclusive !== undefined) progress.consecutiveInconclusive = counters.inconclusive;
}

/**
 * Judges one tick of the window: the counts and the status line updated in `state`, and the
 * verdict when the tick decides one (null: measure on). `measurements` null is an Error tick.
 */
export function judgeWindowTick(
  request: MonitorWindowRules,
  state: MonitorWindowState,
  measured: { measurements: Measurement[] | null; error?: string; at: Date },
): MonitorVerdict | null {
  const { measurements } = measured;
  const result = measurements === null ? AnalysisResult.Error : judgeTick(measurements);
  const { progress } = state;
  const restarts = measurements?.find((m) => m.name === RESTARTS_MEASUREMENT);
  if (restarts?.value != null) progress.restarts = restarts.value;
  for (const m of measurements ?? []) progress.latest[m.name] = m;
  const paused = request.policy.kind === 'paused';
  if (paused) progress.pausedTicks = (progress.pausedTicks ?? 0) + 1;
  else progress.tick += 1;
  state.samples.push({
    tick: paused ? progress.pausedTicks! : progress.tick,
    at: measured.at.toISOString(),
    result,
    measurements,
    ...(measured.error ? { error: measured.error } : {}),
    ...(paused ? { paused } : {}),
  });
  if (request.policy.kind === 'paused') {
    const judged = judgeMonitorTick(request.limits, state.counters, result, { consecutive: true });
    state.counters = { ...judged.counters, inconclusive: 0 };
    countTick(progress, result, state.counters);
    if (judged.decision === MonitorDecision.Breach) return MonitorVerdict.Breach;
    if (judged.decision === MonitorDecision.ErrorLimit) return MonitorVerdict.ErrorLimit;
    const { resumeAfter } = request.policy;
    state.successes = result === AnalysisResult.Successful ? state.successes + 1 : 0;
    state.message = `paused, still measuring: tick ${progress.pausedTicks}: ${result}${resumeAfter > 0 ? ` (${state.successes}/${resumeAfter} successful in a row)` : ''}`;
    return resumeAfter > 0 && state.successes >= resumeAfter ? MonitorVerdict.Resumed : null;
  }
  const warmingUp = request.warmUpUntil !== null && measured.at.getTime() < request.warmUpUntil;
  state.message = `monitor tick ${progress.tick}/${progress.ticks}: ${result}${warmingUp && result === AnalysisResult.Inconclusive ? ' (warming up: not counted)' : ''}`;
  const judged = judgeMonitorTick(request.limits, state.counters, result, { warmingUp, consecutive: request.consecutive });
  state.counters = judged.counters;
  countTick(progress, result, state.counters);
  switch (judged.decision) {
    case MonitorDecision.Breach:
      return MonitorVerdict.Breach;
    case MonitorDecision.ErrorLimit:
      return MonitorVerdict.ErrorLimit;
    case MonitorDecision.Pause:
      return MonitorVerdict.Pause;
    default:
      return null;
  }
}
