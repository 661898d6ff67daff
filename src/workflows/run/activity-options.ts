/**
 * Activity options per kind of call: reads, writes, long waits, the SLO tick, restores and cleanup.
 *
 * Every kind names its `cancellationType`: left unset, the SDK sends TRY_CANCEL (whatever its doc
 * comment says), so a cancelled call's promise rejects at once while the call goes on running on
 * the worker. That is right for a read or a wait, which change nothing, and wrong for a write: an
 * abort during a slow selector PATCH would run the switch-back beside it, read the old selector,
 * write nothing, and then the PATCH lands on a slot the rollback is scaling to zero. Writes wait
 * for the call to end (WAIT_CANCELLATION_COMPLETED); the compensation then reads what is in effect.
 */
import { ActivityCancellationType } from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../../shared/errors.js';
import type { DeploymentSpec } from '../../deployment-spec/deployment-spec.js';

export type CallKind =
  'quick' | 'write' | 'readiness' | 'waiting' | 'measure' | 'monitor' | 'restore' | 'cleanup' | 'evidence';

/** The monitor window's heartbeat timeout: a lost worker is noticed this soon (it heartbeats every 2 s). */
export const MONITOR_HEARTBEAT_TIMEOUT_SECONDS = 10;

const RETRY = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '10s',
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
} as const;

export function activityOptions(spec: DeploymentSpec, persistentRollback = false): Record<CallKind, ActivityOptions> {
  // Waiting activities heartbeat at least every poll (at most 2 s apart) and after every smoke
  // check: a worker that died is noticed this soon, and its activity retried on another.
  // (The constructor builds these from the raw input, before validateSpec: smoke may be absent.)
  const heartbeatTimeout = `${Math.max(10, (spec.smoke?.timeoutSeconds ?? 5) + 5)}s`;
  const { TRY_CANCEL, WAIT_CANCELLATION_COMPLETED } = ActivityCancellationType;
  const cleanup: ActivityOptions = {
    startToCloseTimeout: '5m',
    heartbeatTimeout,
    retry: { ...RETRY, maximumAttempts: 10 },
    // Runs uncancellable; named all the same, as a write.
    cancellationType: WAIT_CANCELLATION_COMPLETED,
  };
  return {
    /**
     * Reads (and the notification): short, retried a few times; a cancelled read may be abandoned.
     * They heartbeat while in flight, so a read lost with its worker is retried within 5 s.
     */
    quick: {
      startToCloseTimeout: '30s',
      heartbeatTimeout: '5s',
      retry: { ...RETRY, maximumAttempts: 5 },
      cancellationType: TRY_CANCEL,
    },
    /**
     * Single writes (the new image, the selector): as reads, but a cancelled write is waited for.
     * They heartbeat while in flight, so a write lost with its worker is retried within 5 s.
     */
    write: {
      startToCloseTimeout: '30s',
      heartbeatTimeout: '5s',
      retry: { ...RETRY, maximumAttempts: 5 },
      cancellationType: WAIT_CANCELLATION_COMPLETED,
    },
    /** Waiting for replicas: as long as the readiness timeout, heartbeating; stops at once on cancel. */
    readiness: {
      startToCloseTimeout: `${spec.readinessTimeoutSeconds + 30}s`,
      heartbeatTimeout,
      retry: { ...RETRY, maximumAttempts: 3 },
      cancellationType: TRY_CANCEL,
    },
    /** Endpoint convergence and the smoke suite: bounded waits that change nothing. */
    waiting: {
      startToCloseTimeout: '5m',
      heartbeatTimeout,
      retry: { ...RETRY, maximumAttempts: 3 },
      cancellationType: TRY_CANCEL,
    },
    /** One SLO tick: never retried, because a failed measurement is counted, not hidden. */
    measure: { startToCloseTimeout: '15s', retry: { maximumAttempts: 1 }, cancellationType: TRY_CANCEL },
    /**
     * A monitor window in one activity (its start-to-close is set per call, from the window): a
     * lost worker is noticed within the heartbeat timeout and the retry resumes from the last
     * heartbeat; it only reads, so a cancelled one is abandoned (an abort does not wait for it).
     */
    monitor: {
      startToCloseTimeout: '1h',
      heartbeatTimeout: `${MONITOR_HEARTBEAT_TIMEOUT_SECONDS}s`,
      retry: { ...RETRY, maximumAttempts: 10 },
      cancellationType: TRY_CANCEL,
    },
    /**
     * Compensation: it restores service, so it keeps trying through an API server's outage
     * (unlimited attempts, backoff capped at 10 s, so it lands within about 10 s of the API's return)
     * until it succeeds or is refused for good.
     */
    restore: persistentRollback
      ? { ...cleanup, retry: { ...RETRY } } // no maximumAttempts: unlimited
      : cleanup,
    /** Cleanup after a success: retried, then reported degraded; never a rollback. */
    cleanup,
    /** The rollback's evidence: bounded, tried twice, then a warning; it never holds the rollback up for long. */
    evidence: { startToCloseTimeout: '60s', retry: { ...RETRY, maximumAttempts: 2 }, cancellationType: TRY_CANCEL },
  };
}
