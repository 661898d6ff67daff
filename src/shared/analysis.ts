/**
 * Analysis results as values, in the manner of Argo Rollouts: a measurement or a whole tick is
 * Successful, Failed, Inconclusive or Error, and results combine with `worst()`.
 * Pure module: safe to import from workflow code.
 */

export const AnalysisResult = {
  Successful: 'Successful',
  Inconclusive: 'Inconclusive',
  Error: 'Error',
  Failed: 'Failed',
} as const;

export type AnalysisResult = (typeof AnalysisResult)[keyof typeof AnalysisResult];

/** Higher is worse. A breach outranks a measurement error, which outranks missing data. */
const SEVERITY: Record<AnalysisResult, number> = {
  Successful: 0,
  Inconclusive: 1,
  Error: 2,
  Failed: 3,
};

/** Combines results so one bad measurement cannot be hidden by good ones; empty is Successful. */
export function worst(results: Iterable<AnalysisResult>): AnalysisResult {
  let current: AnalysisResult = AnalysisResult.Successful;
  for (const result of results) {
    if (SEVERITY[result] > SEVERITY[current]) current = result;
  }
  return current;
}

export const Comparison = {
  LessThan: '<',
  LessOrEqual: '<=',
  GreaterThan: '>',
  GreaterOrEqual: '>=',
} as const;

export type Comparison = (typeof Comparison)[keyof typeof Comparison];

/**
 * Judges one measured value against its threshold. Missing data (null, NaN) is Inconclusive,
 * never Successful: an empty query result must not pass a gate.
 */
export function judgeValue(value: number | null, comparison: Comparison, threshold: number): AnalysisResult {
  if (value === null || Number.isNaN(value)) return AnalysisResult.Inconclusive;
  const ok =
    comparison === '<'
      ? value < threshold
      : comparison === '<='
        ? value <= threshold
        : comparison === '>'
          ? value > threshold
          : value >= threshold;
  return ok ? AnalysisResult.Successful : AnalysisResult.Failed;
}

/** One SLO's reading at one monitor tick, as recorded in history and the status query. */
export interface Measurement {
  name: string;
  value: number | null;
  comparison: Comparison;
  threshold: number;
  /** Whether a failure of this SLO rolls back (true) or is only reported (false: a warning). */
  gate: boolean;
  result: AnalysisResult;
  message?: string;
  /** Canary: the stable slot's value of the same query and the threshold derived from it. */
  stable?: { value: number | null; threshold: number | null };
}

/** A tick's verdict: the worst gated measurement; warnings never decide. */
export function judgeTick(measurements: readonly Measurement[]): AnalysisResult {
  return worst(measurements.filter((m) => m.gate).map((m) => m.result));
}

/** A measured value for people: three significant digits, whole numbers from 100 up; null is no data. */
export function formatValue(value: number | null): string {
  if (value === null) return 'no data';
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(0) : String(Number(value.toPrecision(3)));
}

/** Seconds in a Prometheus duration such as 1m30s or 500ms; NaN when it is not one. */
export function promDurationSeconds(duration: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let seconds = 0;
  let rest = duration;
  while (rest.length > 0) {
    const match = /^([0-9]+)(ms|s|m|h|d|w|y)/.exec(rest);
    if (!match) return Number.NaN;
    seconds += Number(match[1]) * units[match[2]!]!;
    rest = rest.slice(match[0].length);
  }
  return duration.length > 0 ? seconds : Number.NaN;
}

/** Prometheus's own default scrape interval: assumed when the targets' cannot be read. */
export const DEFAULT_SCRAPE_INTERVAL_SECONDS = 60;

/** How long the monitor measures without counting missing data, and why. */
export interface WarmUp {
  seconds: number;
  /** The scrape interval the warm-up was derived from (null: set by the spec). */
  scrapeIntervalSeconds: number | null;
  /** Warnings for people, with numbers: a window or a duration that cannot hold enough data. */
  warnings: string[];
}

/**
 * The monitor's warm-up: a rate() over the new version's series answers only once two scrapes of
 * them fall inside its window, and the series begin with the first scrape after traffic reaches
 * the new slot; so the first 2 scrape intervals after the switch (plus one tick, for the query's
 * own timing) cannot have data, whatever the version does. Missing data then is not Inconclusive.
 * `initialDelaySeconds` from the spec overrides the derivation.
 */
