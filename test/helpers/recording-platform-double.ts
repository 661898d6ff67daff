/**
 * A TEST DOUBLE of the platform and the gates, for the workflow's own tests: it keeps a small
 * in-memory picture of a blue-green pair (the Service's selected slot, each slot's image, replicas
 * and restarts), records every call in order, and can be told to fail, block or report any
 * measurement. The real adapters (Kubernetes, local, Prometheus, the smoke suite) are tested
 * against real servers in their own suites; this double lets the workflow's tests assert the exact
 * sequence of platform calls and the state they leave behind.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type {
  CollectEvidenceRequest,
  DeploySlotRequest,
  EvaluateSlosRequest,
  LiveState,
  Platform,
  Progress,
  RangeSlosRequest,
  ReadRestartsRequest,
  RouteReport,
  RouteRequest,
  Routers,
  TrafficRouterPort,
  ScaleSlotRequest,
  SetWeightRequest,
  ScrapeIntervalReport,
  ScrapeIntervalRequest,
  SloSource,
  SmokeReport,
  SmokeRequest,
  SmokeRunner,
  SwitchTrafficRequest,
  Target,
  VerifyTrafficRequest,
  VerifyWeightRequest,
  WaitForSlotReadyRequest,
  WeightVerification,
} from '../../src/activities/contract.js';
import { TRAFFIC_ROUTERS } from '../../src/shared/traffic.js';
import type { TrafficRouter } from '../../src/shared/traffic.js';
import { routerOf } from '../../src/shared/target.js';
import { judgeValue } from '../../src/shared/analysis.js';
import type { Measurement } from '../../src/shared/analysis.js';
import { ErrorType } from '../../src/shared/errors.js';
import type { Slot } from '../../src/shared/slots.js';
import type { SloSeries, SlotEvidence } from '../../src/shared/evidence.js';
import { PlanVerdict } from '../../src/plan/plan.js';
import type { PlanCheck } from '../../src/plan/plan.js';

export interface SimulatedSlot {
  image: string | null;
  replicas: number;
  readyReplicas: number;
  restarts: number;
}

export interface RecordedCall {
  name: string;
  slot: Slot | null;
  request: unknown;
}

/** What a test can make the double do. */
export interface DoubleBehaviour {
  /** The idle slot never becomes Ready: waitForSlotReady throws a ReadinessTimeout. */
  readinessTimeout?: boolean;
  /** The named smoke check fails. */
  failSmokeCheck?: string;
  /** Measurement values per SLO name for the n-th evaluateSlos call (1-based); throw to error. */
  sloValues?: (call: number) => Partial<Record<string, number | null>>;
  /** Restarts of the new slot's pods to report at the n-th readRestarts during monitoring. */
  restartsAt?: (call: number) => number;
  /** Calls whose first occurrence hangs (heartbeating) until the activity is cancelled or released. */
  block?: string[];
  /** scaleSlot to zero fails permanently (cleanup cannot scale down). */
  failScaleDown?: boolean;
  /** The first n switches back to the slot traffic came from fail as an unreachable API would. */
  failSwitchBack?: number;
  /** The scrape interval the SLO source reports (default 1 s; null: it cannot tell). */
  scrapeIntervalSeconds?: number | null;
  /** Canary: the stable slot's measurement values at the n-th tick (healthy by default). */
  stableSloValues?: (call: number) => Partial<Record<string, number | null>>;
  /** Canary: the requests each slot served within the window at the n-th tick (default 500 and 9500). */
  requests?: (call: number) => { canary: number | null; stable: number | null };
  /** collectEvidence is refused, as without the pods/log permission. */
  failEvidence?: boolean;
  /** The active slot's measurement values in preflight's stability check (healthy by default); throw to error. */
  activeSloValues?: () => Partial<Record<string, number | null>>;
}

/**
 * Preflight reads the active slot's stability and its scrape interval side by side: whichever the
 * worker started first, a list of calls names them stability first.
 */
