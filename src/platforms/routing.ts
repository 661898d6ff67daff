/**
 * The platform activities that move traffic, over the traffic-router port: blue-green's switch is
 * a promotion, a canary's weight 0 a reset and 100 a promotion, and the live slot is what the
 * router holds. Both adapters route through this, so the mapping lives once.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type {
  EndpointsReport,
  Progress,
  SetWeightRequest,
  SwitchReport,
  SwitchTrafficRequest,
  Target,
  TrafficRouterPort,
  VerifyTrafficRequest,
  VerifyWeightRequest,
  WeightReport,
  WeightVerification,
} from '../activities/contract.js';
import { ErrorType } from '../shared/errors.js';
import { otherSlot } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import type { TrafficRouter } from '../shared/traffic.js';

export class RoutedTraffic {
  private readonly byKind: Map<TrafficRouter, TrafficRouterPort>;

  constructor(
    private readonly platform: string,
    ports: readonly TrafficRouterPort[],
  ) {
    this.byKind = new Map(ports.map((port) => [port.kind, port]));
  }

  /** The router kinds this platform plays. */
  get kinds(): TrafficRouter[] {
    return [...this.byKind.keys()];
  }

  /** The target's router; a request's own (a canary's) when the target predates the traffic section. */
  routerFor(target: Target, requested?: TrafficRouter): TrafficRouterPort {
    const kind = target.traffic?.router ?? requested ?? 'service-selector';
    const port = this.byKind.get(kind);
    if (!port) {
      throw ApplicationFailure.create({
        type: ErrorType.InvalidInput,
        message: `traffic.router: the ${this.platform} platform cannot route by '${kind}' (it can: ${this.kinds.join(', ')})`,
        nonRetryable: true,
      });
    }
    return port;
  }

  /** The slot taking all traffic; a split (an interrupted canary) or a stray backend is refused, naming what the router holds. */
  async liveSlot(target: Target): Promise<Slot> {
    const live = await this.routerFor(target).readLive(target);
    if (live.slot === null) {
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message: `${live.routing}: no slot takes all the traffic, so neither can be called live (set the router to one slot, or finish the canary in progress)`,
        nonRetryable: true,
      });
    }
    return live.slot;
  }

  async switchTraffic({ target, slot }: SwitchTrafficRequest): Promise<SwitchReport> {
    const report = await this.routerFor(target).promote({ target, stable: otherSlot(slot), canary: slot });
    return { changed: report.changed, previousSlot: report.previousSlot };
  }

  async verifyTraffic({ target, slot, timeoutSeconds }: VerifyTrafficRequest, progress: Progress): Promise<EndpointsReport> {
    const verified = await this.routerFor(target).verifyWeight({ target, stable: otherSlot(slot), canary: slot, weight: 100, timeoutSeconds }, progress);
    return { endpoints: verified.endpoints[slot], seconds: verified.seconds };
  }

  async setTrafficWeight({ target, router, stable, canary, weight }: SetWeightRequest): Promise<WeightReport> {
    const port = this.routerFor(target, router);
    const route = { target, stable, canary };
    const report = weight <= 0 ? await port.reset(route) : weight >= 100 ? await port.promote(route) : await port.setWeight({ ...route, weight });
    return { changed: report.changed, previous: report.previous };
  }

  async verifyTrafficWeight({ target, router, stable, canary, weight, timeoutSeconds }: VerifyWeightRequest, progress: Progress): Promise<WeightVerification> {
    return await this.routerFor(target, router).verifyWeight({ target, stable, canary, weight, timeoutSeconds }, progress);
  }
}