export function monitorWarmUp({
  windowSeconds,
  intervalSeconds,
  durationSeconds,
  scrapeIntervalSeconds,
  initialDelaySeconds,
}: {
  windowSeconds: number;
  intervalSeconds: number;
  durationSeconds: number;
  scrapeIntervalSeconds: number | null;
  initialDelaySeconds?: number | undefined;
}): WarmUp {
  const scrape = scrapeIntervalSeconds ?? DEFAULT_SCRAPE_INTERVAL_SECONDS;
  const seconds = initialDelaySeconds ?? 2 * scrape + intervalSeconds;
  const warnings: string[] = [];
  const scrapeSource = scrapeIntervalSeconds === null ? `Prometheus's default ${scrape} s, assumed` : `${scrape} s`;
  if (windowSeconds < 2 * scrape) {
    warnings.push(
      `monitor.window (${windowSeconds} s) holds fewer than 2 scrapes at the targets' scrape interval ` +
        `(${scrapeSource}): ` +
        `rate() over it has no data at all; make it at least ${2 * scrape} s (4 scrapes, ${4 * scrape} s, is safer)`,
    );
  }
  const judged = Math.floor(Math.max(0, durationSeconds - seconds) / intervalSeconds);
  if (judged < 3) {
    warnings.push(
      `monitor.durationSeconds (${durationSeconds} s) leaves ${judged} judged tick(s) after a ${seconds} s warm-up ` +
        `(scrape interval ${scrapeSource}); make it at least ${seconds + 3 * intervalSeconds} s`,
    );
  }
  return { seconds, scrapeIntervalSeconds: initialDelaySeconds === undefined ? scrape : null, warnings };
}

export const MonitorDecision = {
  /** Keep measuring. */
  Continue: 'Continue',
  /** More failed ticks than `failureLimit`: roll back. */
  Breach: 'Breach',
  /** `consecutiveErrorLimit` measurement errors in a row: the SLOs cannot be verified, roll back. */
  ErrorLimit: 'ErrorLimit',
  /** More Inconclusive ticks than `inconclusiveLimit`: pause for a decision. */
  Pause: 'Pause',
} as const;
export type MonitorDecision = (typeof MonitorDecision)[keyof typeof MonitorDecision];

export interface MonitorLimits {
  failureLimit: number;
  consecutiveErrorLimit: number;
  inconclusiveLimit: number;
}

export interface MonitorCounters {
  failed: number;
  consecutiveErrors: number;
  /** Inconclusive ticks since the last pause, or (with `consecutive`) since the last Successful one. */
  inconclusive: number;
}

/**
 * The monitor's limits as a pure function: one tick's result, the counters so far, and what to do.
 * A breach counts whenever it is seen (a breach with data is a breach, warm-up or not); missing
 * data counts only after the warm-up and, with `consecutive`, only in a row: "still no data",
 * not "no data once". Deployments recorded before the warm-up existed count every Inconclusive tick
 * since the last pause (`consecutive: false`).
 */
export function judgeMonitorTick(
  limits: MonitorLimits,
  counters: MonitorCounters,
  result: AnalysisResult,
  { warmingUp = false, consecutive = true }: { warmingUp?: boolean; consecutive?: boolean } = {},
): { counters: MonitorCounters; decision: MonitorDecision } {
  const next = { ...counters, consecutiveErrors: result === AnalysisResult.Error ? counters.consecutiveErrors + 1 : 0 };
  switch (result) {
    case AnalysisResult.Failed:
      next.failed += 1;
      return {
        counters: next,
        decision: next.failed > limits.failureLimit ? MonitorDecision.Breach : MonitorDecision.Continue,
      };
    case AnalysisResult.Error:
      return {
        counters: next,
        decision:
          next.consecutiveErrors >= limits.consecutiveErrorLimit
            ? MonitorDecision.ErrorLimit
            : MonitorDecision.Continue,
      };
    case AnalysisResult.Inconclusive:
      if (warmingUp) return { counters: next, decision: MonitorDecision.Continue };
      next.inconclusive += 1;
      if (next.inconclusive > limits.inconclusiveLimit)
        return { counters: { ...next, inconclusive: 0 }, decision: MonitorDecision.Pause };
      return { counters: next, decision: MonitorDecision.Continue };
    default:
      if (consecutive) next.inconclusive = 0;
      return { counters: next, decision: MonitorDecision.Continue };
  }
}

