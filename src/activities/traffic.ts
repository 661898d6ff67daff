/**
 * The four traffic activities over the router the target (or a canary's request) names:
 * blue-green's switch is a promotion, a canary's weight 0 a reset and 100 a promotion, and a
 * switch is verified as 100 % to the new slot.
 */
import { otherSlot } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import type {
  EndpointsReport,
  Progress,
  Routers,
  SetWeightRequest,
  SwitchReport,
  SwitchTrafficRequest,
  VerifyTrafficRequest,
  VerifyWeightRequest,
  WeightReport,
  WeightVerification,
} from './contract.js';
import type { Target } from './contract.js';
import { probeUntilServedBy } from './traffic-probe.js';

/**
 * A full route read back (everything on `slot`), then, where the target has a probe, verified by
 * traffic within what is left of `timeoutSeconds`: the seconds of both.
 */
async function byTrafficToo<T extends { seconds: number }>(
  target: Target,
  slot: Slot,
  timeoutSeconds: number,
  readBack: T,
  progress: Progress,
): Promise<T> {
  const probe = target.traffic?.probe;
  if (!probe) return readBack;
  const left = Math.max(1, timeoutSeconds - readBack.seconds);
  const { seconds } = await probeUntilServedBy(probe, target.deployments[slot], left, progress);
  return { ...readBack, seconds: readBack.seconds + seconds };
}

export function trafficThrough(routers: Routers) {
  return {
    async switchTraffic({ target, slot }: SwitchTrafficRequest): Promise<SwitchReport> {
      const report = await routers.routerFor(target).promote({ target, stable: otherSlot(slot), canary: slot });
      return { changed: report.changed, previousSlot: report.previousSlot };
    },

    async verifyTraffic(
      { target, slot, timeoutSeconds }: VerifyTrafficRequest,
      progress: Progress,
    ): Promise<EndpointsReport> {
      const verified = await byTrafficToo(
        target,
        slot,
        timeoutSeconds,
        await routers
          .routerFor(target)
          .verifyWeight({ target, stable: otherSlot(slot), canary: slot, weight: 100, timeoutSeconds }, progress),
        progress,
      );
      return { endpoints: verified.endpoints[slot], seconds: verified.seconds };
    },

    async setTrafficWeight({ target, router, stable, canary, weight }: SetWeightRequest): Promise<WeightReport> {
      const port = routers.routerFor(target, router);
      const route = { target, stable, canary };
      const report =
        weight <= 0
          ? await port.reset(route)
          : weight >= 100
            ? await port.promote(route)
            : await port.setWeight({ ...route, weight });
      return { changed: report.changed, previous: report.previous };
    },

    async verifyTrafficWeight(request: VerifyWeightRequest, progress: Progress): Promise<WeightVerification> {
      const { target, router, stable, canary, weight, timeoutSeconds } = request;
      const verified = await routers
        .routerFor(target, router)
        .verifyWeight({ target, stable, canary, weight, timeoutSeconds }, progress);
      if (weight > 0 && weight < 100) return verified;
      return await byTrafficToo(target, weight <= 0 ? stable : canary, timeoutSeconds, verified, progress);
    },
  };
}

export type TrafficActivities = ReturnType<typeof trafficThrough>;
