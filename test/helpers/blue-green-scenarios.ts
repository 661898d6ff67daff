/**
 * What the blue-green workflow scenarios on the time-skipping server share
 * (test/workflows/blue-green-deployment.test.ts and blue-green-operators.test.ts): the images of a
 * deployment from blue to green, its forward calls, its compensations, and what a rollback leaves.
 */
import assert from 'node:assert/strict';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import type { RecordingPlatformDouble } from './recording-platform-double.js';
export const NEW_IMAGE = 'registry.internal/detection-api:v2.2.0';
export const LIVE_IMAGE = 'registry.internal/detection-api:v2.1.0';
export const IDLE_IMAGE = 'registry.internal/detection-api:v2.0.0';

/** The forward calls of a deployment from blue to green, up to and including `last`. */
export function forwardCalls(last: string): string[] {
  const all = [
    'describe',
    'evaluateActiveSlos blue',
    'readScrapeInterval blue',
    'deploySlot green',
    'waitForSlotReady green',
    'runSmokeSuite green',
    'switchTraffic green',
    'verifyTraffic green',
    'readRestarts green',
  ];
  return all.slice(0, all.indexOf(last) + 1);
}

/** Compensation before traffic moved: the idle slot back to what it was. */
export const RESTORE_IDLE = ['scaleSlot green'];
/** Compensation after traffic moved: selector back first, verified, then the idle slot restored. */
export const SWITCH_BACK_THEN_RESTORE = ['switchTraffic blue', 'verifyTraffic blue', 'scaleSlot green'];

/** Blue serves the old version; green is back to its previous image and replica count. */
export function assertRestored(double: RecordingPlatformDouble): void {
  assert.equal(double.selector, 'blue', 'traffic must end on the old slot');
  assert.deepEqual(
    { image: double.slots.blue.image, replicas: double.slots.blue.replicas },
    { image: LIVE_IMAGE, replicas: 3 },
    'the old slot must be untouched',
  );
  assert.deepEqual(
    { image: double.slots.green.image, replicas: double.slots.green.replicas },
    { image: IDLE_IMAGE, replicas: 0 },
    'the idle slot must be restored to its previous image and replicas',
  );
}

export function assertRolledBack(result: DeploymentResult, reason: string, failedCheck?: string): void {
  assert.equal(result.outcome, 'RolledBack', result.message);
  assert.equal(result.reason, reason);
  if (failedCheck !== undefined) assert.equal(result.failedCheck, failedCheck);
  assert.equal(result.liveSlot, 'blue');
  assert.equal(result.liveImage, LIVE_IMAGE);
  assert.equal(result.status.phase, 'RolledBack');
}
