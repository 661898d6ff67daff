/**
 * A Release's status, from its deployment: what the controller writes through the status
 * subresource. Conditions come in the two vocabularies GitOps tools read: Argo CD's health check
 * reads phase and outcome (and Degraded); Flux's kstatus reads Ready, Reconciling and Stalled. A
 * condition's lastTransitionTime moves only when its status changes, as Kubernetes tools expect.
 */
import type { DeploymentResult, DeploymentStatus } from '../shared/deployment-status.js';

export interface ReleaseCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** The answer to an operator's annotation, as `status.lastRequest` holds it. */
export interface OperatorRequestAnswer {
  verb: 'abort' | 'approve' | 'promote';
  value: string;
  answer: 'Accepted' | 'Recorded' | 'Refused';
  message: string;
  runId?: string;
  time: string;
}

export interface ReleaseStatus {
  phase?: string;
  step?: number;
  weight?: number;
  outcome?: string;
  reason?: string;
  message?: string;
  liveSlot?: string;
  image?: string;
  workflowId?: string;
  runId?: string;
  observedGeneration: number;
  conditions: ReleaseCondition[];
  lastRequest?: OperatorRequestAnswer;
  plan?: ReleasePlan;
}

/** The last plan asked for with the `bluegreen.dev/plan` annotation, as `status.plan` holds it. */
export interface ReleasePlan {
  /** The plan workflow (what `bluegreen deploy --plan-id` takes); absent when the spec was refused before planning. */
  id?: string;
  /** The Release generation whose spec was planned. */
  generation: number;
  plannedAt: string;
  verdict: 'WouldProceed' | 'WouldFail' | 'InvalidSpec' | 'Unreadable';
  /** The plan as `bluegreen plan` prints it, or why there is none. */
  lines: string[];
}

/** Where the Release's newest generation stands. */
export type ReleaseState =
  | { kind: 'invalid'; message: string }
  | { kind: 'waiting'; message: string }
  | { kind: 'running'; workflowId: string; runId: string; status: DeploymentStatus }
  | { kind: 'ended'; workflowId: string; runId: string; result: DeploymentResult };

/** The status for `state` at `generation`, keeping the transition times of `previous` where nothing changed. */
export function releaseStatusOf(
  state: ReleaseState,
  generation: number,
  previous: ReleaseCondition[] = [],
  now = new Date(),
): ReleaseStatus {
  const base: ReleaseStatus = { observedGeneration: generation, conditions: [] };
  let health: 'progressing' | 'healthy' | 'degraded';
  let reason: string;
  let message: string;
  if (state.kind === 'invalid' || state.kind === 'waiting') {
    health = state.kind === 'invalid' ? 'degraded' : 'progressing';
    reason = state.kind === 'invalid' ? 'InvalidSpec' : 'Waiting';
    message = state.message;
    Object.assign(base, { message });
  } else {
    const status = state.kind === 'running' ? state.status : state.result.status;
    const canary = status.canary ?? null;
    Object.assign(base, {
      phase: status.phase,
      ...(canary ? { step: canary.step, weight: canary.weight } : {}),
      message: state.kind === 'ended' ? state.result.message : status.message,
      image: status.image,
      workflowId: state.workflowId,
      runId: state.runId,
    });
    if (state.kind === 'ended') {
      const { result } = state;
      Object.assign(base, {
        outcome: result.outcome,
        ...(result.reason ? { reason: result.reason } : {}),
        ...(result.liveSlot ? { liveSlot: result.liveSlot } : {}),
      });
      if (result.liveImage) base.image = result.liveImage;
      health = result.outcome === 'Succeeded' ? 'healthy' : 'degraded';
      reason = result.outcome === 'Succeeded' ? 'Succeeded' : (result.reason ?? result.outcome);
    } else {
      if (status.activeSlot) base.liveSlot = status.activeSlot;
      health = status.phase === 'RollingBack' ? 'degraded' : 'progressing';
      reason = status.phase;
    }
    message = base.message ?? '';
  }
  const flag = (on: boolean) => (on ? 'True' : 'False');
  const wanted: [string, 'True' | 'False'][] = [
    ['Progressing', flag(health === 'progressing')],
    ['Healthy', flag(health === 'healthy')],
    ['Degraded', flag(health === 'degraded')],
    ['Ready', flag(health === 'healthy')],
    ['Reconciling', flag(health === 'progressing')],
    ['Stalled', flag(health === 'degraded' && state.kind !== 'running')],
  ];
  base.conditions = wanted.map(([type, status]) => {
    const before = previous.find((c) => c.type === type);
    const lastTransitionTime = before && before.status === status ? before.lastTransitionTime : now.toISOString();
    return { type, status, observedGeneration: generation, lastTransitionTime, reason, message };
  });
  return base;
}
