/**
 * `bluegreen plan`: what a release would do, and whether it could succeed, with nothing changed.
 * The worker reads and tries (PlanReport: the live state, the scrape interval, every write as a dry
 * run, the access review, the namespace's capacity, the SLO queries now, the smoke endpoint); this
 * module turns that and the spec into the plan people read. Pure: the plan workflow builds it, so
 * the history holds both what was read and what was concluded.
 */
import { AnalysisResult, formatValue, monitorWarmUp, promDurationSeconds } from '../shared/analysis.js';
import type { Measurement } from '../shared/analysis.js';
import { ACTIVE_SLOT_SETTLE_MS, isHealthySlot, otherSlot } from '../shared/slots.js';
import type { LiveState, Slot, SlotState } from '../shared/slots.js';
import { routeName, routerOf } from '../shared/target.js';
import type { Target } from '../shared/target.js';
import { canaryReplicasFor, TrafficRouter } from '../shared/traffic.js';
import type { DeploymentSpec } from '../deployment-spec/deployment-spec.js';

/** ok: nothing in the way; warning: it would run, but look; fail: the deployment would fail here. */
export const PlanVerdict = { Ok: 'ok', Warning: 'warning', Fail: 'fail' } as const;
export type PlanVerdict = (typeof PlanVerdict)[keyof typeof PlanVerdict];

/** One thing checked: its kind (`write`, `access`, `capacity`, `slo`, `smoke`, `spec`), what, the verdict and why. */
export interface PlanCheck {
  kind: 'write' | 'access' | 'capacity' | 'slo' | 'smoke' | 'spec' | 'live';
  name: string;
  verdict: PlanVerdict;
  detail: string;
}

/** What the worker read and tried for a plan; nothing in any cluster changed. */
export interface PlanReport {
  live: LiveState;
  /** The scrape interval of the live slot's targets (null: Prometheus could not tell). */
  scrapeIntervalSeconds: number | null;
  scrapeSource: string;
  /**
   * The spec's SLOs now: over the live slot (its version and run) and over the new version (no data
   * yet, as expected).
   */
  slos: { live: Measurement[]; next: Measurement[] };
  checks: PlanCheck[];
}

export interface PlannedChange {
  field: string;
  from: string | number | null;
  to: string | number | null;
}

export interface PlannedStep {
  weight: number;
  /** null: held until `bluegreen promote`. */
  holdSeconds: number | null;
  /** The canary slot's replicas at this step. */
  replicas: number;
}

export interface PlannedPhase {
  phase: string;
  /**
   * What it waits for at most or at least, in seconds; null when it depends on the cluster (a
   * rollout, the smoke suite).
   */
  seconds: number | null;
  note: string;
}

export interface Plan {
  app: string;
  namespace: string;
  image: string;
  version: string;
  strategy: DeploymentSpec['strategy'];
  router: TrafficRouter;
  liveSlot: Slot;
  idleSlot: Slot;
  /** The idle slot's Deployment as it is, and as the deployment will write it. */
  changes: PlannedChange[];
  /** What the live slot runs, against what this release brings. */
  againstLive: PlannedChange[];
  /** The objects and fields the router writes. */
  routerWrites: string[];
  steps: PlannedStep[];
  gates: string[];
  monitor: {
    warmUpSeconds: number;
    scrapeIntervalSeconds: number | null;
    ticks: number;
    intervalSeconds: number;
    window: string;
  };
  timeline: PlannedPhase[];
  /** The fixed waits added up (holds, monitor, observe, scale-down delay): the least the deployment takes. */
  leastSeconds: number;
  checks: PlanCheck[];
  /** Whether the deployment would proceed (no check fails). */
  proceeds: boolean;
}

