/**
 * What a canary's steps actually sent to the canary, by the local router's own counts (at the
 * entry point of the router the deployment uses): the share
 * each step served beside the weight it set. For the demo, the e2e suite and bench:canary.
 */
import type { DeploymentResult, DeploymentStatus } from '../shared/deployment-status.js';
import { TrafficRouter } from '../shared/traffic.js';
import type { EmbeddedStack } from './stack.js';

/** One step: the weight set, and what the canary and both slots served while it held. */
export interface StepServed {
  step: number;
  weight: number;
  canary: number;
  total: number;
  /** The share Prometheus saw at the step's last tick, as the workflow recorded it. */
  observedShare: number | null;
}

/**
 * Follows the running deployment of the detection API to its end (calling `onStatus` with each new
 * status) and returns its result with, for a canary, each step's share: from the moment its hold
 * began (its weight set and verified) to the first status that shows it over (the next step's
 * scaling or weight, a rollback, the end), so that no request sent at the next weight is counted.
 */
export async function followCanary(
  stack: EmbeddedStack,
  onStatus: (status: DeploymentStatus) => void = () => undefined,
  { pollMs = 100, router = TrafficRouter.ServiceSelector }: { pollMs?: number; router?: TrafficRouter } = {},
): Promise<{ result: DeploymentResult; steps: StepServed[] }> {
  type Counts = Promise<Record<string, number>>;
  const marks: { step: number; weight: number; at: Counts; until?: Counts }[] = [];
  const result = await stack.deployments!.follow(
    'default',
    'detection-api',
    (status) => {
      onStatus(status);
      const canary = status.canary;
      const holding = canary && status.phase === 'Monitoring' ? canary.step : null;
      const last = marks.at(-1);
      if (last && !last.until && holding !== last.step) last.until = stack.servedBy(router);
      if (canary && holding !== null && last?.step !== holding)
        marks.push({ step: holding, weight: canary.weight, at: stack.servedBy(router) });
    },
    pollMs,
  );
  const end = await stack.servedBy(router);
  const slot = `detection-api-${result.toSlot}`;
  const steps: StepServed[] = [];
  for (const [index, mark] of marks.entries()) {
    const from = await mark.at;
    const to = (await mark.until) ?? (index + 1 < marks.length ? await marks[index + 1]!.at : end);
    const total = Object.keys(to).reduce((sum, key) => sum + (to[key] ?? 0) - (from[key] ?? 0), 0);
    const done = result.status.canary?.completed.find((c) => c.step === mark.step);
    steps.push({
      step: mark.step,
      weight: mark.weight,
      canary: (to[slot] ?? 0) - (from[slot] ?? 0),
      total,
      observedShare: done?.observedShare ?? null,
    });
  }
  return { result, steps };
}
