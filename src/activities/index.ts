/**
 * The activities the workflow calls, built from the platform and gates the worker was configured
 * with. Each is short and delegates to its port; waiting calls are wired to the heartbeat, so a
 * cancelled activity (an abort) stops waiting and a dead worker is noticed within the heartbeat
 * timeout.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ErrorType } from '../shared/errors.js';
import type { DeploymentEvent } from '../shared/deployment-event.js';
import { parseDeploymentSpec, SpecValidationError } from '../deployment-spec/deployment-spec.js';
import type { DeploymentSpec, Slo } from '../deployment-spec/deployment-spec.js';
import { boundEvidence } from '../shared/evidence.js';
import { judgeCanaryMeasurements, restartsMeasurement } from '../shared/monitor-window.js';
import type { MonitorWindowResult, MonitorWindowState } from '../shared/monitor-window.js';
import { runMonitorWindow, systemClock } from './monitor-window.js';
import { settledLiveState } from './live-state.js';
import { planChecks } from './plan-checks.js';
import { trafficThrough } from './traffic.js';
import { targetOf } from '../shared/target.js';
import { isHealthySlot } from '../shared/slots.js';
import { replicaRatioMismatch } from '../plan/plan.js';
import { isGrpcServiceError } from '@temporalio/client';
import { pollerCount } from '../client/deployment-client.js';

/** gRPC's status for a method the server does not implement. */
const GRPC_UNIMPLEMENTED = 12;
import type { PlanReport } from '../plan/plan.js';
import type { Clock } from './monitor-window.js';
import type { Evidence } from '../shared/evidence.js';
import type {
  CanaryMeasurements,
  CaptureEvidenceRequest,
  DeploySlotRequest,
  EvaluateSlosRequest,
  MeasureCanaryRequest,
  MeasureSlotRequest,
  MonitorWindowRequest,
  Notifier,
  Platform,
  PreflightReport,
  Progress,
  ReadRestartsRequest,
  ScrapeIntervalRequest,
  ScaleSlotRequest,
  SetWeightRequest,
  SlotMeasurements,
  SloSource,
  SmokeRequest,
  SmokeRunner,
  SwitchTrafficRequest,
  Target,
  VerifyTrafficRequest,
  VerifyWeightRequest,
  WaitForSlotReadyRequest,
} from './contract.js';

/** The name the requests query is measured under, beside the SLOs. */
const REQUESTS = 'requests';

export interface ActivityDependencies {
  platform: Platform;
  smoke: SmokeRunner;
  slo: SloSource;
  /** Where notifications go; without one, `notify` records that none is configured. */
  notifier?: Notifier | null;
  /** The monitor window's time: the system's, except under a test server that skips time. */
  clock?: Clock;
}

/** The heartbeat and cancellation of the running activity, as the ports see them. */
function currentProgress(): Progress {
  const context = Context.current();
  return {
    heartbeat: (details?: unknown) => context.heartbeat(details),
    signal: context.cancellationSignal,
  };
}

/**
 * Runs a write or a short read, heartbeating every second while it is in flight: a call lost with
 * its worker is retried once the heartbeat timeout (5 s) has passed, not its start-to-close
 * (30 s), while a slow call on a live worker (an API server slow for one request) goes on beating.
 */
async function heartbeating<T>(call: () => Promise<T>): Promise<T> {
  const context = Context.current();
  const beating = setInterval(() => context.heartbeat(), 1_000);
  try {
    return await call();
  } finally {
    clearInterval(beating);
  }
}

/** The spec parsed, and its router one the platform can route by; a bad spec is refused for good. */
function validated(spec: unknown, platform: Platform): DeploymentSpec {
  let parsed;
  try {
    parsed = parseDeploymentSpec(spec);
  } catch (error) {
    if (error instanceof SpecValidationError) {
      throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: error.message, nonRetryable: true });
    }
    throw error;
  }
  const { kinds } = platform.routers;
  if (!kinds.includes(parsed.traffic.router)) {
    const message =
      `invalid deployment spec:\n  - traffic.router: the ${platform.name} platform cannot route by ` +
      `'${parsed.traffic.router}' (it can: ${kinds.join(', ')})`;
    throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message, nonRetryable: true });
  }
  return parsed;
}

