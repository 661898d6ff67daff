/**
 * The blue-green recipe: the procedure's five phases, each one call, with the shared run context's
 * LIFO compensations run, uncancellable, on a failed gate, an SLO breach, an error that cannot be
 * retried, or an operator's abort. The procedure is docs/PROCEDURE.md, sections 2 and 3.
 *
 * Deterministic code only: no I/O, no Node built-ins, activity types imported as types.
 */
import type { DeploymentResult } from '../shared/deployment-status.js';
import { Gate, Phase, RollbackReason } from '../shared/deployment-status.js';
import type { DeploymentSpec } from '../deployment-spec/deployment-spec.js';
import { routeName } from '../shared/target.js';
import { awaitApproval } from './run/approvals.js';
import { monitorSlot } from './run/monitor.js';
import { phaseErrorFrom } from './run/phase-error.js';
import { observeLiveSlot } from './run/observe.js';
import { deployIdleSlot, preflight, scaleDownOldSlot, smokeTestIdleSlot } from './run/phases.js';
import { endWith, RunContext } from './run/run-context.js';
import type { DeploymentOptions } from './run/run-context.js';

export { RESTARTS_MEASUREMENT } from './run/monitor.js';

/**
 * Deploys `spec.image` to the idle slot, smoke-tests it, switches traffic, watches the SLOs and
 * scales the old slot down, rolling back by itself when any gate fails or `abort` arrives.
 * Completes with the result when the new version went live. Otherwise it fails, with the reason as
 * the failure's message and the whole result as its details (see `endWith`).
 */
export async function blueGreenDeploymentWorkflow(
  spec: DeploymentSpec,
  options: DeploymentOptions = {},
): Promise<DeploymentResult> {
  return endWith(await rolloutBlueGreen(new RunContext(spec, options)));
}

/** The recipe: one phase per call; any failure leaves through the rollback. */
async function rolloutBlueGreen(run: RunContext): Promise<DeploymentResult> {
  const rolledBack = await run.runForward(async () => {
    await preflight(run);
    await deployIdleSlot(run);
    await smokeTestIdleSlot(run);
    await awaitApproval(run, Gate.BeforeSwitch, run.spec.gates.approveBeforeSwitch);
    await switchServiceSelector(run);
    await monitorSlot(run, run.target!, run.slots().idle);
    await awaitApproval(run, Gate.BeforeCleanup, run.spec.gates.approveBeforeCleanup);
    await observeLiveSlot(run, { warm: true });
  });
  return rolledBack ?? (await scaleDownOldSlot(run));
}

/** Phase 3: the Service selector to the new slot, then endpoints verified to list only it. */
async function switchServiceSelector(run: RunContext): Promise<void> {
  const { target, active, idle } = run.slots();
  run.report.enterPhase(Phase.Switching, `switching ${routeName(target)} from ${active} to ${idle}`);
  // The old slot is still warm: switching back is the first thing a rollback does. Pushed
  // before the write for the same reason as the deploy's undo.
  run.rollback.undo.push(`switch ${routeName(target)} back to ${active}`, async () => {
    await run.act('restore', `switch ${routeName(target)} back to ${active}`).switchTraffic({ target, slot: active });
    run.report.record({ kind: 'restored', active });
    await run.rollback.verifyRestoring(() =>
      run
        .act('restore', `verify ${routeName(target)} serves ${active}`)
        .verifyTraffic({ target, slot: active, timeoutSeconds: 60 }),
    );
  });
  try {
    await run.act('write', `switch ${routeName(target)} to ${idle}`).switchTraffic({ target, slot: idle });
    run.report.record({ kind: 'routed', active: idle });
    const traffic = await run
      .act('waiting', `verify ${routeName(target)} serves ${idle}`)
      .verifyTraffic({ target, slot: idle, timeoutSeconds: 60 });
    run.report.record({
      kind: 'message',
      message:
        `${routeName(target)} serves ${idle}: ${traffic.endpoints} endpoints after ` +
        `${traffic.seconds.toFixed(1)} s`,
    });
  } catch (error) {
    throw phaseErrorFrom(error, RollbackReason.ActivityError);
  }
}
