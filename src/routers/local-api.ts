/**
 * What every local router adapter uses: one call of the local platform's control API (its errors
 * mapped as the platform maps them), and its Services with their ready endpoints.
 */
import { z } from 'zod';
import type { Target } from '../activities/contract.js';
import { SLOTS } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import { slotServicesOf } from './common.js';

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
export type LocalServiceState = z.output<typeof LocalServiceSchema>;

export async function readLocalService(api: LocalApi, target: Target, name: string): Promise<LocalServiceState> {
  return LocalServiceSchema.parse(await api.request('get', `/api/v1/namespaces/${target.namespace}/services/${name}`));
}

/** Ready endpoints behind each slot Service; a missing one is NotFound, named, before anything moves. */
export async function localSlotEndpoints(api: LocalApi, target: Target): Promise<Record<Slot, number>> {
  const services = slotServicesOf(target);
  const [blue, green] = await Promise.all(SLOTS.map((slot) => readLocalService(api, target, services[slot])));
  return { blue: blue!.endpoints.length, green: green!.endpoints.length };
}
