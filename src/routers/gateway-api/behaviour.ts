/**
 * gateway-api: the slot Services' weights on an HTTPRoute. Blue-green's switch is 0/100; the live
 * slot is the one holding all the weight. A write changes only the weights of the backendRefs that
 * name a slot Service (kubernetes.ts, local.ts). Verified when the route holds the weights, no
 * gateway refuses it, and every slot given weight has ready endpoints.
 */
import type {
  LiveRoute,
  Progress,
  RouteReport,
  RouteRequest,
  Target,
  TrafficRouterPort,
  WeightVerification,
} from '../../activities/contract.js';
import { SLOTS } from '../../shared/slots.js';
import type { Slot } from '../../shared/slots.js';
import { smallestStep, TrafficRouter } from '../../shared/traffic.js';
import { endpointsServe, liveSlotOf, pollUntil, slotServicesOf, weightsFor } from '../common.js';

/** A weighted route's slot weights, as read, and its name for messages. */
export interface RouteWeights {
  name: string;
  weights: Record<Slot, number>;
  /**
   * What the route's gateways report against it (a refused route, a stale generation); empty when
   * all is well or unknown.
   */
  refusals: string[];
}

/** The route as a platform keeps it: the adapters read and write its slot weights. */
export interface RouteAccess {
  /** Reads the route's slot weights; a missing route, CRD or slot rule is a clear error. */
  readWeights(target: Target): Promise<RouteWeights>;
  /** Writes `weights` on the route's slot backends, nothing else (and, on Kubernetes, through 409s). */
  writeWeights(target: Target, weights: Record<Slot, number>): Promise<void>;
  /** Ready endpoints behind each slot Service; a missing Service is a clear error. */
  slotEndpoints(target: Target): Promise<Record<Slot, number>>;
}

/** A route's slot weights for messages: each slot Service and its weight. */
export function describeWeights(target: Target, weights: Record<Slot, number>): string {
  const services = slotServicesOf(target);
  return SLOTS.map((slot) => `${services[slot]} ${weights[slot]}`).join(', ');
}

export class GatewayApiRouter implements TrafficRouterPort {
  readonly kind = TrafficRouter.GatewayApi;

  constructor(private readonly route: RouteAccess) {}

  smallestStep(replicas: number): number {
    return smallestStep(this.kind, replicas);
  }

  async readLive(target: Target): Promise<LiveRoute> {
    const { name, weights } = await this.route.readWeights(target);
    return {
      slot: liveSlotOf(weights),
      routing: `httproute ${name} in namespace ${target.namespace} weighs ${describeWeights(target, weights)}`,
    };
  }

  async setWeight(request: RouteRequest & { weight: number }): Promise<RouteReport> {
    return await this.write(request.target, weightsFor(request, request.weight));
  }

  async reset(request: RouteRequest): Promise<RouteReport> {
    return await this.write(request.target, weightsFor(request, 0));
  }

  async promote(request: RouteRequest): Promise<RouteReport> {
    return await this.write(request.target, weightsFor(request, 100));
  }

  async verifyWeight(
    request: RouteRequest & { weight: number; timeoutSeconds: number },
    progress: Progress,
  ): Promise<WeightVerification> {
    const { target, canary, weight, timeoutSeconds } = request;
    const wanted = weightsFor(request, weight);
    return await pollUntil(timeoutSeconds, progress, async () => {
      const [{ name, weights, refusals }, endpoints] = await Promise.all([
        this.route.readWeights(target),
        this.route.slotEndpoints(target),
      ]);
      const total = weights.blue + weights.green;
      const held =
        SLOTS.every((slot) => weights[slot] === wanted[slot]) &&
        refusals.length === 0 &&
        endpointsServe(wanted, endpoints);
      const behind = `${endpoints.blue} ready endpoints behind blue and ${endpoints.green} behind green`;
      return {
        done: held ? { weight: total === 0 ? 0 : (100 * weights[canary]) / total, endpoints, seconds: 0 } : null,
        beat: { weights, endpoints },
        unmet: [
          `httproute ${name} in namespace ${target.namespace} does not hold ${weight} % for ${canary}`,
          `it weighs ${describeWeights(target, weights)}, with ${behind}` +
            (refusals.length ? `; its gateways report ${refusals.join('; ')}` : ''),
        ],
      };
    });
  }

  private async write(target: Target, weights: Record<Slot, number>): Promise<RouteReport> {
    await this.route.slotEndpoints(target);
    const before = (await this.route.readWeights(target)).weights;
    const report = { previous: `weights ${describeWeights(target, before)}`, previousSlot: liveSlotOf(before) };
    if (SLOTS.every((slot) => before[slot] === weights[slot])) return { changed: false, ...report };
    await this.route.writeWeights(target, weights);
    return { changed: true, ...report };
  }
}
