/**
 * One deployment's run, as both recipes (blue-green, canary) see it, in the manner of Argo
 * Rollouts' `rolloutContext`: the spec (read-only once preflight has validated it), what
 * preflight read, the activities, and the forward scope an abort cancels. Its parts have one owner
 * each:
 * - commands.ts: the operator's abort, approve and promote, with their rules;
 * - rollback.ts: the compensations and the stuck alarm;
 * - report.ts: the status (written only by status.ts's reducer), the Temporal UI's details,
 *   notifications, metrics and the result.
 * A recipe is a sequence of phase functions that take this context.
 *
 * Deterministic code only: no I/O, no Node built-ins, activity types imported as types. Time comes
 * from the SDK's deterministic `Date`; waits are timers and conditions, visible in the history.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  patched,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { WarmUp } from '../../shared/analysis.js';
import { DeploymentFailureType, Outcome, RollbackReason } from '../../shared/deployment-status.js';
import type { DeploymentResult, DeploymentStatus } from '../../shared/deployment-status.js';
import { otherSlot } from '../../shared/slots.js';
import type { LiveState, Slot, SlotState } from '../../shared/slots.js';
import { targetOf } from '../../shared/target.js';
import type { Target } from '../../shared/target.js';
import type { DeploymentSpec } from '../../deployment-spec/deployment-spec.js';
import { activityOptions } from './activity-options.js';
import type { CallKind } from './activity-options.js';
import { OperatorCommands } from './commands.js';
import { PhaseError, phaseErrorFrom } from './phase-error.js';
import { Patch } from './patches.js';
import { RunReport } from './report.js';
import { Rollback } from './rollback.js';

/** A deployment's second argument, absent in histories recorded before it existed. */
export interface DeploymentOptions {
  /** The plan it deploys, and the live state that plan read. */
  planned?: { id: string; live: LiveState };
}

export class RunContext {
  private validatedSpec: DeploymentSpec;
  private specValidated = false;
  options: Record<CallKind, ActivityOptions>;
  /** The scope the recipe's forward phases run in; an abort cancels it. */
  readonly forward = new CancellationScope();
  live: LiveState | null = null;
  target: Target | null = null;
  /** Whether the worker that ran preflight notifies anyone (Patch.LeanPreflight); null: not known, so notify. */
  notifies: boolean | null = null;
  /** Set in preflight where the scrape-aware monitor applies (see Patch.ScrapeAwareMonitor). */
  warmUp: WarmUp | null = null;
  /**
   * The run's id, which labels the pods it rolls out (RUN_LABEL) and is `{{run}}` in its queries:
   * the first run id, so a reset or a continue-as-new keeps its pods and its series.
   */
  readonly id = workflowInfo().firstExecutionRunId;
  /** The plan this run deploys (`deploy --plan-id`): preflight refuses if the live state changed since. */
  readonly planned: DeploymentOptions['planned'] | null;
  readonly report: RunReport;
  readonly commands: OperatorCommands;
  readonly rollback: Rollback;

  constructor(spec: DeploymentSpec, options: DeploymentOptions = {}) {
    this.validatedSpec = spec;
    this.planned = options.planned ?? null;
    this.options = activityOptions(spec);
    this.report = new RunReport(this);
    this.commands = new OperatorCommands(this);
    this.rollback = new Rollback(this);
  }

  /** The spec: as started until preflight validates it, then the worker's validated copy, read-only. */
  get spec(): DeploymentSpec {
    return this.validatedSpec;
  }

  /** The status, as the reducer made it (change it through `report.record`). */
  get status(): Readonly<DeploymentStatus> {
    return this.report.status;
  }

  /** Preflight's validated spec replaces the one started with, once; its options and target follow. */
  adoptValidatedSpec(spec: DeploymentSpec): Target {
    if (this.specValidated) throw new Error('the spec was validated already; it is read-only since');
    this.specValidated = true;
    this.validatedSpec = spec;
    this.options = activityOptions(spec);
    this.target = targetOf(spec);
    return this.target;
  }

  /**
   * Runs the recipe's forward phases in the cancellable scope; any failure, or an abort that
   * arrived as they ended, leaves through the rollback. Returns the result when it rolled back,
   * or null when the recipe may go on to its cleanup.
   */
  async runForward(phases: () => Promise<void>): Promise<DeploymentResult | null> {
    try {
      await this.forward.run(phases);
    } catch (error) {
      return await this.rollback.rollBack(this.failureOf(error));
    }
    if (this.commands.abortRequested) {
      return await this.rollback.rollBack(new PhaseError(RollbackReason.Aborted, this.commands.abortMessage()));
    }
    return null;
  }

  /** Once an abort was requested, whatever interrupted the phase is the abort's doing. */
  failureOf(error: unknown): PhaseError {
    if (this.commands.abortRequested || isCancellation(error))
      return new PhaseError(RollbackReason.Aborted, this.commands.abortMessage());
    if (error instanceof PhaseError) return error;
    return phaseErrorFrom(error, RollbackReason.ActivityError);
  }

  /** The objects and slots read in preflight: the live (active) slot and the idle one. */
  slots(): { target: Target; active: Slot; idle: Slot; idleBefore: SlotState } {
    if (!this.target || !this.live) throw new Error('the live state has not been read yet');
    const active = this.live.activeSlot;
    const idle = otherSlot(active);
    return { target: this.target, active, idle, idleBefore: this.live.slots[idle] };
  }

  /** Activities of one kind of call, with a summary the Temporal UI shows on the event. */
  act(kind: CallKind, summary: string, overrides: Partial<ActivityOptions> = {}) {
    const options = { ...this.options[kind], ...overrides };
    if (kind === 'write' && !patched(Patch.SettledWrites)) {
      // Recorded before writes were waited for: replay them as they ran.
      return proxyActivities<Activities>({
        ...options,
        cancellationType: ActivityCancellationType.TRY_CANCEL,
        summary,
      });
    }
    return proxyActivities<Activities>({ ...options, summary });
  }
}

/**
 * Ends a workflow function: the result when the new version went live; otherwise a failure, with
 * the reason as its message and the whole result as its details, so the Temporal UI's list and
 * `ExecutionStatus = "Failed"` tell a rollback from a success (runs recorded before this completed).
 */
export function endWith(result: DeploymentResult): DeploymentResult {
  if (result.outcome !== Outcome.Succeeded && patched(Patch.FailedExecution)) {
    throw ApplicationFailure.create({
      type: result.outcome === Outcome.RolledBack ? DeploymentFailureType.RolledBack : DeploymentFailureType.Failed,
      message: `${result.outcome}${result.reason ? ` (${result.reason})` : ''}: ${result.message}`,
      details: [result],
      nonRetryable: true,
    });
  }
  return result;
}
