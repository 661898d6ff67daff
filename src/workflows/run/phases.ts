/**
 * The phases both recipes share: preflight (nothing changed), deploying the idle slot, its smoke
 * suite, and the cleanup after a success (past the point of no return).
 */
import { CancellationScope, sleep } from '@temporalio/workflow';
import type { LiveState, SlotState } from '../../shared/slots.js';
import { Outcome, Phase, RollbackReason } from '../../shared/deployment-status.js';
import type { DeploymentResult } from '../../shared/deployment-status.js';
import { otherSlot } from '../../shared/slots.js';
import { routeName, targetOf } from '../../shared/target.js';
import { activityOptions } from './activity-options.js';
import { planWarmUp } from './monitor.js';
import { describeError, PhaseError, phaseErrorFrom } from './phase-error.js';
import type { RunContext } from './run-context.js';

function isHealthy(slot: SlotState): boolean {
  return slot.replicas > 0 && slot.readyReplicas >= slot.replicas;
}

/**
 * Phase 0: validate the spec and read what is live. Nothing is changed here. `monitorSeconds` is
 * the span the monitor's warm-up warnings are judged against (the canary's shortest hold).
 */
export async function preflight(run: RunContext, monitorSeconds?: (spec: RunContext['spec']) => number): Promise<void> {
  try {
    run.spec = await run.act('quick', 'validate the spec').validateSpec(run.spec);
  } catch (error) {
    throw new PhaseError(RollbackReason.InvalidSpec, describeError(error), 'spec');
  }
  run.options = activityOptions(run.spec);
  run.target = targetOf(run.spec);
  let live: LiveState;
  try {
    live = await run.act('quick', `read ${routeName(run.target)} and both slots`).describe(run.target);
  } catch (error) {
    throw phaseErrorFrom(error, RollbackReason.PreflightFailed);
  }
  run.live = live;
  const active = live.slots[live.activeSlot];
  const idle = otherSlot(live.activeSlot);
  Object.assign(run.status, { activeSlot: live.activeSlot, idleSlot: idle, fromSlot: live.activeSlot, toSlot: idle });
  if (!isHealthy(active)) {
    throw new PhaseError(
      RollbackReason.PreflightFailed,
      `the active slot ${active.slot} (${active.deployment}) is not healthy: ${active.readyReplicas}/${active.replicas} replicas ready`,
      'active-slot-health',
    );
  }
  await planWarmUp(run, live.activeSlot, monitorSeconds?.(run.spec));
}

/**
 * Phase 1: the new image on the idle slot, scaled to `replicas` (the spec's by default; the
 * canary's first step needs fewer), every one of them Ready.
 */
export async function deployIdleSlot(run: RunContext, replicas = run.spec.replicas): Promise<void> {
  const { target, idle, idleBefore } = run.slots();
  run.enterPhase(Phase.Deploying, `deploying ${run.spec.image} to ${idle} (${target.deployments[idle]})`);
  // Pushed before the write: a deploy cancelled mid-call may still have landed, and restoring
  // the snapshot taken in preflight is idempotent.
  run.undo.push(`restore ${idle} to ${idleBefore.image ?? 'no image'} x${idleBefore.replicas}`, async () => {
    await run.act('restore', `restore ${idle} to ${idleBefore.image ?? 'no image'} x${idleBefore.replicas}`).scaleSlot({
      target,
      slot: idle,
      replicas: idleBefore.replicas,
      image: idleBefore.image,
    });
  });
  try {
    await run.act('write', `deploy ${run.spec.version} to ${idle} x${replicas}`).deploySlot({
      target,
      slot: idle,
      image: run.spec.image,
      version: run.spec.version,
      replicas,
    });
    const ready = await run.act('readiness', `wait for ${replicas} ready replicas of ${idle}`).waitForSlotReady({
      target,
      slot: idle,
      replicas,
      timeoutSeconds: run.spec.readinessTimeoutSeconds,
    });
    run.status.message = `${ready.readyReplicas}/${replicas} replicas of ${idle} ready after ${ready.seconds.toFixed(1)} s`;
  } catch (error) {
    throw phaseErrorFrom(error, RollbackReason.ActivityError);
  }
}

/** Phase 2: the smoke suite against the idle slot only; traffic has not moved. */
export async function smokeTestIdleSlot(run: RunContext): Promise<void> {
  const { target, idle } = run.slots();
  run.enterPhase(Phase.SmokeTesting, `smoke-testing ${idle}`);
  let report;
  try {
    report = await run.act('waiting', `smoke suite ${run.spec.smoke.suite} against ${idle}`).runSmokeSuite({
      target,
      slot: idle,
      smoke: run.spec.smoke,
    });
  } catch (error) {
    throw phaseErrorFrom(error, RollbackReason.SmokeFailed);
  }
  run.status.smoke = report;
  const passed = report.checks.filter((c) => c.verdict !== 'failed').length;
  run.status.message = `smoke: ${passed}/${report.checks.length} passed`;
  const failed = report.checks.find((c) => c.verdict === 'failed');
  if (!report.passed || failed) {
    throw new PhaseError(
      RollbackReason.SmokeFailed,
      failed ? `smoke check '${failed.name}' failed: ${failed.message}` : 'the smoke suite failed',
      failed?.name ?? 'smoke',
    );
  }
}

/** Phase 5: past the point of no return. The old slot goes to zero; it is the next idle slot. */
export async function scaleDownOldSlot(run: RunContext): Promise<DeploymentResult> {
  run.cleanupStarted = true;
  run.undo.clear();
  const { target, active: old } = run.slots();
  run.enterPhase(Phase.CleaningUp, `scaling ${old} (${target.deployments[old]}) to zero in ${run.spec.scaleDownDelaySeconds} s`);
  await CancellationScope.nonCancellable(async () => {
    if (run.spec.scaleDownDelaySeconds > 0) {
      await sleep(run.spec.scaleDownDelaySeconds * 1000, { summary: `scale-down delay before ${old} goes to zero` });
    }
    try {
      await run.act('cleanup', `scale ${old} to zero`).scaleSlot({ target, slot: old, replicas: 0 });
    } catch (error) {
      run.warnings.push(`cleanup degraded: ${old} (${target.deployments[old]}) could not be scaled to zero: ${describeError(error)}; scale it down by hand`);
    }
  });
  const { idle } = run.slots();
  return run.finish(Outcome.Succeeded, null, `${run.spec.version} is live on ${idle}`, null, idle, run.spec.image);
}
