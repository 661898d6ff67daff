/** ingress on local Ingresses: the entry Ingress's backend, and a canary Ingress for its host. */
import { ApplicationFailure } from '@temporalio/activity';
import { z } from 'zod';
import type { Target } from '../../activities/contract.js';
import { ErrorType } from '../../shared/errors.js';
import { SLOTS } from '../../shared/slots.js';
import type { Slot } from '../../shared/slots.js';
import { NGINX_CANARY, NGINX_CANARY_WEIGHT } from '../../shared/traffic.js';
import { slotServicesOf, unlessNotFound } from '../common.js';
import { localSlotEndpoints } from '../local-api.js';
import type { LocalApi } from '../local-api.js';
import { canaryWeightOf, ingressNamesOf, ingressView } from './behaviour.js';
import type { IngressAccess, IngressView } from './behaviour.js';

const IngressSchema = z.object({
  name: z.string(),
  host: z.string(),
  backend: z.string(),
  annotations: z.record(z.string()),
});
type LocalIngressState = z.output<typeof IngressSchema>;

export class LocalIngresses implements IngressAccess {
  constructor(private readonly api: LocalApi) {}

  async slotEndpoints(target: Target): Promise<Record<Slot, number>> {
    return await localSlotEndpoints(this.api, target);
  }

  async read(target: Target): Promise<IngressView> {
    const names = ingressNamesOf(target);
    const stable = await this.readIngress(target, names.ingress);
    const canary = await unlessNotFound(this.readIngress(target, names.canaryIngress));
    return ingressView(
      target,
      this.slotOf(target, stable),
      canary ? { slot: this.slotOf(target, canary), weight: canaryWeightOf(canary.annotations) } : null,
    );
  }

  async pointStable(target: Target, slot: Slot): Promise<boolean> {
    await localSlotEndpoints(this.api, target);
    const { ingress: name } = ingressNamesOf(target);
    if (this.slotOf(target, await this.readIngress(target, name)) === slot) return false;
    await this.api.request('patch', this.path(target, name), { backend: slotServicesOf(target)[slot] });
    return true;
  }

  async weighCanary(target: Target, slot: Slot | null, weight: number): Promise<boolean> {
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
        message:
          `ingress ${ingress.name} in namespace ${target.namespace} has no path whose backend is ${services.blue} ` +
          `or ${services.green} (its backend is ${ingress.backend})`,
        nonRetryable: true,
      });
    }
    return slot;
  }
}
