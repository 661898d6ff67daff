/**
 * The activity contract between the workflow and the platforms and checks it drives. The types
 * the workflow itself keeps (Target, SlotState, LiveState, SmokeReport) live in src/shared/ and
 * are re-exported here for the adapters. The workflow imports this with `import type` only, so
 * nothing here reaches workflow code at run time. Every request carries the names it acts on, so
 * the history says exactly what was touched.
 */
import type { Measurement, MonitorCounters } from '../shared/analysis.js';
import type { MonitorProgress } from '../shared/deployment-status.js';
import type { MonitorWindowResult, MonitorWindowRules } from '../shared/monitor-window.js';
import type { Slot } from '../shared/slots.js';
import type { LiveState, SlotState } from '../shared/slots.js';
import type { SmokeReport } from '../shared/smoke-report.js';
import type { Target } from '../shared/target.js';
import type { TrafficRouter } from '../shared/traffic.js';
import type { Evidence, SloSeries, SlotEvidence } from '../shared/evidence.js';
import type { PlanCheck } from '../plan/plan.js';
import type { DeploymentEvent } from '../shared/deployment-event.js';
import type { DeploymentSpec, Slo } from '../deployment-spec/deployment-spec.js';

/** The stability check's measurements of the active slot, or why there are none. */
export type ActiveSlotMeasured = { measurements: Measurement[] } | { error: string };

/**
 * Preflight's reads in one call: the spec as the worker validated it, the live state, the active
 * slot's gated SLOs (null: none is gated) and the scrape interval (null: no SLO), and whether this
 * worker notifies anyone. `invalid`: the spec is refused, with every field at fault.
 */
export type PreflightReport =
  | { invalid: string }
  | {
      spec: DeploymentSpec;
      live: LiveState;
      stability: ActiveSlotMeasured | null;
      scrape: ScrapeIntervalReport | null;
      notifies: boolean;
    };

export interface DeploySlotRequest {
  target: Target;
  slot: Slot;
  image: string;
  version: string;
  /**
   * Labels the pod template (`bluegreen.dev/run`): a new run rolls out new pods. Absent in
   * histories recorded before.
   */
  run?: string;
  replicas: number;
}

export interface WaitForSlotReadyRequest {
  target: Target;
  slot: Slot;
  replicas: number;
  timeoutSeconds: number;
}

export interface ReadyReport {
  readyReplicas: number;
  seconds: number;
}

export interface SwitchTrafficRequest {
  target: Target;
  slot: Slot;
}

export interface SwitchReport {
  /** false when the selector already pointed at the slot (nothing was written). */
  changed: boolean;
  previousSlot: Slot | null;
}

export interface VerifyTrafficRequest {
  target: Target;
  slot: Slot;
  timeoutSeconds: number;
}

export interface EndpointsReport {
  /** Endpoints now serving, all of them in the expected slot. */
  endpoints: number;
  seconds: number;
}

/** A canary's weight through a router: `weight` percent to `canary`, the rest to `stable`. */
export interface SetWeightRequest {
  target: Target;
  router: TrafficRouter;
  stable: Slot;
  canary: Slot;
  /** 0: all traffic to the stable slot; 100: all of it to the canary. */
  weight: number;
}

export interface WeightReport {
  /** false when the router already held this weight (nothing was written). */
  changed: boolean;
  /** What was in effect before, in words. */
  previous: string;
}

export interface VerifyWeightRequest extends SetWeightRequest {
  timeoutSeconds: number;
}

/** What the router holds once verified, read back from the platform. */
export interface WeightVerification {
  /** The canary's share in effect, in percent (for replica-ratio: its part of the ready endpoints). */
  weight: number;
  /** Ready endpoints of each slot behind the router. */
  endpoints: Record<Slot, number>;
  seconds: number;
}

/** The two ends of a route: `canary` takes the weight, `stable` the rest. */
export interface RouteRequest {
  target: Target;
  stable: Slot;
  canary: Slot;
}

/** What a router's write found before it, and whether it wrote. */
export interface RouteReport extends WeightReport {
  /** The slot that took all traffic before, or null when it was split. */
  previousSlot: Slot | null;
}

/** What the router holds now: the slot taking all traffic, or null and the split in words. */
export interface LiveRoute {
  slot: Slot | null;
  routing: string;
}

/**
 * The traffic-router port: how one kind of router (the Service selector, replica counts, an
 * HTTPRoute, an Ingress) moves traffic between the slots. Each lives in its folder of src/routers/
 * with its Kubernetes and local adapters; the traffic activities pick it by the target's router. Writes check
 * first and change only what differs; verify reads back what is in effect.
 */
