/**
 * A Release's status from its deployment: the conditions both GitOps vocabularies read (Argo's
 * Progressing, Healthy, Degraded; kstatus's Ready, Reconciling, Stalled), and transition times that
 * move only when a condition's status does, as Kubernetes tools expect.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { releaseStatusOf } from '../../src/gitops/release-status.js';
import type { ReleaseState } from '../../src/gitops/release-status.js';
import type { DeploymentResult, DeploymentStatus } from '../../src/shared/deployment-status.js';

const status = (over: Partial<DeploymentStatus>): DeploymentStatus =>
  ({
    app: 'api',
    namespace: 'default',
    image: 'registry.internal/api:v2',
    version: 'v2',
    phase: 'Monitoring',
    message: 'watching',
    activeSlot: 'green',
    ...over,
  }) as DeploymentStatus;
const running = (over: Partial<DeploymentStatus>): ReleaseState => ({
  kind: 'running',
  workflowId: 'bluegreen-default-api',
  runId: 'run-1',
  status: status(over),
});
const ended = (over: Partial<DeploymentResult>): ReleaseState => ({
  kind: 'ended',
  workflowId: 'bluegreen-default-api',
  runId: 'run-1',
  result: {
    outcome: 'Succeeded',
    message: 'live',
    liveSlot: 'green',
    liveImage: 'registry.internal/api:v2',
    reason: null,
    status: status({ phase: 'Succeeded' }),
    ...over,
  } as DeploymentResult,
});
const flags = (state: ReleaseState) =>
  Object.fromEntries(releaseStatusOf(state, 3).conditions.map((c) => [c.type, c.status]));

describe('a Release status', () => {
  it('is Progressing and Reconciling while the deployment runs, with the canary step and weight', () => {
    const written = releaseStatusOf(
      running({ phase: 'Monitoring', canary: { step: 2, weight: 25 } as DeploymentStatus['canary'] }),
      3,
    );
    assert.deepEqual(
      [written.phase, written.step, written.weight, written.liveSlot, written.runId, written.observedGeneration],
      ['Monitoring', 2, 25, 'green', 'run-1', 3],
    );
    assert.equal(written.outcome, undefined);
    assert.deepEqual(flags(running({})), {
      Progressing: 'True',
      Healthy: 'False',
      Degraded: 'False',
      Ready: 'False',
      Reconciling: 'True',
      Stalled: 'False',
    });
  });

  it('is Degraded while rolling back, but not yet Stalled; Stalled once rolled back, with the reason', () => {
    assert.deepEqual(flags(running({ phase: 'RollingBack' })), {
      Progressing: 'False',
      Healthy: 'False',
      Degraded: 'True',
      Ready: 'False',
      Reconciling: 'False',
      Stalled: 'False',
    });
    const rolledBack = ended({
      outcome: 'RolledBack',
      reason: 'SloBreach',
      liveSlot: 'blue',
      liveImage: 'registry.internal/api:v1',
      message: 'error rate over 1 %',
    });
    assert.deepEqual(flags(rolledBack), {
      Progressing: 'False',
      Healthy: 'False',
      Degraded: 'True',
      Ready: 'False',
      Reconciling: 'False',
      Stalled: 'True',
    });
    const written = releaseStatusOf(rolledBack, 3);
    assert.deepEqual(
      [written.outcome, written.reason, written.liveSlot, written.image],
      ['RolledBack', 'SloBreach', 'blue', 'registry.internal/api:v1'],
    );
    assert.equal(written.conditions.find((c) => c.type === 'Degraded')!.reason, 'SloBreach');
  });

  it('is Healthy and Ready once succeeded; Degraded and Stalled with InvalidSpec for a refused spec', () => {
    assert.deepEqual(flags(ended({})), {
      Progressing: 'False',
      Healthy: 'True',
      Degraded: 'False',
      Ready: 'True',
      Reconciling: 'False',
      Stalled: 'False',
    });
    const invalid = releaseStatusOf({ kind: 'invalid', message: 'spec.canary.steps: the last step must be 100' }, 3);
    assert.deepEqual(
      [invalid.phase, invalid.runId, invalid.message],
      [undefined, undefined, 'spec.canary.steps: the last step must be 100'],
    );
    assert.deepEqual(
      invalid.conditions.filter((c) => c.status === 'True').map((c) => [c.type, c.reason]),
      [
        ['Degraded', 'InvalidSpec'],
        ['Stalled', 'InvalidSpec'],
      ],
    );
  });

  it("keeps a condition's lastTransitionTime while its status holds, and moves it when the status changes", () => {
    const t0 = new Date('2026-11-30T10:00:00Z');
    const t1 = new Date('2026-11-30T10:05:00Z');
    const first = releaseStatusOf(running({ phase: 'Deploying' }), 3, [], t0);
    const still = releaseStatusOf(running({ phase: 'Monitoring' }), 3, first.conditions, t1);
    assert.ok(
      still.conditions.every((c) => c.lastTransitionTime === t0.toISOString()),
      'nothing changed status',
    );
    const done = releaseStatusOf(ended({}), 3, still.conditions, t1);
    const at = Object.fromEntries(done.conditions.map((c) => [c.type, c.lastTransitionTime]));
    assert.deepEqual(at, {
      Progressing: t1.toISOString(),
      Healthy: t1.toISOString(),
      Degraded: t0.toISOString(),
      Ready: t1.toISOString(),
      Reconciling: t1.toISOString(),
      Stalled: t0.toISOString(),
    });
  });
});