export function inPreflightOrder(calls: string[]): string[] {
  const ordered = [...calls];
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i - 1]!.startsWith('readScrapeInterval') && ordered[i]!.startsWith('evaluateActiveSlos'))
      [ordered[i - 1], ordered[i]] = [ordered[i]!, ordered[i - 1]!];
  }
  return ordered;
}

const HEALTHY_VALUES: Record<string, number> = {
  'error-rate': 0.001,
  'p95-latency': 0.08,
  'tak-output-latency': 0.3,
  'geolocation-accuracy': 0.99,
  'cpu-per-pod': 0.2,
  'memory-per-pod': 100_000_000,
};

export class RecordingPlatformDouble implements Platform, SmokeRunner, SloSource {
  readonly name = 'recording-double';
  /**
   * One router for every kind. Its calls are recorded under the activity that made them
   * (switchTraffic, verifyTraffic, setTrafficWeight, verifyTrafficWeight), with that activity's
   * request, so tests read the workflow's traffic calls as the workflow made them.
   */
  readonly routers: Routers = {
    kinds: TRAFFIC_ROUTERS,
    routerFor: (_target, requested) => this.router(requested),
  };
  readonly calls: RecordedCall[] = [];
  selector: Slot;
  /** Canary: the weight the router holds (0: all to the live slot). */
  weight = 0;
  readonly slots: Record<Slot, SimulatedSlot>;
  behaviour: DoubleBehaviour;
  private readonly waiters: { name: string; count: number; resolve: () => void }[] = [];
  private readonly releases = new Set<() => void>();
  /** The last call each monitor window activity made (see readRestarts). */
  private readonly lastInWindow = new Map<string, string>();
  private sloCalls = 0;

  /** The slot traffic was on when the double was made. */
  private readonly origin: Slot;

  constructor(options: { active?: Slot; image?: string; behaviour?: DoubleBehaviour } = {}) {
    this.selector = options.active ?? 'blue';
    this.origin = this.selector;
    const live = {
      image: options.image ?? 'registry.internal/detection-api:v2.1.0',
      replicas: 3,
      readyReplicas: 3,
      restarts: 0,
    };
    const idle = { image: 'registry.internal/detection-api:v2.0.0', replicas: 0, readyReplicas: 0, restarts: 0 };
    this.slots = this.selector === 'blue' ? { blue: live, green: idle } : { blue: idle, green: live };
    this.behaviour = options.behaviour ?? {};
  }

  /** Reads of the live state (`describe`) since the last `missProbe`. */
  liveReads = 0;
  private probe: { slot: Slot; backAtRead: number } | null = null;

  /**
   * A pod out of its Service after a missed readiness probe: `slot` has `readyReplicas` ready until
   * the live state's `backAtRead`-th read from now (never, by default), then all its replicas again.
   */
  missProbe(slot: Slot, readyReplicas: number, backAtRead = Infinity): void {
    this.slots[slot].readyReplicas = readyReplicas;
    this.probe = { slot, backAtRead };
    this.liveReads = 0;
  }

  /** The calls as `name slot` strings, without the monitor's per-tick measurements. */
  platformCalls(): string[] {
    return inPreflightOrder(
      this.calls
        .filter((c) => !c.name.startsWith('tick:') && !c.name.startsWith('evidence:'))
        .map((c) => (c.slot ? `${c.name} ${c.slot}` : c.name)),
    );
  }

  /** How many monitor ticks measured the SLOs. */
  get ticks(): number {
    return this.sloCalls;
  }

