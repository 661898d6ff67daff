/**
 * The rollback's evidence (the procedure's §3.3), kept before it vanishes: pushed as an undo step
 * right after the deploy's restore, so the rollback runs it after traffic is back on the old
 * slot (and verified) and before the failing slot is scaled down. Restoring service never waits
 * for it; a capture that fails is a warning, never a failed rollback.
 */
import { isCancellation, log, patched } from '@temporalio/workflow';
import { summarizeEvidence } from '../../shared/evidence.js';
import type { Slot } from '../../shared/slots.js';
import { Patch } from './patches.js';
import { describeError } from './phase-error.js';
import type { RunContext } from './run-context.js';

/** Log lines kept per container, and the whole evidence's bound as JSON (the history holds it). */
export const EVIDENCE_TAIL_LINES = 200;
export const EVIDENCE_MAX_BYTES = 512 * 1024;

export function pushEvidenceCapture(run: RunContext, slot: Slot, peer: Slot): void {
  // Decided when pushed, not when run: a step that returned at once would let the rollback's
  // stuck timer be scheduled before the next restore, and recorded rollbacks would not replay.
  if (!patched(Patch.Evidence) || run.spec.rollback?.captureEvidence === false) return;
  run.rollback.undo.push(`capture the evidence of ${slot}`, async () => {
    const failedCheck = run.rollback.failure?.failedCheck ?? null;
    const measured = failedCheck
      ? (run.status.observe?.latest[failedCheck] ?? run.status.monitor?.latest[failedCheck] ?? null)
      : null;
    const transitions = run.status.transitions;
    try {
      const evidence = await run
        .act('evidence', `capture the evidence of ${slot} before it is scaled down`)
        .captureEvidence({
          target: run.target!,
          slot,
          peer,
          image: run.spec.image,
          version: run.spec.version,
          run: run.id,
          window: run.spec.monitor.window,
          slos: run.spec.monitor.slos,
          switchedAt: transitions.find((t) => t.phase === 'Switching')?.at ?? null,
          from: transitions.find((t) => t.phase === 'Deploying')?.at ?? transitions[0]!.at,
          breach: measured
            ? {
                slo: measured.name,
                value: measured.value,
                comparison: measured.comparison,
                threshold: measured.threshold,
              }
            : null,
          tailLines: EVIDENCE_TAIL_LINES,
          maxBytes: EVIDENCE_MAX_BYTES,
        });
      run.report.record({ kind: 'evidence', summary: summarizeEvidence(evidence) });
    } catch (error) {
      if (isCancellation(error)) throw error;
      run.report.warnings.push(`evidence of ${slot} not captured: ${describeError(error)}`);
      log.warn('evidence not captured', { error: describeError(error) });
    }
  });
}
