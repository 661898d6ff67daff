/**
 * Who writes the status: this reducer, and only it. A phase says what happened (an event below);
 * `applyEvent` turns it into the status, in the spirit of Argo Rollouts' "compute the new status,
 * save it once". The report (report.ts) holds the status, applies events and publishes the result
 * to the Temporal UI.
 *
 * A phase that counts as it goes (the monitor, a canary step, observe, the rollback) hands its
 * progress object to the status once, with its event; its counts are that object's, and the phase
 * says when they changed with a `message` or `progress` event.
 *
 * Deterministic code only: time comes from the SDK's `Date`.
 */
import { PHASE_MESSAGES, Phase } from '../../shared/deployment-status.js';
import type {
  ActiveSlotCheck,
  CanaryProgress,
  DeploymentStatus,
  Gate,
  MonitorProgress,
  ObserveProgress,
  RollbackProgress,
} from '../../shared/deployment-status.js';
import type { EvidenceSummary } from '../../shared/evidence.js';
import { otherSlot } from '../../shared/slots.js';
import type { LiveState, Slot } from '../../shared/slots.js';
import type { SmokeReport } from '../../shared/smoke-report.js';
import type { DeploymentSpec } from '../../deployment-spec/deployment-spec.js';

export function now(): string {
  return new Date().toISOString();
}

/** An operator's abort as the status keeps it. */
export interface AbortEntry {
  reason: string;
  by: string;
  at: string;
}

/** What happened, as a phase or a command reports it. */
export type StatusEvent =
  /** A phase begins (or the same phase says something new and keeps its place in the timeline). */
  | { kind: 'phase'; phase: Phase; message: string }
  /** What the deployment is doing now, in words. */
  | { kind: 'message'; message: string }
  /** Preflight read the live state: the slot traffic is on, and the one the new version goes to. */
  | { kind: 'live'; live: LiveState }
  /** Traffic moved: `active` takes all of it (a switch, a promotion, a restore). */
  | { kind: 'routed'; active: Slot }
  /** A restore pointed the router back at `active`; the idle slot stays as it was named. */
  | { kind: 'restored'; active: Slot }
  | { kind: 'active-check'; check: ActiveSlotCheck }
  | { kind: 'smoke'; report: SmokeReport; message: string }
  /** A gate opens (with its deadline) or closes (null). */
  | { kind: 'gate'; awaiting: { gate: Gate; since: string; timeoutAt: string } | null }
  | { kind: 'abort-accepted'; abort: AbortEntry; message: string }
  | { kind: 'abort-refused'; abort: AbortEntry; message: string }
  | { kind: 'strategy'; strategy: 'canary' }
  | { kind: 'canary'; progress: CanaryProgress }
  /** The monitor's window (null: between a canary's holds). */
  | { kind: 'monitor'; progress: MonitorProgress | null }
  /** A monitor window's activity answered: its counts so far, and what it says. */
  | { kind: 'monitor-answer'; progress: MonitorProgress; message: string }
  /** The new slot's restarts, read beside the ticks. */
  | { kind: 'restarts'; restarts: number }
  | { kind: 'observe'; progress: ObserveProgress; message?: string }
  | { kind: 'evidence'; summary: EvidenceSummary }
  | { kind: 'rollback'; progress: RollbackProgress };

/** The status a deployment starts with: in preflight, nothing read yet. */
export function initialStatus(spec: DeploymentSpec): DeploymentStatus {
  return {
    app: spec.app,
    namespace: spec.namespace,
    image: spec.image,
    version: spec.version,
    phase: Phase.Preflight,
    message: PHASE_MESSAGES.Preflight,
    activeSlot: null,
    idleSlot: null,
    fromSlot: null,
    toSlot: null,
    awaiting: null,
    abort: null,
    rejectedAborts: [],
    smoke: null,
    monitor: null,
    transitions: [{ phase: Phase.Preflight, at: now(), message: PHASE_MESSAGES.Preflight }],
  };
}

/** Applies what happened to the status. */
export function applyEvent(status: DeploymentStatus, event: StatusEvent): void {
  switch (event.kind) {
    case 'phase':
      status.phase = event.phase;
      status.message = event.message;
      status.transitions.push({ phase: event.phase, at: now(), message: event.message });
      return;
    case 'message':
      status.message = event.message;
      return;
    case 'live': {
      const { activeSlot } = event.live;
      const idle = otherSlot(activeSlot);
      const active = event.live.slots[activeSlot];
      Object.assign(status, { activeSlot, idleSlot: idle, fromSlot: activeSlot, toSlot: idle });
      status.previous = { slot: active.slot, image: active.image, version: active.version ?? null };
      return;
    }
    case 'routed':
      status.activeSlot = event.active;
      status.idleSlot = otherSlot(event.active);
      return;
    case 'restored':
      status.activeSlot = event.active;
      return;
    case 'active-check':
      status.activeCheck = event.check;
      return;
    case 'smoke':
      status.smoke = event.report;
      status.message = event.message;
      return;
    case 'gate':
      status.awaiting = event.awaiting;
      return;
    case 'abort-accepted':
      status.abort = event.abort;
      status.message = event.message;
      return;
    case 'abort-refused':
      status.rejectedAborts.push({ ...event.abort, message: event.message });
      return;
    case 'strategy':
      status.strategy = event.strategy;
      return;
    case 'canary':
      status.canary = event.progress;
      return;
    case 'monitor':
      status.monitor = event.progress;
      return;
    case 'monitor-answer':
      if (status.monitor) Object.assign(status.monitor, event.progress);
      status.message = event.message;
      return;
    case 'restarts':
      if (status.monitor && status.phase !== Phase.Observing) status.monitor.restarts = event.restarts;
      return;
    case 'observe':
      status.observe = event.progress;
      if (event.message !== undefined) status.message = event.message;
      return;
    case 'evidence':
      status.evidence = event.summary;
      return;
    case 'rollback':
      status.rollback = event.progress;
      return;
  }
}
