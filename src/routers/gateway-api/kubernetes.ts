/**
 * gateway-api on a Kubernetes HTTPRoute: weights on the backendRefs naming the slot Services, in
 * every rule that names one (a rule naming only one slot gets the other beside it, with the same
 * port and filters). Other rules and refs are copied as read. A write carries the resourceVersion
 * it was computed from; a 409 is read again. The gateways' status, when they report one, must
 * accept this generation.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Target } from '../../activities/contract.js';
import { ErrorType } from '../../shared/errors.js';
import { otherSlot, SLOTS } from '../../shared/slots.js';
import type { Slot } from '../../shared/slots.js';
import { slotServicesOf } from '../common.js';
import { CONFLICT_TRIES, isConflict, MERGE, requireSlotServices, slotEndpoints } from '../kubernetes-api.js';
import type { KubernetesApi } from '../kubernetes-api.js';
import { describeWeights } from './behaviour.js';
import type { RouteAccess, RouteWeights } from './behaviour.js';

/** The Gateway API's HTTPRoute, as much of it as the router reads; the rest is carried through untouched. */
interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  [field: string]: unknown;
}
interface HttpRouteRule {
  backendRefs?: BackendRef[];
  [field: string]: unknown;
}
interface RouteCondition {
  type: string;
  status: string;
  observedGeneration?: number;
  reason?: string;
  message?: string;
}
interface HttpRoute {
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number };
  spec: { rules?: HttpRouteRule[]; [field: string]: unknown };
  status?: { parents?: { parentRef?: { name?: string }; controllerName?: string; conditions?: RouteCondition[] }[] };
}

/** The Gateway API's group: HTTPRoutes of gateway.networking.k8s.io/v1. */
export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
const GATEWAY_VERSION = 'v1';
const HTTP_ROUTES = 'httproutes';

export class KubernetesHttpRoute implements RouteAccess {
  constructor(private readonly api: KubernetesApi) {}

  async slotEndpoints(target: Target): Promise<Record<Slot, number>> {
    await requireSlotServices(this.api, target);
    return await slotEndpoints(this.api, target);
  }

  async readWeights(target: Target): Promise<RouteWeights> {
    const route = await this.readRoute(target);
    return { name: route.metadata.name, weights: this.weightsOf(target, route), refusals: parentsRefusing(route) };
  }