export interface TrafficRouterPort {
  readonly kind: TrafficRouter;
  /** Which slot takes all the traffic now (describe's live slot). */
  readLive(target: Target): Promise<LiveRoute>;
  /** Sends `weight` percent (strictly between 0 and 100) to the canary. */
  setWeight(request: RouteRequest & { weight: number }): Promise<RouteReport>;
  /** Waits until `weight` is in effect, read back from the platform. */
  verifyWeight(
    request: RouteRequest & { weight: number; timeoutSeconds: number },
    progress: Progress,
  ): Promise<WeightVerification>;
  /** All traffic to the stable slot: an abort's and a failed step's first write. */
  reset(request: RouteRequest): Promise<RouteReport>;
  /** All traffic to the canary, in the router's end state (blue-green's switch is this too). */
  promote(request: RouteRequest): Promise<RouteReport>;
  /** The smallest share, in percent, it can give the canary beside `replicas` stable replicas. */
  smallestStep(replicas: number): number;
}

/** The routers a platform plays, by kind (src/routers/registry.ts). */
export interface Routers {
  readonly kinds: readonly TrafficRouter[];
  /** The router a request names (a canary's weights do), else the target's; one not played is refused. */
  routerFor(target: Target, requested?: TrafficRouter): TrafficRouterPort;
}

export interface ReadRestartsRequest {
  target: Target;
  slot: Slot;
}

export interface ScaleSlotRequest {
  target: Target;
  slot: Slot;
  replicas: number;
  /** When set, the slot's container image is restored too (compensation of a deploy). */
  image?: string | null;
}

export interface SmokeRequest {
  target: Target;
  slot: Slot;
  smoke: DeploymentSpec['smoke'];
}

export interface EvaluateSlosRequest {
  target: Target;
  slot: Slot;
  /**
   * The version being deployed, so queries can leave out a previous version's series still in
   * the window (a redeploy of the same slot right after a rollback). Absent in histories
   * recorded before it existed.
   */
  version?: string;
  /**
   * The run whose pods are measured (`{{run}}`), so an earlier run of the same version in the same
   * slot is not judged; '' or absent: pods that carry no run label.
   */
  run?: string;
  window: string;
  slos: Slo[];
}

/** One canary tick: both slots' SLOs over the same window, and the requests each served. */
export interface MeasureCanaryRequest {
  target: Target;
  canary: Slot;
  stable: Slot;
  /** The canary's version and the stable's, for queries scoped by version. */
  version: string;
  stableVersion: string;
  /** The runs whose pods each slot holds (see EvaluateSlosRequest.run). */
  run?: string;
  stableRun?: string;
  window: string;
  slos: Slo[];
  /** Requests a slot served within the window (the spec's `canary.requestsQuery`). */
  requestsQuery: string;
  /** The canary's restarts are read in the same call (absent in histories recorded before). */
  withRestarts?: boolean;
}

export interface CanaryMeasurements {
  canary: Measurement[];
  stable: Measurement[];
  /** null: the query had no data (no traffic at all) or failed. */
  canaryRequests: number | null;
  stableRequests: number | null;
  /** The canary's total container restarts, when asked for (`withRestarts`). */
  canaryRestarts?: number;
}

/** One monitor tick of a slot: its SLOs and its restarts, read in one call. */
export type MeasureSlotRequest = EvaluateSlosRequest;

export interface SlotMeasurements {
  slos: Measurement[];
  /** Total container restarts of the slot's current pods. */
  restarts: number;
}

/**
 * A whole monitor window in one activity: every interval the slot's SLOs and restarts, judged by
 * `rules`, heartbeating each tick's counts, until a verdict (src/shared/monitor-window.ts).
 */
export interface MonitorWindowRequest extends MonitorWindowRules {
  target: Target;
  slot: Slot;
  version: string;
  /** See EvaluateSlosRequest.run. */
  run?: string;
  window: string;
  slos: Slo[];
  /** The slot's restarts when monitoring began (null: the window reads them first), and how many more are tolerated. */
  restarts: { baseline: number | null; limit: number };
  counters: MonitorCounters;
  /** The counts so far; `tick` is the last tick measured. */
  progress: MonitorProgress;
}

export type { MonitorWindowResult };

/** Reports progress while an activity waits; wired to the activity heartbeat. */
export interface Progress {
  heartbeat(details?: unknown): void;
  /** Aborted when Temporal cancels the activity (an operator's abort, a timeout). */
  signal: AbortSignal;
}

