/**
 * What each router kind does, once for both adapters: the order of writes, what counts as held,
 * and the live slot. An adapter supplies the reads and writes of its own objects (the kubernetes
 * API, or the local platform's control API); the behaviour the workflow relies on lives here.
 */
import type {
  LiveRoute,
  Progress,
  RouteReport,
  RouteRequest,
  Target,
  TrafficRouterPort,
  WeightVerification,
} from '../activities/contract.js';
import { ApplicationFailure } from '@temporalio/activity';
import { ErrorType } from '../shared/errors.js';
import { isSlot, SLOTS } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import {
  formatShare,
  NGINX_CANARY,
  NGINX_CANARY_WEIGHT,
  REPLICA_RATIO_TOLERANCE_POINTS,
  smallestStep,
  TrafficRouter,
} from '../shared/traffic.js';
import { endpointsServe, liveSlotOf, pollUntil, weightsFor } from './routed-platform.js';

/** What a selector router reads: the slot its selector names (null: none), and the ready endpoints by slot. */
export interface SelectorView {
  selected: Slot | null;
  endpoints: Record<Slot, number>;
  /** Ready endpoints in neither slot. */
  strays: number;
}

/**
 * Whether a selector router holds `weight`: the selector names the stable slot (0), the canary
 * (100) or neither (a split), the endpoints serve accordingly, and the canary's share of them is
 * within the tolerance. Returns the share in effect.
 */
export function selectorHolds(
  view: SelectorView,
  { stable, canary, weight }: RouteRequest & { weight: number },
): { held: boolean; effective: number; unmet: string } {
  const { endpoints, strays } = view;
  const total = endpoints[stable] + endpoints[canary] + strays;
  const effective = total === 0 ? 0 : (100 * endpoints[canary]) / total;
  const slot = weight <= 0 ? stable : weight >= 100 ? canary : null;
  const serving =
    weight <= 0
      ? endpoints[canary] === 0 && endpoints[stable] > 0
      : weight >= 100
        ? endpoints[stable] === 0 && endpoints[canary] > 0
        : endpoints[stable] > 0 && endpoints[canary] > 0;
  const held =
    view.selected === slot && serving && strays === 0 && Math.abs(effective - weight) <= REPLICA_RATIO_TOLERANCE_POINTS;
  return {
    held,
    effective,
    unmet: `${endpoints[stable]} ready endpoints in ${stable}, ${endpoints[canary]} in ${canary} (${formatShare(effective)} %), ${strays} outside both slots`,
  };
}

/**
 * service-selector and replica-ratio: the Service's selector names the live slot; replica-ratio's
 * split removes the slot label, so the Service selects both slots and the replica counts set the
 * share. Verified from the Service's ready endpoints.
 */
export abstract class SelectorRouterBase implements TrafficRouterPort {
  constructor(readonly kind: typeof TrafficRouter.ServiceSelector | typeof TrafficRouter.ReplicaRatio) {}

  /** The value of the slot label in the Service's selector (undefined: not there). */
  protected abstract readSelected(target: Target): Promise<string | undefined>;
  /** Sets the slot label to `slot`, or removes it (null). */
  protected abstract writeSelected(target: Target, slot: Slot | null): Promise<void>;
  /** The selector and the Service's ready endpoints by slot. */
  protected abstract readView(target: Target, stable: Slot, canary: Slot): Promise<SelectorView>;

  smallestStep(replicas: number): number {
    return smallestStep(this.kind, replicas);
  }

  async readLive(target: Target): Promise<LiveRoute> {
    const selected = await this.readSelected(target);
    const where = `service ${target.service} in namespace ${target.namespace}`;
    if (isSlot(selected)) return { slot: selected, routing: `${where} selects ${target.slotLabelKey}=${selected}` };
    if (selected === undefined)
      return { slot: null, routing: `${where} selects both slots (no ${target.slotLabelKey} in its selector)` };
    return {
      slot: null,
      routing: `${where} selects ${target.slotLabelKey}=${selected}, which is neither slot (blue, green)`,
    };
  }

  async setWeight(request: RouteRequest & { weight: number }): Promise<RouteReport> {
    if (this.kind === TrafficRouter.ServiceSelector) {
      throw ApplicationFailure.create({
        type: ErrorType.InvalidInput,
        message: `traffic.router: service-selector cannot send ${request.weight} % to one slot`,
        nonRetryable: true,
      });
    }
    return await this.select(request.target, null);
  }

  async reset({ target, stable }: RouteRequest): Promise<RouteReport> {
    return await this.select(target, stable);
  }

  async promote({ target, canary }: RouteRequest): Promise<RouteReport> {
    return await this.select(target, canary);
  }

