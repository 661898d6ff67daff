/**
 * The routers a platform plays, picked by `traffic.router`: one per folder beside this file, each
 * with its behaviour (behaviour.ts) and its Kubernetes and local adapters. The activities get the
 * router from here (src/activities/traffic.ts); a platform builds its registry over its own API.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Routers, Target, TrafficRouterPort } from '../activities/contract.js';
import { ErrorType } from '../shared/errors.js';
import type { Slot } from '../shared/slots.js';
import type { TrafficRouter } from '../shared/traffic.js';
import { GatewayApiRouter } from './gateway-api/behaviour.js';
import type { RouteAccess } from './gateway-api/behaviour.js';
import { KubernetesHttpRoute } from './gateway-api/kubernetes.js';
import { LocalHttpRoute } from './gateway-api/local.js';
import { IngressRouter } from './ingress/behaviour.js';
import type { IngressAccess } from './ingress/behaviour.js';
import { KubernetesIngresses } from './ingress/kubernetes.js';
import { LocalIngresses } from './ingress/local.js';
import type { KubernetesApi } from './kubernetes-api.js';
import type { LocalApi } from './local-api.js';
import { ReplicaRatioRouter } from './replica-ratio/behaviour.js';
import { ServiceSelectorRouter } from './service-selector/behaviour.js';
import type { SelectorAccess } from './service-selector/behaviour.js';
import { KubernetesServiceSelector } from './service-selector/kubernetes.js';
import { LocalServiceSelector } from './service-selector/local.js';

export class RouterRegistry implements Routers {
  private readonly byKind: Map<TrafficRouter, TrafficRouterPort>;

  constructor(
    private readonly platform: string,
    ports: readonly TrafficRouterPort[],
  ) {
    this.byKind = new Map(ports.map((port) => [port.kind, port]));
  }

  get kinds(): TrafficRouter[] {
    return [...this.byKind.keys()];
  }

  routerFor(target: Target, requested?: TrafficRouter): TrafficRouterPort {
    const kind = requested ?? target.traffic?.router ?? 'service-selector';
    const port = this.byKind.get(kind);
    if (!port) {
      throw ApplicationFailure.create({
        type: ErrorType.InvalidInput,
        message:
          `traffic.router: the ${this.platform} platform cannot route by '${kind}' (it can: ` +
          `${this.kinds.join(', ')})`,
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
        message:
          `${live.routing}: no slot takes all the traffic, so neither can be called live (set the router to one ` +
          `slot, or finish the canary in progress)`,
        nonRetryable: true,
      });
    }
    return { slot: live.slot, routing: live.routing };
  }
}

/** The four routers over one platform's objects: the Service's selector, the route, the Ingresses. */
function routersOver(
  platform: string,
  service: SelectorAccess,
  route: RouteAccess,
  ingresses: IngressAccess,
): RouterRegistry {
  return new RouterRegistry(platform, [
    new ServiceSelectorRouter(service),
    new ReplicaRatioRouter(service),
    new GatewayApiRouter(route),
    new IngressRouter(ingresses),
  ]);
}

/** The four routers on Kubernetes: the Service's selector, an HTTPRoute, the Ingresses. */
export function kubernetesRouters(api: KubernetesApi): RouterRegistry {
  return routersOver(
    'kubernetes',
    new KubernetesServiceSelector(api),
    new KubernetesHttpRoute(api),
    new KubernetesIngresses(api),
  );
}

/** The four routers on the local platform, over its control API. */
export function localRouters(api: LocalApi): RouterRegistry {
  return routersOver('local', new LocalServiceSelector(api), new LocalHttpRoute(api), new LocalIngresses(api));
}
