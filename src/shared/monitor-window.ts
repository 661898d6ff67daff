/**
 * A monitor window measured by one activity: what the workflow asks of it (the slot, the SLOs,
 * the limits and the policy of the phase) and what it answers (a verdict, the counts people see,
 * and every sample it took). The judging here is pure, so the activity that loops and the
 * workflow that reads its answer agree on every rule: the limits are `judgeMonitorTick`'s.
 * Pure module: safe to import from workflow code.
 */
import {
  AnalysisResult,
  formatValue,
  judgeCanaryTick,
  judgeMonitorTick,
  judgeTick,
  judgeValue,
  MonitorDecision,
} from './analysis.js';
import type { Measurement, MonitorCounters, MonitorLimits, StableComparison } from './analysis.js';
import type { MonitorProgress } from './deployment-status.js';
import type { Slot } from './slots.js';
import { formatShare } from './traffic.js';

/** The name of the restart measurement recorded beside the SLOs at every tick. */
export const RESTARTS_MEASUREMENT = 'pod-restarts';

/**
 * How the window runs:
 * - `window`: blue-green's monitor. A tick at once, then one every interval, up to `progress.ticks`,
 *   then one more interval; a breach, the error limit or missing data past its limit ends it early.
 * - `paused`: paused for missing data, still measuring. An interval first, then a tick, until a
 *   breach, the error limit, or `resumeAfter` Successful ticks in a row (0: never: only the
 *   workflow ends it, on an approval or the gate's timeout).
 * - `observe`: the window after the deployment. An interval first, then a tick, up to
 *   `progress.ticks`; nothing is counted against a limit. A Failed tick ends it when `warm` (a
 *   breach: roll back); when cold it ends it only for an SLO not yet in `notified`, so that the
 *   workflow tells people at once, then measures on.
 * - `hold`: a canary step's hold. A tick at once (then every interval; after a pause or an
 *   operator's answer, an interval first). Failed ticks and errors count against the limits as in
 *   a window; missing data is never counted (too few requests are judged at the hold's end). Once
 *   `holdSeconds` have passed since `startedAt`, a Successful tick ends it; none by `capSeconds`
 *   pauses it. A breach that both slots share ends it for an operator's look. `untilPromote`: only
 *   the workflow ends it, on `promote`.
 */
export type MonitorPolicy =
  | { kind: 'window' }
  | { kind: 'paused'; resumeAfter: number }
  | { kind: 'observe'; warm: boolean; notified: string[] }
  | HoldPolicy;

export interface HoldPolicy {
  kind: 'hold';
  /** For people: `step 2/4`. */
  label: string;
  /** The weight the step set, in percent. */
  weight: number;
  /** When the hold began, ms since the epoch. */
  startedAt: number;
  holdSeconds: number;
  /** The hold and its longest extension. */
  capSeconds: number;
  untilPromote: boolean;
}

/**
 * A canary's window: both slots are measured over the same window and judged together
 * (`judgeCanaryTick`), the canary against the stable where its SLO says so.
 */
export interface CanaryRules {
  stable: Slot;
  /** For queries scoped by version and by run (absent in histories recorded before). */
  stableVersion: string;
  stableRun?: string;
  /** Requests a slot served within the window (the spec's `canary.requestsQuery`). */
  requestsQuery: string;
  /** Requests the canary must serve within the window before a tick can be Successful. */
  minRequests: number;
  /** The SLOs held against the stable slot too, by name. */
  comparedToStable: Record<string, StableComparison>;
  /**
   * An operator let the canary go on through a breach both slots share: while it lasts, such a tick
   * is no data, not a failure.
   */
  sharedCauseAccepted: boolean;
}

/** The rules a window is judged by (the activity's request adds what it measures). */
export interface MonitorWindowRules {
  limits: MonitorLimits;
  intervalSeconds: number;
  /** Until when (ms since the epoch) missing data is not counted; null: no warm-up. */
  warmUpUntil: number | null;
  /** Missing data counts only in a row (the scrape-aware monitor). */
  consecutive: boolean;
  policy: MonitorPolicy;
  canary?: CanaryRules;
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
  /** A canary's tick: the share observed, the requests each slot served, a shared breach. */
  canary?: Omit<CanaryMeasured, 'result'>;
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
  /** Observing cold: an SLO breached that people have not been told of yet. */
  NewBreach: 'NewBreach',
  /** A canary's hold is over, on a Successful tick. */
  Held: 'Held',
  /** A canary's breach that the stable slot shares: an operator looks before anything is undone. */
  SharedCause: 'SharedCause',
} as const;
export type MonitorVerdict = (typeof MonitorVerdict)[keyof typeof MonitorVerdict];

