/**
 * The worker's part of a plan (src/shared/plan.ts): what a deployment of the spec would read, and
 * every write it would make sent as a dry run, with nothing changed. A write refused, a verb
 * denied, a quota too small or a query Prometheus rejects is a check that fails, with the
 * cluster's own words; only an unreadable live state (the objects are missing, the API is down)
 * is an error.
 */
import { PlanVerdict, sloChecks } from '../plan/plan.js';
import type { PlanCheck, PlanReport } from '../plan/plan.js';
import { otherSlot } from '../shared/slots.js';
import { routeName, routerOf, targetOf } from '../shared/target.js';
import { canaryReplicasFor } from '../shared/traffic.js';
import type { DeploymentSpec } from '../deployment-spec/deployment-spec.js';
import type { Platform, Progress, SloSource, SmokeRunner } from './contract.js';
import { settledLiveState } from './live-state.js';
import type { Clock } from './monitor-window.js';
import { trafficThrough } from './traffic.js';

/**
 * The run label a plan's dry-run writes carry, and its queries of the new version select: no
 * deployment run is called this, so the new version's query finds only series with no run label.
 */
export const PLAN_RUN = 'plan';

export async function planChecks(
  spec: DeploymentSpec,
  { platform, smoke, slo, clock }: { platform: Platform; smoke: SmokeRunner; slo: SloSource; clock: Clock },
  progress: Progress,
): Promise<PlanReport> {
  const target = targetOf(spec);
  // As preflight reads it: a pod that missed one readiness probe is given its next.
  const live = await settledLiveState(platform, target, clock, progress);
  const liveSlot = live.activeSlot;
  const idle = otherSlot(liveSlot);
  const active = live.slots[liveSlot];
  const router = routerOf(target);
  const canary = spec.strategy === 'canary';
  const replicas = canary ? canaryReplicasFor(router, spec.replicas, spec.canary.steps[0]!.weight) : spec.replicas;
  const dry = platform.dryRun();
  const dryTraffic = trafficThrough(dry.routers);
  const tryWrite = async (name: string, write: () => Promise<unknown>): Promise<PlanCheck> => {
    try {
      await write();
      return { kind: 'write', name, verdict: PlanVerdict.Ok, detail: `accepted as a dry run (${platform.name})` };
    } catch (error) {
      return { kind: 'write', name, verdict: PlanVerdict.Fail, detail: (error as Error).message };
    }
  };
  const writes = [
    tryWrite(`deploy ${spec.version} to ${target.deployments[idle]} x${replicas}`, () =>
      dry.deploySlot({ target, slot: idle, image: spec.image, version: spec.version, run: PLAN_RUN, replicas }),
    ),
    ...(canary
      ? spec.canary.steps.map((step) =>
          tryWrite(`weight ${step.weight} % to ${idle} through ${routeName(target)}`, () =>
            dryTraffic.setTrafficWeight({ target, router, stable: liveSlot, canary: idle, weight: step.weight }),
          ),
        )
      : [tryWrite(`switch ${routeName(target)} to ${idle}`, () => dryTraffic.switchTraffic({ target, slot: idle }))]),
    // The cleanup: the same Deployment write, replicas only.
    tryWrite(`scale ${target.deployments[liveSlot]} to 0 at the cleanup`, () =>
      dry.deploySlot({
        target,
        slot: liveSlot,
        image: active.image ?? spec.image,
        version: active.version ?? spec.version,
        replicas: 0,
      }),
    ),
  ];
  const measured = spec.monitor.slos;
  const [scrape, access, capacity, liveSlos, nextSlos, endpoint, ...written] = await Promise.all([
    slo.readScrapeInterval({ target, slot: liveSlot }),
    platform.reviewAccess(target, router),
    platform.checkCapacity(target, idle, spec.replicas),
    measured.length
      ? slo.evaluateSlos({
          target,
          slot: liveSlot,
          ...(active.version ? { version: active.version } : {}),
          run: active.run ?? '',
          window: spec.monitor.window,
          slos: measured,
        })
      : [],
    measured.length
      ? slo.evaluateSlos({
          target,
          slot: idle,
          version: spec.version,
          run: PLAN_RUN,
          window: spec.monitor.window,
          slos: measured,
        })
      : [],
    smoke.checkEndpoint({ target, slot: idle, smoke: spec.smoke }),
    ...writes,
  ]);
  const slos = { live: liveSlos, next: nextSlos };
  return {
    live,
    scrapeIntervalSeconds: scrape.seconds,
    scrapeSource: scrape.source,
    slos,
    checks: [...written, ...access, ...capacity, ...sloChecks(slos, liveSlot), endpoint],
  };
}
