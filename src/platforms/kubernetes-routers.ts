/**
 * The kubernetes adapter's traffic routers (PROCEDURE §6), one per kind, behind the router port:
 * - the Service's selector (`service-selector`, and `replica-ratio`, which removes the slot label
 *   so the Service selects both slots and the replica counts set the share);
 * - a Gateway API HTTPRoute (`gateway-api`): only the backendRefs of the rules that name the slot
 *   Services are written; every other rule, match and filter stays as its owner wrote it;
 * - an Ingress (`ingress`): the backends of its paths that name a slot Service, and for a canary
 *   NGINX Ingress's canary annotations on a second Ingress over the canary slot's Service.
 * Route and Ingress writes carry the resourceVersion they were computed from: a 409 (someone else
 * wrote between our read and our write) is read again and recomputed, never overwritten.
 * Verification reads back the object and the slot Services' ready endpoints: a weight is in effect
 * once the router holds it and every slot it sends traffic to has endpoints to take it.
 */
import { ApplicationFailure } from '@temporalio/activity';
import * as k8s from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LiveRoute, Progress, RouteReport, RouteRequest, Target, TrafficRouterPort, WeightVerification } from '../activities/contract.js';
import { ErrorType } from '../shared/errors.js';
import { isSlot, otherSlot, SLOTS } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import { formatShare, REPLICA_RATIO_TOLERANCE_POINTS, smallestStep, TrafficRouter } from '../shared/traffic.js';

/** What the routers need of the adapter: its API clients and its call wrapper (retries, error mapping). */
export interface KubernetesApi {
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  discovery: k8s.DiscoveryV1Api;
  networking: k8s.NetworkingV1Api;
  custom: k8s.CustomObjectsApi;
  call<T>(what: string, target: Target, request: () => Promise<T>): Promise<T>;
}

const MERGE = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const MAX_POLL_MS = 2000;
/** Tries of a route or Ingress write that keeps meeting someone else's newer version (409). */
const CONFLICT_TRIES = 5;

/** The weights of a route: `weight` percent to the canary, the rest to the stable slot. */
function weightsFor({ stable, canary }: RouteRequest, weight: number): Record<Slot, number> {
  return { [stable]: 100 - weight, [canary]: weight } as Record<Slot, number>;
}

/** Polls `check` until it reports done, heartbeating; past the timeout, throws what it last said. */
async function pollUntil(
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
      throw ApplicationFailure.create({ type: ErrorType.TrafficNotVerified, message: `${unmet[0]} after ${timeoutSeconds} s: ${unmet[1]}`, nonRetryable: true });
    }
    await sleep(poll, undefined, { signal: progress.signal });
  }
}

/** Whether the API answered 409: the object changed since it was read. */
function isConflict(error: unknown): boolean {
  return error instanceof k8s.ApiException && error.code === 409;
}

/** The Deployment's matchLabels as a label selector string. */
export function selectorOf(deployment: k8s.V1Deployment): string {
  return Object.entries(deployment.spec?.selector?.matchLabels ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}

/** Ready endpoints of a Service, by the pod they reach. */
async function readyEndpoints(api: KubernetesApi, target: Target, service: string): Promise<k8s.V1Endpoint[]> {
  const slices = await api.call(`list endpointslices of ${service}`, target, () =>
    api.discovery.listNamespacedEndpointSlice({ namespace: target.namespace, labelSelector: `kubernetes.io/service-name=${service}` }),
  );
  return slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready !== false);
}

/** The per-slot Services a weighted router sends traffic to. */
function slotServicesOf(target: Target): Record<Slot, string> {
  const services = target.traffic?.slotServices;
  if (!services) {
    throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: `traffic.slotServicePattern: the target names no slot Services`, nonRetryable: true });
  }
  return services;
}

/** Reads both slot Services, so a missing backend is named before any traffic moves. */
async function requireSlotServices(api: KubernetesApi, target: Target): Promise<void> {
  const services = slotServicesOf(target);
  await Promise.all(
    SLOTS.map((slot) =>
      api.call(`read service ${services[slot]} (slot ${slot}'s backend)`, target, () => api.core.readNamespacedService({ name: services[slot], namespace: target.namespace })),
    ),
  );
}

