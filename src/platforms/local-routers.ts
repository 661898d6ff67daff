/**
 * The local adapter's traffic routers over the local platform's control API, with the behaviour
 * of routers.ts, as on Kubernetes: the Service's selector (service-selector, replica-ratio), a
 * local HTTPRoute's backendRefs weights (gateway-api), a local Ingress's backend and a canary
 * Ingress with NGINX's annotations (ingress). The local platform serves each through a listener of
 * its own and counts what each backend served.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { z } from 'zod';
import type { Target } from '../activities/contract.js';
import { ErrorType } from '../shared/errors.js';
import { isSlot, SLOTS } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import { NGINX_CANARY, NGINX_CANARY_WEIGHT } from '../shared/traffic.js';
import type { TrafficRouter } from '../shared/traffic.js';
import {
  canaryWeightOf,
  ingressNamesOf,
  IngressRouterBase,
  ingressView,
  SelectorRouterBase,
  slotServicesOf,
  unlessNotFound,
  WeightedRouteRouter,
} from './routers.js';
import type { IngressView, RouteWeights, SelectorView } from './routers.js';

/** What the routers need of the adapter: one control API call, its errors mapped as the adapter maps them. */
export interface LocalApi {
  request(method: 'get' | 'patch' | 'post', path: string, body?: unknown): Promise<unknown>;
}

/** A local Service as the control API answers it: its selector and its ready endpoints' labels. */
export const LocalServiceSchema = z.object({
  name: z.string(),
  listen: z.string(),
  selector: z.record(z.string()),
  endpoints: z.array(z.object({ pod: z.string(), deployment: z.string(), labels: z.record(z.string()) })),
});
const RouteSchema = z.object({
  name: z.string(),
  backendRefs: z.array(z.object({ name: z.string(), weight: z.number() })),
});
const IngressSchema = z.object({
  name: z.string(),
  host: z.string(),
  backend: z.string(),
  annotations: z.record(z.string()),
});
type LocalServiceState = z.output<typeof LocalServiceSchema>;
type LocalIngressState = z.output<typeof IngressSchema>;

async function readLocalService(api: LocalApi, target: Target, name: string): Promise<LocalServiceState> {
  return LocalServiceSchema.parse(await api.request('get', `/api/v1/namespaces/${target.namespace}/services/${name}`));
}

/** Ready endpoints behind each slot Service; a missing one is NotFound, named, before anything moves. */
async function slotEndpoints(api: LocalApi, target: Target): Promise<Record<Slot, number>> {
  const services = slotServicesOf(target);
  const [blue, green] = await Promise.all(SLOTS.map((slot) => readLocalService(api, target, services[slot])));
  return { blue: blue!.endpoints.length, green: green!.endpoints.length };
}

/** service-selector and replica-ratio on the local Service's selector; a selector key patched to null is removed. */
export class LocalSelectorRouter extends SelectorRouterBase {
  constructor(
    kind: typeof TrafficRouter.ServiceSelector | typeof TrafficRouter.ReplicaRatio,
    private readonly api: LocalApi,
  ) {
    super(kind);
  }

  protected async readSelected(target: Target): Promise<string | undefined> {
    return (await readLocalService(this.api, target, target.service)).selector[target.slotLabelKey];
  }

  protected async writeSelected(target: Target, slot: Slot | null): Promise<void> {
    await this.api.request('patch', `/api/v1/namespaces/${target.namespace}/services/${target.service}`, {
      selector: { [target.slotLabelKey]: slot },
    });
  }

  protected async readView(target: Target, stable: Slot, canary: Slot): Promise<SelectorView> {
    const service = await readLocalService(this.api, target, target.service);
    const count = (slot: Slot) => service.endpoints.filter((e) => e.labels[target.slotLabelKey] === slot).length;
    const endpoints = { [stable]: count(stable), [canary]: count(canary) } as Record<Slot, number>;
    const selected = service.selector[target.slotLabelKey];
    return {
      selected: isSlot(selected) ? selected : null,
      endpoints,
      strays: service.endpoints.length - endpoints[stable] - endpoints[canary],
    };
  }
}

/** gateway-api on a local HTTPRoute: the weights of its backendRefs to the slot Services; other refs stay. */
export class LocalGatewayApiRouter extends WeightedRouteRouter {
  constructor(private readonly api: LocalApi) {
    super();
  }

  protected async slotEndpoints(target: Target): Promise<Record<Slot, number>> {
    return await slotEndpoints(this.api, target);
  }

  protected async readWeights(target: Target): Promise<RouteWeights> {
    const route = await this.read(target);
    return { name: route.name, weights: this.weightsOf(target, route), refusals: [] };
  }