  async verifyWeight(
    request: RouteRequest & { weight: number; timeoutSeconds: number },
    progress: Progress,
  ): Promise<WeightVerification> {
    const { target, stable, canary, weight, timeoutSeconds } = request;
    return await pollUntil(timeoutSeconds, progress, async () => {
      const view = await this.readView(target, stable, canary);
      const { held, effective, unmet } = selectorHolds(view, request);
      return {
        done: held ? { weight: effective, endpoints: view.endpoints, seconds: 0 } : null,
        beat: { endpoints: view.endpoints, strays: view.strays, effective },
        unmet: [
          `service ${target.service} in namespace ${target.namespace} does not hold ${weight} % for ${canary}`,
          unmet,
        ],
      };
    });
  }

  private async select(target: Target, slot: Slot | null): Promise<RouteReport> {
    const current = await this.readSelected(target);
    const previous = current === undefined ? 'both slots, by replicas' : `selector ${target.slotLabelKey}=${current}`;
    const previousSlot = isSlot(current) ? current : null;
    if ((current ?? null) === slot) return { changed: false, previous, previousSlot };
    await this.writeSelected(target, slot);
    return { changed: true, previous, previousSlot };
  }
}

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

/**
 * gateway-api: the slot Services' weights on a route. Blue-green's switch is 0/100; the live slot
 * is the one holding all the weight. Verified when the route holds the weights, no gateway refuses
 * it, and every slot given weight has ready endpoints.
 */
export abstract class WeightedRouteRouter implements TrafficRouterPort {
  readonly kind = TrafficRouter.GatewayApi;

  /** Reads the route's slot weights; a missing route, CRD or slot rule is a clear error. */
  protected abstract readWeights(target: Target): Promise<RouteWeights>;
  /** Writes `weights` on the route's slot backends, nothing else (and, on Kubernetes, through 409s). */
  protected abstract writeWeights(target: Target, weights: Record<Slot, number>): Promise<void>;
  /** Ready endpoints behind each slot Service; a missing Service is a clear error. */
  protected abstract slotEndpoints(target: Target): Promise<Record<Slot, number>>;

  smallestStep(replicas: number): number {
    return smallestStep(this.kind, replicas);
  }

  async readLive(target: Target): Promise<LiveRoute> {
    const { name, weights } = await this.readWeights(target);
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
        this.readWeights(target),
        this.slotEndpoints(target),
      ]);
      const total = weights.blue + weights.green;
      const held =
        SLOTS.every((slot) => weights[slot] === wanted[slot]) &&
        refusals.length === 0 &&
        endpointsServe(wanted, endpoints);
      return {
        done: held ? { weight: total === 0 ? 0 : (100 * weights[canary]) / total, endpoints, seconds: 0 } : null,
        beat: { weights, endpoints },
        unmet: [
          `httproute ${name} in namespace ${target.namespace} does not hold ${weight} % for ${canary}`,
          `it weighs ${describeWeights(target, weights)}, with ${endpoints.blue} ready endpoints behind blue and ${endpoints.green} behind green` +
            (refusals.length ? `; its gateways report ${refusals.join('; ')}` : ''),
        ],
      };
    });
  }

  private async write(target: Target, weights: Record<Slot, number>): Promise<RouteReport> {
    await this.slotEndpoints(target);
    const before = (await this.readWeights(target)).weights;
    const report = { previous: `weights ${describeWeights(target, before)}`, previousSlot: liveSlotOf(before) };
    if (SLOTS.every((slot) => before[slot] === weights[slot])) return { changed: false, ...report };
    await this.writeWeights(target, weights);
    return { changed: true, ...report };
  }
}

/** Both Ingresses as an ingress router sees them. */
export interface IngressView {
  /** The slot whose Service the stable Ingress's slot backends name. */
  stableSlot: Slot;
  hasCanary: boolean;
  canarySlot: Slot | null;
  /** The canary Ingress's `canary-weight` (0 without one, or without `canary: "true"`). */
  canaryWeight: number;
  routing: string;
}

/**
 * ingress: the stable Ingress's backend is the live slot's Service (blue-green switches it); a
 * canary's share goes through a second Ingress over the canary slot's Service with NGINX's
 * `canary: "true"` and `canary-weight`. Promotion moves all traffic through the canary Ingress,
 * then the stable backend under it, then lets the canary Ingress go (weight 0, kept for the next
 * canary): no moment sends traffic back to the old slot. Reset moves the stable backend first.
 */
export abstract class IngressRouterBase implements TrafficRouterPort {
  readonly kind = TrafficRouter.Ingress;

  protected abstract read(target: Target): Promise<IngressView>;
  /** The stable Ingress's slot backends to `slot`'s Service; false when already there. */
  protected abstract pointStable(target: Target, slot: Slot): Promise<boolean>;
  /**
   * The canary Ingress to `weight` over `slot`'s Service (null: wherever it points), made when
   * missing and given weight.
   */
  protected abstract weighCanary(target: Target, slot: Slot | null, weight: number): Promise<boolean>;
  protected abstract slotEndpoints(target: Target): Promise<Record<Slot, number>>;

