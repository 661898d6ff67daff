/**
 * What every strategy's recipe shares, in the manner of Argo Rollouts' `rolloutContext`: the
 * deployment's status and phases, the operator verbs and their rules, the compensations and the
 * rollback, notifications, the Temporal UI's details, metrics and the finish. A recipe
 * (blue-green, canary) is a sequence of phase functions that take this context.
 *
 * Deterministic code only: no I/O, no Node built-ins, activity types imported as types. Time comes
 * from the SDK's deterministic `Date`; waits are timers and conditions, visible in the history.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  metricMeter,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { incidentOf } from '../../shared/deployment-event.js';
import type { DeploymentEvent } from '../../shared/deployment-event.js';
import { formatValue } from '../../shared/analysis.js';
import type { WarmUp } from '../../shared/analysis.js';
import {
  ABORT_AFTER_CLEANUP_MESSAGE,
  DeploymentFailureType,
  Outcome,
  Phase,
  PHASE_MESSAGES,
  RollbackReason,
} from '../../shared/deployment-status.js';
import type {
  AbortRequest,
  ApproveRequest,
  DeploymentResult,
  DeploymentStatus,
  OperatorAnswer,
} from '../../shared/deployment-status.js';
import { ErrorType } from '../../shared/errors.js';
import { SearchAttribute } from '../../shared/search-attributes.js';
import { otherSlot } from '../../shared/slots.js';
import type { LiveState, Slot, SlotState } from '../../shared/slots.js';
import type { Target } from '../../shared/target.js';
import type { DeploymentSpec } from '../../deployment-spec/deployment-spec.js';
import { abortSignal, abortUpdate, approveSignal, approveUpdate, statusQuery } from '../definitions.js';
import { activityOptions } from './activity-options.js';
import type { CallKind } from './activity-options.js';
import { Compensations } from './compensations.js';
import { describeError, errorTypeOf, PhaseError, phaseErrorFrom } from './phase-error.js';
import { Patch } from './patches.js';

/** The kinds that are incidents (the procedure's §3.1 step 5). */
const INCIDENT_KINDS: readonly DeploymentEvent['kind'][] = [
  'rolled-back',
  'failed',
  'rollback-stuck',
  'observe-breach',
];

/** A restore that outlasts this (when the spec, recorded before the field existed, has none). */
const DEFAULT_STUCK_AFTER_SECONDS = 120;

/**
 * Deployment metrics, exported by the worker's runtime (replay-safe: not re-counted on replay).
 * Made inside the workflow: the meter exists only in a workflow context, and clients import this
 * module for its types and function name.
 */
function deploymentMetrics() {
  return {
    started: metricMeter.createCounter('bluegreen_deployments_started', 'deployments', 'Deployments started'),
    finished: metricMeter.createCounter(
      'bluegreen_deployments_finished',
      'deployments',
      'Deployments ended, by outcome and reason',
    ),
    phaseDuration: metricMeter.createHistogram('bluegreen_phase_duration', 'int', 'ms', 'Time spent in each phase'),
  };
}

export function now(): string {
  return new Date().toISOString();
}

/** A deployment's second argument, absent in histories recorded before it existed. */
export interface DeploymentOptions {
  /** The plan it deploys, and the live state that plan read. */
  planned?: { id: string; live: LiveState };
}

/** One deployment's run: the state both recipes read and write, and the steps they share. */
export class RunContext {
  spec: DeploymentSpec;
  options: Record<CallKind, ActivityOptions>;
  readonly undo = new Compensations();
  /** The scope the recipe's forward phases run in; an abort cancels it. */
  readonly forward = new CancellationScope();
  readonly status: DeploymentStatus;
  readonly warnings: string[] = [];
  private readonly metrics = deploymentMetrics();
  live: LiveState | null = null;
  target: Target | null = null;
  abortRequested = false;
  cleanupStarted = false;
  /** Why the deployment is rolling back, once it is (the evidence names the breach from it). */
  failure: PhaseError | null = null;
  approved = false;
  persistentRollback = false;
  /** Whether the worker that ran preflight notifies anyone (Patch.LeanPreflight); null: not known, so notify. */
  notifies: boolean | null = null;
  /** Set in preflight where the scrape-aware monitor applies (see Patch.ScrapeAwareMonitor). */
  warmUp: WarmUp | null = null;
  /**
   * The run's id, which labels the pods it rolls out (RUN_LABEL) and is `{{run}}` in its queries:
   * the first run id, so a reset or a continue-as-new keeps its pods and its series.
   */
  readonly id = workflowInfo().firstExecutionRunId;
  /** Extra lines for the Temporal UI's details, given by the recipe (the canary's step). */
  detailLines: () => string[] = () => [];

  /** The plan this run deploys (`deploy --plan-id`): preflight refuses if the live state changed since. */
  readonly planned: DeploymentOptions['planned'] | null;

