/**
 * What a plan checks of a Kubernetes namespace: the verbs a deployment uses (as deploy/worker and
 * deploy/routers grant them), and the room its ResourceQuotas leave for a slot's pods.
 */
import type * as k8s from '@kubernetes/client-node';
import { TrafficRouter } from '../shared/traffic.js';

export interface AccessRule {
  group: string;
  /** `resource` or `resource/subresource`. */
  resource: string;
  verb: string;
  /** The step that needs it. */
  why: string;
}

/**
 * The verbs of a deployment through `router`: deploy/worker/role.yaml, and deploy/routers/ for a
 * route or an Ingress.
 */
export function accessNeeded(router: TrafficRouter): AccessRule[] {
  const rules: AccessRule[] = [
    { group: 'apps', resource: 'deployments', verb: 'get', why: 'reading the slots' },
    { group: 'apps', resource: 'deployments', verb: 'patch', why: 'deploying the idle slot and scaling the old one' },
    { group: 'apps', resource: 'replicasets', verb: 'list', why: 'waiting for the rollout' },
    { group: '', resource: 'pods', verb: 'list', why: 'readiness and restarts' },
    { group: 'discovery.k8s.io', resource: 'endpointslices', verb: 'list', why: 'verifying the traffic' },
    { group: '', resource: 'pods/log', verb: 'get', why: "a rollback's evidence" },
    { group: '', resource: 'events', verb: 'list', why: "a rollback's evidence" },
  ];
  switch (router) {
    case TrafficRouter.ServiceSelector:
    case TrafficRouter.ReplicaRatio:
      return [
        ...rules,
        { group: '', resource: 'services', verb: 'get', why: 'reading the live slot' },
        { group: '', resource: 'services', verb: 'patch', why: 'moving the traffic' },
      ];
    case TrafficRouter.GatewayApi:
      return [
        ...rules,
        { group: 'gateway.networking.k8s.io', resource: 'httproutes', verb: 'get', why: 'reading the live slot' },
        { group: 'gateway.networking.k8s.io', resource: 'httproutes', verb: 'patch', why: 'moving the traffic' },
      ];
    case TrafficRouter.Ingress:
      return [
        ...rules,
        { group: 'networking.k8s.io', resource: 'ingresses', verb: 'get', why: 'reading the live slot' },
        { group: 'networking.k8s.io', resource: 'ingresses', verb: 'patch', why: 'moving the traffic' },
        { group: 'networking.k8s.io', resource: 'ingresses', verb: 'create', why: "a canary's Ingress" },
      ];
  }
}

const SUFFIXES: Record<string, number> = {
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A Kubernetes quantity ("500m", "2", "512Mi", "1G") as a number. */
export function quantity(text: string): number {
  const match = /^([0-9.]+)([a-zA-Z]*)$/.exec(text.trim());
  if (!match) return NaN;
  return Number(match[1]) * (match[2] ? (SUFFIXES[match[2]] ?? NaN) : 1);
}

export function formatQuantity(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(3).replace(/0+$/, '');
}

/**
 * What one pod of the template counts against a quota: `requests.cpu`, `limits.memory` and so on
 * (a bare `cpu` or `memory` is the request), each container's own or the LimitRange's default.
 */
export function podRequests(containers: k8s.V1Container[], ranges: k8s.V1LimitRange[]): Record<string, number> {
  const defaults = ranges.flatMap((r) => r.spec?.limits ?? []).filter((limit) => limit.type === 'Container');
  const totals: Record<string, number> = {};
  for (const container of containers) {
    for (const kind of ['requests', 'limits'] as const) {
      for (const resource of ['cpu', 'memory']) {
        const own = container.resources?.[kind]?.[resource];
        const fallback = defaults
          .map((d) =>
            kind === 'requests' ? (d.defaultRequest?.[resource] ?? d._default?.[resource]) : d._default?.[resource],
          )
          .find(Boolean);
        const value = own ?? fallback;
        if (value === undefined) continue;
        totals[`${kind}.${resource}`] = (totals[`${kind}.${resource}`] ?? 0) + quantity(value);
      }
    }
  }
  for (const resource of ['cpu', 'memory'])
    if (totals[`requests.${resource}`] !== undefined) totals[resource] = totals[`requests.${resource}`]!;
  return totals;
}
