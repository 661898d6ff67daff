/**
 * The Argo CD health check for `Release` (deploy/gitops/argocd/release-health.lua), run by a real
 * Lua 5.1 (the language version of Argo CD's interpreter) on Release objects as the controller's
 * status leaves them: a running deployment is Progressing, one waiting for an operator
 * Suspended, a rollback Degraded, a success Healthy, and a generation the controller has not
 * taken up yet Progressing whatever the status of the one before says. Every phase maps to a health.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Phase } from '../../src/shared/deployment-status.js';

const CHECK = fileURLToPath(new URL('../../deploy/gitops/argocd/release-health.lua', import.meta.url));
const RUNNER = fileURLToPath(new URL('./argocd-health-runner.lua', import.meta.url));

function health(release: {
  generation?: number;
  status?: Record<string, unknown>;
}): Promise<{ status: string; message: string }> {
  const obj = {
    apiVersion: 'bluegreen.dev/v1alpha1',
    kind: 'Release',
    metadata: { name: 'detection-api', generation: release.generation ?? 1 },
    ...(release.status ? { status: release.status } : {}),
  };
  return new Promise((resolve, reject) => {
    const child = execFile('lua5.1', [RUNNER, CHECK], (error, stdout, stderr) =>
      error
        ? reject(new Error(`${error.message}\n${stderr}`))
        : resolve(JSON.parse(stdout) as { status: string; message: string }),
    );
    child.stdin!.end(JSON.stringify(obj));
  });
}

describe('the Argo CD health check of a Release', () => {
  it('is Progressing before the controller takes up the newest generation, even after an older one succeeded', async () => {
    assert.deepEqual(await health({}), {
      status: 'Progressing',
      message: 'waiting for the controller to start generation 1',
    });
    assert.deepEqual(
      await health({ generation: 3, status: { observedGeneration: 2, phase: 'Succeeded', outcome: 'Succeeded' } }),
      {
        status: 'Progressing',
        message: 'waiting for the controller to start generation 3',
      },
    );
  });

  it('is Progressing while the deployment runs, with a canary step and weight in the message', async () => {
    assert.deepEqual(await health({ status: { observedGeneration: 1, phase: 'Monitoring', step: 2, weight: 50 } }), {
      status: 'Progressing',
      message: 'Monitoring: step 2, 50 % to the canary',
    });
    assert.deepEqual(
      await health({ status: { observedGeneration: 1, phase: 'Deploying', message: 'deploying v2.2.0 to green' } }),
      { status: 'Progressing', message: 'deploying v2.2.0 to green' },
    );
  });

  it('is Suspended while the deployment waits for an operator', async () => {
    for (const phase of ['AwaitingApproval', 'Paused'])
      assert.equal((await health({ status: { observedGeneration: 1, phase } })).status, 'Suspended', phase);
  });

  it('is Degraded while rolling back, once rolled back or failed, and when the controller says so', async () => {
    assert.deepEqual(
      await health({
        status: {
          observedGeneration: 1,
          phase: 'RolledBack',
          outcome: 'RolledBack',
          reason: 'SloBreach',
          message: "SLO 'error-rate' breached",
        },
      }),
      {
        status: 'Degraded',
        message: "SloBreach: SLO 'error-rate' breached",
      },
    );
    assert.equal(
      (
        await health({
          status: {
            observedGeneration: 1,
            phase: 'Failed',
            outcome: 'Failed',
            reason: 'RollbackIncomplete',
            message: 'restore refused',
          },
        })
      ).status,
      'Degraded',
    );
    assert.equal(
      (await health({ status: { observedGeneration: 1, phase: 'RollingBack', message: 'switching back to blue' } }))
        .status,
      'Degraded',
    );
    const invalid = {
      type: 'Degraded',
      status: 'True',
      reason: 'InvalidSpec',
      message: 'spec.replicas: replicas must be at least 1',
      lastTransitionTime: '2026-11-30T12:00:00Z',
    };
    assert.deepEqual(await health({ status: { observedGeneration: 1, conditions: [invalid] } }), {
      status: 'Degraded',
      message: 'spec.replicas: replicas must be at least 1',
    });
  });

  it('is Healthy once the newest generation succeeded', async () => {
    assert.deepEqual(
      await health({
        generation: 2,
        status: { observedGeneration: 2, phase: 'Succeeded', outcome: 'Succeeded', message: 'v2.2.0 is live on green' },
      }),
      { status: 'Healthy', message: 'v2.2.0 is live on green' },
    );
  });

  it('gives every phase of a deployment a health', async () => {
    const expected: Record<string, string> = {
      Succeeded: 'Healthy',
      RolledBack: 'Degraded',
      Failed: 'Degraded',
      RollingBack: 'Degraded',
      AwaitingApproval: 'Suspended',
      Paused: 'Suspended',
    };
    for (const phase of Object.values(Phase)) {
      const outcome = ['Succeeded', 'RolledBack', 'Failed'].includes(phase) ? { outcome: phase } : {};
      assert.equal(
        (await health({ status: { observedGeneration: 1, phase, ...outcome } })).status,
        expected[phase] ?? 'Progressing',
        phase,
      );
    }
  });
});
