/**
 * The operator's commands: abort, approve and promote. Each has one rule (a `...Refusal` below)
 * that answers both its Update (refused: an error to the sender, nothing recorded) and its signal
 * (recorded by Temporal even with no worker; a refused abort is kept in the status).
 *
 * Deterministic code only: no I/O, no Node built-ins, activity types imported as types.
 */
import { log, setHandler } from '@temporalio/workflow';
import { ABORT_AFTER_CLEANUP_MESSAGE, Gate, Phase } from '../../shared/deployment-status.js';
import type {
  AbortRequest,
  ApproveRequest,
  CanaryProgress,
  OperatorAnswer,
  PromoteRequest,
} from '../../shared/deployment-status.js';
import {
  abortSignal,
  abortUpdate,
  approveSignal,
  approveUpdate,
  promoteSignal,
  promoteUpdate,
} from '../definitions.js';
import type { RunContext } from './run-context.js';
import { now } from './status.js';

/** The phases in which nothing is left to change: a command arriving then is refused. */
const ENDING = [Phase.RollingBack, Phase.RolledBack, Phase.Failed, Phase.Succeeded] as const;

export class OperatorCommands {
  /** An abort was accepted: the forward scope is cancelled and the run rolls back. */
  abortRequested = false;
  /** The open gate was approved (or a pause for missing data ended by a promotion). */
  approved = false;
  /** The old slot's scale-down began: too late to abort. */
  cleanupStarted = false;

  constructor(private readonly run: RunContext) {
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
      const abort = { reason: request.reason || 'no reason given', by: request.by || 'unknown', at: now() };
      this.run.report.record({ kind: 'abort-refused', abort, message: refusal });
      log.warn(refusal, { ...abort, message: refusal });
    });
    setHandler(approveSignal, (request) => {
      const refusal = this.approvalRefusal(request);
      if (refusal === null) this.takeApproval(request);
      else log.warn(`approval ignored: ${refusal}`, { gate: request.gate, by: request.by });
    });
  }

  /**
   * Promote (a canary's): `take` acts on it, `refusal` is the canary's own rule after the ones
   * every command shares (promotionRefusal).
   */
  listenForPromote(take: (request: PromoteRequest) => OperatorAnswer, refusal: () => string | null): void {
    setHandler(promoteUpdate, (request) => take(request), {
      validator: (_request: PromoteRequest) => refuseWith(refusal()),
    });
    setHandler(promoteSignal, (request) => {
      const refused = refusal();
      if (refused === null) take(request);
      else log.warn(`promote ignored: ${refused}`, { by: request.by });
    });
  }

  /** Why an abort cannot be taken now, or null when it can. The one place the rule lives. */
  abortRefusal(): string | null {
    if (this.cleanupStarted) return ABORT_AFTER_CLEANUP_MESSAGE;
    const { phase, awaiting } = this.run.status;
    if ((ENDING as readonly Phase[]).includes(phase)) return `abort rejected: the deployment is ${phase}`;
    if (this.approved && awaiting && !this.abortRequested) {
      // Both arrived at the same instant: the approval was first, and it is what happens.
      return (
        `abort rejected: the ${awaiting.gate} gate was approved at the same moment, and the approval came ` +
        `first; abort again to roll back`
      );
    }
    return null;
  }

  /** Why an approval cannot be taken now, or null when it can. */
  approvalRefusal(request: ApproveRequest): string | null {
    if (this.abortRequested)
      return `approve rejected: an abort is rolling the deployment back (${this.abortMessage()})`;
    const { awaiting, phase } = this.run.status;
    if (!awaiting) return `nothing to approve: the deployment is ${phase}, not waiting at a gate`;
    if (request.gate !== undefined && request.gate !== awaiting.gate) {
      return `the deployment waits at gate '${awaiting.gate}', not '${request.gate}'`;
    }
    return null;
  }

  /** Why a canary's promotion cannot be taken now, or null when it can. */
  promotionRefusal(progress: CanaryProgress | null): string | null {
    const { phase, awaiting } = this.run.status;
    if (this.abortRequested)
      return `promote rejected: an abort is rolling the deployment back (${this.abortMessage()})`;
    if (this.cleanupStarted || (ENDING as readonly Phase[]).includes(phase)) {
      return `nothing to promote: the deployment is ${phase}`;
    }
    if (!progress || progress.step === 0)
      return `nothing to promote yet: the canary has no traffic (the deployment is ${phase})`;
    if (awaiting && awaiting.gate !== Gate.Inconclusive)
      return `the deployment waits at gate '${awaiting.gate}': approve or abort it`;
    if (progress.completed.length === progress.steps) return 'nothing to promote: every step is done';
    return null;
  }

  /** The old slot's scale-down begins: from now on an abort is refused. */
  cleanupBegins(): void {
    this.cleanupStarted = true;
  }

  /** A gate opens: nothing approved yet. */
  gateOpened(): void {
    this.approved = false;
  }

  /** A promotion ends a pause for missing data as an approval would. */
  approveByPromotion(): void {
    if (this.run.status.awaiting?.gate === Gate.Inconclusive) this.approved = true;
  }

  abortMessage(): string {
    const abort = this.run.status.abort;
    return abort ? `aborted by ${abort.by}: ${abort.reason}` : 'the workflow was cancelled';
  }

  private takeAbort(request: AbortRequest): OperatorAnswer {
    const phase = this.run.status.phase;
    if (this.abortRequested) return { message: `already aborting: ${this.abortMessage()}`, phase };
    const abort = { reason: request.reason || 'no reason given', by: request.by || 'unknown', at: now() };
    this.abortRequested = true;
    this.run.report.record({
      kind: 'abort-accepted',
      abort,
      message: `abort requested by ${abort.by}: ${abort.reason}`,
    });
    log.info('abort requested', abort);
    this.run.forward.cancel();
    return { message: `abort accepted in ${phase}: rolling back`, phase };
  }

  private takeApproval(request: ApproveRequest): OperatorAnswer {
    const gate = this.run.status.awaiting?.gate;
    this.approved = true;
    log.info('approved', { gate, by: request.by ?? 'unknown' });
    return { message: `approved gate ${gate}`, phase: this.run.status.phase };
  }
}

/** An Update's validator: a refusal is an error the sender gets back; nothing is recorded. */
export function refuseWith(refusal: string | null): void {
  if (refusal !== null) throw new Error(refusal);
}
