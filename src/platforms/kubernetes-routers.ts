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
import type { Target } from '../activities/contract.js';
import { ErrorType } from '../shared/errors.js';
import { isSlot, otherSlot, SLOTS } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import { NGINX_CANARY, NGINX_CANARY_WEIGHT } from '../shared/traffic.js';
import type { TrafficRouter } from '../shared/traffic.js';
import {
  canaryWeightOf,
  describeWeights,
  ingressNamesOf,
  IngressRouterBase,
  ingressView,
  SelectorRouterBase,
  slotServicesOf,
  unlessNotFound,
  WeightedRouteRouter,
} from './routers.js';
import type { IngressView, RouteWeights, SelectorView } from './routers.js';

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
/** Tries of a route or Ingress write that keeps meeting someone else's newer version (409). */
const CONFLICT_TRIES = 5;

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
    api.discovery.listNamespacedEndpointSlice({
      namespace: target.namespace,
      labelSelector: `kubernetes.io/service-name=${service}`,
    }),
  );
  return slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready !== false);
}

/** Reads both slot Services, so a missing backend is named before any traffic moves. */
async function requireSlotServices(api: KubernetesApi, target: Target): Promise<void> {
  const services = slotServicesOf(target);
  await Promise.all(
    SLOTS.map((slot) =>
      api.call(`read service ${services[slot]} (slot ${slot}'s backend)`, target, () =>
        api.core.readNamespacedService({ name: services[slot], namespace: target.namespace }),
      ),
    ),
  );
}

/** Ready endpoints behind each slot Service. */
async function slotEndpoints(api: KubernetesApi, target: Target): Promise<Record<Slot, number>> {
  const services = slotServicesOf(target);
  const [blue, green] = await Promise.all(SLOTS.map((slot) => readyEndpoints(api, target, services[slot])));
  return { blue: blue!.length, green: green!.length };
}

/**
 * service-selector and replica-ratio on the Service's selector (a JSON merge patch with null
 * removes the slot label).
 */
export class SelectorRouter extends SelectorRouterBase {
  constructor(
    kind: typeof TrafficRouter.ServiceSelector | typeof TrafficRouter.ReplicaRatio,
    private readonly api: KubernetesApi,
  ) {
    super(kind);
  }

  protected async readSelected(target: Target): Promise<string | undefined> {
    return (await this.readService(target)).spec?.selector?.[target.slotLabelKey];
  }

  protected async writeSelected(target: Target, slot: Slot | null): Promise<void> {
    await this.api.call(`patch service ${target.service}`, target, () =>
      this.api.core.patchNamespacedService(
        {
          name: target.service,
          namespace: target.namespace,
          body: { spec: { selector: { [target.slotLabelKey]: slot } } },
        },
        MERGE,
      ),
    );
  }

  /** The slots' pods are their Deployments' (other apps in the namespace have slots too). */
  protected async readView(target: Target, stable: Slot, canary: Slot): Promise<SelectorView> {
    const [stableSelector, canarySelector] = await Promise.all([
      this.readDeployment(target, stable),
      this.readDeployment(target, canary),
    ]).then((ds) => ds.map(selectorOf));
    const [service, ready, stablePods, canaryPods] = await Promise.all([
      this.readService(target),
      readyEndpoints(this.api, target, target.service),
      this.api.call(`list pods of slot ${stable}`, target, () =>
        this.api.core.listNamespacedPod({ namespace: target.namespace, labelSelector: stableSelector }),
      ),
      this.api.call(`list pods of slot ${canary}`, target, () =>
        this.api.core.listNamespacedPod({ namespace: target.namespace, labelSelector: canarySelector }),
      ),
    ]);
    const names = (pods: k8s.V1PodList) => new Set(pods.items.map((p) => p.metadata?.name));
    const [inStable, inCanary] = [names(stablePods), names(canaryPods)];
    const endpoints = {
      [stable]: ready.filter((e) => inStable.has(e.targetRef?.name)).length,
      [canary]: ready.filter((e) => inCanary.has(e.targetRef?.name)).length,
    } as Record<Slot, number>;
    const selected = service.spec?.selector?.[target.slotLabelKey];
    return {
      selected: isSlot(selected) ? selected : null,
      endpoints,
      strays: ready.length - endpoints[stable] - endpoints[canary],
    };
  }

  private async readService(target: Target): Promise<k8s.V1Service> {
    return await this.api.call(`read service ${target.service}`, target, () =>
      this.api.core.readNamespacedService({ name: target.service, namespace: target.namespace }),
    );
  }

