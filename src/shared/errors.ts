/**
 * The small vocabulary of failures that must not be retried. Activities throw
 * `ApplicationFailure` with one of these as `type` and `nonRetryable: true`; the workflow's retry
 * policies also list them in `nonRetryableErrorTypes`, so a mistake in one place cannot turn a
 * permanent error into an endless retry. Pure module: safe to import from workflow code.
 */
export const ErrorType = {
  /** The spec or a request is invalid (HTTP 422, a bad field). */
  InvalidInput: 'InvalidInput',
  /** A Service or Deployment the spec names does not exist (HTTP 404). */
  NotFound: 'NotFound',
  /** The worker's identity may not do what the deployment needs (HTTP 403). */
  Forbidden: 'Forbidden',
  /** The live state contradicts the procedure (selector on neither slot, active slot unhealthy). */
  PreconditionFailed: 'PreconditionFailed',
  /** The idle slot did not become Ready within the readiness timeout. */
  ReadinessTimeout: 'ReadinessTimeout',
  /** The Service's endpoints did not converge on the expected slot. */
  TrafficNotVerified: 'TrafficNotVerified',
} as const;

export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

export const NON_RETRYABLE_ERROR_TYPES: string[] = Object.values(ErrorType);