/** Ready endpoints behind each slot Service. */
async function slotEndpoints(api: KubernetesApi, target: Target): Promise<Record<Slot, number>> {
  const services = slotServicesOf(target);
  const [blue, green] = await Promise.all(SLOTS.map((slot) => readyEndpoints(api, target, services[slot])));
  return { blue: blue!.length, green: green!.length };
}

/** Whether every slot given traffic has endpoints to take it, and the one given none needs none. */
function endpointsServe(weights: Record<Slot, number>, endpoints: Record<Slot, number>): boolean {
  return SLOTS.every((slot) => weights[slot] <= 0 || endpoints[slot] > 0);
}

/**
 * `service-selector` and `replica-ratio`: the Service's selector names the live slot, and for a
 * split its slot label is removed (a JSON merge patch with null), so the Service selects both
 * slots and the share is the canary's part of the ready endpoints.
 */
export class SelectorRouter implements TrafficRouterPort {
  constructor(
    readonly kind: typeof TrafficRouter.ServiceSelector | typeof TrafficRouter.ReplicaRatio,
    private readonly api: KubernetesApi,
  ) {}

  smallestStep(replicas: number): number {
    return smallestStep(this.kind, replicas);
  }

  async readLive(target: Target): Promise<LiveRoute> {
    const selected = (await this.readService(target)).spec?.selector?.[target.slotLabelKey];
    const where = `service ${target.service} in namespace ${target.namespace}`;
    if (isSlot(selected)) return { slot: selected, routing: `${where} selects ${target.slotLabelKey}=${selected}` };
    if (selected === undefined) return { slot: null, routing: `${where} selects both slots (no ${target.slotLabelKey} in its selector)` };
    return { slot: null, routing: `${where} selects ${target.slotLabelKey}=${selected}, which is neither slot (blue, green)` };
  }

  async setWeight(request: RouteRequest & { weight: number }): Promise<RouteReport> {
    if (this.kind === TrafficRouter.ServiceSelector) {
      throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: `traffic.router: service-selector cannot send ${request.weight} % to one slot`, nonRetryable: true });
    }
    return await this.select(request.target, null);
  }

  async reset({ target, stable }: RouteRequest): Promise<RouteReport> {
    return await this.select(target, stable);
  }

  async promote({ target, canary }: RouteRequest): Promise<RouteReport> {
    return await this.select(target, canary);
  }

  async verifyWeight(request: RouteRequest & { weight: number; timeoutSeconds: number }, progress: Progress): Promise<WeightVerification> {
    const { target, stable, canary, weight, timeoutSeconds } = request;
    const slot = weight <= 0 ? stable : weight >= 100 ? canary : null;
    const [stableSelector, canarySelector] = await Promise.all([this.readDeployment(target, stable), this.readDeployment(target, canary)]).then((ds) => ds.map(selectorOf));
    return await pollUntil(timeoutSeconds, progress, async () => {
      const [service, ready, stablePods, canaryPods] = await Promise.all([
        this.readService(target),
        readyEndpoints(this.api, target, target.service),
        this.api.call(`list pods of slot ${stable}`, target, () => this.api.core.listNamespacedPod({ namespace: target.namespace, labelSelector: stableSelector })),
        this.api.call(`list pods of slot ${canary}`, target, () => this.api.core.listNamespacedPod({ namespace: target.namespace, labelSelector: canarySelector })),
      ]);
      const names = (pods: k8s.V1PodList) => new Set(pods.items.map((p) => p.metadata?.name));
      const [inStable, inCanary] = [names(stablePods), names(canaryPods)];
      const endpoints = { [stable]: ready.filter((e) => inStable.has(e.targetRef?.name)).length, [canary]: ready.filter((e) => inCanary.has(e.targetRef?.name)).length } as Record<Slot, number>;
      const strays = ready.length - endpoints[stable] - endpoints[canary];
      const effective = ready.length === 0 ? 0 : (100 * endpoints[canary]) / ready.length;
      const selected = (service.spec?.selector?.[target.slotLabelKey] ?? null) === slot;
      const serving =
        weight <= 0 ? endpoints[canary] === 0 && endpoints[stable] > 0 : weight >= 100 ? endpoints[stable] === 0 && endpoints[canary] > 0 : endpoints[stable] > 0 && endpoints[canary] > 0;
      const held = selected && serving && strays === 0 && Math.abs(effective - weight) <= REPLICA_RATIO_TOLERANCE_POINTS;
      return {
        done: held ? { weight: effective, endpoints, seconds: 0 } : null,
        beat: { endpoints, strays, effective },
        unmet: [
          `service ${target.service} in namespace ${target.namespace} does not hold ${weight} % for ${canary}`,
          `${endpoints[stable]} ready endpoints in ${stable}, ${endpoints[canary]} in ${canary} (${formatShare(effective)} %), ${strays} outside both slots`,
        ],
      };
    });
  }

  /** Sets the selector's slot label to `slot`, or removes it (null); writes only what differs. */
  private async select(target: Target, slot: Slot | null): Promise<RouteReport> {
    const current = (await this.readService(target)).spec?.selector?.[target.slotLabelKey];
    const previous = current === undefined ? 'both slots, by replicas' : `selector ${target.slotLabelKey}=${current}`;
    const previousSlot = isSlot(current) ? current : null;
    if ((current ?? null) === slot) return { changed: false, previous, previousSlot };
    await this.api.call(`patch service ${target.service}`, target, () =>
      this.api.core.patchNamespacedService({ name: target.service, namespace: target.namespace, body: { spec: { selector: { [target.slotLabelKey]: slot } } } }, MERGE),
    );
    return { changed: true, previous, previousSlot };
  }

  private async readService(target: Target): Promise<k8s.V1Service> {
    return await this.api.call(`read service ${target.service}`, target, () => this.api.core.readNamespacedService({ name: target.service, namespace: target.namespace }));
  }

  private async readDeployment(target: Target, slot: Slot): Promise<k8s.V1Deployment> {
    const name = target.deployments[slot];
    return await this.api.call(`read deployment ${name}`, target, () => this.api.apps.readNamespacedDeployment({ name, namespace: target.namespace }));
  }
}

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

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
const GATEWAY_VERSION = 'v1';
const HTTP_ROUTES = 'httproutes';