  private async readDeployment(target: Target, slot: Slot): Promise<k8s.V1Deployment> {
    const name = target.deployments[slot];
    return await this.api.call(`read deployment ${name}`, target, () =>
      this.api.apps.readNamespacedDeployment({ name, namespace: target.namespace }),
    );
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

/** The Gateway API's group: HTTPRoutes of gateway.networking.k8s.io/v1. */
export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
const GATEWAY_VERSION = 'v1';
const HTTP_ROUTES = 'httproutes';

/**
 * gateway-api on an HTTPRoute: weights on the backendRefs naming the slot Services, in every rule
 * that names one (a rule naming only one slot gets the other beside it, with the same port and
 * filters). Other rules and refs are copied as read. The gateways' status, when they report one,
 * must accept this generation.
 */
export class GatewayApiRouter extends WeightedRouteRouter {
  constructor(private readonly api: KubernetesApi) {
    super();
  }

  protected async slotEndpoints(target: Target): Promise<Record<Slot, number>> {
    await requireSlotServices(this.api, target);
    return await slotEndpoints(this.api, target);
  }

  protected async readWeights(target: Target): Promise<RouteWeights> {
    const route = await this.readRoute(target);
    return { name: route.metadata.name, weights: this.weightsOf(target, route), refusals: parentsRefusing(route) };
  }

  /**
   * Read, reweigh, patch with the read's resourceVersion; a 409 (someone wrote in between) starts
   * again from a fresh read.
   */
  protected async writeWeights(target: Target, weights: Record<Slot, number>): Promise<void> {
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
        message: `httproute ${route.metadata.name} in namespace ${target.namespace}: its rules naming the slot Services weigh them differently (${each.map((w) => describeWeights(target, w)).join('; ')}); make them agree`,
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
        message: `httproute ${route.metadata.name} in namespace ${target.namespace} has no rule with a backendRef to ${services.blue} or ${services.green}: add one (the router writes only the weights of such rules)`,
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
      else if (condition.status !== 'True')
        refusing.push(
          `${parent.parentRef?.name ?? 'a gateway'}: ${condition.type} ${condition.status} (${condition.reason ?? ''}${condition.message ? `: ${condition.message}` : ''})`,
        );
    }
  }
  return refusing;
}

/**
 * ingress on Ingresses: the stable one's paths that name a slot Service (and its default backend,
 * if it does) name the live slot's; the canary one (made from the stable one when missing: same
 * class, hosts and slot paths, over the canary slot) carries NGINX's canary annotations. Only the
 * slot backends and the two canary annotations are ever written; other annotations stay.
 */
export class IngressRouter extends IngressRouterBase {
  constructor(private readonly api: KubernetesApi) {
    super();
  }

  protected async slotEndpoints(target: Target): Promise<Record<Slot, number>> {
    return await slotEndpoints(this.api, target);
  }

  protected async read(target: Target): Promise<IngressView> {
    const { ingress: stableName, canaryIngress: canaryName } = ingressNamesOf(target);
    const stable = await this.readIngress(target, stableName);
    const canary = await this.readCanary(target, canaryName);
    return ingressView(
      target,
      this.slotOf(target, stable, true),
      canary
        ? { slot: this.slotOf(target, canary, false), weight: canaryWeightOf(canary.metadata?.annotations) }
        : null,
    );
  }

  protected async pointStable(target: Target, slot: Slot): Promise<boolean> {
    await requireSlotServices(this.api, target);
    return await this.patchIngress(target, ingressNamesOf(target).ingress, (ingress) =>
      this.slotOf(target, ingress, true) === slot ? null : { spec: retarget(target, ingress, slot) },
    );
  }

  protected async weighCanary(target: Target, slot: Slot | null, weight: number): Promise<boolean> {
    const { ingress: stableName, canaryIngress: name } = ingressNamesOf(target);
    const annotations = { [NGINX_CANARY]: 'true', [NGINX_CANARY_WEIGHT]: String(weight) };
    if (!(await this.readCanary(target, name))) {
      if (weight === 0 || slot === null) return false;
      await requireSlotServices(this.api, target);
      const stable = await this.readIngress(target, stableName);
      const body: k8s.V1Ingress = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'Ingress',
        metadata: {
          name,
          namespace: target.namespace,
          labels: { 'app.kubernetes.io/managed-by': 'bluegreen', app: target.app },
          annotations,
        },
        spec: {
          ...(stable.spec?.ingressClassName ? { ingressClassName: stable.spec.ingressClassName } : {}),
          rules: canaryRules(target, stable, slot),
        },
      };
      await this.api.call(`create ingress ${name}`, target, () =>
        this.api.networking.createNamespacedIngress({ namespace: target.namespace, body }),
      );
      return true;
    }
    return await this.patchIngress(target, name, (ingress) => {
      const weighed =
        canaryWeightOf(ingress.metadata?.annotations) === weight &&
        ingress.metadata?.annotations?.[NGINX_CANARY] === 'true';
      const pointed = slot === null || this.slotOf(target, ingress, false) === slot;
      if (weighed && pointed) return null;
      return { metadata: { annotations }, ...(pointed ? {} : { spec: retarget(target, ingress, slot!) }) };
    });
  }