/** The plan of `spec` against what the worker read and tried. */
export function buildPlan(spec: DeploymentSpec, target: Target, report: PlanReport): Plan {
  const { live } = report;
  const liveSlot = live.activeSlot;
  const idleSlot = otherSlot(liveSlot);
  const idle = live.slots[idleSlot];
  const active = live.slots[liveSlot];
  const router = routerOf(target);
  const canary = spec.strategy === 'canary';
  const steps: PlannedStep[] = canary
    ? spec.canary.steps.map((step) => ({
        weight: step.weight,
        holdSeconds: step.untilPromote ? null : step.holdSeconds,
        replicas: canaryReplicasFor(router, spec.replicas, step.weight),
      }))
    : [];
  const newReplicas = canary ? (steps[0]?.replicas ?? spec.replicas) : spec.replicas;
  const monitor = spec.monitor;
  const warmUp = monitorWarmUp({
    windowSeconds: promDurationSeconds(monitor.window),
    intervalSeconds: monitor.intervalSeconds,
    durationSeconds: canary
      ? Math.min(...steps.map((s) => s.holdSeconds ?? Infinity), monitor.durationSeconds)
      : monitor.durationSeconds,
    scrapeIntervalSeconds: report.scrapeIntervalSeconds,
    initialDelaySeconds: monitor.initialDelaySeconds,
  });
  const specChecks: PlanCheck[] =
    monitor.slos.length > 0
      ? warmUp.warnings.map((detail) => ({
          kind: 'spec',
          name: 'monitor window',
          verdict: PlanVerdict.Warning,
          detail,
        }))
      : [];
  const mismatch = replicaRatioMismatch(spec, active);
  const ratioChecks: PlanCheck[] = mismatch
    ? [{ kind: 'live', name: `replicas of ${liveSlot}`, verdict: PlanVerdict.Fail, detail: mismatch }]
    : [];
  const liveChecks: PlanCheck[] = isHealthySlot(active)
    ? ratioChecks
    : [
        {
          kind: 'live',
          name: `live slot ${liveSlot}`,
          verdict: PlanVerdict.Fail,
          detail:
            `${active.deployment} is not healthy: ${active.readyReplicas}/${active.replicas} replicas ready ` +
            `after ${ACTIVE_SLOT_SETTLE_MS / 1000} s of reads; preflight would stop here`,
        },
      ];
  const holds = steps.reduce((sum, s) => sum + (s.holdSeconds ?? 0), 0);
  const observe = spec.observe.durationSeconds;
  const timeline: PlannedPhase[] = [
    { phase: 'Preflight', seconds: null, note: 'validate, read the live state, the stability check of the live slot' },
    {
      phase: 'Deploying',
      seconds: spec.readinessTimeoutSeconds,
      note:
        `${idleSlot} to ${newReplicas} replicas of ${spec.version}; at most ` +
        `${spec.readinessTimeoutSeconds} s to be ready`,
    },
    { phase: 'SmokeTesting', seconds: null, note: `the ${spec.smoke.suite} suite against ${idleSlot}` },
    ...(spec.gates.approveBeforeSwitch
      ? [{ phase: 'AwaitingApproval', seconds: null, note: 'an operator approves the switch' }]
      : []),
    ...(canary
      ? steps.map((s) => ({
          phase: `Canary ${s.weight} %`,
          seconds: s.holdSeconds,
          note:
            s.holdSeconds === null
              ? 'held until bluegreen promote'
              : `held ${s.holdSeconds} s, measured every ${monitor.intervalSeconds} s`,
        }))
      : [
          { phase: 'Switching', seconds: null, note: `${routeName(target)} to ${idleSlot}` },
          {
            phase: 'Monitoring',
            seconds: monitor.durationSeconds,
            note:
              `${Math.floor(monitor.durationSeconds / monitor.intervalSeconds)} ticks every ` +
              `${monitor.intervalSeconds} s; missing data not counted for the first ${warmUp.seconds} s`,
          },
        ]),
    ...(observe > 0
      ? [
          {
            phase: 'Observing',
            seconds: observe,
            note: `the live slot watched every ${spec.observe.intervalSeconds} s`,
          },
        ]
      : []),
    ...(spec.gates.approveBeforeCleanup
      ? [{ phase: 'AwaitingApproval', seconds: null, note: 'an operator approves the cleanup' }]
      : []),
    {
      phase: 'CleaningUp',
      seconds: spec.scaleDownDelaySeconds,
      note: `${liveSlot} scaled to 0 after ${spec.scaleDownDelaySeconds} s`,
    },
  ];
  const checks = [...liveChecks, ...report.checks, ...specChecks];
  return {
    app: spec.app,
    namespace: spec.namespace,
    image: spec.image,
    version: spec.version,
    strategy: spec.strategy,
    router,
    liveSlot,
    idleSlot,
    changes: changed([
      ['image', idle.image, spec.image],
      ['version', idle.version ?? null, spec.version],
      ['replicas', idle.replicas, newReplicas],
      ['run label', idle.run ?? null, '(this run)'],
    ]),
    againstLive: changed([
      ['image', active.image, spec.image],
      ['version', active.version ?? null, spec.version],
      ['replicas', active.replicas, spec.replicas],
    ]),
    routerWrites: routerWrites(target, router, liveSlot, idleSlot, canary),
    steps,
    gates: [
      ...(spec.gates.approveBeforeSwitch ? ['approval before the switch'] : []),
      ...steps.filter((s) => s.holdSeconds === null).map((s) => `promote at ${s.weight} %`),
      ...(spec.gates.approveBeforeCleanup ? ['approval before the cleanup'] : []),
      ...monitor.slos.filter((slo) => slo.gate).map((slo) => `SLO ${slo.name} ${slo.comparison} ${slo.threshold}`),
      `at most ${monitor.restartLimit} restarts`,
    ],
    monitor: {
      warmUpSeconds: warmUp.seconds,
      scrapeIntervalSeconds: report.scrapeIntervalSeconds,
      ticks: Math.floor(monitor.durationSeconds / monitor.intervalSeconds),
      intervalSeconds: monitor.intervalSeconds,
      window: monitor.window,
    },
    timeline,
    leastSeconds: (canary ? holds : monitor.durationSeconds) + observe + spec.scaleDownDelaySeconds,
    checks,
    proceeds: checks.every((c) => c.verdict !== PlanVerdict.Fail),
  };
}

