/**
 * The Service's selector on Kubernetes, for service-selector and replica-ratio: a JSON merge patch
 * sets the slot label, or removes it with null. The view counts the Service's ready endpoints by
 * the slot Deployment whose pods they reach (other apps in the namespace have slots too).
 */
import type * as k8s from '@kubernetes/client-node';
import type { Target } from '../../activities/contract.js';
import { isSlot } from '../../shared/slots.js';
import type { Slot } from '../../shared/slots.js';
import { MERGE, readyEndpoints, selectorOf } from '../kubernetes-api.js';
import type { KubernetesApi } from '../kubernetes-api.js';
import type { SelectorAccess, SelectorView } from './behaviour.js';

export class KubernetesServiceSelector implements SelectorAccess {
  constructor(private readonly api: KubernetesApi) {}

  async readSelected(target: Target): Promise<string | undefined> {
    return (await this.readService(target)).spec?.selector?.[target.slotLabelKey];
  }

  async writeSelected(target: Target, slot: Slot | null): Promise<void> {
    await this.api.call(`patch service ${target.service}`, target, () =>
      this.api.core.patchNamespacedService(
        {
          name: target.service,
          namespace: target.namespace,
          body: { spec: { selector: { [target.slotLabelKey]: slot } } },
        },
        MERGE,
      ),
    );
  }

  async readView(target: Target, stable: Slot, canary: Slot): Promise<SelectorView> {
    const [stableSelector, canarySelector] = await Promise.all([
      this.readDeployment(target, stable),
      this.readDeployment(target, canary),
    ]).then((ds) => ds.map(selectorOf));
    const [service, ready, stablePods, canaryPods] = await Promise.all([
      this.readService(target),
      readyEndpoints(this.api, target, target.service),
      this.api.call(`list pods of slot ${stable}`, target, () =>
        this.api.core.listNamespacedPod({ namespace: target.namespace, labelSelector: stableSelector }),
      ),
      this.api.call(`list pods of slot ${canary}`, target, () =>
        this.api.core.listNamespacedPod({ namespace: target.namespace, labelSelector: canarySelector }),
      ),
    ]);
    const names = (pods: k8s.V1PodList) => new Set(pods.items.map((p) => p.metadata?.name));
    const [inStable, inCanary] = [names(stablePods), names(canaryPods)];
    const endpoints = {
      [stable]: ready.filter((e) => inStable.has(e.targetRef?.name)).length,
      [canary]: ready.filter((e) => inCanary.has(e.targetRef?.name)).length,
    } as Record<Slot, number>;
    const selected = service.spec?.selector?.[target.slotLabelKey];
    return {
      selected: isSlot(selected) ? selected : null,
      endpoints,
      strays: ready.length - endpoints[stable] - endpoints[canary],
    };
  }

  private async readService(target: Target): Promise<k8s.V1Service> {
    return await this.api.call(`read service ${target.service}`, target, () =>
      this.api.core.readNamespacedService({ name: target.service, namespace: target.namespace }),
    );
  }

  private async readDeployment(target: Target, slot: Slot): Promise<k8s.V1Deployment> {
    const name = target.deployments[slot];
    return await this.api.call(`read deployment ${name}`, target, () =>
      this.api.apps.readNamespacedDeployment({ name, namespace: target.namespace }),
    );
  }
}
