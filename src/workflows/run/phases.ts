/**
 * The phases both recipes share: preflight (nothing changed), deploying the idle slot, its smoke
 * suite, and the cleanup after a success (past the point of no return).
 */
import { CancellationScope, isCancellation, log, patched, sleep } from '@temporalio/workflow';
import type { LiveState, SlotState } from '../../shared/slots.js';
import { AnalysisResult, formatValue } from '../../shared/analysis.js';
import { Outcome, Phase, RollbackReason } from '../../shared/deployment-status.js';
import type { ActiveSlotCheck, DeploymentResult } from '../../shared/deployment-status.js';
import { isHealthySlot } from '../../shared/slots.js';
import { liveChanges } from '../../plan/plan.js';
import { routeName } from '../../shared/target.js';
import { applyWarmUp, planWarmUp } from './monitor.js';
import { pushEvidenceCapture } from './evidence.js';
import { observeLiveSlot } from './observe.js';
import { Patch } from './patches.js';
import { describeError, PhaseError, phaseErrorFrom } from './phase-error.js';
import type { RunContext } from './run-context.js';
import type { ActiveSlotMeasured, PreflightReport } from '../../activities/contract.js';
import type { DeploymentSpec } from '../../deployment-spec/deployment-spec.js';

/**
 * Phase 0: validate the spec and read what is live. Nothing is changed here. `monitorSeconds` is
 * the span the monitor's warm-up warnings are judged against (the canary's shortest hold).
 */
export async function preflight(run: RunContext, monitorSeconds?: (spec: RunContext['spec']) => number): Promise<void> {
  if (patched(Patch.LeanPreflight)) return await preflightInOneCall(run, monitorSeconds);
  let validated: DeploymentSpec;
  try {
    validated = await run.act('quick', 'validate the spec').validateSpec(run.spec);
  } catch (error) {
    throw new PhaseError(RollbackReason.InvalidSpec, describeError(error), 'spec');
  }
  const target = run.adoptValidatedSpec(validated);
  let live: LiveState;
  try {
    live = await run.act('quick', `read ${routeName(target)} and both slots`).describe(target);
  } catch (error) {
    throw phaseErrorFrom(error, RollbackReason.PreflightFailed);
  }
  const active = takeLive(run, live);
  const checksStability = patched(Patch.StabilityCheck);
  if (patched(Patch.FewerRoundTrips)) {
    // Two reads of Prometheus that do not depend on each other: one round trip, not two.
    await Promise.all([
      checksStability ? checkActiveSlot(run, active) : undefined,
      planWarmUp(run, live.activeSlot, monitorSeconds?.(run.spec)),
    ]);
    return;
  }
  if (checksStability) await checkActiveSlot(run, active);
  await planWarmUp(run, live.activeSlot, monitorSeconds?.(run.spec));
}

/**
 * Preflight's reads in one activity (patch lean-preflight): the spec validated by the worker, the
 * live state, the active slot's gated SLOs and the scrape interval, then judged here as before.
 */
async function preflightInOneCall(
  run: RunContext,
  monitorSeconds?: (spec: RunContext['spec']) => number,
): Promise<void> {
  let report: PreflightReport;
  try {
    report = await run
      .act('quick', "validate the spec, read the live state, the active slot's SLOs and the scrape interval")
      .preflight(run.spec);
  } catch (error) {
    throw phaseErrorFrom(error, RollbackReason.PreflightFailed);
  }
  if ('invalid' in report) throw new PhaseError(RollbackReason.InvalidSpec, report.invalid, 'spec');
  run.adoptValidatedSpec(report.spec);
  run.notifies = report.notifies;
  const active = takeLive(run, report.live);
  applyWarmUp(run, report.scrape ?? { seconds: null, source: 'no SLO is measured' }, monitorSeconds?.(run.spec));
  if (report.stability) judgeActiveSlot(run, active, report.stability);
}

