/**
 * ingress: the stable Ingress's backend is the live slot's Service (blue-green switches it); a
 * canary's share goes through a second Ingress over the canary slot's Service with NGINX's
 * `canary: "true"` and `canary-weight`. Promotion moves all traffic through the canary Ingress,
 * then the stable backend under it, then lets the canary Ingress go (weight 0, kept for the next
 * canary): no moment sends traffic back to the old slot. Reset moves the stable backend first.
 * The adapters (kubernetes.ts, local.ts) write only the slot backends and the two annotations.
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
import type { Slot } from '../../shared/slots.js';
import { NGINX_CANARY, NGINX_CANARY_WEIGHT, smallestStep, TrafficRouter } from '../../shared/traffic.js';
import { endpointsServe, pollUntil, weightsFor } from '../common.js';

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

/** The two Ingresses as a platform keeps them. */
export interface IngressAccess {
  read(target: Target): Promise<IngressView>;
  /** The stable Ingress's slot backends to `slot`'s Service; false when already there. */
  pointStable(target: Target, slot: Slot): Promise<boolean>;
  /**
   * The canary Ingress to `weight` over `slot`'s Service (null: wherever it points), made when
   * missing and given weight; false when it already held that.
   */
  weighCanary(target: Target, slot: Slot | null, weight: number): Promise<boolean>;
  slotEndpoints(target: Target): Promise<Record<Slot, number>>;
}

export class IngressRouter implements TrafficRouterPort {
  readonly kind = TrafficRouter.Ingress;

  constructor(private readonly ingresses: IngressAccess) {}

  smallestStep(replicas: number): number {
    return smallestStep(this.kind, replicas);
  }

  async readLive(target: Target): Promise<LiveRoute> {
    const { stableSlot, canaryWeight, canarySlot, routing } = await this.ingresses.read(target);
    return { slot: canaryWeight > 0 && canarySlot !== stableSlot ? null : stableSlot, routing };
  }

  async setWeight(request: RouteRequest & { weight: number }): Promise<RouteReport> {
    const before = await this.ingresses.read(request.target);
    const stable = await this.ingresses.pointStable(request.target, request.stable);
    const canary = await this.ingresses.weighCanary(request.target, request.canary, request.weight);
    return report(before, stable || canary);
  }

  async reset(request: RouteRequest): Promise<RouteReport> {
    const before = await this.ingresses.read(request.target);
    const stable = await this.ingresses.pointStable(request.target, request.stable);
    const canary = await this.ingresses.weighCanary(request.target, null, 0);
    return report(before, stable || canary);
  }

  async promote(request: RouteRequest): Promise<RouteReport> {
    const { target, canary } = request;
    const before = await this.ingresses.read(target);
    let changed = false;
    if (before.hasCanary) changed = (await this.ingresses.weighCanary(target, canary, 100)) || changed;
    changed = (await this.ingresses.pointStable(target, canary)) || changed;
    if (before.hasCanary) changed = (await this.ingresses.weighCanary(target, null, 0)) || changed;
    return report(before, changed);
  }

  async verifyWeight(
    request: RouteRequest & { weight: number; timeoutSeconds: number },
    progress: Progress,
  ): Promise<WeightVerification> {
    const { target, stable, canary, weight, timeoutSeconds } = request;
    const wanted = weightsFor(request, weight);
    return await pollUntil(timeoutSeconds, progress, async () => {
      const [view, endpoints] = await Promise.all([this.ingresses.read(target), this.ingresses.slotEndpoints(target)]);
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

function report(before: IngressView, changed: boolean): RouteReport {
  return { changed, previous: before.routing, previousSlot: before.canaryWeight > 0 ? null : before.stableSlot };
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

/** The Ingress names of an ingress router: the stable one, and the canary one beside it. */
export function ingressNamesOf(target: Target): { ingress: string; canaryIngress: string } {
  const ingress = target.traffic?.ingress ?? `${target.app}-ingress`;
  return { ingress, canaryIngress: target.traffic?.canaryIngress ?? `${ingress}-canary` };
}

/** The `canary-weight` an Ingress's annotations give, 0 unless it is marked a canary. */
export function canaryWeightOf(annotations: Record<string, string> | undefined): number {
  return annotations?.[NGINX_CANARY] === 'true' ? Number(annotations[NGINX_CANARY_WEIGHT] ?? 0) || 0 : 0;
}
