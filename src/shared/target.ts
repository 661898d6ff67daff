/**
 * The objects a deployment spec names: its Service, and its slot Deployments rendered from the
 * spec's pattern. Pure module: safe to import from workflow code.
 */
import type { DeploymentSpec } from '../deployment-spec/deployment-spec.js';
import { SLOTS } from './slots.js';
import type { Slot } from './slots.js';
import { renderTemplate } from './template.js';

/** The objects one deployment acts on: a Service that selects a slot, and a Deployment per slot. */
export interface Target {
  app: string;
  namespace: string;
  service: string;
  slotLabelKey: string;
  container: string;
  deployments: Record<Slot, string>;
}

export function targetOf(spec: DeploymentSpec): Target {
  const deployment = (slot: Slot) => renderTemplate(spec.deploymentNamePattern, { app: spec.app, namespace: spec.namespace, slot });
  const [blue, green] = SLOTS.map(deployment) as [string, string];
  return {
    app: spec.app,
    namespace: spec.namespace,
    service: spec.service,
    slotLabelKey: spec.slotLabelKey,
    container: spec.container,
    deployments: { blue, green },
  };
}
