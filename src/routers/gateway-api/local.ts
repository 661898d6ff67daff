/** gateway-api on a local HTTPRoute: the weights of its backendRefs to the slot Services; other refs stay. */
import { ApplicationFailure } from '@temporalio/activity';
import { z } from 'zod';
import type { Target } from '../../activities/contract.js';
import { ErrorType } from '../../shared/errors.js';
import { SLOTS } from '../../shared/slots.js';
import type { Slot } from '../../shared/slots.js';
import { slotServicesOf } from '../common.js';
import { localSlotEndpoints } from '../local-api.js';
import type { LocalApi } from '../local-api.js';
import type { RouteAccess, RouteWeights } from './behaviour.js';

const RouteSchema = z.object({
  name: z.string(),
  backendRefs: z.array(z.object({ name: z.string(), weight: z.number() })),
});

export class LocalHttpRoute implements RouteAccess {
  constructor(private readonly api: LocalApi) {}

  async slotEndpoints(target: Target): Promise<Record<Slot, number>> {
    return await localSlotEndpoints(this.api, target);
  }

  async readWeights(target: Target): Promise<RouteWeights> {
    const route = await this.read(target);
    return { name: route.name, weights: this.weightsOf(target, route), refusals: [] };
  }

  async writeWeights(target: Target, weights: Record<Slot, number>): Promise<void> {
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
        message:
          `httproute ${route.name} in namespace ${target.namespace} has no backendRef to ${services.blue} or ` +
          `${services.green}: add one (the router writes only the weights of such refs)`,
        nonRetryable: true,
      });
    }
    const weight = (slot: Slot) =>
      route.backendRefs.filter((ref) => ref.name === services[slot]).reduce((sum, ref) => sum + ref.weight, 0);
    return { blue: weight('blue'), green: weight('green') };
  }

  private path(target: Target): string {
    const name = target.traffic?.httpRoute ?? target.app;
    return `/apis/gateway.networking.k8s.io/v1/namespaces/${target.namespace}/httproutes/${name}`;
  }

  private async read(target: Target): Promise<z.output<typeof RouteSchema>> {
    return RouteSchema.parse(await this.api.request('get', this.path(target)));
  }
}