/** The live state preflight read: kept, checked against a plan's, shown; the active slot, once found healthy. */
function takeLive(run: RunContext, live: LiveState): SlotState {
  run.live = live;
  if (run.planned) {
    const changes = liveChanges(run.planned.live, live);
    if (changes.length > 0) {
      throw new PhaseError(
        RollbackReason.PreflightFailed,
        `the live state changed since plan ${run.planned.id}: ${changes.join('; ')}; nothing was changed (plan again)`,
        'plan',
      );
    }
  }
  const active = live.slots[live.activeSlot];
  run.report.record({ kind: 'live', live });
  if (!isHealthySlot(active)) {
    throw new PhaseError(
      RollbackReason.PreflightFailed,
      `the active slot ${active.slot} (${active.deployment}) is not healthy: ` +
        `${active.readyReplicas}/${active.replicas} replicas ready`,
      'active-slot-health',
    );
  }
  return active;
}

/**
 * The procedure's §2.1: deploy only onto a stable active slot. Its gated SLOs are measured once,
 * over the monitor window and scoped to its version. A breach fails the deployment with nothing
 * changed, naming the SLO, unless the spec allows an unstable active slot (a hotfix during an
 * incident), which the status and the result record. No data (no traffic) or no answer from the
 * metrics is not a breach: the check says it could not judge, and the deployment goes on.
 */
async function checkActiveSlot(run: RunContext, active: SlotState): Promise<void> {
  const slos = run.spec.monitor.slos.filter((slo) => slo.gate);
  if (slos.length === 0) return;
  let measured: ActiveSlotMeasured;
  try {
    measured = {
      measurements: await run.act('measure', `stability of the active slot ${active.slot}`).evaluateSlos({
        target: run.target!,
        slot: active.slot,
        ...(active.version ? { version: active.version } : {}),
        run: active.run ?? '',
        window: run.spec.monitor.window,
        slos,
      }),
    };
  } catch (error) {
    if (isCancellation(error)) throw error;
    measured = { error: describeError(error) };
  }
  judgeActiveSlot(run, active, measured);
}

/** The stability check's verdict on what was measured (or why nothing could be). */
function judgeActiveSlot(run: RunContext, active: SlotState, measured: ActiveSlotMeasured): void {
  const check: ActiveSlotCheck = {
    slot: active.slot,
    version: active.version ?? null,
    verdict: 'unknown',
    measurements: [],
    detail: null,
    allowedUnstable: false,
  };
  run.report.record({ kind: 'active-check', check });
  if ('error' in measured) {
    check.detail = `the SLOs could not be measured: ${measured.error}`;
    log.warn(`stability check of ${active.slot} not judged`, { detail: check.detail });
    return;
  }
  check.measurements = measured.measurements;
  const breaches = check.measurements.filter((m) => m.result === AnalysisResult.Failed);
  const noData = check.measurements.filter(
    (m) => m.result !== AnalysisResult.Successful && m.result !== AnalysisResult.Failed,
  );
  if (breaches.length === 0) {
    check.verdict = noData.length === 0 ? 'stable' : 'unknown';
    if (noData.length > 0)
      check.detail = `no data for ${noData.map((m) => m.name).join(', ')} (no traffic in the window?)`;
    return;
  }
  check.verdict = 'breaching';
  const said = breaches
    .map((m) => `SLO '${m.name}': ${formatValue(m.value)} (must be ${m.comparison} ${m.threshold})`)
    .join(', ');
  if (run.spec.allowUnstableActive) {
    check.allowedUnstable = true;
    check.detail = `the active slot ${active.slot} breaches ${said}; let through by allowUnstableActive`;
    run.report.warnings.push(`deployed onto an unstable active slot: ${check.detail}`);
    log.warn(check.detail);
    return;
  }
  throw new PhaseError(
    RollbackReason.ActiveSlotUnstable,
    `the active slot ${active.slot} ` +
      `(${active.deployment}${active.version ? `, ${active.version}` : ''}) breaches ${said}: ` +
      'a deployment onto it could not tell its own faults from the ones already there ' +
      '(to deploy a fix during the incident all the same: allowUnstableActive: true, or deploy ' +
      '--allow-unstable-active)',
    breaches[0]!.name,
  );
}