  /** Resolves once `name` has been called `count` times in all; fails after `timeoutMs`, so a test waiting for a call that never comes says so. */
  async waitForCall(name: string, count = 1, timeoutMs = 120_000): Promise<void> {
    if (this.calls.filter((c) => c.name === name).length >= count) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push({ name, count, resolve })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(
                  `${name} was called ${this.calls.filter((c) => c.name === name).length} times, not ${count}, within ${timeoutMs / 1000} s; calls: ${this.platformCalls().join(', ')}`,
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends every blocked call (tests call it before tearing their worker down). */
  releaseAll(): void {
    for (const release of this.releases) release();
  }

  private record(name: string, slot: Slot | null, request: unknown): void {
    this.calls.push({ name, slot, request });
    const window = monitorWindow();
    if (window) this.lastInWindow.set(window, name);
    const seen = this.calls.filter((c) => c.name === name).length;
    for (const waiter of [...this.waiters]) {
      if (waiter.name === name && seen >= waiter.count) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }

  private async maybeBlock(name: string, progress?: Progress): Promise<void> {
    if (!this.behaviour.block?.includes(name) || this.calls.filter((c) => c.name === name).length > 1) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => progress?.heartbeat({ blocked: name }), 200);
      const done = () => {
        clearInterval(timer);
        this.releases.delete(done);
        resolve();
      };
      this.releases.add(done);
      progress?.signal.addEventListener('abort', () => {
        clearInterval(timer);
        this.releases.delete(done);
        reject(new Error(`${name} cancelled`));
      });
    });
  }

  async describe(target: Target): Promise<LiveState> {
    this.record('describe', null, target);
    this.liveReads += 1;
    if (this.probe && this.liveReads >= this.probe.backAtRead) {
      this.slots[this.probe.slot].readyReplicas = this.slots[this.probe.slot].replicas;
      this.probe = null;
    }
    const state = (slot: Slot) => ({
      slot,
      deployment: target.deployments[slot],
      image: this.slots[slot].image,
      // The platforms read it from the pods' version label, which a deployment sets to the image's tag.
      version: this.slots[slot].image?.split(':').pop() ?? null,
      replicas: this.slots[slot].replicas,
      readyReplicas: this.slots[slot].readyReplicas,
      updatedReplicas: this.slots[slot].readyReplicas,
      availableReplicas: this.slots[slot].readyReplicas,
    });
    return { activeSlot: this.selector, slots: { blue: state('blue'), green: state('green') } };
  }

  async deploySlot(request: DeploySlotRequest) {
    this.record('deploySlot', request.slot, request);
    const slot = this.slots[request.slot];
    const before = { ...slot };
    Object.assign(slot, { image: request.image, replicas: request.replicas, readyReplicas: 0, restarts: 0 });
    return {
      slot: request.slot,
      deployment: request.target.deployments[request.slot],
      image: before.image,
      replicas: before.replicas,
      readyReplicas: before.readyReplicas,
      updatedReplicas: before.readyReplicas,
      availableReplicas: before.readyReplicas,
    };
  }

  /** Writes recorded as `dryRun:<name>` and answered from the slots as they are; none is applied. */
  dryRun(): Platform {
    const slotOf = (request: DeploySlotRequest) => {
      const slot = this.slots[request.slot];
      const state = {
        slot: request.slot,
        deployment: request.target.deployments[request.slot],
        image: slot.image,
        replicas: slot.replicas,
        readyReplicas: slot.readyReplicas,
      };
      return { ...state, updatedReplicas: slot.readyReplicas, availableReplicas: slot.readyReplicas };
    };
    const dryRoute = (name: string, request: RouteRequest, weight: number): RouteReport => {
      this.record(`dryRun:${name}`, request.canary, { ...request, weight });
      return { changed: this.weight !== weight, previous: `${this.weight} %`, previousSlot: this.selector };
    };
    const port: TrafficRouterPort = {
      ...this.router(),
      promote: async (request) => dryRoute('promote', request, 100),
      reset: async (request) => dryRoute('reset', request, 0),
      setWeight: async (request) => dryRoute('setWeight', request, request.weight),
    };
    const writes: Pick<Platform, 'deploySlot' | 'routers'> = {
      deploySlot: async (request) => (this.record('dryRun:deploySlot', request.slot, request), slotOf(request)),
      routers: { kinds: TRAFFIC_ROUTERS, routerFor: () => port },
    };
    return Object.assign(Object.create(this) as Platform, writes);
  }

