/**
 * A release train as the workflow runs it: the stages in order, each over one cluster or a wave of
 * several, with each cluster's deployment spec already merged and validated by the client
 * (src/train/train-spec.ts), and the windows and freezes that say when a stage may start.
 * Pure module: workflow-safe, no I/O; time zones through Intl, which the sandbox has.
 */
import type { Outcome, RollbackReason } from './deployment-status.js';
import type { Slot } from './slots.js';

export const TrainOnFailure = { Hold: 'hold', RollbackCompleted: 'rollbackCompleted' } as const;
export type TrainOnFailure = (typeof TrainOnFailure)[keyof typeof TrainOnFailure];

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** When a stage may start: on these days, from `from` to `to` (HH:MM, `to` exclusive), in `timeZone`. */
export interface TrainWindow {
  days: Weekday[];
  from: string;
  to: string;
  timeZone: string;
}

/** No stage starts within a freeze (ISO instants, `to` exclusive). */
export interface TrainFreeze {
  from: string;
  to: string;
  reason: string;
}

/** One cluster's deployment in a stage: its worker's task queue and its spec, merged and validated. */
export interface TrainTarget {
  cluster: string;
  taskQueue: string;
  /** The deployment spec as the client validated it (a DeploymentSpec; typed loosely: workflow-safe). */
  spec: TrainDeploymentSpec;
}

/** What the train reads of a deployment spec; the child workflow gets the whole. */
export interface TrainDeploymentSpec {
  app: string;
  namespace: string;
  image: string;
  version: string;
  strategy: 'blueGreen' | 'canary';
  [field: string]: unknown;
}

export interface TrainStage {
  name: string;
  targets: TrainTarget[];
  /** How many of a wave's clusters deploy at once (1 for a single cluster). */
  maxParallel: number;
  /** How many of a wave's clusters may fail before the stage fails. */
  failureBudget: number;
  /** Seconds the stage is observed after its deployments succeed (their observe window). */
  soakSeconds: number;
  approval: 'none' | 'required';
  /** Empty: any time (freezes aside). */
  windows: TrainWindow[];
}

export interface TrainPlan {
  name: string;
  image: string;
  version: string;
  stages: TrainStage[];
  freezes: TrainFreeze[];
  onFailure: TrainOnFailure;
  /**
   * How long a deployment runs before the train asks whether its cluster's worker polls; none:
   * people are notified. Absent in trains started before it existed (no notice then).
   */
  workerNoticeSeconds?: number;
  /**
   * Set by `train retry`: this run goes on from a stage an earlier run of the train failed at (the
   * stages before it, and that stage's clusters that succeeded, are left out).
   */
  retry?: { stage: string; by: string; at: string; runId: string };
  /**
   * Set by the client at start: the namespace has the deployments' search attributes registered,
   * so the train's deployments carry them, as a direct deploy's do (`bluegreen list --app` finds
   * them). Absent in trains started before it existed: their deployments carry none.
   */
  indexed?: boolean;
}

export const StageState = {
  Pending: 'Pending',
  WaitingForWindow: 'WaitingForWindow',
  AwaitingApproval: 'AwaitingApproval',
  Deploying: 'Deploying',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Skipped: 'Skipped',
  Undoing: 'Undoing',
  Undone: 'Undone',
  UndoFailed: 'UndoFailed',
} as const;
export type StageState = (typeof StageState)[keyof typeof StageState];

/** One cluster's deployment in a stage, as the train saw it end. */
export interface TrainTargetStatus {
  cluster: string;
  taskQueue: string;
  workflowId: string;
  state: 'Pending' | 'Running' | 'Succeeded' | 'RolledBack' | 'Failed' | 'Undone' | 'UndoFailed';
  outcome: Outcome | null;
  reason: RollbackReason | null;
  message: string | null;
  liveSlot: Slot | null;
  /** What the deployment replaced: what an undo deploys again. */
  previous: { image: string | null; version: string | null } | null;
  /**
   * Since when no worker polls the cluster's queue, as the train found it after
   * `workerNoticeSeconds` (and notified people); null once one does.
   */
  workerMissingSince?: string | null;
  /**
   * Set by the client's status while the deployment runs: whether any worker polled its queue in
   * the last minute or so (false: the stage waits for that cluster's worker).
   */
  workerSeen?: boolean;
  /** Set by the client's status while the deployment runs: its phase, and in its soak the seconds left. */
  phase?: string;
  soakLeftSeconds?: number | null;
}