  constructor(spec: DeploymentSpec, options: DeploymentOptions = {}) {
    this.spec = spec;
    this.planned = options.planned ?? null;
    this.options = activityOptions(spec);
    this.status = {
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
    this.metrics.started.add(1, { app: spec.app, namespace: spec.namespace });
    setHandler(statusQuery, () => this.status);
    // The same rules answer the Update (refused: an error to the sender, nothing recorded) and the
    // signal (recorded by Temporal even with no worker; a refused one is kept in the status).
    setHandler(abortUpdate, (request) => this.takeAbort(request), {
      validator: (_request: AbortRequest) => refuseWith(this.abortRefusal()),
    });
    setHandler(approveUpdate, (request) => this.takeApproval(request), {
      validator: (request) => refuseWith(this.approvalRefusal(request)),
    });
    setHandler(abortSignal, (request) => {
      const refusal = this.abortRefusal();
      if (refusal === null) {
        this.takeAbort(request);
        return;
      }
      const entry = {
        reason: request.reason || 'no reason given',
        by: request.by || 'unknown',
        at: now(),
        message: refusal,
      };
      this.status.rejectedAborts.push(entry);
      log.warn(refusal, entry);
    });
    setHandler(approveSignal, (request) => {
      const refusal = this.approvalRefusal(request);
      if (refusal === null) this.takeApproval(request);
      else log.warn(`approval ignored: ${refusal}`, { gate: request.gate, by: request.by });
    });
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
      return await this.rollBack(this.failureOf(error));
    }
    if (this.abortRequested) {
      return await this.rollBack(new PhaseError(RollbackReason.Aborted, this.abortMessage()));
    }
    return null;
  }

  /** Runs the compensations, uncancellable, and reports what is live afterwards. */
  async rollBack(failure: PhaseError): Promise<DeploymentResult> {
    this.failure = failure;
    const nothingChanged = this.undo.isEmpty;
    const fromSlot = this.status.fromSlot;
    const fromImage = this.live && fromSlot ? this.live.slots[fromSlot].image : null;
    if (nothingChanged && failure.reason !== RollbackReason.Aborted) {
      return this.finish(
        Outcome.Failed,
        failure.reason,
        `${failure.message}; nothing was changed`,
        failure.failedCheck,
        fromSlot,
        fromImage,
      );
    }
    this.enterPhase(Phase.RollingBack, `rolling back (${failure.reason}): ${failure.message}`);
    const incomplete = await CancellationScope.nonCancellable(() => this.runCompensations());
    if (incomplete !== null) {
      return this.finish(
        Outcome.Failed,
        failure.reason,
        this.persistentRollback
          ? `${failure.message}; ROLLBACK INCOMPLETE at '${incomplete}': the platform refused it for ` +
              `good, so a person must ` +
              `restore ${this.status.fromSlot ?? 'the old slot'} by hand (fix the permission or ` +
              `object named above, then ` +
              `point ${this.target?.service ?? 'the Service'} at ${this.status.fromSlot ?? 'the old slot'} and ` +
              `scale ${this.status.toSlot ?? 'the new slot'} to zero)`
          : `${failure.message}; ROLLBACK INCOMPLETE at '${incomplete}': the cluster needs a person`,
        failure.failedCheck,
        this.status.activeSlot,
        null,
      );
    }
    this.status.activeSlot = fromSlot;
    this.status.idleSlot = fromSlot ? otherSlot(fromSlot) : null;
    return this.finish(Outcome.RolledBack, failure.reason, failure.message, failure.failedCheck, fromSlot, fromImage);
  }

  /**
   * Runs the compensations. Where the patch applies, each restore retries until it succeeds or is
   * refused for good, and one that outlasts `rollback.stuckAfterSeconds` is reported stuck (a
   * notification, the status, the UI's details) while it goes on trying.
   */
  private async runCompensations(): Promise<string | null> {
    this.persistentRollback = patched(Patch.PersistentRollback);
    if (!this.persistentRollback) return await this.undo.runAll();
    this.options = activityOptions(this.spec, true);
    const startedAt = new Date();
    const progress = {
      startedAt: startedAt.toISOString(),
      seconds: null as number | null,
      stuckSince: null as string | null,
      step: null as string | null,
    };
    this.status.rollback = progress;
    let settled = false;
    const undoing = this.undo.runAll((step) => {
      progress.step = step;
      this.status.message = `rolling back: ${step}`;
      this.publishDetails();
    });
    void undoing.then(() => {
      settled = true;
    });
    const stuckAfter = this.spec.rollback?.stuckAfterSeconds ?? DEFAULT_STUCK_AFTER_SECONDS;
    if (
      !(await condition(() => settled, stuckAfter * 1000, { summary: `rollback reported stuck after ${stuckAfter} s` }))
    ) {
      progress.stuckSince = now();
      this.status.message =
        `ROLLBACK STUCK for ${stuckAfter} s at '${progress.step}': still retrying until ` + `the platform answers`;
      this.publishDetails();
      await this.notify(
        'rollback-stuck',
        this.status.message,
        this.status.abort ? RollbackReason.Aborted : null,
        progress.step,
      );
    }
    const incomplete = await undoing;
    progress.seconds = (new Date().getTime() - startedAt.getTime()) / 1000;
    return incomplete;
  }