  /**
   * Read, reweigh, patch with the read's resourceVersion; a 409 (someone wrote in between) starts
   * again from a fresh read.
   */
  async writeWeights(target: Target, weights: Record<Slot, number>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const route = await this.readRoute(target);
      const body = {
        metadata: { resourceVersion: route.metadata.resourceVersion },
        spec: { rules: this.reweigh(target, route, weights) },
      };
      const written = await this.api.call(`patch httproute ${route.metadata.name}`, target, async () => {
        try {
          await this.api.custom.patchNamespacedCustomObject(
            {
              group: GATEWAY_GROUP,
              version: GATEWAY_VERSION,
              namespace: target.namespace,
              plural: HTTP_ROUTES,
              name: route.metadata.name,
              body,
            },
            MERGE,
          );
          return true;
        } catch (error) {
          if (isConflict(error) && attempt < CONFLICT_TRIES) return false;
          throw error;
        }
      });
      if (written) return;
    }
  }

  /**
   * The weight of each slot Service across the rules naming them; rules that disagree are an error
   * (someone else edits them).
   */
  private weightsOf(target: Target, route: HttpRoute): Record<Slot, number> {
    const each = this.slotRules(target, route).map((rule) => {
      const weights = { blue: 0, green: 0 };
      for (const slot of SLOTS)
        for (const ref of rule.backendRefs ?? []) if (this.names(target, ref, slot)) weights[slot] += ref.weight ?? 1;
      return weights;
    });
    const first = each[0]!;
    if (each.some((w) => w.blue !== first.blue || w.green !== first.green)) {
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message:
          `httproute ${route.metadata.name} in namespace ${target.namespace}: its rules naming the slot Services ` +
          `weigh them differently (${each.map((w) => describeWeights(target, w)).join('; ')}); make them agree`,
        nonRetryable: true,
      });
    }
    return first;
  }

  /** Rules with a backendRef to either slot Service; none is an error naming the route and the Services. */
  private slotRules(target: Target, route: HttpRoute): HttpRouteRule[] {
    const rules = (route.spec.rules ?? []).filter((rule) =>
      (rule.backendRefs ?? []).some((ref) => SLOTS.some((slot) => this.names(target, ref, slot))),
    );
    if (rules.length === 0) {
      const services = slotServicesOf(target);
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message:
          `httproute ${route.metadata.name} in namespace ${target.namespace} has no rule with a backendRef to ` +
          `${services.blue} or ${services.green}: add one (the router writes only the weights of such rules)`,
        nonRetryable: true,
      });
    }
    return rules;
  }

  /** Whether a backendRef names the slot's Service (core group, kind Service, this namespace). */
  private names(target: Target, ref: BackendRef, slot: Slot): boolean {
    return (
      (ref.group ?? '') === '' &&
      (ref.kind ?? 'Service') === 'Service' &&
      (ref.namespace ?? target.namespace) === target.namespace &&
      ref.name === slotServicesOf(target)[slot]
    );
  }

  /** The route's rules with `weights` on the slot backendRefs; other rules and fields are copied as they are. */
  private reweigh(target: Target, route: HttpRoute, weights: Record<Slot, number>): HttpRouteRule[] {
    const slotRules = new Set(this.slotRules(target, route));
    return (route.spec.rules ?? []).map((rule) => {
      if (!slotRules.has(rule)) return rule;
      const refs = (rule.backendRefs ?? []).map((ref) => {
        const slot = SLOTS.find((s) => this.names(target, ref, s));
        return slot === undefined ? ref : { ...ref, weight: weights[slot] };
      });
      for (const slot of SLOTS) {
        if (refs.some((ref) => this.names(target, ref, slot))) continue;
        const sibling = refs.find((ref) => this.names(target, ref, otherSlot(slot)))!;
        refs.push({ ...sibling, name: slotServicesOf(target)[slot], weight: weights[slot] });
      }
      return { ...rule, backendRefs: refs };
    });
  }

  private async readRoute(target: Target): Promise<HttpRoute> {
    const name = target.traffic?.httpRoute ?? target.app;
    try {
      return (await this.api.call(`read httproute ${name}`, target, () =>
        this.api.custom.getNamespacedCustomObject({
          group: GATEWAY_GROUP,
          version: GATEWAY_VERSION,
          namespace: target.namespace,
          plural: HTTP_ROUTES,
          name,
        }),
      )) as HttpRoute;
    } catch (error) {
      // A 404 for the kind itself (no CRD: "404 page not found", or "could not find the requested
      // resource" when other kinds of the group remain) does not name the route; say what to install.
      if (
        error instanceof ApplicationFailure &&
        error.type === ErrorType.NotFound &&
        !error.message.includes(`"${name}" not found`)
      ) {
        throw ApplicationFailure.create({
          type: ErrorType.NotFound,
          message:
            `read httproute ${name}: the API server does not serve ` +
            `${HTTP_ROUTES}.${GATEWAY_GROUP}/${GATEWAY_VERSION}: install the Gateway API CRDs (standard channel), ` +
            `or choose another traffic.router`,
          nonRetryable: true,
        });
      }
      throw error;
    }
  }
}

/** The parents (gateways) whose controller has seen this generation and refuses the route or its backends. */
function parentsRefusing(route: HttpRoute): string[] {
  const generation = route.metadata.generation ?? 0;
  const refusing: string[] = [];
  for (const parent of route.status?.parents ?? []) {
    for (const condition of parent.conditions ?? []) {
      if (!['Accepted', 'ResolvedRefs'].includes(condition.type)) continue;
      const current = (condition.observedGeneration ?? generation) >= generation;
      if (!current) refusing.push(`${parent.parentRef?.name ?? 'a gateway'} has not yet seen generation ${generation}`);
      else if (condition.status !== 'True')
        refusing.push(
          `${parent.parentRef?.name ?? 'a gateway'}: ${condition.type} ${condition.status} ` +
            `(${condition.reason ?? ''}${condition.message ? `: ${condition.message}` : ''})`,
        );
    }
  }
  return refusing;
}