  async reviewAccess(): Promise<PlanCheck[]> {
    return [
      { kind: 'access', name: 'access', verdict: PlanVerdict.Ok, detail: 'the recording double has no access control' },
    ];
  }

  async checkCapacity(): Promise<PlanCheck[]> {
    return [{ kind: 'capacity', name: 'quota', verdict: PlanVerdict.Ok, detail: 'the recording double has no quota' }];
  }

  async checkEndpoint(request: SmokeRequest): Promise<PlanCheck> {
    this.record('checkEndpoint', request.slot, request);
    return {
      kind: 'smoke',
      name: `smoke endpoint of ${request.slot}`,
      verdict: PlanVerdict.Ok,
      detail: 'the recording double answers for every slot',
    };
  }

  async waitForSlotReady(request: WaitForSlotReadyRequest, progress: Progress) {
    this.record('waitForSlotReady', request.slot, request);
    await this.maybeBlock('waitForSlotReady', progress);
    if (this.behaviour.readinessTimeout) {
      throw ApplicationFailure.create({
        type: ErrorType.ReadinessTimeout,
        message: `0/${request.replicas} replicas of ${request.target.deployments[request.slot]} ready after ${request.timeoutSeconds} s`,
        nonRetryable: true,
      });
    }
    this.slots[request.slot].readyReplicas = request.replicas;
    return { readyReplicas: request.replicas, seconds: 0.5 };
  }

  /**
   * The router port over the double's traffic calls: a promotion is a switch when the workflow's
   * switchTraffic activity makes it, else a weight of 100; a read-back is the switch's or the weight's.
   */
  private router(requested?: TrafficRouter): TrafficRouterPort {
    const weighed = (request: RouteRequest, weight: number) =>
      this.setTrafficWeight({ ...request, router: requested ?? routerOf(request.target), weight }).then(
        (report): RouteReport => ({ ...report, previousSlot: null }),
      );
    return {
      kind: requested ?? 'service-selector',
      smallestStep: () => 1,
      readLive: async () => ({ slot: this.selector, routing: `the double routes to ${this.selector}` }),
      promote: async (request) =>
        activityType() === 'switchTraffic'
          ? { ...(await this.switchTraffic({ target: request.target, slot: request.canary })), previous: '' }
          : await weighed(request, 100),
      reset: async (request) => await weighed(request, 0),
      setWeight: async (request) => await weighed(request, request.weight),
      verifyWeight: async ({ target, stable, canary, weight, timeoutSeconds }, progress) => {
        if (activityType() !== 'verifyTraffic') {
          const router = requested ?? routerOf(target);
          return await this.verifyTrafficWeight({ target, router, stable, canary, weight, timeoutSeconds }, progress);
        }
        const { endpoints, seconds } = await this.verifyTraffic({ target, slot: canary, timeoutSeconds }, progress);
        return { weight: 100, endpoints: { [canary]: endpoints, [stable]: 0 } as Record<Slot, number>, seconds };
      },
    };
  }

  async switchTraffic(request: SwitchTrafficRequest) {
    this.record('switchTraffic', request.slot, request);
    if (request.slot === this.origin && this.selector !== this.origin) {
      const attempt = this.calls.filter((c) => c.name === 'switchTraffic' && c.slot === this.origin).length;
      if (attempt <= (this.behaviour.failSwitchBack ?? 0))
        throw new Error(`connect ECONNREFUSED 127.0.0.1:6443 (switch back, try ${attempt})`);
    }
    const previousSlot = this.selector;
    this.selector = request.slot;
    return { changed: previousSlot !== request.slot, previousSlot };
  }

  async verifyTraffic(request: VerifyTrafficRequest, progress: Progress) {
    this.record('verifyTraffic', request.slot, request);
    await this.maybeBlock('verifyTraffic', progress);
    return { endpoints: this.slots[request.slot].readyReplicas, seconds: 0.1 };
  }