  /**
   * A restore's verification. Where the rollback persists, a verification that times out (after a
   * control-plane outage the node controller may have marked the old slot's pods NotReady until
   * their kubelets report again) is tried again rather than given up; the stuck alarm tells people
   * meanwhile. Anything else (a refusal) ends the rollback as incomplete.
   */
  async verifyRestoring(verify: () => Promise<unknown>): Promise<void> {
    for (;;) {
      try {
        await verify();
        return;
      } catch (error) {
        if (!this.persistentRollback || errorTypeOf(error) !== ErrorType.TrafficNotVerified) throw error;
        log.warn('the old slot does not serve yet; verifying again', { error: describeError(error) });
        this.status.message = `rolling back: ${describeError(error)}; verifying again`;
      }
    }
  }

  /** Why an abort cannot be taken now, or null when it can. The one place the rule lives. */
  abortRefusal(): string | null {
    if (this.cleanupStarted) return ABORT_AFTER_CLEANUP_MESSAGE;
    const phase = this.status.phase;
    if (
      phase === Phase.RollingBack ||
      phase === Phase.RolledBack ||
      phase === Phase.Failed ||
      phase === Phase.Succeeded
    ) {
      return `abort rejected: the deployment is ${phase}`;
    }
    const awaiting = this.status.awaiting;
    if (this.approved && awaiting && !this.abortRequested) {
      // Both arrived at the same instant: the approval was first, and it is what happens.
      return (
        `abort rejected: the ${awaiting.gate} gate was approved at the same moment, and the approval came first; ` +
        `abort again to roll back`
      );
    }
    return null;
  }

  /** Why an approval cannot be taken now, or null when it can. */
  approvalRefusal(request: ApproveRequest): string | null {
    if (this.abortRequested)
      return `approve rejected: an abort is rolling the deployment back (${this.abortMessage()})`;
    const awaiting = this.status.awaiting;
    if (!awaiting) return `nothing to approve: the deployment is ${this.status.phase}, not waiting at a gate`;
    if (request.gate !== undefined && request.gate !== awaiting.gate) {
      return `the deployment waits at gate '${awaiting.gate}', not '${request.gate}'`;
    }
    return null;
  }

  private takeAbort(request: AbortRequest): OperatorAnswer {
    const phase = this.status.phase;
    if (this.abortRequested) return { message: `already aborting: ${this.abortMessage()}`, phase };
    const entry = { reason: request.reason || 'no reason given', by: request.by || 'unknown', at: now() };
    this.abortRequested = true;
    this.status.abort = entry;
    this.status.message = `abort requested by ${entry.by}: ${entry.reason}`;
    log.info('abort requested', entry);
    this.forward.cancel();
    return { message: `abort accepted in ${phase}: rolling back`, phase };
  }

  private takeApproval(request: ApproveRequest): OperatorAnswer {
    const gate = this.status.awaiting?.gate;
    this.approved = true;
    log.info('approved', { gate, by: request.by ?? 'unknown' });
    return { message: `approved gate ${gate}`, phase: this.status.phase };
  }

  abortMessage(): string {
    const abort = this.status.abort;
    return abort ? `aborted by ${abort.by}: ${abort.reason}` : 'the workflow was cancelled';
  }