/** The name of the canary's request count among its measurements. */
export const CANARY_REQUESTS_MEASUREMENT = 'canary-requests';

/** An SLO held against the stable slot: `value <comparison> stable * factor + offset`. */
export interface StableComparison {
  factor: number;
  offset: number;
}

export interface CanaryTickInput {
  /** The canary's measurements (SLOs, and restarts), each judged against its own threshold. */
  canary: readonly Measurement[];
  /** The stable slot's measurements of the same SLOs over the same window. */
  stable: readonly Measurement[];
  canaryRequests: number | null;
  stableRequests: number | null;
  /** Requests the canary must have served within the window before a tick can be Successful. */
  minRequests: number;
  /** The SLOs held against the stable slot too, by name. */
  comparedToStable: Readonly<Record<string, StableComparison>>;
}

export interface CanaryTick {
  /** The canary's measurements, with the stable comparison applied, and its request count. */
  measurements: Measurement[];
  result: AnalysisResult;
  /**
   * Set when every breach of the tick is shared: the stable slot breaches the same SLO's absolute
   * threshold over the same window (and the canary is no worse than the stable allows). Rolling
   * back cannot help then; a person should look at what both depend on.
   */
  sharedCause: string | null;
  /** The canary's share of the requests both slots served within the window, in percent. */
  observedShare: number | null;
}

/**
 * One canary tick, judged: each SLO against its threshold and, where the spec says so, against
 * the stable slot's value; too few requests make the tick Inconclusive, never Successful; and a
 * breach both slots share is told apart from the canary's own.
 */
export function judgeCanaryTick(input: CanaryTickInput): CanaryTick {
  const stableByName = new Map(input.stable.map((m) => [m.name, m]));
  const shared: string[] = [];
  let ownBreach = false;
  const measurements = input.canary.map((m): Measurement => {
    const rule = input.comparedToStable[m.name];
    const stable = stableByName.get(m.name);
    let relative: AnalysisResult = AnalysisResult.Successful;
    let judged: Measurement = m;
    if (rule) {
      const threshold =
        stable?.value === null || stable?.value === undefined ? null : stable.value * rule.factor + rule.offset;
      relative = threshold === null ? AnalysisResult.Inconclusive : judgeValue(m.value, m.comparison, threshold);
      judged = { ...m, result: worst([m.result, relative]), stable: { value: stable?.value ?? null, threshold } };
    } else if (stable) {
      judged = { ...m, stable: { value: stable.value, threshold: null } };
    }
    if (m.gate && judged.result === AnalysisResult.Failed) {
      const bothBreach =
        m.result === AnalysisResult.Failed &&
        stable?.result === AnalysisResult.Failed &&
        relative !== AnalysisResult.Failed;
      if (bothBreach) {
        shared.push(
          `'${m.name}' is ${formatValue(m.value)} on the canary and ${formatValue(stable!.value)} on the stable ` +
            `slot (must be ${m.comparison} ${m.threshold})`,
        );
      } else {
        ownBreach = true;
      }
    }
    return judged;
  });
  const requests = input.canaryRequests;
  measurements.push({
    name: CANARY_REQUESTS_MEASUREMENT,
    value: requests === null ? null : Math.round(requests),
    comparison: '>=',
    threshold: input.minRequests,
    gate: input.minRequests > 0,
    // Too few requests is missing data, not a breach.
    result:
      requests !== null && requests >= input.minRequests ? AnalysisResult.Successful : AnalysisResult.Inconclusive,
  });
  const sharedCause =
    shared.length > 0 && !ownBreach
      ? `both slots breach the same SLO over the same window: ${shared.join('; ')}; the cause is shared (a ` +
        `dependency, a cascade), so rolling the canary back would not help`
      : null;
  const total = (input.canaryRequests ?? 0) + (input.stableRequests ?? 0);
  return {
    measurements,
    result: judgeTick(measurements),
    sharedCause,
    observedShare:
      input.canaryRequests === null || input.stableRequests === null || total <= 0
        ? null
        : (100 * input.canaryRequests) / total,
  };
}