  async setTrafficWeight(request: SetWeightRequest) {
    this.record('setTrafficWeight', request.canary, request);
    await this.maybeBlock('setTrafficWeight');
    const previous = `${this.weight} %`;
    const changed = this.weight !== request.weight;
    this.weight = request.weight;
    if (request.weight <= 0) this.selector = request.stable;
    if (request.weight >= 100) this.selector = request.canary;
    return { changed, previous };
  }

  async verifyTrafficWeight(request: VerifyWeightRequest, progress: Progress): Promise<WeightVerification> {
    this.record('verifyTrafficWeight', request.canary, request);
    await this.maybeBlock('verifyTrafficWeight', progress);
    return {
      weight: this.weight,
      endpoints: {
        [request.stable]: this.slots[request.stable].readyReplicas,
        [request.canary]: this.slots[request.canary].readyReplicas,
      } as Record<Slot, number>,
      seconds: 0.1,
    };
  }

  async readRestarts(request: ReadRestartsRequest): Promise<number> {
    // The first read after traffic was verified is the monitor's baseline; later ones are ticks.
    // In a monitor window's activity, a tick reads the SLOs first, then the restarts beside them.
    const lastSwitch = this.calls.map((c) => c.name).lastIndexOf('verifyTraffic');
    const window = monitorWindow();
    const monitoring = window
      ? (this.lastInWindow.get(window) ?? '').startsWith('tick:evaluate')
      : this.calls.slice(lastSwitch + 1).some((c) => c.name.endsWith('readRestarts'));
    this.record(monitoring ? 'tick:readRestarts' : 'readRestarts', request.slot, request);
    const call = this.calls.filter((c) => c.name === 'tick:readRestarts').length;
    if (monitoring && this.behaviour.restartsAt) this.slots[request.slot].restarts = this.behaviour.restartsAt(call);
    return this.slots[request.slot].restarts;
  }

  async scaleSlot(request: ScaleSlotRequest, progress: Progress) {
    this.record('scaleSlot', request.slot, request);
    await this.maybeBlock('scaleSlot', progress);
    if (this.behaviour.failScaleDown && request.replicas === 0) {
      throw ApplicationFailure.create({
        type: ErrorType.Forbidden,
        message: `serviceaccount bluegreen cannot patch deployments in namespace ${request.target.namespace}`,
        nonRetryable: true,
      });
    }
    const slot = this.slots[request.slot];
    slot.replicas = request.replicas;
    slot.readyReplicas = request.replicas;
    if (request.image !== undefined) slot.image = request.image;
  }

  async runSmokeSuite(request: SmokeRequest, progress: Progress): Promise<SmokeReport> {
    this.record('runSmokeSuite', request.slot, request);
    await this.maybeBlock('runSmokeSuite', progress);
    const names = ['health', 'ready', 'api-happy-path', 'accuracy-flag', 'offline-queue', 'metrics', 'latency'];
    const checks = names.map((name) =>
      name === this.behaviour.failSmokeCheck
        ? { name, verdict: 'failed' as const, latencyMs: 4, message: `${name}: expected 200, got 500` }
        : { name, verdict: 'passed' as const, latencyMs: 3, message: 'ok' },
    );
    return {
      endpoint: `http://${request.target.deployments[request.slot]}:8000`,
      passed: !this.behaviour.failSmokeCheck,
      checks,
    };
  }

  async readScrapeInterval(request: ScrapeIntervalRequest): Promise<ScrapeIntervalReport> {
    this.record('readScrapeInterval', request.slot, request);
    const seconds = this.behaviour.scrapeIntervalSeconds === undefined ? 1 : this.behaviour.scrapeIntervalSeconds;
    return { seconds, source: seconds === null ? 'the test double cannot tell' : 'the test double' };
  }

