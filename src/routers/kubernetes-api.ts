/**
 * What every Kubernetes router adapter uses: the API clients and call wrapper the platform lends
 * them, the merge patch, a 409's test, and the ready endpoints behind the slot Services. Route and
 * Ingress writes carry the resourceVersion they were computed from: a 409 (someone else wrote
 * between our read and our write) is read again and recomputed, never overwritten.
 */
import * as k8s from '@kubernetes/client-node';
import type { Target } from '../activities/contract.js';
import { SLOTS } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import { slotServicesOf } from './common.js';

/** What the routers need of the adapter: its API clients and its call wrapper (retries, error mapping). */
export interface KubernetesApi {
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  discovery: k8s.DiscoveryV1Api;
  networking: k8s.NetworkingV1Api;
  custom: k8s.CustomObjectsApi;
  call<T>(what: string, target: Target, request: () => Promise<T>): Promise<T>;
}

export const MERGE = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
/** Tries of a route or Ingress write that keeps meeting someone else's newer version (409). */
export const CONFLICT_TRIES = 5;

/** Whether the API answered 409: the object changed since it was read. */
export function isConflict(error: unknown): boolean {
  return error instanceof k8s.ApiException && error.code === 409;
}

/** The Deployment's matchLabels as a label selector string. */
export function selectorOf(deployment: k8s.V1Deployment): string {
  return Object.entries(deployment.spec?.selector?.matchLabels ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}

/** Ready endpoints of a Service, by the pod they reach. */
export async function readyEndpoints(api: KubernetesApi, target: Target, service: string): Promise<k8s.V1Endpoint[]> {
  const slices = await api.call(`list endpointslices of ${service}`, target, () =>
    api.discovery.listNamespacedEndpointSlice({
      namespace: target.namespace,
      labelSelector: `kubernetes.io/service-name=${service}`,
    }),
  );
  return slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready !== false);
}

/** Reads both slot Services, so a missing backend is named before any traffic moves. */
export async function requireSlotServices(api: KubernetesApi, target: Target): Promise<void> {
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
export async function slotEndpoints(api: KubernetesApi, target: Target): Promise<Record<Slot, number>> {
  const services = slotServicesOf(target);
  const [blue, green] = await Promise.all(SLOTS.map((slot) => readyEndpoints(api, target, services[slot])));
  return { blue: blue!.length, green: green!.length };
}