  protected async writeWeights(target: Target, weights: Record<Slot, number>): Promise<void> {
    const services = slotServicesOf(target);
    const refs = (await this.read(target)).backendRefs.map((ref) => {
      const slot = SLOTS.find((s) => services[s] === ref.name);
      return slot === undefined ? ref : { ...ref, weight: weights[slot] };
    });
    for (const slot of SLOTS)
      if (!refs.some((ref) => ref.name === services[slot])) refs.push({ name: services[slot], weight: weights[slot] });
    await this.api.request('patch', this.path(target), { backendRefs: refs });
  }

  private weightsOf(target: Target, route: z.output<typeof RouteSchema>): Record<Slot, number> {
    const services = slotServicesOf(target);
    if (!route.backendRefs.some((ref) => SLOTS.some((slot) => services[slot] === ref.name))) {
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message: `httproute ${route.name} in namespace ${target.namespace} has no backendRef to ${services.blue} or ${services.green}: add one (the router writes only the weights of such refs)`,
        nonRetryable: true,
      });
    }
    const weight = (slot: Slot) =>
      route.backendRefs.filter((ref) => ref.name === services[slot]).reduce((sum, ref) => sum + ref.weight, 0);
    return { blue: weight('blue'), green: weight('green') };
  }

  private path(target: Target): string {
    return `/apis/gateway.networking.k8s.io/v1/namespaces/${target.namespace}/httproutes/${target.traffic?.httpRoute ?? target.app}`;
  }

  private async read(target: Target): Promise<z.output<typeof RouteSchema>> {
    return RouteSchema.parse(await this.api.request('get', this.path(target)));
  }
}

/** ingress on local Ingresses: the entry Ingress's backend, and a canary Ingress for its host. */
export class LocalIngressRouter extends IngressRouterBase {
  constructor(private readonly api: LocalApi) {
    super();
  }

  protected async slotEndpoints(target: Target): Promise<Record<Slot, number>> {
    return await slotEndpoints(this.api, target);
  }

  protected async read(target: Target): Promise<IngressView> {
    const names = ingressNamesOf(target);
    const stable = await this.readIngress(target, names.ingress);
    const canary = await unlessNotFound(this.readIngress(target, names.canaryIngress));
    return ingressView(
      target,
      this.slotOf(target, stable),
      canary ? { slot: this.slotOf(target, canary), weight: canaryWeightOf(canary.annotations) } : null,
    );
  }

  protected async pointStable(target: Target, slot: Slot): Promise<boolean> {
    await slotEndpoints(this.api, target);
    const { ingress: name } = ingressNamesOf(target);
    if (this.slotOf(target, await this.readIngress(target, name)) === slot) return false;
    await this.api.request('patch', this.path(target, name), { backend: slotServicesOf(target)[slot] });
    return true;
  }

  protected async weighCanary(target: Target, slot: Slot | null, weight: number): Promise<boolean> {
    const { ingress: stableName, canaryIngress: name } = ingressNamesOf(target);
    const annotations = { [NGINX_CANARY]: 'true', [NGINX_CANARY_WEIGHT]: String(weight) };
    const existing = await unlessNotFound(this.readIngress(target, name));
    if (!existing) {
      if (weight === 0 || slot === null) return false;
      const stable = await this.readIngress(target, stableName);
      await this.api.request('post', this.path(target), {
        name,
        host: stable.host,
        backend: slotServicesOf(target)[slot],
        annotations,
      });
      return true;
    }
    const weighed = existing.annotations[NGINX_CANARY] === 'true' && canaryWeightOf(existing.annotations) === weight;
    const pointed = slot === null || this.slotOf(target, existing) === slot;
    if (weighed && pointed) return false;
    await this.api.request('patch', this.path(target, name), {
      annotations,
      ...(pointed ? {} : { backend: slotServicesOf(target)[slot!] }),
    });
    return true;
  }

  private path(target: Target, name?: string): string {
    return `/apis/networking.k8s.io/v1/namespaces/${target.namespace}/ingresses${name ? `/${name}` : ''}`;
  }

  private async readIngress(target: Target, name: string): Promise<LocalIngressState> {
    return IngressSchema.parse(await this.api.request('get', this.path(target, name)));
  }

  private slotOf(target: Target, ingress: LocalIngressState): Slot {
    const services = slotServicesOf(target);
    const slot = SLOTS.find((s) => services[s] === ingress.backend);
    if (!slot) {
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message: `ingress ${ingress.name} in namespace ${target.namespace} has no path whose backend is ${services.blue} or ${services.green} (its backend is ${ingress.backend})`,
        nonRetryable: true,
      });
    }
    return slot;
  }
}
