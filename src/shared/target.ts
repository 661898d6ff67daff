/**
 * The objects a deployment spec names: its Service, and its slot Deployments rendered from the
 * spec's pattern. Pure module: safe to import from workflow code.
 */
import { SLOTS } from './slots.js';
import type { Slot } from './slots.js';
import { renderTemplate } from './template.js';
import { TrafficRouter } from './traffic.js';

/** The objects one deployment acts on: a Service that selects a slot, and a Deployment per slot. */
export interface Target {
  app: string;
  namespace: string;
  service: string;
  slotLabelKey: string;
  container: string;
  deployments: Record<Slot, string>;
  /**
   * The router and the objects it writes. Absent in histories recorded before it existed, which
   * route by the Service's selector (service-selector or replica-ratio).
   */
  traffic?: TargetTraffic;
}

/** What a router acts on: per-slot Services, and the HTTPRoute or the Ingresses that name them. */
export interface TargetTraffic {
  router: TrafficRouter;
  slotServices: Record<Slot, string>;
  httpRoute?: string;
  ingress?: string;
  canaryIngress?: string;
  /** Where a full route is verified by traffic too (activities/traffic-probe.ts); absent: by its object only. */
  probe?: TargetProbe;
}

/** Verification by traffic: requests to `url` (with `host`) answered by the slot's pods `inARow` times. */
export interface TargetProbe {
  url: string;
  host?: string;
  /** The answer's header naming the pod that answered. */
  servedByHeader: string;
  inARow: number;
}

/** The router a target uses: its own, or the selector's for targets recorded before it had one. */
export function routerOf(target: Target): TrafficRouter {
  return target.traffic?.router ?? TrafficRouter.ServiceSelector;
}

/**
 * What a target is made from: the fields of a deployment spec (deployment-spec/, which depends on
 * this module, not the other way round) that name its objects.
 */
export interface TargetSpec {
  app: string;
  namespace: string;
  service: string;
  slotLabelKey: string;
  container: string;
  deploymentNamePattern: string;
  /** Absent in specs recorded before the traffic section had its defaults. */
  traffic?: {
    router: TrafficRouter;
    slotServicePattern?: string;
    httpRoute?: string;
    ingress?: string;
    canaryIngress?: string;
    probe?: TargetProbe;
  };
}

export function targetOf(spec: TargetSpec): Target {
  const deployment = (slot: Slot) =>
    renderTemplate(spec.deploymentNamePattern, { app: spec.app, namespace: spec.namespace, slot });
  const [blue, green] = SLOTS.map(deployment) as [string, string];
  // Specs recorded before the traffic section had its defaults route by the selector.
  const traffic = spec.traffic ?? { router: TrafficRouter.ServiceSelector };
  const slotService = (slot: Slot) =>
    renderTemplate(traffic.slotServicePattern ?? '{{app}}-{{slot}}', {
      app: spec.app,
      namespace: spec.namespace,
      slot,
    });
  return {
    app: spec.app,
    namespace: spec.namespace,
    service: spec.service,
    slotLabelKey: spec.slotLabelKey,
    container: spec.container,
    deployments: { blue, green },
    traffic: {
      router: traffic.router,
      slotServices: { blue: slotService('blue'), green: slotService('green') },
      ...(traffic.httpRoute ? { httpRoute: traffic.httpRoute } : {}),
      ...(traffic.ingress ? { ingress: traffic.ingress } : {}),
      ...(traffic.canaryIngress ? { canaryIngress: traffic.canaryIngress } : {}),
      ...(traffic.probe
        ? {
            probe: {
              ...traffic.probe,
              url: renderTemplate(traffic.probe.url, {
                app: spec.app,
                namespace: spec.namespace,
                service: spec.service,
              }),
            },
          }
        : {}),
    },
  };
}

/** What carries the traffic, for messages: the Service, or the HTTPRoute or Ingress the router writes. */
export function routeName(target: Target): string {
  const traffic = target.traffic;
  if (traffic?.router === TrafficRouter.GatewayApi) return `httproute ${traffic.httpRoute ?? target.app}`;
  if (traffic?.router === TrafficRouter.Ingress) return `ingress ${traffic.ingress ?? `${target.app}-ingress`}`;
  return target.service;
}