  /** What a slot's pods would show: one log line per replica, an event per pod, the image diff. */
  async collectEvidence(request: CollectEvidenceRequest): Promise<SlotEvidence> {
    this.record('evidence:collectEvidence', request.slot, request);
    if (this.behaviour.failEvidence) {
      throw ApplicationFailure.create({
        type: ErrorType.Forbidden,
        message: 'read the log of a pod: pods "x" is forbidden: cannot get resource "pods/log"',
        nonRetryable: true,
      });
    }
    const slot = this.slots[request.slot];
    const pods = Array.from(
      { length: slot.replicas },
      (_, i) => `${request.target.deployments[request.slot]}-${i + 1}`,
    );
    return {
      deployment: request.target.deployments[request.slot],
      containers: pods.map((pod) => ({
        pod,
        container: request.target.container,
        ready: true,
        restarts: slot.restarts,
        log: [`serving ${slot.image}`],
        previousLog: null,
        logError: null,
      })),
      events: pods.map((pod) => ({
        at: null,
        type: 'Normal',
        reason: 'Started',
        object: `Pod/${pod}`,
        message: `Started container with ${slot.image}`,
        count: 1,
      })),
      templateDiff:
        slot.image === this.slots[request.peer].image
          ? []
          : [`image: ${JSON.stringify(this.slots[request.peer].image)} → ${JSON.stringify(slot.image)}`],
      problems: [],
    };
  }

  async rangeSlos(request: RangeSlosRequest): Promise<SloSeries[]> {
    this.record('evidence:rangeSlos', request.slot, request);
    return request.slos.map((slo) => ({
      name: slo.name,
      query: slo.query,
      comparison: slo.comparison,
      threshold: slo.threshold,
      gate: slo.gate,
      points: [],
      error: null,
    }));
  }

  async evaluateSlos(request: EvaluateSlosRequest): Promise<Measurement[]> {
    // Right after describe (beside the scrape interval), the measurement is preflight's stability check of the active slot.
    const previous = [...this.calls]
      .reverse()
      .find((c) => !c.name.startsWith('tick:') && !c.name.startsWith('evidence:'))?.name;
    if (previous === 'describe' || previous === 'readScrapeInterval') {
      this.record('evaluateActiveSlos', request.slot, request);
      return this.judge(request, { ...HEALTHY_VALUES, ...(this.behaviour.activeSloValues?.() ?? {}) });
    }
    // A canary measures the slot traffic came from too (its stable), beside the new one.
    const ofStable = request.slot === this.origin;
    this.record(ofStable ? 'tick:evaluateStableSlos' : 'tick:evaluateSlos', request.slot, request);
    if (!ofStable) await this.maybeBlock('tick:evaluateSlos');
    const call = ofStable ? this.sloCalls : ++this.sloCalls;
    const requests = this.behaviour.requests?.(call) ?? { canary: 500, stable: 9500 };
    return this.judge(request, {
      ...HEALTHY_VALUES,
      requests: ofStable ? requests.stable : requests.canary,
      ...((ofStable ? this.behaviour.stableSloValues?.(call) : this.behaviour.sloValues?.(call)) ?? {}),
    });
  }

  private judge(request: EvaluateSlosRequest, values: Partial<Record<string, number | null>>): Measurement[] {
    return request.slos.map((slo) => {
      const value = values[slo.name] ?? null;
      return {
        name: slo.name,
        value,
        comparison: slo.comparison,
        threshold: slo.threshold,
        gate: slo.gate,
        result: judgeValue(value, slo.comparison, slo.threshold),
      };
    });
  }
}

/** The activity the call comes from, or null outside one. */
function activityType(): string | null {
  try {
    return Context.current().info.activityType;
  } catch {
    return null;
  }
}

/** The monitor window's activity the call comes from (its workflow, id and attempt), or null. */
function monitorWindow(): string | null {
  try {
    const { activityType, workflowExecution, activityId, attempt } = Context.current().info;
    return activityType === 'monitorWindow' ? `${workflowExecution?.workflowId}/${activityId}/${attempt}` : null;
  } catch {
    return null;
  }
}
