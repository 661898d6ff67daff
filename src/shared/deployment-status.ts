/**
 * The vocabulary a deployment reports in: phases, outcomes, rollback reasons, and the shapes of
 * the status query and the result. Pure module: safe to import from workflow code; the client
 * imports it too, so both sides speak the same words.
 */
import type { Measurement } from './analysis.js';
import type { EvidenceSummary } from './evidence.js';
import type { Slot } from './slots.js';
import type { SmokeReport } from './smoke-report.js';

export const Phase = {
  Preflight: 'Preflight',
  Deploying: 'Deploying',
  SmokeTesting: 'SmokeTesting',
  AwaitingApproval: 'AwaitingApproval',
  Switching: 'Switching',
  Monitoring: 'Monitoring',
  Paused: 'Paused',
  /** After the deployment: the live slot watched for `observe.durationSeconds`. */
  Observing: 'Observing',
  CleaningUp: 'CleaningUp',
  RollingBack: 'RollingBack',
  Succeeded: 'Succeeded',
  RolledBack: 'RolledBack',
  Failed: 'Failed',
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

/** What each phase means to the person watching. */
export const PHASE_MESSAGES: Record<Phase, string> = {
  Preflight: 'validating the spec and reading the live state',
  Deploying: 'deploying the new version to the idle slot',
  SmokeTesting: 'running the smoke suite against the idle slot',
  AwaitingApproval: 'waiting for an operator to approve',
  Switching: 'switching the Service to the new slot',
  Monitoring: 'watching the SLOs of the new slot',
  Paused: 'measurements inconclusive: waiting for an operator to approve or abort',
  Observing: 'watching the live slot after the deployment',
  CleaningUp: 'scaling the old slot down',
  RollingBack: 'rolling back',
  Succeeded: 'the new version is live',
  RolledBack: 'rolled back: the previous version is live',
  Failed: 'failed',
};

/** What an abort is told once cleanup has begun; the workflow records it and the client shows it. */
export const ABORT_AFTER_CLEANUP_MESSAGE =
  'abort rejected: cleanup has begun and the new version passed monitoring; to roll back, deploy the previous image';

export const Outcome = {
  Succeeded: 'Succeeded',
  RolledBack: 'RolledBack',
  Failed: 'Failed',
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** Why a deployment rolled back (or failed), as a value the CLI and history can show. */
export const RollbackReason = {
  Aborted: 'Aborted',
  InvalidSpec: 'InvalidSpec',
  PreflightFailed: 'PreflightFailed',
  /** The active slot breached a gated SLO in preflight: nothing was changed (PROCEDURE §2.1). */
  ActiveSlotUnstable: 'ActiveSlotUnstable',
  ReadinessTimeout: 'ReadinessTimeout',
  SmokeFailed: 'SmokeFailed',
  ApprovalTimeout: 'ApprovalTimeout',
  TrafficNotVerified: 'TrafficNotVerified',
  SloBreach: 'SloBreach',
  MeasurementErrors: 'MeasurementErrors',
  NoDecision: 'NoDecision',
  ActivityError: 'ActivityError',
} as const;
export type RollbackReason = (typeof RollbackReason)[keyof typeof RollbackReason];

export const Gate = {
  BeforeSwitch: 'beforeSwitch',
  BeforeCleanup: 'beforeCleanup',
  /** Too many inconclusive measurements: continue (approve) or roll back (abort). */
  Inconclusive: 'inconclusive',
  /**
   * Canary: both slots breach the same SLO at once, so the cause is shared (a dependency, a
   * cascade) and rolling back would not help: go on (approve) or roll back (abort).
   */
  SharedCause: 'sharedCause',
} as const;
export type Gate = (typeof Gate)[keyof typeof Gate];

/** The payload of `abortSignal`: plain JSON, so `temporal workflow signal` can send it too. */
export interface AbortRequest {
  reason: string;
  by?: string;
}

/** The payload of `approveSignal`; `gate` guards against approving a gate you did not mean. */
export interface ApproveRequest {
  by?: string;
  gate?: Gate;
}

/** The payload of `promoteSignal`: end the canary's current hold now, or with `full` go to 100 %. */
export interface PromoteRequest {
  by?: string;
  full?: boolean;
}

/** The workflow's answer to an accepted `abort` or `approve` Update (a refusal is an error). */
export interface OperatorAnswer {
  /** What the request did, in words for the operator. */
  message: string;
  /** The phase the deployment was in when it took the request. */
  phase: Phase;
}

/** The failure types a deployment that did not go live ends with; its details hold the result. */
export const DeploymentFailureType = {
  RolledBack: 'DeploymentRolledBack',
  Failed: 'DeploymentFailed',
} as const;

/** How the rollback went: how long the restore took, and whether it was reported stuck. */
export interface RollbackProgress {
  startedAt: string;
  /** Seconds from the start of the rollback to the last compensation done; null while running. */
  seconds: number | null;
  /** Set when the restore outlasted `rollback.stuckAfterSeconds`: it goes on trying. */
  stuckSince: string | null;
  /** The compensation being run (or last run). */
  step: string | null;
}

export interface PhaseTransition {
  phase: Phase;
  at: string;
  message: string;
}

export interface MonitorProgress {
  tick: number;
  ticks: number;
  durationSeconds: number;
  intervalSeconds: number;
  successful: number;
  failed: number;
  inconclusive: number;
  errors: number;
  consecutiveErrors: number;
  restarts: number;
  /** The last measurement of each SLO, by name (plus `pod-restarts`). */
  latest: Record<string, Measurement>;
  /** Seconds at the start in which missing data is not counted (absent before it existed). */
  warmUpSeconds?: number;
  /** The scrape interval the warm-up was derived from; null when the spec set it. */
  scrapeIntervalSeconds?: number | null;
  /** Inconclusive ticks in a row after the warm-up. */
  consecutiveInconclusive?: number;
  /** Ticks measured while paused for missing data. */
  pausedTicks?: number;
}

/** The window after the deployment: the ticks so far, and every breach seen (each notified once). */
export interface ObserveProgress {
  slot: Slot;
  tick: number;
  ticks: number;
  durationSeconds: number;
  intervalSeconds: number;
  /** Whether the old slot stays warm, so that a breach rolls back. */
  keepOldSlotWarm: boolean;
  successful: number;
  failed: number;
  inconclusive: number;
  errors: number;
  /** The first breach of each SLO, when it came. */
  breaches: { name: string; value: number | null; comparison: string; threshold: number; at: string }[];
  latest: Record<string, Measurement>;
}

/** Where a canary stands: its step, the weight set, the share observed and the step's analysis. */
export interface CanaryProgress {
  router: string;
  /** 1-based; 0 before the first weight is set. */
  step: number;
  steps: number;
  /** The weight the router holds now (verified), in percent. */
  weight: number;
  /** The weight of the current step as the spec sets it. */
  stepWeight: number;
  /** The weight in effect as the router reported it when verified (replica counts, weights). */
  effectiveWeight: number | null;
  /** The canary's share of the requests both slots served over the monitor window, in percent. */
  observedShare: number | null;
  canaryRequests: number | null;
  stableRequests: number | null;
  canaryReplicas: number;
  /** The current hold: since when, for how long, how much it was extended, and how it waits. */
  hold: { since: string; seconds: number; extendedSeconds: number; untilPromote: boolean } | null;
  /** The result of the step's last tick (Successful, Inconclusive, ...). */
  analysis: string | null;
  /** Set when both slots breached the same SLO: the diagnosis the pause shows. */
  sharedCause: string | null;
  /** Steps done, with the share each observed when it ended. */
  completed: {
    step: number;
    weight: number;
    observedShare: number | null;
    canaryRequests: number | null;
    seconds: number;
  }[];
  promotedBy: string | null;
}

/**
 * The stability check of preflight (PROCEDURE §2.1): the active slot's gated SLOs, measured once
 * before anything changes.
 */
export interface ActiveSlotCheck {
  slot: Slot;
  /** The version its pods are labelled with, which scopes the queries; null when unlabelled. */
  version: string | null;
  /** stable: every gated SLO met; breaching: one or more not; unknown: no data, or no answer. */
  verdict: 'stable' | 'breaching' | 'unknown';
  measurements: Measurement[];
  /** Why it could not be judged, when unknown. */
  detail: string | null;
  /** A breaching active slot let through by `allowUnstableActive` (a hotfix during an incident). */
  allowedUnstable: boolean;
}

export interface DeploymentStatus {
  app: string;
  namespace: string;
  image: string;
  version: string;
  phase: Phase;
  message: string;
  /** The slot the Service selects now, as far as the workflow has driven it. */
  activeSlot: Slot | null;
  idleSlot: Slot | null;
  fromSlot: Slot | null;
  toSlot: Slot | null;
  awaiting: { gate: Gate; since: string; timeoutAt: string } | null;
  abort: { reason: string; by: string; at: string } | null;
  /** Aborts refused because cleanup had begun, with the reason given to the sender. */
  rejectedAborts: { reason: string; by: string; at: string; message: string }[];
  smoke: SmokeReport | null;
  monitor: MonitorProgress | null;
  /** Present once a rollback has begun. */
  rollback?: RollbackProgress | null;
  /** blueGreen or canary (absent in runs recorded before the canary existed: blueGreen). */
  strategy?: string;
  /** Present in a canary. */
  canary?: CanaryProgress | null;
  /**
   * What was live when the deployment began, read in preflight: what `bluegreen undo` goes back to
   * after a success. Absent in runs recorded before it existed.
   */
  previous?: { slot: Slot; image: string | null; version: string | null } | null;
  /** A rollback's evidence, summarized (the whole is the capture's result in the history: `bluegreen evidence`). */
  evidence?: EvidenceSummary | null;
  /** The window after the deployment (`observe`), once it has begun. */
  observe?: ObserveProgress | null;
  /** The preflight stability check; absent where no gated SLO is set, and in runs before it existed. */
  activeCheck?: ActiveSlotCheck | null;
  transitions: PhaseTransition[];
}

export interface DeploymentResult {
  outcome: Outcome;
  app: string;
  namespace: string;
  image: string;
  version: string;
  fromSlot: Slot | null;
  toSlot: Slot | null;
  /** The slot serving traffic when the workflow ended, and what it runs. */
  liveSlot: Slot | null;
  liveImage: string | null;
  reason: RollbackReason | null;
  /** The check, SLO or activity that failed, when one did. */
  failedCheck: string | null;
  message: string;
  /** Things that went wrong without changing the outcome (e.g. cleanup could not scale down). */
  warnings: string[];
  /** Seconds the rollback's compensations took, when there was one. */
  rollbackSeconds?: number | null;
  status: DeploymentStatus;
}
