/**
 * ingress on Kubernetes Ingresses: the stable one's paths that name a slot Service (and its default backend,
 * if it does) name the live slot's; the canary one (made from the stable one when missing: same
 * class, hosts and slot paths, over the canary slot) carries NGINX's canary annotations. Only the
 * slot backends and the two canary annotations are ever written; other annotations stay.
 */
import type * as k8s from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/activity';
import type { Target } from '../../activities/contract.js';
import { ErrorType } from '../../shared/errors.js';
import { isSlot, SLOTS } from '../../shared/slots.js';
import type { Slot } from '../../shared/slots.js';
import { NGINX_CANARY, NGINX_CANARY_WEIGHT } from '../../shared/traffic.js';
import { slotServicesOf, unlessNotFound } from '../common.js';
import { CONFLICT_TRIES, isConflict, MERGE, requireSlotServices, slotEndpoints } from '../kubernetes-api.js';
import type { KubernetesApi } from '../kubernetes-api.js';
import { canaryWeightOf, ingressNamesOf, ingressView } from './behaviour.js';
import type { IngressAccess, IngressView } from './behaviour.js';

export class KubernetesIngresses implements IngressAccess {
  constructor(private readonly api: KubernetesApi) {}

  async slotEndpoints(target: Target): Promise<Record<Slot, number>> {
    return await slotEndpoints(this.api, target);
  }

  async read(target: Target): Promise<IngressView> {
    const { ingress: stableName, canaryIngress: canaryName } = ingressNamesOf(target);
    const stable = await this.readIngress(target, stableName);
    const canary = await this.readCanary(target, canaryName);
    return ingressView(
      target,
      this.slotOf(target, stable, true),
      canary
        ? { slot: this.slotOf(target, canary, false), weight: canaryWeightOf(canary.metadata?.annotations) }
        : null,
    );
  }

  async pointStable(target: Target, slot: Slot): Promise<boolean> {
    await requireSlotServices(this.api, target);
    return await this.patchIngress(target, ingressNamesOf(target).ingress, (ingress) =>
      this.slotOf(target, ingress, true) === slot ? null : { spec: retarget(target, ingress, slot) },
    );
  }

  async weighCanary(target: Target, slot: Slot | null, weight: number): Promise<boolean> {
    const { ingress: stableName, canaryIngress: name } = ingressNamesOf(target);
    const annotations = { [NGINX_CANARY]: 'true', [NGINX_CANARY_WEIGHT]: String(weight) };
    if (!(await this.readCanary(target, name))) {
      if (weight === 0 || slot === null) return false;
      await requireSlotServices(this.api, target);
      const stable = await this.readIngress(target, stableName);
      const body: k8s.V1Ingress = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'Ingress',
        metadata: {
          name,
          namespace: target.namespace,
          labels: { 'app.kubernetes.io/managed-by': 'bluegreen', app: target.app },
          annotations,
        },
        spec: {
          ...(stable.spec?.ingressClassName ? { ingressClassName: stable.spec.ingressClassName } : {}),
          rules: canaryRules(target, stable, slot),
        },
      };
      await this.api.call(`create ingress ${name}`, target, () =>
        this.api.networking.createNamespacedIngress({ namespace: target.namespace, body }),
      );
      return true;
    }
    return await this.patchIngress(target, name, (ingress) => {
      const weighed =
        canaryWeightOf(ingress.metadata?.annotations) === weight &&
        ingress.metadata?.annotations?.[NGINX_CANARY] === 'true';
      const pointed = slot === null || this.slotOf(target, ingress, false) === slot;
      if (weighed && pointed) return null;
      return { metadata: { annotations }, ...(pointed ? {} : { spec: retarget(target, ingress, slot!) }) };
    });
  }

  private async readIngress(target: Target, name: string): Promise<k8s.V1Ingress> {
    return await this.api.call(`read ingress ${name}`, target, () =>
      this.api.networking.readNamespacedIngress({ name, namespace: target.namespace }),
    );
  }

  private async readCanary(target: Target, name: string): Promise<k8s.V1Ingress | null> {
    return await unlessNotFound(this.readIngress(target, name));
  }

  /** The slot whose Service the Ingress's slot backends name; none, or both, is an error naming the Ingress. */
  private slotOf(target: Target, ingress: k8s.V1Ingress, stable: boolean): Slot {
    const services = slotServicesOf(target);
    const slots = new Set(
      slotBackends(ingress)
        .map((b) => slotNamed(target, b.service?.name))
        .filter(isSlot),
    );
    if (slots.size !== 1) {
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message:
          `${stable ? '' : 'canary '}ingress ${ingress.metadata?.name} in namespace ${target.namespace} ` +
          (slots.size === 0
            ? `has no path whose backend is ${services.blue} or ${services.green}: add one (the router switches ` +
              `only such backends)`
            : `sends to both ${services.blue} and ${services.green}; one slot at a time`),
        nonRetryable: true,
      });
    }
    return [...slots][0]!;
  }

  /** One merge patch computed from a fresh read, carrying its resourceVersion; a 409 is read again. */
  private async patchIngress(
    target: Target,
    name: string,
    change: (ingress: k8s.V1Ingress) => Record<string, unknown> | null,
  ): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const ingress = await this.readIngress(target, name);
      const patch = change(ingress);
      if (patch === null) return false;
      const metadata = {
        ...((patch['metadata'] as object | undefined) ?? {}),
        resourceVersion: ingress.metadata?.resourceVersion,
      };
      const written = await this.api.call(`patch ingress ${name}`, target, async () => {
        try {
          await this.api.networking.patchNamespacedIngress(
            { name, namespace: target.namespace, body: { ...patch, metadata } },
            MERGE,
          );
          return true;
        } catch (error) {
          if (isConflict(error) && attempt < CONFLICT_TRIES) return false;
          throw error;
        }
      });
      if (written) return true;
    }
  }
}

