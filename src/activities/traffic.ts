/**
 * The four traffic activities over the router the target (or a canary's request) names:
 * blue-green's switch is a promotion, a canary's weight 0 a reset and 100 a promotion, and a
 * switch is verified as 100 % to the new slot.
 */
import { otherSlot } from '../shared/slots.js';
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
      const verified = await routers
        .routerFor(target)
        .verifyWeight({ target, stable: otherSlot(slot), canary: slot, weight: 100, timeoutSeconds }, progress);
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
      return await routers
        .routerFor(target, router)
        .verifyWeight({ target, stable, canary, weight, timeoutSeconds }, progress);
    },
  };
}

export type TrafficActivities = ReturnType<typeof trafficThrough>;