/**
 * `gateway-api`: weights on the backendRefs naming the slot Services, in every rule that names
 * one (a rule naming only one slot gets the other beside it, with the same port and filters).
 * Blue-green through it is a 0/100 switch. The live slot is the one holding all the weight.
 */
export class GatewayApiRouter implements TrafficRouterPort {
  readonly kind = TrafficRouter.GatewayApi;

  constructor(private readonly api: KubernetesApi) {}

  smallestStep(replicas: number): number {
    return smallestStep(this.kind, replicas);
  }

  async readLive(target: Target): Promise<LiveRoute> {
    const route = await this.readRoute(target);
    const weights = this.weightsOf(target, route);
    const routing = `httproute ${route.metadata.name} in namespace ${target.namespace} weighs ${describeWeights(target, weights)}`;
    const live = SLOTS.find((slot) => weights[slot] > 0 && weights[otherSlot(slot)] === 0) ?? null;
    return { slot: live, routing };
  }

  async setWeight(request: RouteRequest & { weight: number }): Promise<RouteReport> {
    return await this.write(request, weightsFor(request, request.weight));
  }

  async reset(request: RouteRequest): Promise<RouteReport> {
    return await this.write(request, weightsFor(request, 0));
  }

  async promote(request: RouteRequest): Promise<RouteReport> {
    return await this.write(request, weightsFor(request, 100));
  }

  async verifyWeight(request: RouteRequest & { weight: number; timeoutSeconds: number }, progress: Progress): Promise<WeightVerification> {
    const { target, canary, weight, timeoutSeconds } = request;
    const wanted = weightsFor(request, weight);
    return await pollUntil(timeoutSeconds, progress, async () => {
      const [route, endpoints] = await Promise.all([this.readRoute(target), slotEndpoints(this.api, target)]);
      const weights = this.weightsOf(target, route);
      const total = weights.blue + weights.green;
      const effective = total === 0 ? 0 : (100 * weights[canary]) / total;
      const held = SLOTS.every((slot) => weights[slot] === wanted[slot]);
      const refused = parentsRefusing(route);
      const done = held && refused.length === 0 && endpointsServe(wanted, endpoints);
      return {
        done: done ? { weight: effective, endpoints, seconds: 0 } : null,
        beat: { weights, endpoints },
        unmet: [
          `httproute ${route.metadata.name} in namespace ${target.namespace} does not hold ${weight} % for ${canary}`,
          `it weighs ${describeWeights(target, weights)}, with ${endpoints.blue} ready endpoints behind blue and ${endpoints.green} behind green` +
            (refused.length ? `; its gateways report ${refused.join('; ')}` : ''),
        ],
      };
    });
  }