/**
 * The platform port: what the workflow needs from Kubernetes or from the local platform.
 * Implementations are idempotent (check before writing) and throw `ApplicationFailure` with an
 * `ErrorType` and `nonRetryable: true` for permanent errors; anything else is retried.
 */
export interface Platform {
  readonly name: string;
  /** The traffic routers this platform plays (src/routers/); the worker rejects a spec naming another. */
  readonly routers: Routers;
  describe(target: Target): Promise<LiveState>;
  /** Sets image and replicas of the slot in one write; returns what was there before. */
  deploySlot(request: DeploySlotRequest): Promise<SlotState>;
  waitForSlotReady(request: WaitForSlotReadyRequest, progress: Progress): Promise<ReadyReport>;
  /** Total container restarts of the slot's current pods. */
  readRestarts(request: ReadRestartsRequest): Promise<number>;
  scaleSlot(request: ScaleSlotRequest, progress: Progress): Promise<void>;
  /**
   * What the slot's pods and objects hold before it is scaled down: log tails, events, restarts,
   * the pod template's differences from the other slot. A part that cannot be read is named in
   * `problems`; a refusal (403) throws Forbidden, so a missing permission is seen.
   */
  collectEvidence(request: CollectEvidenceRequest): Promise<SlotEvidence>;
  /**
   * The same platform with every write sent as a dry run (Kubernetes: dryRun=All): checked where it
   * lands, never applied.
   */
  dryRun(): Platform;
  /** Whether the worker may do each thing a deployment through `router` does (Kubernetes: SelfSubjectAccessReview). */
  reviewAccess(target: Target, router: TrafficRouter): Promise<PlanCheck[]>;
  /** Whether the namespace can hold `replicas` pods of the slot's template (Kubernetes: ResourceQuota). */
  checkCapacity(target: Target, slot: Slot, replicas: number): Promise<PlanCheck[]>;
}

export interface CollectEvidenceRequest {
  target: Target;
  slot: Slot;
  /** The other slot, whose pod template the failing one is compared with. */
  peer: Slot;
  /** Log lines kept per container (and per previous container). */
  tailLines: number;
}

/** Runs the smoke suite against the idle slot; a failed check is a verdict, not an exception. */
export interface SmokeRunner {
  runSmokeSuite(request: SmokeRequest, progress: Progress): Promise<SmokeReport>;
  /** Whether the suite's endpoint for the slot resolves from this worker (for a plan); never throws. */
  checkEndpoint(request: SmokeRequest): Promise<PlanCheck>;
}

export interface ScrapeIntervalRequest {
  target: Target;
  slot: Slot;
}

/** How often the new slot's series are scraped, and how that was found out. */
export interface ScrapeIntervalReport {
  /** null when the source could not tell. */
  seconds: number | null;
  /** In words: which targets it came from, or why it is unknown. */
  source: string;
}

/** Tells people what a deployment needs or did (a webhook, an incident tool): the notify step's port. */
export interface Notifier {
  /** Returns how the delivery went ('delivered', or why not); never throws. */
  notify(event: DeploymentEvent): Promise<string>;
}

/** Measures the SLOs of a slot; an unreachable or malformed source throws (counted as Error). */
export interface SloSource {
  evaluateSlos(request: EvaluateSlosRequest): Promise<Measurement[]>;
  /** The scrape interval of the targets carrying the slot's series; never throws. */
  readScrapeInterval(request: ScrapeIntervalRequest): Promise<ScrapeIntervalReport>;
  /** Each SLO's series over a span (range queries); a series that fails carries its error. Never throws. */
  rangeSlos(request: RangeSlosRequest): Promise<SloSeries[]>;
}

export interface RangeSlosRequest extends EvaluateSlosRequest {
  /** Unix seconds. */
  start: number;
  end: number;
  stepSeconds: number;
}

/** What the rollback's evidence capture gathers (see src/shared/evidence.ts). */
export interface CaptureEvidenceRequest {
  target: Target;
  slot: Slot;
  peer: Slot;
  image: string;
  version: string;
  run?: string;
  window: string;
  slos: Slo[];
  switchedAt: string | null;
  /** The span of the series: from the deployment's start to the capture. */
  from: string;
  breach: Evidence['breach'];
  tailLines: number;
  /** The whole evidence is kept within this many bytes (as JSON; the history holds it). */
  maxBytes: number;
}

export type { LiveState, SlotState, Target, SmokeReport };
export type { SmokeCheckResult } from '../shared/smoke-report.js';
export { CheckVerdict } from '../shared/smoke-report.js';
