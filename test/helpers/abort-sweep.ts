/**
 * The abort sweep, shared by the embedded stack and the Kubernetes control plane: one deployment
 * per offset, the abort sent that long after the write that opens a phase arrives at the API (the
 * new image at the start of Deploying, the selector at the start of Switching), so the offsets
 * cover both phases, writes in flight included, in steps of at most 50 ms.
 */
import assert from 'node:assert/strict';
import { deploymentResult } from '../../src/client/deployment-client.js';
import type { OperatorDelivery } from '../../src/client/deployment-client.js';
import type { DeploymentResult, DeploymentStatus } from '../../src/shared/deployment-status.js';

export type Anchor = 'deploy' | 'switch';

export interface SweepPoint {
  anchor: Anchor;
  offsetMs: number;
}

export interface SweepRun extends SweepPoint {
  /** The phase the workflow was in when it accepted the abort. */
  acceptedIn: string;
  outcome: string;
  reason: string | null;
}

/** How long Deploying and Switching took in a deployment, from its recorded transitions. */
export function phaseSpans(status: DeploymentStatus): { deployMs: number; switchMs: number } {
  const at = (phase: string) => {
    const transition = status.transitions.find((t) => t.phase === phase);
    assert.ok(transition, `the calibration run passed through ${phase}`);
    return new Date(transition.at).getTime();
  };
  return { deployMs: at('SmokeTesting') - at('Deploying'), switchMs: at('Monitoring') - at('Switching') };
}

/**
 * Offsets over each phase's whole span in even steps of at most 50 ms: at least `perDeploy` in
 * Deploying and `perSwitch` in Switching, each phase's span once more past its end (a slower run).
 * At most MAX_PER_PHASE offsets a phase: on a loaded machine, where a phase takes seconds, the
 * steps widen rather than the sweep outgrowing its bound.
 */
export const MAX_PER_PHASE = 60;

export function sweepPoints(
  { deployMs, switchMs }: { deployMs: number; switchMs: number },
  perDeploy = 30,
  perSwitch = 12,
): SweepPoint[] {
  const points: SweepPoint[] = [];
  for (const [anchor, span, least] of [
    ['deploy', deployMs, perDeploy],
    ['switch', switchMs, perSwitch],
  ] as const) {
    const count = Math.min(MAX_PER_PHASE, Math.max(least, Math.ceil(span / 50)));
    const step = count === MAX_PER_PHASE ? span / count : Math.min(50, span / count);
    for (let i = 0; i <= count; i++) points.push({ anchor, offsetMs: Math.round(i * step) });
  }
  return points;
}

export interface SweepDriver {
  /** Starts a deployment; resolves once it is started. */
  start(): Promise<{ result(): Promise<unknown> }>;
  /** Resolves the moment the write that opens the anchor's phase arrives at the API. */
  anchorWrite(anchor: Anchor): Promise<unknown>;
  abort(): Promise<OperatorDelivery>;
  /** Asserts the end state a rolled-back deployment must leave. */
  assertRestored(result: DeploymentResult, point: SweepPoint): Promise<void>;
}

/** Runs one deployment per point, aborting at the point; every one must end rolled back and restored. */
export async function runSweep(
  points: SweepPoint[],
  driver: SweepDriver,
  log: (line: string) => void = () => undefined,
): Promise<SweepRun[]> {
  const runs: SweepRun[] = [];
  for (const point of points) {
    const anchored = driver.anchorWrite(point.anchor);
    const handle = await driver.start();
    await anchored;
    await new Promise((resolve) => setTimeout(resolve, point.offsetMs));
    const answer = await driver.abort();
    assert.equal(answer.delivery, 'accepted', `${point.anchor}+${point.offsetMs} ms: ${answer.message}`);
    const result = await deploymentResult(handle);
    assert.deepEqual(
      [result.outcome, result.reason],
      ['RolledBack', 'Aborted'],
      `${point.anchor}+${point.offsetMs} ms: ${result.message}`,
    );
    await driver.assertRestored(result, point);
    const run = { ...point, acceptedIn: answer.phase ?? '?', outcome: result.outcome, reason: result.reason };
    runs.push(run);
    log(
      `abort sweep: ${point.anchor}+${point.offsetMs} ms, accepted in ${run.acceptedIn}: ${result.outcome} (${result.reason}), restore ${result.rollbackSeconds?.toFixed(2)} s`,
    );
  }
  return runs;
}

/** One line per phase hit: how many aborts landed there, all rolled back. */
export function summarise(runs: SweepRun[]): string {
  const byPhase = new Map<string, number>();
  for (const run of runs) byPhase.set(run.acceptedIn, (byPhase.get(run.acceptedIn) ?? 0) + 1);
  return `${runs.length} offsets (${[...byPhase].map(([phase, n]) => `${phase} ${n}`).join(', ')}), all RolledBack and restored`;
}