export function createActivities({ platform, smoke, slo, notifier = null, clock = systemClock }: ActivityDependencies) {
  const traffic = trafficThrough(platform.routers);
  /** A slot's SLOs and its restarts, read side by side. */
  const measureOne = async (request: MeasureSlotRequest): Promise<SlotMeasurements> => {
    const [slos, restarts] = await Promise.all([
      slo.evaluateSlos(request),
      platform.readRestarts({ target: request.target, slot: request.slot }),
    ]);
    return { slos, restarts };
  };
  /** Both slots' SLOs over the same window, the requests each served, and (when asked) the canary's restarts. */
  const measureBoth = async (request: MeasureCanaryRequest): Promise<CanaryMeasurements> => {
    const { target, window, slos } = request;
    const requests: Slo = { name: REQUESTS, query: request.requestsQuery, comparison: '>=', threshold: 0, gate: false };
    const [canary, stable, canaryRestarts] = await Promise.all([
      slo.evaluateSlos({
        target,
        slot: request.canary,
        version: request.version,
        run: request.run,
        window,
        slos: [...slos, requests],
      }),
      slo.evaluateSlos({
        target,
        slot: request.stable,
        version: request.stableVersion,
        run: request.stableRun,
        window,
        slos: [...slos, requests],
      }),
      request.withRestarts ? platform.readRestarts({ target, slot: request.canary }) : undefined,
    ]);
    const count = (measurements: typeof canary) => measurements.find((m) => m.name === REQUESTS)?.value ?? null;
    const withoutCount = (measurements: typeof canary) => measurements.filter((m) => m.name !== REQUESTS);
    const measured = {
      canary: withoutCount(canary),
      stable: withoutCount(stable),
      canaryRequests: count(canary),
      stableRequests: count(stable),
    };
    return canaryRestarts === undefined ? measured : { ...measured, canaryRestarts };
  };
  return {
    /**
     * Validates a spec again inside the worker, so a deployment started without our client (say,
     * with `temporal workflow start`) is rejected with field paths before anything changes.
     */
    async validateSpec(spec: unknown) {
      // Well within the heartbeat timeout: nothing to wait for.
      return validated(spec, platform);
    },
    /**
     * Preflight's reads in one call (src/workflows/run/phases.ts): the spec validated, the live
     * state, the active slot's gated SLOs and the scrape interval, side by side where they can be.
     * A refused spec is an answer (`invalid`); a failure to measure the SLOs is kept, not thrown.
     */
    async preflight(spec: unknown): Promise<PreflightReport> {
      return await heartbeating(async () => {
        let valid: DeploymentSpec;
        try {
          valid = validated(spec, platform);
        } catch (error) {
          if (error instanceof ApplicationFailure && error.type === ErrorType.InvalidInput)
            return { invalid: error.message };
          throw error;
        }
        const target = targetOf(valid);
        const live = await settledLiveState(platform, target, clock, currentProgress());
        const active = live.slots[live.activeSlot];
        const mismatch = replicaRatioMismatch(valid, active);
        if (mismatch) return { invalid: `invalid deployment spec:\n  - ${mismatch}` };
        // An unhealthy live slot stops preflight before anything is measured.
        if (!isHealthySlot(active))
          return { spec: valid, live, stability: null, scrape: null, notifies: notifier !== null };
        const gated = valid.monitor.slos.filter((s) => s.gate);
        const [stability, scrape] = await Promise.all([
          gated.length === 0
            ? null
            : slo
                .evaluateSlos({
                  target,
                  slot: active.slot,
                  ...(active.version ? { version: active.version } : {}),
                  run: active.run ?? '',
                  window: valid.monitor.window,
                  slos: gated,
                })
                .then(
                  (measurements) => ({ measurements }),
                  (error: unknown) => ({ error: (error as Error).message }),
                ),
          valid.monitor.slos.length === 0 ? null : slo.readScrapeInterval({ target, slot: live.activeSlot }),
        ]);
        return { spec: valid, live, stability, scrape, notifies: notifier !== null };
      });
    },
    async describe(target: Target) {
      return await heartbeating(() => platform.describe(target));
    },
    async deploySlot(request: DeploySlotRequest) {
      return await heartbeating(() => platform.deploySlot(request));
    },
    async waitForSlotReady(request: WaitForSlotReadyRequest) {
      return await platform.waitForSlotReady(request, currentProgress());
    },
    async switchTraffic(request: SwitchTrafficRequest) {
      return await heartbeating(() => traffic.switchTraffic(request));
    },
    async verifyTraffic(request: VerifyTrafficRequest) {
      return await traffic.verifyTraffic(request, currentProgress());
    },
    async setTrafficWeight(request: SetWeightRequest) {
      return await heartbeating(() => traffic.setTrafficWeight(request));
    },
    async verifyTrafficWeight(request: VerifyWeightRequest) {
      return await traffic.verifyTrafficWeight(request, currentProgress());
    },
    async readRestarts(request: ReadRestartsRequest) {
      return await heartbeating(() => platform.readRestarts(request));
    },
    async scaleSlot(request: ScaleSlotRequest) {
      return await platform.scaleSlot(request, currentProgress());
    },
    async runSmokeSuite(request: SmokeRequest) {
      return await smoke.runSmokeSuite(request, currentProgress());
    },
    async readScrapeInterval(request: ScrapeIntervalRequest) {
      return await heartbeating(() => slo.readScrapeInterval(request));
    },
    async evaluateSlos(request: EvaluateSlosRequest) {
      return await slo.evaluateSlos(request);
    },
    /**
     * One monitor tick: the slot's SLOs and its restarts, read side by side in one call, so a
     * tick costs the workflow one activity. Throws when either read does (an Error tick).
     */
    async measureSlot(request: MeasureSlotRequest): Promise<SlotMeasurements> {
      return await measureOne(request);
    },
    /**
     * A whole monitor window (src/activities/monitor-window.ts): a tick every interval, the SLOs
     * and restarts read side by side, until a verdict; resumed from the last heartbeat on a retry.
     */
    async monitorWindow(request: MonitorWindowRequest): Promise<MonitorWindowResult> {
      const { target, slot, version, run, window, slos, restarts, canary: rules } = request;
      const context = Context.current();
      return await runMonitorWindow(request, {
        readRestarts: async () => await platform.readRestarts({ target, slot }),
        measure: async (baseline) => {
          if (!rules) {
            const measured = await measureOne({ target, slot, version, run, window, slos });
            return {
              measurements: [...measured.slos, restartsMeasurement(measured.restarts, baseline, restarts.limit)],
            };
          }
          const both = await measureBoth({
            ...{
              target,
              canary: slot,
              stable: rules.stable,
              version,
              stableVersion: rules.stableVersion,
              run,
              stableRun: rules.stableRun,
            },
            ...{ window, slos, requestsQuery: rules.requestsQuery, withRestarts: true },
          });
          return judgeCanaryMeasurements(rules, {
            ...both,
            canary: [...both.canary, restartsMeasurement(both.canaryRestarts ?? 0, baseline, restarts.limit)],
          });
        },
        clock,
        progress: currentProgress(),
        cancelRequested: () => context.cancellationDetails?.cancelRequested ?? false,
        resumeFrom: context.info.heartbeatDetails as MonitorWindowState | undefined,
      });
    },
    /**
     * One canary tick: the SLOs of both slots over the same window (the canary judged against
     * the stable where its SLO says so, and a breach on both told apart from the canary's own),
     * and the requests each served. Throws only when the source does (counted as an Error tick).
     */
    async measureCanary(request: MeasureCanaryRequest): Promise<CanaryMeasurements> {
      return await measureBoth(request);
    },
    /**
     * A rollback's evidence, read before the failing slot is scaled down: what the platform holds
     * (logs, events, restarts, the template diff) and each SLO's series over the deployment,
     * within `maxBytes`. Only a refusal (403) or an unreachable platform throws.
     */
    async captureEvidence(request: CaptureEvidenceRequest): Promise<Evidence> {
      const to = new Date();
      const start = Math.floor(Date.parse(request.from) / 1000);
      const end = Math.ceil(to.getTime() / 1000);
      const [gathered, series] = await Promise.all([
        platform.collectEvidence({
          target: request.target,
          slot: request.slot,
          peer: request.peer,
          tailLines: request.tailLines,
        }),
        slo.rangeSlos({
          target: request.target,
          slot: request.slot,
          version: request.version,
          run: request.run,
          window: request.window,
          slos: request.slos,
          start,
          end,
          // About 300 points whatever the span, never finer than a second.
          stepSeconds: Math.max(1, Math.ceil((end - start) / 300)),
        }),
      ]);
      const evidence: Evidence = {
        collectedAt: to.toISOString(),
        slot: request.slot,
        image: request.image,
        version: request.version,
        switchedAt: request.switchedAt,
        from: request.from,
        to: to.toISOString(),
        breach: request.breach,
        platform: gathered,
        series,
      };
      return boundEvidence(evidence, request.maxBytes);
    },
    /**
     * A plan's reads and dry-run writes (src/activities/plan-checks.ts), nothing changed: what a
     * deployment of `spec` would find and whether each of its steps would be let through.
     */
    async planChecks(spec: DeploymentSpec): Promise<PlanReport> {
      return await heartbeating(() => planChecks(spec, { platform, smoke, slo, clock }, currentProgress()));
    },
    /**
     * How many workers polled a task queue for workflow tasks lately: a release train asks about a
     * cluster's queue when its deployment is slow, through the worker's own Temporal client. Null
     * when the server cannot tell (the time-skipping test server does not implement the question).
     */
    async taskQueuePollers(taskQueue: string): Promise<number | null> {
      try {
        return await pollerCount(Context.current().client, taskQueue);
      } catch (error) {
        if (isGrpcServiceError(error) && error.code === GRPC_UNIMPLEMENTED) return null;
        throw error;
      }
    },
    /** Never throws: a notification that cannot be delivered must not change a deployment. */
    async notify(event: DeploymentEvent): Promise<string> {
      return notifier ? await heartbeating(() => notifier.notify(event)) : 'no webhook configured';
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