  smallestStep(replicas: number): number {
    return smallestStep(this.kind, replicas);
  }

  async readLive(target: Target): Promise<LiveRoute> {
    const { stableSlot, canaryWeight, canarySlot, routing } = await this.read(target);
    return { slot: canaryWeight > 0 && canarySlot !== stableSlot ? null : stableSlot, routing };
  }

  async setWeight(request: RouteRequest & { weight: number }): Promise<RouteReport> {
    const before = await this.read(request.target);
    const stable = await this.pointStable(request.target, request.stable);
    const canary = await this.weighCanary(request.target, request.canary, request.weight);
    return report(before, stable || canary);
  }

  async reset(request: RouteRequest): Promise<RouteReport> {
    const before = await this.read(request.target);
    const stable = await this.pointStable(request.target, request.stable);
    const canary = await this.weighCanary(request.target, null, 0);
    return report(before, stable || canary);
  }

  async promote(request: RouteRequest): Promise<RouteReport> {
    const before = await this.read(request.target);
    let changed = false;
    if (before.hasCanary) changed = (await this.weighCanary(request.target, request.canary, 100)) || changed;
    changed = (await this.pointStable(request.target, request.canary)) || changed;
    if (before.hasCanary) changed = (await this.weighCanary(request.target, null, 0)) || changed;
    return report(before, changed);
  }

  async verifyWeight(
    request: RouteRequest & { weight: number; timeoutSeconds: number },
    progress: Progress,
  ): Promise<WeightVerification> {
    const { target, stable, canary, weight, timeoutSeconds } = request;
    const wanted = weightsFor(request, weight);
    return await pollUntil(timeoutSeconds, progress, async () => {
      const [view, endpoints] = await Promise.all([this.read(target), this.slotEndpoints(target)]);
      const split = weight > 0 && weight < 100;
      const stableHeld = view.stableSlot === (weight >= 100 ? canary : stable);
      const canaryHeld = split ? view.canarySlot === canary && view.canaryWeight === weight : view.canaryWeight === 0;
      const effective = view.stableSlot === canary ? 100 : view.canarySlot === canary ? view.canaryWeight : 0;
      const held = stableHeld && canaryHeld && endpointsServe(wanted, endpoints);
      return {
        done: held ? { weight: effective, endpoints, seconds: 0 } : null,
        beat: { routing: view.routing, endpoints },
        unmet: [
          `${view.routing}, not ${weight} % for ${canary}`,
          `${endpoints.blue} ready endpoints behind blue and ${endpoints.green} behind green`,
        ],
      };
    });
  }
}

/**
 * The view of both Ingresses from what each adapter read: the stable one's slot, and the canary
 * one's slot and weight.
 */
export function ingressView(
  target: Target,
  stableSlot: Slot,
  canary: { slot: Slot; weight: number } | null,
): IngressView {
  const names = ingressNamesOf(target);
  const routing =
    `ingress ${names.ingress} in namespace ${target.namespace} sends to ${stableSlot}` +
    (canary ? `, canary ingress ${names.canaryIngress} sends ${canary.weight} % to ${canary.slot}` : '');
  return {
    stableSlot,
    hasCanary: canary !== null,
    canarySlot: canary?.slot ?? null,
    canaryWeight: canary?.weight ?? 0,
    routing,
  };
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

function report(before: IngressView, changed: boolean): RouteReport {
  return { changed, previous: before.routing, previousSlot: before.canaryWeight > 0 ? null : before.stableSlot };
}

/** The slot Services a weighted router sends traffic to. */
export function slotServicesOf(target: Target): Record<Slot, string> {
  return target.traffic?.slotServices ?? { blue: `${target.app}-blue`, green: `${target.app}-green` };
}

/** The Ingress names of an ingress router: the stable one, and the canary one beside it. */
export function ingressNamesOf(target: Target): { ingress: string; canaryIngress: string } {
  const ingress = target.traffic?.ingress ?? `${target.app}-ingress`;
  return { ingress, canaryIngress: target.traffic?.canaryIngress ?? `${ingress}-canary` };
}

/** A route's slot weights for messages: each slot Service and its weight. */
export function describeWeights(target: Target, weights: Record<Slot, number>): string {
  const services = slotServicesOf(target);
  return SLOTS.map((slot) => `${services[slot]} ${weights[slot]}`).join(', ');
}

/** The `canary-weight` an Ingress's annotations give, 0 unless it is marked a canary. */
export function canaryWeightOf(annotations: Record<string, string> | undefined): number {
  return annotations?.[NGINX_CANARY] === 'true' ? Number(annotations[NGINX_CANARY_WEIGHT] ?? 0) || 0 : 0;
}