  /** The weight of each slot Service across the rules naming them; rules that disagree are an error (someone else edits them). */
  private weightsOf(target: Target, route: HttpRoute): Record<Slot, number> {
    const rules = this.slotRules(target, route);
    const each = rules.map((rule) => {
      const weights = { blue: 0, green: 0 };
      for (const slot of SLOTS) for (const ref of rule.backendRefs ?? []) if (this.names(target, ref, slot)) weights[slot] += ref.weight ?? 1;
      return weights;
    });
    const first = each[0]!;
    if (each.some((w) => w.blue !== first.blue || w.green !== first.green)) {
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message: `httproute ${route.metadata.name} in namespace ${target.namespace}: its rules naming the slot Services weigh them differently (${each.map((w) => describeWeights(target, w)).join('; ')}); make them agree`,
        nonRetryable: true,
      });
    }
    return first;
  }

  /** Rules with a backendRef to either slot Service; none is an error naming the route and the Services. */
  private slotRules(target: Target, route: HttpRoute): HttpRouteRule[] {
    const rules = (route.spec.rules ?? []).filter((rule) => (rule.backendRefs ?? []).some((ref) => SLOTS.some((slot) => this.names(target, ref, slot))));
    if (rules.length === 0) {
      const services = slotServicesOf(target);
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message: `httproute ${route.metadata.name} in namespace ${target.namespace} has no rule with a backendRef to ${services.blue} or ${services.green}: add one (the router writes only the weights of such rules)`,
        nonRetryable: true,
      });
    }
    return rules;
  }

  /** Whether a backendRef names the slot's Service (core group, kind Service, this namespace). */
  private names(target: Target, ref: BackendRef, slot: Slot): boolean {
    return (ref.group ?? '') === '' && (ref.kind ?? 'Service') === 'Service' && (ref.namespace ?? target.namespace) === target.namespace && ref.name === slotServicesOf(target)[slot];
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

  private async write(request: RouteRequest, weights: Record<Slot, number>): Promise<RouteReport> {
    const { target } = request;
    await requireSlotServices(this.api, target);
    for (let attempt = 1; ; attempt++) {
      const route = await this.readRoute(target);
      const before = this.weightsOf(target, route);
      const previous = `weights ${describeWeights(target, before)}`;
      const previousSlot = SLOTS.find((slot) => before[slot] > 0 && before[otherSlot(slot)] === 0) ?? null;
      if (SLOTS.every((slot) => before[slot] === weights[slot])) return { changed: false, previous, previousSlot };
      const body = { metadata: { resourceVersion: route.metadata.resourceVersion }, spec: { rules: this.reweigh(target, route, weights) } };
      const written = await this.api.call(`patch httproute ${route.metadata.name}`, target, async () => {
        try {
          await this.api.custom.patchNamespacedCustomObject(
            { group: GATEWAY_GROUP, version: GATEWAY_VERSION, namespace: target.namespace, plural: HTTP_ROUTES, name: route.metadata.name, body },
            MERGE,
          );
          return true;
        } catch (error) {
          if (isConflict(error) && attempt < CONFLICT_TRIES) return false;
          throw error;
        }
      });
      if (written) return { changed: true, previous, previousSlot };
    }
  }

  private async readRoute(target: Target): Promise<HttpRoute> {
    const name = target.traffic?.httpRoute ?? target.app;
    try {
      return (await this.api.call(`read httproute ${name}`, target, () =>
        this.api.custom.getNamespacedCustomObject({ group: GATEWAY_GROUP, version: GATEWAY_VERSION, namespace: target.namespace, plural: HTTP_ROUTES, name }),
      )) as HttpRoute;
    } catch (error) {
      // A 404 for the kind itself (no CRD: "404 page not found", or "could not find the requested
      // resource" when other kinds of the group remain) does not name the route; say what to install.
      if (error instanceof ApplicationFailure && error.type === ErrorType.NotFound && !error.message.includes(`"${name}" not found`)) {
        throw ApplicationFailure.create({
          type: ErrorType.NotFound,
          message: `read httproute ${name}: the API server does not serve ${HTTP_ROUTES}.${GATEWAY_GROUP}/${GATEWAY_VERSION}: install the Gateway API CRDs (standard channel), or choose another traffic.router`,
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
      else if (condition.status !== 'True') refusing.push(`${parent.parentRef?.name ?? 'a gateway'}: ${condition.type} ${condition.status} (${condition.reason ?? ''}${condition.message ? `: ${condition.message}` : ''})`);
    }
  }
  return refusing;
}

function describeWeights(target: Target, weights: Record<Slot, number>): string {
  const services = slotServicesOf(target);
  return SLOTS.map((slot) => `${services[slot]} ${weights[slot]}`).join(', ');
}

/** NGINX Ingress's canary annotations (ingress-nginx "Canary" annotations). */
export const NGINX_CANARY = 'nginx.ingress.kubernetes.io/canary';
export const NGINX_CANARY_WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight';

/**
 * `ingress`: the stable Ingress's paths that name a slot Service (and its default backend, if it
 * does) name the live slot's; blue-green switches them. A canary's share goes through a second
 * Ingress over the same hosts and paths naming the canary slot's Service, with NGINX's
 * `canary: "true"` and `canary-weight`; it is made from the stable one when missing, and left at
 * weight 0 after a promotion, ready for the next canary.
 */
export class IngressRouter implements TrafficRouterPort {
  readonly kind = TrafficRouter.Ingress;

  constructor(private readonly api: KubernetesApi) {}

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
    return this.report(before, stable || canary);
  }

  async reset(request: RouteRequest): Promise<RouteReport> {
    // The stable backend first: if a promotion was half done, the canary Ingress still carries the traffic meanwhile.
    const before = await this.read(request.target);
    const stable = await this.pointStable(request.target, request.stable);
    const canary = await this.weighCanary(request.target, null, 0);
    return this.report(before, stable || canary);
  }

  async promote(request: RouteRequest): Promise<RouteReport> {
    // All to the canary through its Ingress, then the stable backend moves under it, then the canary Ingress lets go:
    // no moment sends traffic back to the old slot. Without a canary Ingress (blue-green) it is the backend switch alone.
    const before = await this.read(request.target);
    let changed = false;
    if (before.canary) changed = (await this.weighCanary(request.target, request.canary, 100)) || changed;
    changed = (await this.pointStable(request.target, request.canary)) || changed;
    if (before.canary) changed = (await this.weighCanary(request.target, null, 0)) || changed;
    return this.report(before, changed);
  }

  async verifyWeight(request: RouteRequest & { weight: number; timeoutSeconds: number }, progress: Progress): Promise<WeightVerification> {
    const { target, stable, canary, weight, timeoutSeconds } = request;
    const wanted = weightsFor(request, weight);
    return await pollUntil(timeoutSeconds, progress, async () => {
      const [state, endpoints] = await Promise.all([this.read(target), slotEndpoints(this.api, target)]);
      const split = weight > 0 && weight < 100;
      const stableHeld = state.stableSlot === (weight >= 100 ? canary : stable);
      const canaryHeld = split ? state.canarySlot === canary && state.canaryWeight === weight : state.canaryWeight === 0;
      const effective = state.stableSlot === canary ? 100 : state.canarySlot === canary ? state.canaryWeight : 0;
      const done = stableHeld && canaryHeld && endpointsServe(wanted, endpoints);
      return {
        done: done ? { weight: effective, endpoints, seconds: 0 } : null,
        beat: { routing: state.routing, endpoints },
        unmet: [`${state.routing}, not ${weight} % for ${canary}`, `${endpoints.blue} ready endpoints behind blue and ${endpoints.green} behind green`],
      };
    });
  }

  private report(before: IngressState, changed: boolean): RouteReport {
    return { changed, previous: before.routing, previousSlot: before.canaryWeight > 0 ? null : before.stableSlot };
  }

  /** Both Ingresses as the router sees them: which slot each names, and the canary's weight. */
  private async read(target: Target): Promise<IngressState> {
    const { ingress: stableName, canaryIngress: canaryName } = this.names(target);
    const stable = await this.api.call(`read ingress ${stableName}`, target, () => this.api.networking.readNamespacedIngress({ name: stableName, namespace: target.namespace }));
    const canary = await this.readCanary(target, canaryName);
    const stableSlot = this.slotOf(target, stable, true);
    const canarySlot = canary ? this.slotOf(target, canary, false) : null;
    const annotations = canary?.metadata?.annotations ?? {};
    const canaryWeight = canary && annotations[NGINX_CANARY] === 'true' ? Number(annotations[NGINX_CANARY_WEIGHT] ?? 0) || 0 : 0;
    const routing =
      `ingress ${stableName} in namespace ${target.namespace} sends to ${stableSlot}` + (canary ? `, canary ingress ${canaryName} sends ${canaryWeight} % to ${canarySlot ?? 'neither slot'}` : '');
    return { stable, canary, stableSlot, canarySlot, canaryWeight, routing };
  }

  private async readCanary(target: Target, name: string): Promise<k8s.V1Ingress | null> {
    try {
      return await this.api.call(`read ingress ${name}`, target, () => this.api.networking.readNamespacedIngress({ name, namespace: target.namespace }));
    } catch (error) {
      if (error instanceof ApplicationFailure && error.type === ErrorType.NotFound) return null;
      throw error;
    }
  }

  /** The slot whose Service the Ingress's slot backends name; none, or both, is an error naming the Ingress. */
  private slotOf(target: Target, ingress: k8s.V1Ingress, stable: boolean): Slot {
    const slots = new Set(slotBackends(ingress).map((b) => this.slotNamed(target, b.service?.name)).filter(isSlot));
    const services = slotServicesOf(target);
    if (slots.size !== 1) {
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message:
          `${stable ? '' : 'canary '}ingress ${ingress.metadata?.name} in namespace ${target.namespace} ` +
          (slots.size === 0 ? `has no path whose backend is ${services.blue} or ${services.green}: add one (the router switches only such backends)` : `sends to both ${services.blue} and ${services.green}; one slot at a time`),
        nonRetryable: true,
      });
    }
    return [...slots][0]!;
  }

  private slotNamed(target: Target, service: string | undefined): Slot | null {
    const services = slotServicesOf(target);
    return SLOTS.find((slot) => services[slot] === service) ?? null;
  }

  /** The stable Ingress's slot backends to `slot`'s Service; writes only what differs. */
  private async pointStable(target: Target, slot: Slot): Promise<boolean> {
    await requireSlotServices(this.api, target);
    const { ingress: name } = this.names(target);
    return await this.patchIngress(target, name, (ingress) => {
      if (this.slotOf(target, ingress, true) === slot) return null;
      return { spec: this.retarget(target, ingress, slot) };
    });
  }

  /**
   * The canary Ingress to `weight` percent, over `slot`'s Service (null: wherever it points). Made
   * from the stable Ingress when missing and there is weight to give; only the two canary
   * annotations and the slot backends are written, other annotations stay.
   */
  private async weighCanary(target: Target, slot: Slot | null, weight: number): Promise<boolean> {
    const { ingress: stableName, canaryIngress: name } = this.names(target);
    const existing = await this.readCanary(target, name);
    if (!existing) {
      if (weight === 0 || slot === null) return false;
      await requireSlotServices(this.api, target);
      const stable = await this.api.call(`read ingress ${stableName}`, target, () => this.api.networking.readNamespacedIngress({ name: stableName, namespace: target.namespace }));
      const body: k8s.V1Ingress = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'Ingress',
        metadata: {
          name,
          namespace: target.namespace,
          labels: { 'app.kubernetes.io/managed-by': 'bluegreen', app: target.app },
          annotations: { [NGINX_CANARY]: 'true', [NGINX_CANARY_WEIGHT]: String(weight) },
        },
        spec: { ...(stable.spec?.ingressClassName ? { ingressClassName: stable.spec.ingressClassName } : {}), rules: canaryRules(this, target, stable, slot) },
      };
      await this.api.call(`create ingress ${name}`, target, () => this.api.networking.createNamespacedIngress({ namespace: target.namespace, body }));
      return true;
    }
    return await this.patchIngress(target, name, (ingress) => {
      const annotations = ingress.metadata?.annotations ?? {};
      const weighed = annotations[NGINX_CANARY] === 'true' && annotations[NGINX_CANARY_WEIGHT] === String(weight);
      const pointed = slot === null || this.slotOf(target, ingress, false) === slot;
      if (weighed && pointed) return null;
      return {
        metadata: { annotations: { [NGINX_CANARY]: 'true', [NGINX_CANARY_WEIGHT]: String(weight) } },
        ...(pointed ? {} : { spec: this.retarget(target, ingress, slot!) }),
      };
    });
  }

  /** The Ingress's spec with every slot backend naming `slot`'s Service; everything else as it was. */
  retarget(target: Target, ingress: k8s.V1Ingress, slot: Slot): Pick<k8s.V1IngressSpec, 'rules' | 'defaultBackend'> {
    const service = slotServicesOf(target)[slot];
    const move = (backend: k8s.V1IngressBackend): k8s.V1IngressBackend =>
      this.slotNamed(target, backend.service?.name) === null ? backend : { ...backend, service: { ...backend.service!, name: service } };
    const spec = ingress.spec ?? {};
    return {
      ...(spec.rules ? { rules: spec.rules.map((rule) => (rule.http ? { ...rule, http: { ...rule.http, paths: rule.http.paths.map((p) => ({ ...p, backend: move(p.backend) })) } } : rule)) } : {}),
      ...(spec.defaultBackend ? { defaultBackend: move(spec.defaultBackend) } : {}),
    };
  }

  /** One merge patch computed from a fresh read, carrying its resourceVersion; a 409 is read again. */
  private async patchIngress(target: Target, name: string, change: (ingress: k8s.V1Ingress) => Record<string, unknown> | null): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const ingress = await this.api.call(`read ingress ${name}`, target, () => this.api.networking.readNamespacedIngress({ name, namespace: target.namespace }));
      const patch = change(ingress);
      if (patch === null) return false;
      const metadata = { ...((patch['metadata'] as object | undefined) ?? {}), resourceVersion: ingress.metadata?.resourceVersion };
      const written = await this.api.call(`patch ingress ${name}`, target, async () => {
        try {
          await this.api.networking.patchNamespacedIngress({ name, namespace: target.namespace, body: { ...patch, metadata } }, MERGE);
          return true;
        } catch (error) {
          if (isConflict(error) && attempt < CONFLICT_TRIES) return false;
          throw error;
        }
      });
      if (written) return true;
    }
  }

  private names(target: Target): { ingress: string; canaryIngress: string } {
    const ingress = target.traffic?.ingress ?? `${target.app}-ingress`;
    return { ingress, canaryIngress: target.traffic?.canaryIngress ?? `${ingress}-canary` };
  }
}

interface IngressState {
  stable: k8s.V1Ingress;
  canary: k8s.V1Ingress | null;
  stableSlot: Slot;
  canarySlot: Slot | null;
  canaryWeight: number;
  routing: string;
}

/** Every backend of an Ingress (paths and default) that names a Service. */
function slotBackends(ingress: k8s.V1Ingress): k8s.V1IngressBackend[] {
  const spec = ingress.spec ?? {};
  return [...(spec.defaultBackend ? [spec.defaultBackend] : []), ...(spec.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend))].filter((b) => b.service);
}

/** The canary Ingress's rules: the stable Ingress's hosts and paths that name a slot Service, naming `slot`'s (NGINX pairs them by host and path). */
function canaryRules(router: IngressRouter, target: Target, stable: k8s.V1Ingress, slot: Slot): k8s.V1IngressRule[] {
  const services = new Set(Object.values(slotServicesOf(target)));
  const rules = (router.retarget(target, stable, slot).rules ?? []).map((rule) => ({
    ...rule,
    ...(rule.http ? { http: { paths: rule.http.paths.filter((p) => services.has(p.backend.service?.name ?? '')) } } : {}),
  }));
  return rules.filter((rule) => (rule.http?.paths.length ?? 0) > 0);
}
