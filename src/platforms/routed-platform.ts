/**
 * The platform activities that move traffic, over the traffic-router port: blue-green's switch is
 * a promotion, a canary's weight 0 a reset and 100 a promotion, and the live slot is what the
 * router holds. Both adapters route through this, so the mapping lives once.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type {
  EndpointsReport,
  RouteRequest,
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
import { otherSlot, SLOTS } from '../shared/slots.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Slot } from '../shared/slots.js';
import type { TrafficRouter } from '../shared/traffic.js';

/** The traffic activities of a platform, each sent to the router port its target (or request) names. */
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

  /** The router a request names (a canary's weights do), else the target's. */
  routerFor(target: Target, requested?: TrafficRouter): TrafficRouterPort {
    const kind = requested ?? target.traffic?.router ?? 'service-selector';
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

  /**
   * The slot taking all traffic, and what the router's object holds in words; a split (an
   * interrupted canary) or a stray backend is refused, naming what the router holds.
   */
  async liveSlot(target: Target): Promise<{ slot: Slot; routing: string }> {
    const live = await this.routerFor(target).readLive(target);
    if (live.slot === null) {
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message: `${live.routing}: no slot takes all the traffic, so neither can be called live (set the router to one slot, or finish the canary in progress)`,
        nonRetryable: true,
      });
    }
    return { slot: live.slot, routing: live.routing };
  }

  async switchTraffic({ target, slot }: SwitchTrafficRequest): Promise<SwitchReport> {
    const report = await this.routerFor(target).promote({ target, stable: otherSlot(slot), canary: slot });
    return { changed: report.changed, previousSlot: report.previousSlot };
  }

  async verifyTraffic(
    { target, slot, timeoutSeconds }: VerifyTrafficRequest,
    progress: Progress,
  ): Promise<EndpointsReport> {
    const verified = await this.routerFor(target).verifyWeight(
      { target, stable: otherSlot(slot), canary: slot, weight: 100, timeoutSeconds },
      progress,
    );
    return { endpoints: verified.endpoints[slot], seconds: verified.seconds };
  }

  async setTrafficWeight({ target, router, stable, canary, weight }: SetWeightRequest): Promise<WeightReport> {
    const port = this.routerFor(target, router);
    const route = { target, stable, canary };
    const report =
      weight <= 0
        ? await port.reset(route)
        : weight >= 100
          ? await port.promote(route)
          : await port.setWeight({ ...route, weight });
    return { changed: report.changed, previous: report.previous };
  }

  async verifyTrafficWeight(
    { target, router, stable, canary, weight, timeoutSeconds }: VerifyWeightRequest,
    progress: Progress,
  ): Promise<WeightVerification> {
    return await this.routerFor(target, router).verifyWeight(
      { target, stable, canary, weight, timeoutSeconds },
      progress,
    );
  }
}

/** The weights of a route: `weight` percent to the canary, the rest to the stable slot. */
export function weightsFor({ stable, canary }: RouteRequest, weight: number): Record<Slot, number> {
  return { [stable]: 100 - weight, [canary]: weight } as Record<Slot, number>;
}

/**
 * What both adapters share of the platform port: the routers they play, and the four traffic
 * activities, each handed to the router port the target (or a canary's request) names.
 */
export abstract class RoutedPlatform {
  protected abstract readonly traffic: RoutedTraffic;

  /** The traffic routers this platform plays; the worker rejects a spec naming another. */
  get routers(): TrafficRouter[] {
    return this.traffic.kinds;
  }

  async switchTraffic(request: SwitchTrafficRequest): Promise<SwitchReport> {
    return await this.traffic.switchTraffic(request);
  }

  async verifyTraffic(request: VerifyTrafficRequest, progress: Progress): Promise<EndpointsReport> {
    return await this.traffic.verifyTraffic(request, progress);
  }

  async setTrafficWeight(request: SetWeightRequest): Promise<WeightReport> {
    return await this.traffic.setTrafficWeight(request);
  }

  async verifyTrafficWeight(request: VerifyWeightRequest, progress: Progress): Promise<WeightVerification> {
    return await this.traffic.verifyTrafficWeight(request, progress);
  }
}

const MAX_POLL_MS = 2000;

/** Polls `check` until it reports done, heartbeating; past the timeout, throws what it last said. */
export async function pollUntil(
  timeoutSeconds: number,
  progress: Progress,
  check: () => Promise<{ done: WeightVerification | null; unmet: [what: string, detail: string]; beat: unknown }>,
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

/** Whether every slot given traffic has endpoints to take it, and the one given none needs none. */
export function endpointsServe(weights: Record<Slot, number>, endpoints: Record<Slot, number>): boolean {
  return SLOTS.every((slot) => weights[slot] <= 0 || endpoints[slot] > 0);
}

/** The slot holding all the weight, or null while both (or neither) have some. */
export function liveSlotOf(weights: Record<Slot, number>): Slot | null {
  return SLOTS.find((slot) => weights[slot] > 0 && weights[otherSlot(slot)] === 0) ?? null;
}
