/**
 * The rollback: the compensations the forward phases pushed, run newest first and uncancellable,
 * each restore retried until it succeeds or is refused for good, and the stuck alarm when a
 * restore outlasts `rollback.stuckAfterSeconds`. Ends the run through the report.
 *
 * Deterministic code only: no I/O, no Node built-ins, activity types imported as types.
 */
import { CancellationScope, condition, log, patched } from '@temporalio/workflow';
import { Outcome, Phase, RollbackReason } from '../../shared/deployment-status.js';
import type { DeploymentResult } from '../../shared/deployment-status.js';
import { ErrorType } from '../../shared/errors.js';
import { activityOptions } from './activity-options.js';
import { Compensations } from './compensations.js';
import { describeError, errorTypeOf } from './phase-error.js';
import type { PhaseError } from './phase-error.js';
import { Patch } from './patches.js';
import type { RunContext } from './run-context.js';
import { now } from './status.js';

/** A restore that outlasts this (when the spec, recorded before the field existed, has none). */
const DEFAULT_STUCK_AFTER_SECONDS = 120;

export class Rollback {
  /** What undoes each forward write, pushed before the write. */
  readonly undo = new Compensations();
  /** Why the deployment is rolling back, once it is (the evidence names the breach from it). */
  failure: PhaseError | null = null;
  /** Whether restores retry until they succeed (Patch.PersistentRollback). */
  persistent = false;

  constructor(private readonly run: RunContext) {}

  /** Runs the compensations, uncancellable, and reports what is live afterwards. */
  async rollBack(failure: PhaseError): Promise<DeploymentResult> {
    const { run } = this;
    const report = run.report;
    this.failure = failure;
    const nothingChanged = this.undo.isEmpty;
    const fromSlot = run.status.fromSlot;
    const fromImage = run.live && fromSlot ? run.live.slots[fromSlot].image : null;
    if (nothingChanged && failure.reason !== RollbackReason.Aborted) {
      const message = `${failure.message}; nothing was changed`;
      return report.finish(Outcome.Failed, failure.reason, message, failure.failedCheck, fromSlot, fromImage);
    }
    report.enterPhase(Phase.RollingBack, `rolling back (${failure.reason}): ${failure.message}`);
    const incomplete = await CancellationScope.nonCancellable(() => this.runCompensations());
    if (incomplete !== null) {
      const { fromSlot: from, toSlot: to } = run.status;
      return report.finish(
        Outcome.Failed,
        failure.reason,
        this.persistent
          ? `${failure.message}; ROLLBACK INCOMPLETE at '${incomplete}': the platform refused it for ` +
              `good, so a person must ` +
              `restore ${from ?? 'the old slot'} by hand (fix the permission or ` +
              `object named above, then ` +
              `point ${run.target?.service ?? 'the Service'} at ${from ?? 'the old slot'} and ` +
              `scale ${to ?? 'the new slot'} to zero)`
          : `${failure.message}; ROLLBACK INCOMPLETE at '${incomplete}': the cluster needs a person`,
        failure.failedCheck,
        run.status.activeSlot,
        null,
      );
    }
    if (fromSlot) report.record({ kind: 'routed', active: fromSlot });
    return report.finish(Outcome.RolledBack, failure.reason, failure.message, failure.failedCheck, fromSlot, fromImage);
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
        if (!this.persistent || errorTypeOf(error) !== ErrorType.TrafficNotVerified) throw error;
        log.warn('the old slot does not serve yet; verifying again', { error: describeError(error) });
        this.run.report.record({ kind: 'message', message: `rolling back: ${describeError(error)}; verifying again` });
      }
    }
  }

  /**
   * Runs the compensations. Where the patch applies, each restore retries until it succeeds or is
   * refused for good, and one that outlasts `rollback.stuckAfterSeconds` is reported stuck (a
   * notification, the status, the UI's details) while it goes on trying.
   */
  private async runCompensations(): Promise<string | null> {
    const { run } = this;
    const report = run.report;
    this.persistent = patched(Patch.PersistentRollback);
    if (!this.persistent) return await this.undo.runAll();
    run.options = activityOptions(run.spec, true);
    const startedAt = new Date();
    const progress = {
      startedAt: startedAt.toISOString(),
      seconds: null as number | null,
      stuckSince: null as string | null,
      step: null as string | null,
    };
    report.record({ kind: 'rollback', progress });
    let settled = false;
    const undoing = this.undo.runAll((step) => {
      progress.step = step;
      report.record({ kind: 'message', message: `rolling back: ${step}` });
      report.publishDetails();
    });
    void undoing.then(() => {
      settled = true;
    });
    const stuckAfter = run.spec.rollback?.stuckAfterSeconds ?? DEFAULT_STUCK_AFTER_SECONDS;
    const summary = `rollback reported stuck after ${stuckAfter} s`;
    if (!(await condition(() => settled, stuckAfter * 1000, { summary }))) {
      progress.stuckSince = now();
      const message =
        `ROLLBACK STUCK for ${stuckAfter} s at '${progress.step}': ` + 'still retrying until the platform answers';
      report.record({ kind: 'message', message });
      report.publishDetails();
      await report.notify('rollback-stuck', message, run.status.abort ? RollbackReason.Aborted : null, progress.step);
    }
    const incomplete = await undoing;
    progress.seconds = (new Date().getTime() - startedAt.getTime()) / 1000;
    return incomplete;
  }
}
