/**
 * Traffic routers and what each can express: the arithmetic behind a canary's weights, shared by
 * the spec's validation and the workflow. Pure module: safe to import from workflow code.
 */

/** How traffic moves between the two slots. */
export const TrafficRouter = {
  /** The Service's selector names one slot: all traffic moves at once (blue-green only). */
  ServiceSelector: 'service-selector',
  /**
   * One Service selects both slots; the canary's share is its part of the ready replicas. No mesh
   * is needed. The stable slot stays fully scaled, so the share is c / (N + c).
   */
  ReplicaRatio: 'replica-ratio',
  /**
   * Weighted backendRefs between the two slot Services, in the rules of a Gateway API HTTPRoute
   * that name them. Blue-green through it is a 0/100 switch.
   */
  GatewayApi: 'gateway-api',
  /**
   * An Ingress (PROCEDURE §6): blue-green switches the backend Service of its paths that name a
   * slot Service; a canary gets NGINX Ingress's canary annotations on a second Ingress whose paths
   * name the canary slot's Service.
   */
  Ingress: 'ingress',
} as const;
export type TrafficRouter = (typeof TrafficRouter)[keyof typeof TrafficRouter];

export const TRAFFIC_ROUTERS: readonly TrafficRouter[] = Object.values(TrafficRouter);

/** The routers that switch all traffic at once: what blue-green may use. */
export const SWITCHING_ROUTERS: readonly TrafficRouter[] = [
  TrafficRouter.ServiceSelector,
  TrafficRouter.GatewayApi,
  TrafficRouter.Ingress,
];
/** The routers that split traffic by weight: what a canary may use. */
export const SPLITTING_ROUTERS: readonly TrafficRouter[] = [
  TrafficRouter.ReplicaRatio,
  TrafficRouter.GatewayApi,
  TrafficRouter.Ingress,
];

/**
 * The smallest share, in percent, a router can give the canary beside `replicas` stable replicas:
 * 100 for the selector (all or nothing), one canary replica among N + 1 for replica-ratio, and 1
 * for the weighted routers (the spec's weights are whole percents; HTTPRoute weights and NGINX's
 * `canary-weight` are whole numbers over a total of 100).
 */
export function smallestStep(router: TrafficRouter, replicas: number): number {
  if (router === TrafficRouter.ServiceSelector) return 100;
  if (router === TrafficRouter.ReplicaRatio) return replicaRatioShare(replicas, 1);
  return 1;
}

/**
 * NGINX Ingress's canary annotations (ingress-nginx "Canary"): what the ingress router writes on
 * the canary Ingress.
 */
export const NGINX_CANARY = 'nginx.ingress.kubernetes.io/canary';
export const NGINX_CANARY_WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight';

/** How far (in percentage points) a replica ratio may sit from the weight a step asks for. */
export const REPLICA_RATIO_TOLERANCE_POINTS = 1;

/** The canary's share, in percent, with `canary` replicas beside a fully scaled stable of `stable`. */
export function replicaRatioShare(stable: number, canary: number): number {
  return canary === 0 ? 0 : (100 * canary) / (stable + canary);
}

/**
 * The canary replicas that give `weight` percent beside a fully scaled stable slot of `replicas`,
 * within the tolerance; null when no count does. 100 is the promotion: the Service selects only
 * the canary, which then runs the full count.
 */
export function replicaRatioReplicas(replicas: number, weight: number): number | null {
  if (weight >= 100) return replicas;
  let best: { canary: number; distance: number } | null = null;
  for (let canary = 1; canary <= replicas; canary++) {
    const distance = Math.abs(replicaRatioShare(replicas, canary) - weight);
    if (distance <= REPLICA_RATIO_TOLERANCE_POINTS && (best === null || distance < best.distance))
      best = { canary, distance };
  }
  return best?.canary ?? null;
}

/** The shares (whole percent) replica-ratio can set beside `replicas` stable replicas, for messages. */
export function replicaRatioShares(replicas: number, limit = 8): string {
  const shares = [];
  for (let canary = 1; canary <= replicas && shares.length < limit; canary++)
    shares.push(formatShare(replicaRatioShare(replicas, canary)));
  return `${shares.join(', ')}${replicas > limit ? ', ...' : ''} and 100`;
}

/** The fewest stable replicas with which replica-ratio expresses `weight` (a hint for messages). */
export function replicasNeededFor(weight: number): number {
  for (let replicas = 1; replicas <= 1000; replicas++)
    if (replicaRatioReplicas(replicas, weight) !== null) return replicas;
  return 1000;
}

/**
 * The canary's replicas at a step: capacity comes before weight. With replica-ratio they are the
 * weight; with weighted routing the canary needs enough Ready replicas for its share of the
 * traffic the full slot serves (at least one).
 */
export function canaryReplicasFor(router: TrafficRouter, replicas: number, weight: number): number {
  if (weight >= 100) return replicas;
  if (router === TrafficRouter.ReplicaRatio) return replicaRatioReplicas(replicas, weight) ?? replicas;
  return Math.min(replicas, Math.max(1, Math.ceil((replicas * weight) / 100)));
}

/** A share in percent for people: at most one decimal. */
export function formatShare(percent: number): string {
  return String(Math.round(percent * 10) / 10);
}
