/**
 * Approval gates: a gate opens (status, phase, notification), then waits for `approve` up to the
 * spec's timeout; an abort cancels the wait. Both recipes use them, and so does the monitor's
 * pause for missing data.
 */
import { condition } from '@temporalio/workflow';
import { Gate, Phase, RollbackReason } from '../../shared/deployment-status.js';
import { PhaseError } from './phase-error.js';
import type { RunContext } from './run-context.js';

/**
 * Opens a gate: nothing approved yet, the gate and its timeout in the status, the phase entered
 * (Paused for missing data, AwaitingApproval otherwise) and people told. Returns the deadline.
 */
export async function openGate(run: RunContext, gate: Gate, message: string): Promise<number> {
  const since = new Date();
  const deadline = since.getTime() + run.spec.gates.approvalTimeoutSeconds * 1000;
  run.commands.gateOpened();
  run.report.record({
    kind: 'gate',
    awaiting: { gate, since: since.toISOString(), timeoutAt: new Date(deadline).toISOString() },
  });
  run.report.enterPhase(gate === Gate.Inconclusive ? Phase.Paused : Phase.AwaitingApproval, message);
  await run.report.notify(
    'awaiting-approval',
    `${run.status.message}; approve with: bluegreen approve ${run.spec.app} -n ${run.spec.namespace}`,
  );
  return deadline;
}

/** A gate: waits for `approve` (or an abort, which cancels the wait) up to the timeout. */
export async function awaitApproval(run: RunContext, gate: Gate, enabled: boolean): Promise<void> {
  if (!enabled) return;
  const timeoutSeconds = run.spec.gates.approvalTimeoutSeconds;
  await openGate(
    run,
    gate,
    gate === Gate.Inconclusive
      ? `${run.status.monitor?.inconclusive ?? 0} inconclusive measurements (no data): approve to go on ` +
          `or abort to roll back`
      : `waiting for approval (${gate}) for up to ${timeoutSeconds} s`,
  );
  let approved: boolean;
  try {
    approved = await condition(() => run.commands.approved, timeoutSeconds * 1000, {
      summary: `${gate}: approval timeout ${timeoutSeconds} s`,
    });
  } finally {
    // An abort cancels the wait: the gate is no longer waiting either way.
    run.report.record({ kind: 'gate', awaiting: null });
  }
  if (!approved) {
    throw new PhaseError(
      gate === Gate.Inconclusive ? RollbackReason.NoDecision : RollbackReason.ApprovalTimeout,
      `nobody approved the ${gate} gate within ${timeoutSeconds} s`,
      gate,
    );
  }
}
