/**
 * The workflow's own error vocabulary: a phase that cannot go on is a `PhaseError` carrying the
 * reason the deployment rolls back. (`*Failure` is the SDK's word for what crosses the wire.)
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { AnalysisResult, formatValue } from '../../shared/analysis.js';
import type { Measurement } from '../../shared/analysis.js';
import { RollbackReason } from '../../shared/deployment-status.js';
import { ErrorType } from '../../shared/errors.js';

/** A phase that cannot go on: carries why, for the rollback and the result. */
export class PhaseError extends Error {
  constructor(
    readonly reason: RollbackReason,
    message: string,
    readonly failedCheck: string | null = null,
  ) {
    super(message);
    this.name = 'PhaseError';
  }
}

/** The innermost message of an activity failure, for people. */
export function describeError(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return describeError(error.cause);
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The `ErrorType` of an activity's failure, or null when it has none. */
export function errorTypeOf(error: unknown): string | null {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof ApplicationFailure ? (cause.type ?? null) : null;
}

/** Maps an activity's permanent failure to the reason the deployment rolls back. */
export function phaseErrorFrom(error: unknown, fallback: RollbackReason): PhaseError {
  if (error instanceof PhaseError) return error;
  const activity = error instanceof ActivityFailure ? error.activityType : null;
  const type = errorTypeOf(error);
  const reason =
    type === ErrorType.ReadinessTimeout
      ? RollbackReason.ReadinessTimeout
      : type === ErrorType.TrafficNotVerified
        ? RollbackReason.TrafficNotVerified
        : fallback;
  return new PhaseError(reason, describeError(error), activity ?? null);
}

/** The first failed gated measurement of a tick, as the reason to roll back. */
export function breachOf(measurements: readonly Measurement[]): PhaseError {
  const breach = measurements.find((m) => m.gate && m.result === AnalysisResult.Failed);
  if (!breach) return new PhaseError(RollbackReason.SloBreach, 'an SLO was breached', 'slo');
  return new PhaseError(
    RollbackReason.SloBreach,
    `SLO '${breach.name}' breached: ${formatValue(breach.value)} (must be ${breach.comparison} ${breach.threshold})`,
    breach.name,
  );
}