/**
 * Phase 1: the new image on the idle slot, scaled to `replicas` (the spec's by default; the
 * canary's first step needs fewer), every one of them Ready.
 */
export async function deployIdleSlot(run: RunContext, replicas = run.spec.replicas): Promise<void> {
  const { target, idle, idleBefore } = run.slots();
  run.report.enterPhase(Phase.Deploying, `deploying ${run.spec.image} to ${idle} (${target.deployments[idle]})`);
  // Pushed before the write: a deploy cancelled mid-call may still have landed, and restoring
  // the snapshot taken in preflight is idempotent.
  run.rollback.undo.push(`restore ${idle} to ${idleBefore.image ?? 'no image'} x${idleBefore.replicas}`, async () => {
    await run.act('restore', `restore ${idle} to ${idleBefore.image ?? 'no image'} x${idleBefore.replicas}`).scaleSlot({
      target,
      slot: idle,
      replicas: idleBefore.replicas,
      image: idleBefore.image,
    });
  });
  pushEvidenceCapture(run, idle, run.slots().active);
  try {
    await run.act('write', `deploy ${run.spec.version} to ${idle} x${replicas}`).deploySlot({
      target,
      slot: idle,
      image: run.spec.image,
      version: run.spec.version,
      run: run.id,
      replicas,
    });
    const ready = await run.act('readiness', `wait for ${replicas} ready replicas of ${idle}`).waitForSlotReady({
      target,
      slot: idle,
      replicas,
      timeoutSeconds: run.spec.readinessTimeoutSeconds,
    });
    run.report.record({
      kind: 'message',
      message: `${ready.readyReplicas}/${replicas} replicas of ${idle} ready after ` + `${ready.seconds.toFixed(1)} s`,
    });
  } catch (error) {
    throw phaseErrorFrom(error, RollbackReason.ActivityError);
  }
}

/** Phase 2: the smoke suite against the idle slot only; traffic has not moved. */
export async function smokeTestIdleSlot(run: RunContext): Promise<void> {
  const { target, idle } = run.slots();
  run.report.enterPhase(Phase.SmokeTesting, `smoke-testing ${idle}`);
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
  const passed = report.checks.filter((c) => c.verdict !== 'failed').length;
  run.report.record({ kind: 'smoke', report, message: `smoke: ${passed}/${report.checks.length} passed` });
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
  run.commands.cleanupBegins();
  run.rollback.undo.clear();
  const { target, active: old } = run.slots();
  run.report.enterPhase(
    Phase.CleaningUp,
    `scaling ${old} (${target.deployments[old]}) to zero in ${run.spec.scaleDownDelaySeconds} s`,
  );
  await CancellationScope.nonCancellable(async () => {
    if (run.spec.scaleDownDelaySeconds > 0) {
      await sleep(run.spec.scaleDownDelaySeconds * 1000, { summary: `scale-down delay before ${old} goes to zero` });
    }
    try {
      await run.act('cleanup', `scale ${old} to zero`).scaleSlot({ target, slot: old, replicas: 0 });
    } catch (error) {
      run.report.warnings.push(
        `cleanup degraded: ${old} (${target.deployments[old]}) could not be scaled to zero: ` +
          `${describeError(error)}; scale it down by hand`,
      );
    }
  });
  await observeLiveSlot(run, { warm: false });
  const { idle } = run.slots();
  return run.report.finish(
    Outcome.Succeeded,
    null,
    `${run.spec.version} is live on ${idle}`,
    null,
    idle,
    run.spec.image,
  );
}