  /** Once an abort was requested, whatever interrupted the phase is the abort's doing. */
  failureOf(error: unknown): PhaseError {
    if (this.abortRequested || isCancellation(error))
      return new PhaseError(RollbackReason.Aborted, this.abortMessage());
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

  /**
   * Tells people (through the worker's webhook and incident receiver, if any); never fails the
   * deployment. A rollback, a failure and a stuck rollback carry the incident: the summary and
   * what its links are built from.
   */
  async notify(
    kind: DeploymentEvent['kind'],
    message: string,
    reason: string | null = null,
    failedCheck: string | null = null,
  ): Promise<void> {
    if (!patched(Patch.Notifications) || this.notifies === false) return;
    const { app, namespace, version, image } = this.status;
    const { workflowId, runId, namespace: temporalNamespace } = workflowInfo();
    const incident = INCIDENT_KINDS.includes(kind)
      ? incidentOf({ status: this.status, spec: this.spec, run: this.id, message, failedCheck, now: new Date() })
      : null;
    try {
      await CancellationScope.nonCancellable(() =>
        this.act('quick', `notify: ${kind}`).notify({
          kind,
          app,
          namespace,
          version,
          image,
          message,
          reason,
          failedCheck,
          workflowId,
          runId,
          temporalNamespace,
          incident,
        }),
      );
    } catch (error) {
      log.warn('notification failed', { kind, error: describeError(error) });
    }
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

  /**
   * Whether this run carries search attributes: the client sets them at start only where the
   * namespace has them registered, and upserting unregistered ones would fail the workflow task.
   */
  private get isIndexed(): boolean {
    return workflowInfo().typedSearchAttributes.get(SearchAttribute.App) !== undefined;
  }

  enterPhase(phase: Phase, message: string): void {
    const previous = this.status.transitions.at(-1);
    if (previous && previous.phase !== phase) {
      const spent = new Date().getTime() - new Date(previous.at).getTime();
      this.metrics.phaseDuration.record(spent, { app: this.spec.app, phase: previous.phase });
    }
    this.status.phase = phase;
    this.status.message = message;
    this.status.transitions.push({ phase, at: now(), message });
    this.publishDetails();
    if (this.isIndexed) upsertSearchAttributes([{ key: SearchAttribute.Phase, value: phase }]);
    log.info(`phase ${phase}: ${message}`);
  }

  /** The Temporal UI's current details: phase, slots, the recipe's lines and the SLO table, as markdown. */
  publishDetails(): void {
    const s = this.status;
    const lines = [
      `**${s.phase}**: ${s.message}`,
      '',
      `${s.app} ${s.version} (${s.image}), ${s.fromSlot ?? '?'} → ${s.toSlot ?? '?'}, active: ${s.activeSlot ?? '?'}`,
      ...this.detailLines(),
    ];
    if (s.smoke)
      lines.push(
        '',
        `smoke: ${s.smoke.checks.filter((c) => c.verdict !== 'failed').length}/${s.smoke.checks.length} passed`,
      );
    if (s.rollback) {
      const r = s.rollback;
      const step = r.step ? `, step: ${r.step}` : '';
      const stuck = r.stuckSince ? `, **stuck since ${r.stuckSince}** (still retrying)` : '';
      const done = r.seconds !== null ? `, done in ${r.seconds.toFixed(1)} s` : '';
      lines.push('', `rollback since ${r.startedAt}${step}${stuck}${done}`);
    }
    if (s.monitor) {
      const m = s.monitor;
      lines.push(
        '',
        `monitor tick ${m.tick}/${m.ticks}: ${m.successful} ok, ${m.failed} failed, ${m.inconclusive} ` +
          `inconclusive, ${m.errors} errors`,
      );
      lines.push('', '| SLO | value | rule | verdict |', '|---|---|---|---|');
      for (const x of Object.values(m.latest)) {
        lines.push(
          `| ${x.name}${x.gate ? '' : ' (warning)'} | ${formatValue(x.value)} | ${x.comparison} ` +
            `${x.threshold} | ${x.result} |`,
        );
      }
    }
    setCurrentDetails(lines.join('\n'));
  }

  async finish(
    outcome: Outcome,
    reason: RollbackReason | null,
    message: string,
    failedCheck: string | null,
    liveSlot: Slot | null,
    liveImage: string | null,
  ): Promise<DeploymentResult> {
    const phase =
      outcome === Outcome.Succeeded
        ? Phase.Succeeded
        : outcome === Outcome.RolledBack
          ? Phase.RolledBack
          : Phase.Failed;
    this.enterPhase(phase, message);
    const { app, namespace, image, version, fromSlot, toSlot } = this.status;
    if (patched(Patch.OutcomeInMemo)) {
      // Visibility lists show the memo: `bluegreen list` reads outcomes from it.
      upsertMemo({ outcome, reason, liveSlot, liveImage });
    }
    this.metrics.finished.add(1, { app, namespace, outcome, reason: reason ?? 'none' });
    if (this.isIndexed) upsertSearchAttributes([{ key: SearchAttribute.Outcome, value: outcome }]);
    const kind =
      outcome === Outcome.Succeeded ? 'succeeded' : outcome === Outcome.RolledBack ? 'rolled-back' : 'failed';
    await this.notify(kind, message, reason, failedCheck);
    return {
      outcome,
      app,
      namespace,
      image,
      version,
      fromSlot,
      toSlot,
      liveSlot,
      liveImage,
      reason,
      failedCheck,
      message,
      warnings: [...this.warnings],
      ...(this.status.rollback ? { rollbackSeconds: this.status.rollback.seconds } : {}),
      status: this.status,
    };
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

/** An Update's validator: a refusal is an error the sender gets back; nothing is recorded. */
export function refuseWith(refusal: string | null): void {
  if (refusal !== null) throw new Error(refusal);
}