function slotNamed(target: Target, service: string | undefined): Slot | null {
  const services = slotServicesOf(target);
  return SLOTS.find((slot) => services[slot] === service) ?? null;
}

/** The Ingress's spec with every slot backend naming `slot`'s Service; everything else as it was. */
function retarget(
  target: Target,
  ingress: k8s.V1Ingress,
  slot: Slot,
): Pick<k8s.V1IngressSpec, 'rules' | 'defaultBackend'> {
  const service = slotServicesOf(target)[slot];
  const move = (backend: k8s.V1IngressBackend): k8s.V1IngressBackend =>
    slotNamed(target, backend.service?.name) === null
      ? backend
      : { ...backend, service: { ...backend.service!, name: service } };
  const spec = ingress.spec ?? {};
  return {
    ...(spec.rules
      ? {
          rules: spec.rules.map((rule) =>
            rule.http
              ? {
                  ...rule,
                  http: { ...rule.http, paths: rule.http.paths.map((p) => ({ ...p, backend: move(p.backend) })) },
                }
              : rule,
          ),
        }
      : {}),
    ...(spec.defaultBackend ? { defaultBackend: move(spec.defaultBackend) } : {}),
  };
}

/** Every backend of an Ingress (paths and default) that names a Service. */
function slotBackends(ingress: k8s.V1Ingress): k8s.V1IngressBackend[] {
  const spec = ingress.spec ?? {};
  return [
    ...(spec.defaultBackend ? [spec.defaultBackend] : []),
    ...(spec.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend)),
  ].filter((b) => b.service);
}

/**
 * The canary Ingress's rules: the stable Ingress's hosts and paths that name a slot Service, naming
 * `slot`'s (NGINX pairs them by host and path).
 */
function canaryRules(target: Target, stable: k8s.V1Ingress, slot: Slot): k8s.V1IngressRule[] {
  const services = new Set(Object.values(slotServicesOf(target)));
  const rules = (retarget(target, stable, slot).rules ?? []).map((rule) => ({
    ...rule,
    ...(rule.http
      ? { http: { paths: rule.http.paths.filter((p) => services.has(p.backend.service?.name ?? '')) } }
      : {}),
  }));
  return rules.filter((rule) => (rule.http?.paths.length ?? 0) > 0);
}