/** Where the window stands: what each tick heartbeats, and what a retry resumes from. */
/** What a canary's tick adds for people: the share observed and the requests each slot served. */
export interface CanaryTickState {
  /** The last tick's result. */
  analysis: AnalysisResult | null;
  observedShare: number | null;
  canaryRequests: number | null;
  stableRequests: number | null;
  /** The diagnosis of a breach both slots share. */
  sharedCause: string | null;
  /** How far the hold has gone past its length, waiting for a Successful tick. */
  extendedSeconds: number;
}

/** One canary tick as measured and judged (`judgeCanaryTick`): the window's tick and its extras. */
export interface CanaryMeasured {
  result: AnalysisResult;
  observedShare: number | null;
  canaryRequests: number | null;
  stableRequests: number | null;
  sharedCause: string | null;
}

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
  /** A canary's window: its last tick's traffic. */
  canary?: CanaryTickState;
}

export interface MonitorWindowResult extends MonitorWindowState {
  verdict: MonitorVerdict;
  /** The measurements of the tick that decided (a breach names its SLO from them). */
  last: Measurement[] | null;
}

/** The restarts since the baseline, as a gated measurement (the procedure: none tolerated, PROCEDURE §4). */
export function restartsMeasurement(restarts: number, baseline: number, limit: number): Measurement {
  const count = Math.max(0, restarts - baseline);
  return {
    name: RESTARTS_MEASUREMENT,
    value: count,
    comparison: '<=',
    threshold: limit,
    gate: true,
    result: judgeValue(count, '<=', limit),
  };
}

/** A window's counts before its first tick. */
export function freshProgress(ticks: number, durationSeconds: number, intervalSeconds: number): MonitorProgress {
  return {
    tick: 0,
    ticks,
    durationSeconds,
    intervalSeconds,
    successful: 0,
    failed: 0,
    inconclusive: 0,
    errors: 0,
    consecutiveErrors: 0,
    restarts: 0,
    latest: {},
  };
}

