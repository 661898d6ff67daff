/**
 * The live state as preflight and a plan judge it: read again while the live slot is short of
 * ready replicas, for as long as a pod that missed one readiness probe takes to come back.
 */
import { ACTIVE_SLOT_SETTLE_MS, isHealthySlot } from '../shared/slots.js';
import type { LiveState } from '../shared/slots.js';
import type { Target } from '../shared/target.js';
import type { Platform, Progress } from './contract.js';
import type { Clock } from './monitor-window.js';

/**
 * The live state, read again each second while the live slot has replicas not ready, up to
 * ACTIVE_SLOT_SETTLE_MS of `clock`'s time. A slot with no replicas is answered at once: nothing
 * there is coming back.
 */
export async function settledLiveState(
  platform: Pick<Platform, 'describe'>,
  target: Target,
  clock: Clock,
  progress: Progress,
): Promise<LiveState> {
  const until = (await clock.now()) + ACTIVE_SLOT_SETTLE_MS;
  for (;;) {
    const live = await platform.describe(target);
    const active = live.slots[live.activeSlot];
    if (isHealthySlot(active) || active.replicas === 0 || (await clock.now()) >= until) return live;
    progress.heartbeat();
    await clock.sleep(1_000, progress.signal);
  }
}
