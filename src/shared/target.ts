/**
 * The objects a deployment spec names: its Service, and its slot Deployments rendered from the
 * spec's pattern. Pure module: safe to import from workflow code.
 */
import type { Target } from '../activities/contract.js';
import type { DeploymentSpec } from '../spec/deployment-spec.js';
import { SLOTS } from './slots.js';
import type { Slot } from './slots.js';
import { renderTemplate } from './template.js';

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
