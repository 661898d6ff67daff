/**
 * The local Service's selector, for service-selector and replica-ratio: a selector key patched to
 * null is removed. The view counts the Service's ready endpoints by their slot label.
 */
import type { Target } from '../../activities/contract.js';
import { isSlot } from '../../shared/slots.js';
import type { Slot } from '../../shared/slots.js';
import { readLocalService } from '../local-api.js';
import type { LocalApi } from '../local-api.js';
import type { SelectorAccess, SelectorView } from './behaviour.js';

export class LocalServiceSelector implements SelectorAccess {
  constructor(private readonly api: LocalApi) {}

  async readSelected(target: Target): Promise<string | undefined> {
    return (await readLocalService(this.api, target, target.service)).selector[target.slotLabelKey];
  }

  async writeSelected(target: Target, slot: Slot | null): Promise<void> {
    await this.api.request('patch', `/api/v1/namespaces/${target.namespace}/services/${target.service}`, {
      selector: { [target.slotLabelKey]: slot },
    });
  }

  async readView(target: Target, stable: Slot, canary: Slot): Promise<SelectorView> {
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