/**
 * The SLO checks of a plan: the live slot's value now against its threshold (the stability check,
 * now), and the new version's query run as it will be (no data yet is expected; a rejected query
 * fails, with Prometheus's words).
 */
export function sloChecks(slos: { live: Measurement[]; next: Measurement[] }, liveSlot: Slot): PlanCheck[] {
  const live = slos.live.map((m): PlanCheck => {
    const value = `${formatValue(m.value)} (must be ${m.comparison} ${m.threshold})`;
    if (m.result === AnalysisResult.Successful)
      return { kind: 'slo', name: `${m.name} on ${liveSlot}`, verdict: PlanVerdict.Ok, detail: `${value} now` };
    if (m.result === AnalysisResult.Failed) {
      const consequence = m.gate
        ? 'the stability check would refuse to deploy onto it (allowUnstableActive lets a fix through)'
        : 'a warning, not a gate';
      const detail = `${value} now: ${consequence}`;
      return {
        kind: 'slo',
        name: `${m.name} on ${liveSlot}`,
        verdict: m.gate ? PlanVerdict.Fail : PlanVerdict.Warning,
        detail,
      };
    }
    if (m.result === AnalysisResult.Error)
      return {
        kind: 'slo',
        name: `${m.name} on ${liveSlot}`,
        verdict: PlanVerdict.Fail,
        detail: m.message ?? 'the query failed',
      };
    return {
      kind: 'slo',
      name: `${m.name} on ${liveSlot}`,
      verdict: PlanVerdict.Warning,
      detail: `no data now (${m.message ?? 'no traffic?'}): the stability check could not judge it`,
    };
  });
  const next = slos.next.map((m): PlanCheck => {
    if (m.result === AnalysisResult.Error)
      return {
        kind: 'slo',
        name: `${m.name} for the new version`,
        verdict: PlanVerdict.Fail,
        detail: m.message ?? 'the query failed',
      };
    if (m.value === null)
      return {
        kind: 'slo',
        name: `${m.name} for the new version`,
        verdict: PlanVerdict.Ok,
        detail: 'accepted by Prometheus; no data yet, as expected before its pods run',
      };
    return {
      kind: 'slo',
      name: `${m.name} for the new version`,
      verdict: PlanVerdict.Warning,
      detail:
        `already has data (${formatValue(m.value)}): series of this version and slot exist outside any run, ` +
        `check the query's scope`,
    };
  });
  return [...live, ...next];
}

function changed(fields: [string, string | number | null, string | number | null][]): PlannedChange[] {
  return fields.filter(([, from, to]) => from !== to).map(([field, from, to]) => ({ field, from, to }));
}

/** The objects and fields the router writes over the deployment. */
function routerWrites(target: Target, router: TrafficRouter, live: Slot, idle: Slot, canary: boolean): string[] {
  const services = target.traffic?.slotServices;
  switch (router) {
    case TrafficRouter.ServiceSelector:
      return [`Service ${target.service}: spec.selector.${target.slotLabelKey} ${live} → ${idle}`];
    case TrafficRouter.ReplicaRatio:
      return [
        `Service ${target.service}: spec.selector.${target.slotLabelKey} removed while both slots serve (the ` +
          `share is the canary's part of the ready replicas)`,
        `Deployment ${target.deployments[idle]}: spec.replicas at each step`,
        `Service ${target.service}: spec.selector.${target.slotLabelKey} = ${idle} at 100 %`,
      ];
    case TrafficRouter.GatewayApi:
      return [
        `HTTPRoute ${target.traffic?.httpRoute ?? target.app}: the weights of the backendRefs naming ` +
          `${services?.[live]} and ${services?.[idle]}${canary ? ' at each step' : ' (0/100)'}`,
      ];
    case TrafficRouter.Ingress:
      return canary
        ? [
            `Ingress ${target.traffic?.canaryIngress}: created or patched over ${services?.[idle]}, ` +
              `nginx.ingress.kubernetes.io/canary-weight at each step`,
            `Ingress ${target.traffic?.ingress}: the backends naming ${services?.[live]} → ` +
              `${services?.[idle]} at 100 %`,
          ]
        : [`Ingress ${target.traffic?.ingress}: the backends naming ${services?.[live]} → ${services?.[idle]}`];
  }
}

