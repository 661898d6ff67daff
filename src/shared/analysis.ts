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
export function judgeValue(
  value: number | null,
  comparison: Comparison,
  threshold: number,
): AnalysisResult {
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