/** The gated measurements that failed: what a breach names. */
export function failedGates(measurements: Measurement[]): Measurement[] {
  return measurements.filter((m) => m.gate && m.result === AnalysisResult.Failed);
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
  measured: { measurements: Measurement[] | null; error?: string; at: Date; canary?: CanaryMeasured },
): MonitorVerdict | null {
  const { measurements } = measured;
  const result = measurements === null ? AnalysisResult.Error : (measured.canary?.result ?? judgeTick(measurements));
  if (state.canary) {
    state.canary.analysis = result;
    // An Error tick measured nothing: the traffic stays as the last tick found it.
    if (measured.canary) {
      const { observedShare, canaryRequests, stableRequests } = measured.canary;
      Object.assign(state.canary, { observedShare, canaryRequests, stableRequests });
    }
  }
  const { progress } = state;
  const restarts = measurements?.find((m) => m.name === RESTARTS_MEASUREMENT);
  if (restarts?.value != null) progress.restarts = restarts.value;
  for (const m of measurements ?? []) progress.latest[m.name] = m;
  const { policy } = request;
  const paused = policy.kind === 'paused';
  if (paused) progress.pausedTicks = (progress.pausedTicks ?? 0) + 1;
  else progress.tick += 1;
  state.samples.push({
    tick: paused ? progress.pausedTicks! : progress.tick,
    at: measured.at.toISOString(),
    result,
    measurements,
    ...(measured.error ? { error: measured.error } : {}),
    ...(paused ? { paused } : {}),
    ...(measured.canary
      ? {
          canary: {
            observedShare: measured.canary.observedShare,
            canaryRequests: measured.canary.canaryRequests,
            stableRequests: measured.canary.stableRequests,
            sharedCause: measured.canary.sharedCause,
          },
        }
      : {}),
  });
  if (policy.kind === 'observe') {
    countTick(progress, result, state.counters);
    state.message = `observe tick ${progress.tick}/${progress.ticks}: ${result}`;
    if (result === AnalysisResult.Failed) {
      if (policy.warm) return MonitorVerdict.Breach;
      if (failedGates(measurements ?? []).some((m) => !policy.notified.includes(m.name)))
        return MonitorVerdict.NewBreach;
    }
    return progress.tick >= progress.ticks ? MonitorVerdict.Passed : null;
  }
  if (policy.kind === 'hold') return judgeHoldTick(request, policy, state, result, measured);
  if (policy.kind === 'paused') {
    const judged = judgeMonitorTick(request.limits, state.counters, result, { consecutive: true });
    state.counters = { ...judged.counters, inconclusive: 0 };
    countTick(progress, result, state.counters);
    if (judged.decision === MonitorDecision.Breach) return MonitorVerdict.Breach;
    if (judged.decision === MonitorDecision.ErrorLimit) return MonitorVerdict.ErrorLimit;
    const { resumeAfter } = policy;
    state.successes = result === AnalysisResult.Successful ? state.successes + 1 : 0;
    state.message =
      `paused, still measuring: tick ${progress.pausedTicks}: ` +
      `${result}${resumeAfter > 0 ? ` (${state.successes}/${resumeAfter} successful in a row)` : ''}`;
    return resumeAfter > 0 && state.successes >= resumeAfter ? MonitorVerdict.Resumed : null;
  }
  const warmingUp = request.warmUpUntil !== null && measured.at.getTime() < request.warmUpUntil;
  state.message =
    `monitor tick ${progress.tick}/${progress.ticks}: ` +
    `${result}${warmingUp && result === AnalysisResult.Inconclusive ? ' (warming up: not counted)' : ''}`;
  const judged = judgeMonitorTick(request.limits, state.counters, result, {
    warmingUp,
    consecutive: request.consecutive,
  });
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

/** A canary hold's tick: the window's limits, then the hold's length, extension and cap. */
function judgeHoldTick(
  { limits, canary: rules }: MonitorWindowRules,
  policy: HoldPolicy,
  state: MonitorWindowState,
  result: AnalysisResult,
  measured: { at: Date; canary?: CanaryMeasured },
): MonitorVerdict | null {
  const canary = state.canary!;
  const traffic = canaryTrafficLine(policy.weight, canary, rules?.minRequests ?? 0);
  state.message = `${policy.label} tick ${state.progress.tick}: ${result}; ${traffic}`;
  const judged = judgeMonitorTick(limits, state.counters, result, { warmingUp: true, consecutive: true });
  state.counters = judged.counters;
  countTick(state.progress, result, state.counters);
  const sharedCause = measured.canary?.sharedCause ?? null;
  if (judged.decision === MonitorDecision.Breach || (result === AnalysisResult.Failed && sharedCause)) {
    if (!sharedCause) return MonitorVerdict.Breach;
    // Not the canary's own failure: it does not count against the limit.
    canary.sharedCause = sharedCause;
    state.counters = { ...state.counters, failed: Math.max(0, state.counters.failed - 1) };
    return MonitorVerdict.SharedCause;
  }
  if (judged.decision === MonitorDecision.ErrorLimit) return MonitorVerdict.ErrorLimit;
  const elapsed = (measured.at.getTime() - policy.startedAt) / 1000;
  if (policy.untilPromote || elapsed < policy.holdSeconds) return null;
  if (result === AnalysisResult.Successful) return MonitorVerdict.Held;
  if (elapsed >= policy.capSeconds) return MonitorVerdict.Pause;
  canary.extendedSeconds = Math.round(elapsed - policy.holdSeconds);
  state.message =
    `${policy.label}: hold extended ${canary.extendedSeconds} s of at most ` +
    `${policy.capSeconds - policy.holdSeconds} s: last tick ${result}; ${traffic}`;
  return null;
}

/** A canary's traffic in words: the weight set, the share observed, and the requests it served. */
export function canaryTrafficLine(
  weight: number,
  tick: { observedShare: number | null; canaryRequests: number | null },
  minRequests: number,
): string {
  const observed =
    tick.observedShare === null ? 'no share observed yet' : `${formatShare(tick.observedShare)} % observed`;
  return `${weight} % set, ${observed} (${canaryRequestsLine(tick.canaryRequests, minRequests)})`;
}

/** The canary's requests in the window against the minimum. */
export function canaryRequestsLine(canaryRequests: number | null, minRequests: number): string {
  return (
    `${formatValue(canaryRequests === null ? null : Math.round(canaryRequests))} canary requests in the window, at ` +
    `least ${minRequests} needed`
  );
}

/**
 * A canary's tick, judged by its rules: `judgeCanaryTick`, and then, once an operator has let the
 * canary go on through a breach both slots share, such a tick is no data about the canary (its
 * shared failures Inconclusive), not its failure.
 */
export function judgeCanaryMeasurements(
  rules: CanaryRules,
  measured: {
    canary: Measurement[];
    stable: Measurement[];
    canaryRequests: number | null;
    stableRequests: number | null;
  },
): { measurements: Measurement[]; canary: CanaryMeasured } {
  const judged = judgeCanaryTick({
    ...measured,
    minRequests: rules.minRequests,
    comparedToStable: rules.comparedToStable,
  });
  const traffic = {
    observedShare: judged.observedShare,
    canaryRequests: measured.canaryRequests,
    stableRequests: measured.stableRequests,
    sharedCause: judged.sharedCause,
  };
  if (!rules.sharedCauseAccepted || judged.sharedCause === null)
    return { measurements: judged.measurements, canary: { result: judged.result, ...traffic } };
  const measurements = judged.measurements.map((m) =>
    m.gate && m.result === AnalysisResult.Failed
      ? { ...m, result: AnalysisResult.Inconclusive, message: 'shared cause, accepted by an operator' }
      : m,
  );
  return { measurements, canary: { result: AnalysisResult.Inconclusive, ...traffic } };
}