  private async readIngress(target: Target, name: string): Promise<k8s.V1Ingress> {
    return await this.api.call(`read ingress ${name}`, target, () =>
      this.api.networking.readNamespacedIngress({ name, namespace: target.namespace }),
    );
  }

  private async readCanary(target: Target, name: string): Promise<k8s.V1Ingress | null> {
    return await unlessNotFound(this.readIngress(target, name));
  }

  /** The slot whose Service the Ingress's slot backends name; none, or both, is an error naming the Ingress. */
  private slotOf(target: Target, ingress: k8s.V1Ingress, stable: boolean): Slot {
    const services = slotServicesOf(target);
    const slots = new Set(
      slotBackends(ingress)
        .map((b) => slotNamed(target, b.service?.name))
        .filter(isSlot),
    );
    if (slots.size !== 1) {
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message:
          `${stable ? '' : 'canary '}ingress ${ingress.metadata?.name} in namespace ${target.namespace} ` +
          (slots.size === 0
            ? `has no path whose backend is ${services.blue} or ${services.green}: add one (the router switches only such backends)`
            : `sends to both ${services.blue} and ${services.green}; one slot at a time`),
        nonRetryable: true,
      });
    }
    return [...slots][0]!;
  }

  /** One merge patch computed from a fresh read, carrying its resourceVersion; a 409 is read again. */
  private async patchIngress(
    target: Target,
    name: string,
    change: (ingress: k8s.V1Ingress) => Record<string, unknown> | null,
  ): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const ingress = await this.readIngress(target, name);
      const patch = change(ingress);
      if (patch === null) return false;
      const metadata = {
        ...((patch['metadata'] as object | undefined) ?? {}),
        resourceVersion: ingress.metadata?.resourceVersion,
      };
      const written = await this.api.call(`patch ingress ${name}`, target, async () => {
        try {
          await this.api.networking.patchNamespacedIngress(
            { name, namespace: target.namespace, body: { ...patch, metadata } },
            MERGE,
          );
          return true;
        } catch (error) {
          if (isConflict(error) && attempt < CONFLICT_TRIES) return false;
          throw error;
        }
      });
      if (written) return true;
    }
  }
}

function slotNamed(target: Target, service: string | undefined): Slot | null {
  const services = slotServicesOf(target);
  return SLOTS.find((slot) => services[slot] === service) ?? null;
}

/** The Ingress's spec with every slot backend naming `slot`'s Service; everything else as it was. */
function retarget(
  target: Target,
  ingress: k8s.V1Ingress,
  slot: Slot,
): Pick<k8s.V1IngressSpec, 'rules' | 'defaultBackend'> {
  const service = slotServicesOf(target)[slot];
  const move = (backend: k8s.V1IngressBackend): k8s.V1IngressBackend =>
    slotNamed(target, backend.service?.name) === null
      ? backend
      : { ...backend, service: { ...backend.service!, name: service } };
  const spec = ingress.spec ?? {};
  return {
    ...(spec.rules
      ? {
          rules: spec.rules.map((rule) =>
            rule.http
              ? {
                  ...rule,
                  http: { ...rule.http, paths: rule.http.paths.map((p) => ({ ...p, backend: move(p.backend) })) },
                }
              : rule,
          ),
        }
      : {}),
    ...(spec.defaultBackend ? { defaultBackend: move(spec.defaultBackend) } : {}),
  };
}

/** Every backend of an Ingress (paths and default) that names a Service. */
function slotBackends(ingress: k8s.V1Ingress): k8s.V1IngressBackend[] {
  const spec = ingress.spec ?? {};
  return [
    ...(spec.defaultBackend ? [spec.defaultBackend] : []),
    ...(spec.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend)),
  ].filter((b) => b.service);
}

/**
 * The canary Ingress's rules: the stable Ingress's hosts and paths that name a slot Service, naming
 * `slot`'s (NGINX pairs them by host and path).
 */
function canaryRules(target: Target, stable: k8s.V1Ingress, slot: Slot): k8s.V1IngressRule[] {
  const services = new Set(Object.values(slotServicesOf(target)));
  const rules = (retarget(target, stable, slot).rules ?? []).map((rule) => ({
    ...rule,
    ...(rule.http
      ? { http: { paths: rule.http.paths.filter((p) => services.has(p.backend.service?.name ?? '')) } }
      : {}),
  }));
  return rules.filter((rule) => (rule.http?.paths.length ?? 0) > 0);
}
