/**
 * What the four routers share: the slot Services a weighted router sends to, the weights of a
 * route, and the read-back poll every `verifyWeight` runs.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Progress, RouteRequest, Target, WeightVerification } from '../activities/contract.js';
import { ErrorType } from '../shared/errors.js';
import { otherSlot, SLOTS } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';

/** The weights of a route: `weight` percent to the canary, the rest to the stable slot. */
export function weightsFor({ stable, canary }: RouteRequest, weight: number): Record<Slot, number> {
  return { [stable]: 100 - weight, [canary]: weight } as Record<Slot, number>;
}

/** Whether every slot given traffic has endpoints to take it, and the one given none needs none. */
export function endpointsServe(weights: Record<Slot, number>, endpoints: Record<Slot, number>): boolean {
  return SLOTS.every((slot) => weights[slot] <= 0 || endpoints[slot] > 0);
}

/** The slot holding all the weight, or null while both (or neither) have some. */
export function liveSlotOf(weights: Record<Slot, number>): Slot | null {
  return SLOTS.find((slot) => weights[slot] > 0 && weights[otherSlot(slot)] === 0) ?? null;
}

/** The slot Services a weighted router sends traffic to. */
export function slotServicesOf(target: Target): Record<Slot, string> {
  return target.traffic?.slotServices ?? { blue: `${target.app}-blue`, green: `${target.app}-green` };
}

/** An object that may not exist yet (the canary Ingress before the first canary): null for NotFound. */
export async function unlessNotFound<T>(read: Promise<T>): Promise<T | null> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof ApplicationFailure && error.type === ErrorType.NotFound) return null;
    throw error;
  }
}

const MAX_POLL_MS = 2000;

/** What one read-back found: the verification once held, else what is unmet; `beat` is heartbeated. */
export interface ReadBack {
  done: WeightVerification | null;
  unmet: [what: string, detail: string];
  beat: unknown;
}

/** Polls `check` until it reports done, heartbeating; past the timeout, throws what it last said. */
export async function pollUntil(
  timeoutSeconds: number,
  progress: Progress,
  check: () => Promise<ReadBack>,
): Promise<WeightVerification> {
  const started = performance.now();
  for (let poll = 50; ; poll = Math.min(MAX_POLL_MS, poll * 1.5)) {
    const { done, unmet, beat } = await check();
    progress.heartbeat(beat);
    if (done) return { ...done, seconds: (performance.now() - started) / 1000 };
    if (performance.now() - started > timeoutSeconds * 1000) {
      throw ApplicationFailure.create({
        type: ErrorType.TrafficNotVerified,
        message: `${unmet[0]} after ${timeoutSeconds} s: ${unmet[1]}`,
        nonRetryable: true,
      });
    }
    await sleep(poll, undefined, { signal: progress.signal });
  }
}