export interface TrainStageStatus {
  name: string;
  state: StageState;
  startedAt: string | null;
  endedAt: string | null;
  /** While waiting for a window or a freeze's end: until when. */
  waitingUntil: string | null;
  approvedBy: string | null;
  /** In the status query, for a stage not begun that has windows: when its next window opens (with its soak). */
  nextWindow?: string | null;
  targets: TrainTargetStatus[];
}

export interface TrainDecision {
  at: string;
  by: string;
  what: string;
}

export interface TrainStatus {
  name: string;
  image: string;
  version: string;
  state: 'Running' | 'Succeeded' | 'Held' | 'RolledBack' | 'Failed' | 'Aborted';
  message: string;
  stages: TrainStageStatus[];
  /** Every decision with who made it: approvals, the abort, skips. */
  decisions: TrainDecision[];
}

export type TrainResult = TrainStatus;

export interface TrainApproveRequest {
  stage?: string;
  by?: string;
}

export interface TrainAbortRequest {
  reason?: string;
  by?: string;
}

/** What the train answers an operator's verb. */
export interface TrainAnswer {
  message: string;
}

export interface TrainSkipRequest {
  stage: string;
  by?: string;
}

/** The train's workflow id: one train per name at a time. */
export function trainWorkflowId(name: string): string {
  return `bluegreen-train/${name}`;
}

/** A stage's deployment on one cluster: a child of the train. */
export function trainChildId(train: string, stage: string, cluster: string): string {
  return `${trainWorkflowId(train)}/${stage}/${cluster}`;
}

/** Minutes since midnight of an HH:MM time (24:00 is 1440). */
export function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
}

/** The weekday and minute of the day of `at` in `timeZone`. */
export function localTime(at: Date, timeZone: string): { day: Weekday; minute: number } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = part('weekday').toLowerCase().slice(0, 3) as Weekday;
  return { day, minute: Number(part('hour')) * 60 + Number(part('minute')) };
}

/** Whether `at` is within the window. */
export function inWindow(at: Date, window: TrainWindow): boolean {
  const { day, minute } = localTime(at, window.timeZone);
  return window.days.includes(day) && minute >= minutesOf(window.from) && minute < minutesOf(window.to);
}

/** The freeze `at` falls in, or null. */
export function freezeAt(at: Date, freezes: TrainFreeze[]): TrainFreeze | null {
  const t = at.getTime();
  return freezes.find((f) => t >= Date.parse(f.from) && t < Date.parse(f.to)) ?? null;
}

/**
 * The first minute from `at` at which a stage may start: in one of its windows (any time, if it
 * has none) with `fitSeconds` (its soak) still inside that window, and no freeze from its start
 * to its end. A stage due at 17:55 with a window closing at 18:00 and a 10-minute soak waits for
 * the next window. Looks 14 days ahead, minute by minute; null when none comes by then.
 */
export function nextStart(at: Date, windows: TrainWindow[], freezes: TrainFreeze[], fitSeconds = 0): Date | null {
  const fit = Math.max(0, fitSeconds * 1000 - 60_000);
  const allowed = (t: Date) => {
    const end = new Date(t.getTime() + fit);
    const windowed = windows.length === 0 || windows.some((w) => inWindow(t, w) && inWindow(end, w));
    return windowed && !freezes.some((f) => Date.parse(f.from) <= end.getTime() && t.getTime() < Date.parse(f.to));
  };
  if (allowed(at)) return at;
  const first = Math.ceil(at.getTime() / 60_000) * 60_000;
  for (let t = first; t <= at.getTime() + 14 * 86_400_000; t += 60_000) {
    const candidate = new Date(t);
    if (allowed(candidate)) return candidate;
  }
  return null;
}

/** Whether two windows share a minute of some day (the spec refuses overlapping windows). */
export function windowsOverlap(a: TrainWindow, b: TrainWindow): boolean {
  if (a.timeZone !== b.timeZone) return false;
  const sharedDay = a.days.some((d) => b.days.includes(d));
  return sharedDay && minutesOf(a.from) < minutesOf(b.to) && minutesOf(b.from) < minutesOf(a.to);
}