/** A plan kept by the plan workflow, and what `deploy --plan-id` reads back. */
export interface PlanResult {
  /** The plan workflow's id (`bluegreen/plan/<namespace>/<app>/<id>`): what `deploy --plan-id` takes. */
  id: string;
  plannedAt: string;
  /** The spec as the worker validated it: what `deploy --plan-id` deploys. */
  spec: DeploymentSpec;
  /** null when the spec is invalid or the live state could not be read (see `error`). */
  plan: Plan | null;
  live: LiveState | null;
  error: { invalid: boolean; message: string } | null;
}

/** What changed in the live state since a plan read it, in words; empty when nothing did. */
export function liveChanges(planned: LiveState, now: LiveState): string[] {
  const changes: string[] = [];
  if (planned.activeSlot !== now.activeSlot)
    changes.push(`the live slot was ${planned.activeSlot}, is ${now.activeSlot}`);
  else if (planned.routing && now.routing && planned.routing !== now.routing)
    changes.push(`the router held "${planned.routing}", holds "${now.routing}"`);
  for (const slot of [planned.activeSlot, otherSlot(planned.activeSlot)]) {
    const [was, is] = [planned.slots[slot], now.slots[slot]];
    if (was.image !== is.image) changes.push(`${slot}'s image was ${was.image}, is ${is.image}`);
    if (was.replicas !== is.replicas) changes.push(`${slot}'s replicas were ${was.replicas}, are ${is.replicas}`);
    if ((was.run ?? null) !== (is.run ?? null))
      changes.push(`${slot} was rolled out again since (run ${is.run ?? 'none'})`);
  }
  return changes;
}

const MARK: Record<PlanVerdict, string> = { ok: 'ok  ', warning: 'warn', fail: 'FAIL' };

/** The plan as people read it: the CLI prints it, the Temporal UI shows it as the plan's details. */
export function planLines(plan: Plan): string[] {
  const seconds = (s: number | null) => (s === null ? '' : ` (${s} s)`);
  const change = (c: PlannedChange) => `${c.field}: ${c.from ?? 'none'} → ${c.to ?? 'none'}`;
  return [
    `${plan.namespace}/${plan.app} ${plan.version} (${plan.image}), ${plan.strategy} through ${plan.router}: ` +
      `${plan.proceeds ? 'would proceed' : 'WOULD FAIL'}`,
    `live: ${plan.liveSlot}; deploys to: ${plan.idleSlot}`,
    `${plan.idleSlot} changes: ${plan.changes.map(change).join('; ') || 'none'}`,
    `against the live slot: ${plan.againstLive.map(change).join('; ') || 'the same'}`,
    ...plan.routerWrites.map((w) => `router writes: ${w}`),
    ...(plan.steps.length ? [`steps: ${plan.steps.map(stepLine).join(' → ')}`] : []),
    `gates: ${plan.gates.join('; ') || 'none'}`,
    `monitor: ${plan.monitor.ticks} ticks every ${plan.monitor.intervalSeconds} s over a ${plan.monitor.window} ` +
      `window; warm-up ${plan.monitor.warmUpSeconds} s (scrape interval ` +
      `${plan.monitor.scrapeIntervalSeconds === null ? 'unknown' : `${plan.monitor.scrapeIntervalSeconds} s`})`,
    `timeline: ${plan.timeline.map((p) => `${p.phase}${seconds(p.seconds)}`).join(' → ')}; at least ` +
      `${plan.leastSeconds} s`,
    ...plan.checks.map((c) => `${MARK[c.verdict]} ${c.kind} ${c.name}: ${c.detail}`),
  ];
}

/** A canary step in a plan's summary: its weight, its replicas and how long it holds. */
function stepLine(step: PlannedStep): string {
  const hold = step.holdSeconds === null ? 'until promoted' : `${step.holdSeconds} s`;
  return `${step.weight} % (${step.replicas} replicas, ${hold})`;
}

/**
 * A replica-ratio canary's shares come from replica counts: its steps are sized beside `replicas`
 * stable ones. A live slot running another count would take other shares than the steps say, and
 * each step would fail its read-back only at its timeout, so preflight refuses it first, naming
 * the field. Null when the counts agree, or for another router or strategy.
 */
export function replicaRatioMismatch(spec: DeploymentSpec, active: SlotState): string | null {
  if (spec.strategy !== 'canary' || spec.traffic.router !== TrafficRouter.ReplicaRatio) return null;
  if (active.replicas === spec.replicas) return null;
  return (
    `replicas: replica-ratio splits traffic by replica counts, and its steps are sized beside ` +
    `${spec.replicas} stable replicas, but the live slot ${active.slot} (${active.deployment}) runs ` +
    `${active.replicas}: set replicas to ${active.replicas}, or scale ${active.deployment} to ` +
    `${spec.replicas} before the canary`
  );
}
