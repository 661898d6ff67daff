/**
 * The blue-green deployment as a durable workflow: the seed's five phases, each one call, with a
 * LIFO stack of compensations that runs, uncancellable, on a failed gate, an SLO breach, an error
 * that cannot be retried, or an operator's abort.
 *
 * Deterministic code only: no I/O, no Node built-ins, activity types imported as types. Time comes
 * from the SDK's deterministic `Date`; waits are timers and conditions, visible in the history.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  metricMeter,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import type { LiveState, SlotState, Target } from '../activities/contract.js';
import type { DeploymentEvent } from '../notifications/webhook-notifier.js';
import { AnalysisResult, formatValue, judgeMonitorTick, judgeTick, judgeValue, MonitorDecision, monitorWarmUp, promDurationSeconds } from '../shared/analysis.js';
import type { Measurement, MonitorCounters, WarmUp } from '../shared/analysis.js';
import {
  ABORT_AFTER_CLEANUP_MESSAGE,
  DeploymentFailureType,
  Gate,
  Outcome,
  Phase,
  PHASE_MESSAGES,
  RollbackReason,
} from '../shared/deployment-status.js';
import type {
  AbortRequest,
  ApproveRequest,
  DeploymentResult,
  DeploymentStatus,
  MonitorProgress,
  OperatorAnswer,
} from '../shared/deployment-status.js';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES } from '../shared/errors.js';
import { SearchAttribute } from '../shared/search-attributes.js';
import { otherSlot } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import { targetOf } from '../shared/target.js';
import type { DeploymentSpec } from '../spec/deployment-spec.js';
import { abortSignal, abortUpdate, approveSignal, approveUpdate, statusQuery } from './definitions.js';

type Activities = ReturnType<typeof createActivities>;

/**
 * Deployment metrics, exported by the worker's runtime (replay-safe: not re-counted on replay).
 * Made inside the workflow: the meter exists only in a workflow context, and clients import this
 * module for its types and function name.
 */
function deploymentMetrics() {
  return {
    started: metricMeter.createCounter('bluegreen_deployments_started', 'deployments', 'Deployments started'),
    finished: metricMeter.createCounter('bluegreen_deployments_finished', 'deployments', 'Deployments ended, by outcome and reason'),
    phaseDuration: metricMeter.createHistogram('bluegreen_phase_duration', 'int', 'ms', 'Time spent in each phase'),
  };
}

/** Changes to the workflow's commands, guarded so that running and recorded deployments replay. */
const Patch = {
  /** The outcome is written to the memo when the deployment ends. */
  OutcomeInMemo: 'outcome-in-memo',
  /** People are notified when a gate waits and when the deployment ends. */
  Notifications: 'notifications',
  /** A cancelled write is waited for: a compensation never runs beside its own write. */
  SettledWrites: 'settled-writes',
  /** A restore retries until it succeeds (or is refused for good), reported stuck after a while. */
  PersistentRollback: 'persistent-rollback',
  /** A deployment that did not go live ends as a workflow failure carrying its result. */
  FailedExecution: 'failed-execution',
  /**
   * The monitor reads the scrape interval in preflight, counts missing data only after a warm-up
   * and only in a row, and keeps measuring while paused for missing data.
   */
  ScrapeAwareMonitor: 'scrape-aware-monitor',
} as const;

/** A restore that outlasts this (when the spec, recorded before the field existed, has none). */
const DEFAULT_STUCK_AFTER_SECONDS = 120;

/** The name of the restart measurement recorded beside the SLOs at every monitor tick. */
export const RESTARTS_MEASUREMENT = 'pod-restarts';

/** A phase that cannot go on: carries why, for the rollback and the result. */
class PhaseFailure extends Error {
  constructor(
    readonly reason: RollbackReason,
    message: string,
    readonly failedCheck: string | null = null,
  ) {
    super(message);
    this.name = 'PhaseFailure';
  }
}

const RETRY = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '10s',
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
} as const;

/**
 * Activity options per kind of call: reads, writes, long waits, the SLO tick, restores and cleanup.
 *
 * Every kind names its `cancellationType`: left unset, the SDK sends TRY_CANCEL (whatever its doc
 * comment says), so a cancelled call's promise rejects at once while the call goes on running on
 * the worker. That is right for a read or a wait, which change nothing, and wrong for a write: an
 * abort during a slow selector PATCH would run the switch-back beside it, read the old selector,
 * write nothing, and then the PATCH lands on a slot the rollback is scaling to zero. Writes wait
 * for the call to end (WAIT_CANCELLATION_COMPLETED); the compensation then reads what is in effect.
 */
function activityOptions(spec: DeploymentSpec, persistentRollback = false): Record<CallKind, ActivityOptions> {
  // Waiting activities heartbeat at least every poll (at most 2 s apart) and after every smoke
  // check: a worker that died is noticed this soon, and its activity retried on another.
  // (The constructor builds these from the raw input, before validateSpec: smoke may be absent.)
  const heartbeatTimeout = `${Math.max(10, (spec.smoke?.timeoutSeconds ?? 5) + 5)}s`;
  const { TRY_CANCEL, WAIT_CANCELLATION_COMPLETED } = ActivityCancellationType;
  const cleanup: ActivityOptions = {
    startToCloseTimeout: '5m',
    heartbeatTimeout,
    retry: { ...RETRY, maximumAttempts: 10 },
    // Runs uncancellable; named all the same, as a write.
    cancellationType: WAIT_CANCELLATION_COMPLETED,
  };
  return {
    /** Reads: short, retried a few times; a cancelled read may be abandoned. */
    quick: { startToCloseTimeout: '30s', retry: { ...RETRY, maximumAttempts: 5 }, cancellationType: TRY_CANCEL },
    /** Single writes (the new image, the selector): as reads, but a cancelled write is waited for. */
    write: { startToCloseTimeout: '30s', retry: { ...RETRY, maximumAttempts: 5 }, cancellationType: WAIT_CANCELLATION_COMPLETED },
    /** Waiting for replicas: as long as the readiness timeout, heartbeating; stops at once on cancel. */
    readiness: {
      startToCloseTimeout: `${spec.readinessTimeoutSeconds + 30}s`,
      heartbeatTimeout,
      retry: { ...RETRY, maximumAttempts: 3 },
      cancellationType: TRY_CANCEL,
    },
    /** Endpoint convergence and the smoke suite: bounded waits that change nothing. */
    waiting: { startToCloseTimeout: '5m', heartbeatTimeout, retry: { ...RETRY, maximumAttempts: 3 }, cancellationType: TRY_CANCEL },
    /** One SLO tick: never retried, because a failed measurement is counted, not hidden. */
    measure: { startToCloseTimeout: '15s', retry: { maximumAttempts: 1 }, cancellationType: TRY_CANCEL },
    /**
     * Compensation: it restores service, so it keeps trying through an API server's outage
     * (unlimited attempts, backoff capped at 10 s, so it lands within about 10 s of the API's return)
     * until it succeeds or is refused for good.
     */
    restore: persistentRollback
      ? { ...cleanup, retry: { ...RETRY } } // no maximumAttempts: unlimited
      : cleanup,
    /** Cleanup after a success: retried, then reported degraded; never a rollback. */
    cleanup,
  };
}

type CallKind = 'quick' | 'write' | 'readiness' | 'waiting' | 'measure' | 'restore' | 'cleanup';

/** Undo steps, pushed as each change is made and run last-in first-out. */
class Compensations {
  private readonly steps: { name: string; run: () => Promise<void> }[] = [];

  push(name: string, run: () => Promise<void>): void {
    this.steps.push({ name, run });
  }

  get isEmpty(): boolean {
    return this.steps.length === 0;
  }

  clear(): void {
    this.steps.length = 0;
  }

  /**
   * Runs every step, newest first. Stops at the first step that fails: undoing further (say,
   * scaling the new slot down while the selector still points at it) would make things worse.
   * Returns the failed step's description, or null when everything was undone.
   */
  async runAll(onStep: (name: string) => void = () => undefined): Promise<string | null> {
    while (this.steps.length > 0) {
      const step = this.steps[this.steps.length - 1]!;
      onStep(step.name);
      try {
        await step.run();
      } catch (error) {
        return `${step.name}: ${describeError(error)}`;
      }
      this.steps.pop();
    }
    return null;
  }
}

/** The innermost message of an activity failure, for people. */
function describeError(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return describeError(error.cause);
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Maps an activity's permanent failure to the reason the deployment rolls back. */
function failureFrom(error: unknown, fallback: RollbackReason): PhaseFailure {
  if (error instanceof PhaseFailure) return error;
  const activity = error instanceof ActivityFailure ? error.activityType : null;
  const cause = error instanceof ActivityFailure ? error.cause : error;
  const type = cause instanceof ApplicationFailure ? cause.type : null;
  const reason =
    type === ErrorType.ReadinessTimeout
      ? RollbackReason.ReadinessTimeout
      : type === ErrorType.TrafficNotVerified
        ? RollbackReason.TrafficNotVerified
        : fallback;
  return new PhaseFailure(reason, describeError(error), activity ?? null);
}

function now(): string {
  return new Date().toISOString();
}

/** One run of the procedure; the exported workflow function below reads its recipe. */
class BlueGreenDeployment {
  private spec: DeploymentSpec;
  private options: Record<CallKind, ActivityOptions>;
  private readonly undo = new Compensations();
  private readonly forward = new CancellationScope();
  private readonly status: DeploymentStatus;
  private readonly warnings: string[] = [];
  private readonly metrics = deploymentMetrics();
  private live: LiveState | null = null;
  private target: Target | null = null;
  private abortRequested = false;
  private cleanupStarted = false;
  private approved = false;
  private persistentRollback = false;
  /** Set in preflight where the scrape-aware monitor applies (see Patch.ScrapeAwareMonitor). */
  private warmUp: WarmUp | null = null;

  constructor(spec: DeploymentSpec) {
    this.spec = spec;
    this.options = activityOptions(spec);
    this.status = {
      app: spec.app,
      namespace: spec.namespace,
      image: spec.image,
      version: spec.version,
      phase: Phase.Preflight,
      message: PHASE_MESSAGES.Preflight,
      activeSlot: null,
      idleSlot: null,
      fromSlot: null,
      toSlot: null,
      awaiting: null,
      abort: null,
      rejectedAborts: [],
      smoke: null,
      monitor: null,
      transitions: [{ phase: Phase.Preflight, at: now(), message: PHASE_MESSAGES.Preflight }],
    };
    this.metrics.started.add(1, { app: spec.app, namespace: spec.namespace });
    setHandler(statusQuery, () => this.status);
    // The same rules answer the Update (refused: an error to the sender, nothing recorded) and the
    // signal (recorded by Temporal even with no worker; a refused one is kept in the status).
    setHandler(abortUpdate, (request) => this.takeAbort(request), { validator: (_request: AbortRequest) => refuseWith(this.abortRefusal()) });
    setHandler(approveUpdate, (request) => this.takeApproval(request), { validator: (request) => refuseWith(this.approvalRefusal(request)) });
    setHandler(abortSignal, (request) => {
      const refusal = this.abortRefusal();
      if (refusal === null) {
        this.takeAbort(request);
        return;
      }
      const entry = { reason: request.reason || 'no reason given', by: request.by || 'unknown', at: now(), message: refusal };
      this.status.rejectedAborts.push(entry);
      log.warn(refusal, entry);
    });
    setHandler(approveSignal, (request) => {
      const refusal = this.approvalRefusal(request);
      if (refusal === null) this.takeApproval(request);
      else log.warn(`approval ignored: ${refusal}`, { gate: request.gate, by: request.by });
    });
  }

  /** The recipe: one phase per call; any failure leaves through the rollback. */
  async run(): Promise<DeploymentResult> {
    try {
      await this.forward.run(async () => {
        await this.preflight();
        await this.deployIdleSlot();
        await this.smokeTestIdleSlot();
        await this.awaitApproval(Gate.BeforeSwitch, this.spec.gates.approveBeforeSwitch);
        await this.switchServiceSelector();
        await this.monitorSlos();
        await this.awaitApproval(Gate.BeforeCleanup, this.spec.gates.approveBeforeCleanup);
      });
    } catch (error) {
      return await this.rollBack(this.failureOf(error));
    }
    if (this.abortRequested) {
      return await this.rollBack(new PhaseFailure(RollbackReason.Aborted, this.abortMessage()));
    }
    return await this.scaleDownOldSlot();
  }

  // Phase 0: validate the spec and read what is live. Nothing is changed here.
  private async preflight(): Promise<void> {
    try {
      this.spec = await this.act('quick', 'validate the spec').validateSpec(this.spec);
    } catch (error) {
      throw new PhaseFailure(RollbackReason.InvalidSpec, describeError(error), 'spec');
    }
    this.options = activityOptions(this.spec);
    this.target = targetOf(this.spec);
    let live: LiveState;
    try {
      live = await this.act('quick', `read ${this.target.service} and both slots`).describe(this.target);
    } catch (error) {
      throw failureFrom(error, RollbackReason.PreflightFailed);
    }
    this.live = live;
    const active = live.slots[live.activeSlot];
    const idle = otherSlot(live.activeSlot);
    Object.assign(this.status, { activeSlot: live.activeSlot, idleSlot: idle, fromSlot: live.activeSlot, toSlot: idle });
    if (!isHealthy(active)) {
      throw new PhaseFailure(
        RollbackReason.PreflightFailed,
        `the active slot ${active.slot} (${active.deployment}) is not healthy: ${active.readyReplicas}/${active.replicas} replicas ready`,
        'active-slot-health',
      );
    }
    if (patched(Patch.ScrapeAwareMonitor)) await this.planWarmUp(live.activeSlot);
  }

  /**
   * How long the monitor must wait before missing data means anything: from the scrape interval
   * Prometheus reports (or the spec's `initialDelaySeconds`). The new slot has no pods yet, so it
   * is read from the live slot's targets, which the same scrape configuration covers (the same
   * Deployment template); failing that, from every active target; failing that, Prometheus's
   * default is assumed, the longer wait. Its warnings (a window or a duration too short for that
   * interval) are given now, before anything changes, and kept in the result.
   */
  private async planWarmUp(live: Slot): Promise<void> {
    const monitor = this.spec.monitor;
    let scrape: { seconds: number | null; source: string } = { seconds: null, source: 'no SLO is measured' };
    if (monitor.slos.length > 0) {
      try {
        scrape = await this.act('quick', `scrape interval of ${live}'s targets`).readScrapeInterval({ target: this.target!, slot: live });
      } catch (error) {
        scrape = { seconds: null, source: describeError(error) };
      }
      if (scrape.seconds === null && monitor.initialDelaySeconds === undefined) {
        this.warnings.push(`the scrape interval could not be read (${scrape.source}): the warm-up assumes Prometheus's default`);
      }
    }
    this.warmUp = monitorWarmUp({
      windowSeconds: promDurationSeconds(monitor.window),
      intervalSeconds: monitor.intervalSeconds,
      durationSeconds: monitor.durationSeconds,
      scrapeIntervalSeconds: scrape.seconds,
      initialDelaySeconds: monitor.initialDelaySeconds,
    });
    if (monitor.slos.length > 0) this.warnings.push(...this.warmUp.warnings);
    for (const warning of this.warnings) log.warn(warning);
  }

  // Phase 1: the new image on the idle slot, scaled up, every replica Ready.
  private async deployIdleSlot(): Promise<void> {
    const { target, idle, idleBefore } = this.slots();
    this.enterPhase(Phase.Deploying, `deploying ${this.spec.image} to ${idle} (${target.deployments[idle]})`);
    // Pushed before the write: a deploy cancelled mid-call may still have landed, and restoring
    // the snapshot taken in preflight is idempotent.
    this.undo.push(`restore ${idle} to ${idleBefore.image ?? 'no image'} x${idleBefore.replicas}`, async () => {
      await this.act('restore', `restore ${idle} to ${idleBefore.image ?? 'no image'} x${idleBefore.replicas}`).scaleSlot({
        target,
        slot: idle,
        replicas: idleBefore.replicas,
        image: idleBefore.image,
      });
    });
    try {
      await this.act('write', `deploy ${this.spec.version} to ${idle} x${this.spec.replicas}`).deploySlot({
        target,
        slot: idle,
        image: this.spec.image,
        version: this.spec.version,
        replicas: this.spec.replicas,
      });
      const ready = await this.act('readiness', `wait for ${this.spec.replicas} ready replicas of ${idle}`).waitForSlotReady({
        target,
        slot: idle,
        replicas: this.spec.replicas,
        timeoutSeconds: this.spec.readinessTimeoutSeconds,
      });
      this.status.message = `${ready.readyReplicas}/${this.spec.replicas} replicas of ${idle} ready after ${ready.seconds.toFixed(1)} s`;
    } catch (error) {
      throw failureFrom(error, RollbackReason.ActivityError);
    }
  }

  // Phase 2: the smoke suite against the idle slot only; traffic has not moved.
  private async smokeTestIdleSlot(): Promise<void> {
    const { target, idle } = this.slots();
    this.enterPhase(Phase.SmokeTesting, `smoke-testing ${idle}`);
    let report;
    try {
      report = await this.act('waiting', `smoke suite ${this.spec.smoke.suite} against ${idle}`).runSmokeSuite({
        target,
        slot: idle,
        smoke: this.spec.smoke,
      });
    } catch (error) {
      throw failureFrom(error, RollbackReason.SmokeFailed);
    }
    this.status.smoke = report;
    const passed = report.checks.filter((c) => c.verdict !== 'failed').length;
    this.status.message = `smoke: ${passed}/${report.checks.length} passed`;
    const failed = report.checks.find((c) => c.verdict === 'failed');
    if (!report.passed || failed) {
      throw new PhaseFailure(
        RollbackReason.SmokeFailed,
        failed ? `smoke check '${failed.name}' failed: ${failed.message}` : 'the smoke suite failed',
        failed?.name ?? 'smoke',
      );
    }
  }

  // Phase 3: the Service selector to the new slot, then endpoints verified to list only it.
  private async switchServiceSelector(): Promise<void> {
    const { target, active, idle } = this.slots();
    this.enterPhase(Phase.Switching, `switching ${target.service} from ${active} to ${idle}`);
    // The old slot is still warm: switching back is the first thing a rollback does. Pushed
    // before the write for the same reason as the deploy's undo.
    this.undo.push(`switch ${target.service} back to ${active}`, async () => {
      await this.act('restore', `switch ${target.service} back to ${active}`).switchTraffic({ target, slot: active });
      this.status.activeSlot = active;
      await this.verifyRestored(target, active);
    });
    try {
      await this.act('write', `switch ${target.service} to ${idle}`).switchTraffic({ target, slot: idle });
      this.status.activeSlot = idle;
      this.status.idleSlot = active;
      const traffic = await this.act('waiting', `verify ${target.service} serves ${idle}`).verifyTraffic({ target, slot: idle, timeoutSeconds: 60 });
      this.status.message = `${target.service} serves ${idle}: ${traffic.endpoints} endpoints after ${traffic.seconds.toFixed(1)} s`;
    } catch (error) {
      throw failureFrom(error, RollbackReason.ActivityError);
    }
  }

  // Phase 4: every interval for the monitor window, the SLOs and restarts of the new slot.
  private async monitorSlos(): Promise<void> {
    const { target, idle: slot } = this.slots();
    const monitor = this.spec.monitor;
    const ticks = Math.max(1, Math.floor(monitor.durationSeconds / monitor.intervalSeconds));
    const baseline = await this.act('quick', `restart baseline of ${slot}`).readRestarts({ target, slot }).catch((error: unknown) => {
      throw failureFrom(error, RollbackReason.ActivityError);
    });
    const progress: MonitorProgress = {
      tick: 0,
      ticks,
      durationSeconds: monitor.durationSeconds,
      intervalSeconds: monitor.intervalSeconds,
      successful: 0,
      failed: 0,
      inconclusive: 0,
      errors: 0,
      consecutiveErrors: 0,
      restarts: 0,
      latest: {},
    };
    this.status.monitor = progress;
    const warmUp = this.warmUp;
    if (warmUp) Object.assign(progress, { warmUpSeconds: warmUp.seconds, scrapeIntervalSeconds: warmUp.scrapeIntervalSeconds, consecutiveInconclusive: 0 });
    this.enterPhase(
      Phase.Monitoring,
      `monitoring ${slot} for ${monitor.durationSeconds} s every ${monitor.intervalSeconds} s` +
        (warmUp
          ? `; missing data counts after a ${warmUp.seconds} s warm-up (${warmUp.scrapeIntervalSeconds === null ? 'monitor.initialDelaySeconds' : `scrape interval ${warmUp.scrapeIntervalSeconds} s`})`
          : ''),
    );
    const startedAt = new Date().getTime();
    let counters: MonitorCounters = { failed: 0, consecutiveErrors: 0, inconclusive: 0 };
    for (let tick = 1; tick <= ticks; tick++) {
      const measurements = await this.measureSlot(target, slot, baseline, `monitor tick ${tick}/${ticks}`);
      const result = measurements === null ? AnalysisResult.Error : judgeTick(measurements);
      const warmingUp = warmUp !== null && new Date().getTime() - startedAt < warmUp.seconds * 1000;
      progress.tick = tick;
      for (const m of measurements ?? []) progress.latest[m.name] = m;
      this.status.message = `monitor tick ${tick}/${ticks}: ${result}${warmingUp && result === AnalysisResult.Inconclusive ? ' (warming up: not counted)' : ''}`;
      const judged = judgeMonitorTick(monitor, counters, result, { warmingUp, consecutive: warmUp !== null });
      counters = judged.counters;
      this.count(progress, result, counters);
      if (judged.decision === MonitorDecision.Breach) throw breachOf(measurements ?? []);
      if (judged.decision === MonitorDecision.ErrorLimit) throw this.errorLimitFailure(progress.consecutiveErrors);
      if (judged.decision === MonitorDecision.Pause) {
        if (warmUp) {
          const paused = await this.pauseWhileMeasuring(target, slot, baseline, progress, counters, `no data for ${monitor.inconclusiveLimit + 1} ticks in a row after the warm-up`);
          counters = paused.counters;
          this.enterPhase(Phase.Monitoring, `monitoring ${slot}: ${paused.how} at tick ${tick}/${ticks}`);
        } else {
          await this.awaitApproval(Gate.Inconclusive, true);
          this.enterPhase(Phase.Monitoring, `monitoring ${slot}: resumed by an operator at tick ${tick}/${ticks}`);
        }
      }
      this.publishDetails();
      if (await condition(() => this.abortRequested, monitor.intervalSeconds * 1000, { summary: `monitor tick ${tick}/${ticks}: next in ${monitor.intervalSeconds} s` })) {
        throw new PhaseFailure(RollbackReason.Aborted, this.abortMessage());
      }
    }
    if (progress.successful === 0) {
      // A window in which nothing could be measured proves nothing: an operator decides.
      if (warmUp) await this.pauseWhileMeasuring(target, slot, baseline, progress, counters, `not one tick of the ${monitor.durationSeconds} s window had data`);
      else await this.awaitApproval(Gate.Inconclusive, true);
    }
    this.status.message = `monitoring passed: ${progress.successful}/${ticks} ticks successful`;
  }

  /** Keeps the counts people see in step with the monitor's counters. */
  private count(progress: MonitorProgress, result: AnalysisResult, counters: MonitorCounters): void {
    if (result === AnalysisResult.Successful) progress.successful++;
    if (result === AnalysisResult.Failed) progress.failed++;
    if (result === AnalysisResult.Error) progress.errors++;
    if (result === AnalysisResult.Inconclusive) progress.inconclusive++;
    progress.consecutiveErrors = counters.consecutiveErrors;
    if (progress.consecutiveInconclusive !== undefined) progress.consecutiveInconclusive = counters.inconclusive;
  }

  private errorLimitFailure(consecutiveErrors: number): PhaseFailure {
    return new PhaseFailure(
      RollbackReason.MeasurementErrors,
      `${consecutiveErrors} consecutive measurement errors (limit ${this.spec.monitor.consecutiveErrorLimit}): the SLOs cannot be verified`,
      'measurement',
    );
  }

  /**
   * Paused for missing data, the monitor goes on measuring every interval and shows the latest
   * values, so the operator decides on facts. The pause ends with an approval, or by itself after
   * `resumeWhenConclusive` Successful ticks in a row; a breach or the error limit rolls back as
   * during monitoring; an abort cancels it; nobody answering within the approval timeout rolls back.
   * Returns how it ended, for the phase message, and the counters as the pause left them.
   */
  private async pauseWhileMeasuring(
    target: Target,
    slot: Slot,
    baseline: number,
    progress: MonitorProgress,
    counters: MonitorCounters,
    why: string,
  ): Promise<{ how: string; counters: MonitorCounters }> {
    const { monitor, gates } = this.spec;
    const resumeAfter = monitor.resumeWhenConclusive ?? 0;
    const deadline = await this.openGate(
      Gate.Inconclusive,
      `${why}: approve to go on or abort to roll back` +
        (resumeAfter > 0 ? `; goes on by itself after ${resumeAfter} successful ticks in a row` : '') +
        `; still measuring every ${monitor.intervalSeconds} s`,
    );
    let current = counters;
    let successes = 0;
    try {
      for (let tick = 1; ; tick++) {
        const left = deadline - new Date().getTime();
        if (left <= 0) {
          throw new PhaseFailure(RollbackReason.NoDecision, `nobody approved the ${Gate.Inconclusive} gate within ${gates.approvalTimeoutSeconds} s`, Gate.Inconclusive);
        }
        if (await condition(() => this.approved, Math.min(monitor.intervalSeconds * 1000, left), { summary: `paused: next measurement in ${monitor.intervalSeconds} s` })) {
          return { how: 'resumed by an operator', counters: current };
        }
        const measurements = await this.measureSlot(target, slot, baseline, `paused tick ${tick}`);
        const result = measurements === null ? AnalysisResult.Error : judgeTick(measurements);
        for (const m of measurements ?? []) progress.latest[m.name] = m;
        const judged = judgeMonitorTick(monitor, current, result, { consecutive: true });
        current = { ...judged.counters, inconclusive: 0 };
        this.count(progress, result, current);
        progress.pausedTicks = (progress.pausedTicks ?? 0) + 1;
        if (judged.decision === MonitorDecision.Breach) throw breachOf(measurements ?? []);
        if (judged.decision === MonitorDecision.ErrorLimit) throw this.errorLimitFailure(progress.consecutiveErrors);
        successes = result === AnalysisResult.Successful ? successes + 1 : 0;
        this.status.message = `paused, still measuring: tick ${tick}: ${result}${resumeAfter > 0 ? ` (${successes}/${resumeAfter} successful in a row)` : ''}`;
        this.publishDetails();
        if (resumeAfter > 0 && successes >= resumeAfter) return { how: `resumed by itself after ${successes} successful ticks in a row`, counters: current };
      }
    } finally {
      this.status.awaiting = null;
    }
  }

  /** One tick: SLOs and restarts side by side; null when either could not be measured. */
  private async measureSlot(target: Target, slot: Slot, baseline: number, tick: string): Promise<Measurement[] | null> {
    const monitor = this.spec.monitor;
    const [slos, restarts] = await Promise.allSettled([
      this.act('measure', `${tick}: SLOs of ${slot}`).evaluateSlos({ target, slot, version: this.spec.version, window: monitor.window, slos: monitor.slos }),
      this.act('measure', `${tick}: restarts of ${slot}`).readRestarts({ target, slot }),
    ]);
    for (const settled of [slos, restarts]) {
      if (settled.status === 'rejected' && isCancellation(settled.reason)) throw settled.reason;
    }
    if (slos.status === 'rejected' || restarts.status === 'rejected') {
      const error = slos.status === 'rejected' ? slos.reason : (restarts as PromiseRejectedResult).reason;
      log.warn('measurement error', { error: describeError(error) });
      return null;
    }
    const restartCount = Math.max(0, restarts.value - baseline);
    this.status.monitor!.restarts = restartCount;
    const restartMeasurement: Measurement = {
      name: RESTARTS_MEASUREMENT,
      value: restartCount,
      comparison: '<=',
      threshold: monitor.restartLimit,
      gate: true,
      result: judgeValue(restartCount, '<=', monitor.restartLimit),
    };
    return [...slos.value, restartMeasurement];
  }

  /**
   * Opens a gate: nothing approved yet, the gate and its timeout in the status, the phase entered
   * (Paused for missing data, AwaitingApproval otherwise) and people told. Returns the deadline.
   */
  private async openGate(gate: Gate, message: string): Promise<number> {
    const since = new Date();
    const deadline = since.getTime() + this.spec.gates.approvalTimeoutSeconds * 1000;
    this.approved = false;
    this.status.awaiting = { gate, since: since.toISOString(), timeoutAt: new Date(deadline).toISOString() };
    this.enterPhase(gate === Gate.Inconclusive ? Phase.Paused : Phase.AwaitingApproval, message);
    await this.notify('awaiting-approval', `${this.status.message}; approve with: bluegreen approve ${this.spec.app} -n ${this.spec.namespace}`);
    return deadline;
  }

  /** A gate: waits for `approve` (or an abort, which cancels the wait) up to the timeout. */
  private async awaitApproval(gate: Gate, enabled: boolean): Promise<void> {
    if (!enabled) return;
    const timeoutSeconds = this.spec.gates.approvalTimeoutSeconds;
    await this.openGate(
      gate,
      gate === Gate.Inconclusive
        ? `${this.status.monitor?.inconclusive ?? 0} inconclusive measurements (no data): approve to go on or abort to roll back`
        : `waiting for approval (${gate}) for up to ${timeoutSeconds} s`,
    );
    let approved: boolean;
    try {
      approved = await condition(() => this.approved, timeoutSeconds * 1000, { summary: `${gate}: approval timeout ${timeoutSeconds} s` });
    } finally {
      // An abort cancels the wait: the gate is no longer waiting either way.
      this.status.awaiting = null;
    }
    if (!approved) {
      throw new PhaseFailure(
        gate === Gate.Inconclusive ? RollbackReason.NoDecision : RollbackReason.ApprovalTimeout,
        `nobody approved the ${gate} gate within ${timeoutSeconds} s`,
        gate,
      );
    }
  }

  // Phase 5: past the point of no return. The old slot goes to zero; it is the next idle slot.
  private async scaleDownOldSlot(): Promise<DeploymentResult> {
    this.cleanupStarted = true;
    this.undo.clear();
    const { target, active: old } = this.slots();
    this.enterPhase(Phase.CleaningUp, `scaling ${old} (${target.deployments[old]}) to zero in ${this.spec.scaleDownDelaySeconds} s`);
    await CancellationScope.nonCancellable(async () => {
      if (this.spec.scaleDownDelaySeconds > 0) {
        await sleep(this.spec.scaleDownDelaySeconds * 1000, { summary: `scale-down delay before ${old} goes to zero` });
      }
      try {
        await this.act('cleanup', `scale ${old} to zero`).scaleSlot({ target, slot: old, replicas: 0 });
      } catch (error) {
        this.warnings.push(
          `cleanup degraded: ${old} (${target.deployments[old]}) could not be scaled to zero: ${describeError(error)}; scale it down by hand`,
        );
      }
    });
    const { idle } = this.slots();
    return this.finish(Outcome.Succeeded, null, `${this.spec.version} is live on ${idle}`, null, idle, this.spec.image);
  }

  /** Runs the compensations, uncancellable, and reports what is live afterwards. */
  private async rollBack(failure: PhaseFailure): Promise<DeploymentResult> {
    const nothingChanged = this.undo.isEmpty;
    const fromSlot = this.status.fromSlot;
    const fromImage = this.live && fromSlot ? this.live.slots[fromSlot].image : null;
    if (nothingChanged && failure.reason !== RollbackReason.Aborted) {
      return this.finish(Outcome.Failed, failure.reason, `${failure.message}; nothing was changed`, failure.failedCheck, fromSlot, fromImage);
    }
    this.enterPhase(Phase.RollingBack, `rolling back (${failure.reason}): ${failure.message}`);
    const incomplete = await CancellationScope.nonCancellable(() => this.runCompensations());
    if (incomplete !== null) {
      return this.finish(
        Outcome.Failed,
        failure.reason,
        this.persistentRollback
          ? `${failure.message}; ROLLBACK INCOMPLETE at '${incomplete}': the platform refused it for good, so a person must ` +
              `restore ${this.status.fromSlot ?? 'the old slot'} by hand (fix the permission or object named above, then ` +
              `point ${this.target?.service ?? 'the Service'} at ${this.status.fromSlot ?? 'the old slot'} and scale ${this.status.toSlot ?? 'the new slot'} to zero)`
          : `${failure.message}; ROLLBACK INCOMPLETE at '${incomplete}': the cluster needs a person`,
        failure.failedCheck,
        this.status.activeSlot,
        null,
      );
    }
    this.status.activeSlot = fromSlot;
    this.status.idleSlot = fromSlot ? otherSlot(fromSlot) : null;
    return this.finish(Outcome.RolledBack, failure.reason, failure.message, failure.failedCheck, fromSlot, fromImage);
  }

  /**
   * Runs the compensations. Where the patch applies, each restore retries until it succeeds or is
   * refused for good, and one that outlasts `rollback.stuckAfterSeconds` is reported stuck (a
   * notification, the status, the UI's details) while it goes on trying.
   */
  private async runCompensations(): Promise<string | null> {
    this.persistentRollback = patched(Patch.PersistentRollback);
    if (!this.persistentRollback) return await this.undo.runAll();
    this.options = activityOptions(this.spec, true);
    const startedAt = new Date();
    const progress = { startedAt: startedAt.toISOString(), seconds: null as number | null, stuckSince: null as string | null, step: null as string | null };
    this.status.rollback = progress;
    let settled = false;
    const undoing = this.undo.runAll((step) => {
      progress.step = step;
      this.status.message = `rolling back: ${step}`;
      this.publishDetails();
    });
    void undoing.then(() => {
      settled = true;
    });
    const stuckAfter = this.spec.rollback?.stuckAfterSeconds ?? DEFAULT_STUCK_AFTER_SECONDS;
    if (!(await condition(() => settled, stuckAfter * 1000, { summary: `rollback reported stuck after ${stuckAfter} s` }))) {
      progress.stuckSince = now();
      this.status.message = `ROLLBACK STUCK for ${stuckAfter} s at '${progress.step}': still retrying until the platform answers`;
      this.publishDetails();
      await this.notify('rollback-stuck', this.status.message, this.status.abort ? RollbackReason.Aborted : null, progress.step);
    }
    const incomplete = await undoing;
    progress.seconds = (new Date().getTime() - startedAt.getTime()) / 1000;
    return incomplete;
  }

  /**
   * The switch-back's verification. The selector is back; its endpoints are the cluster's to
   * converge (after a control-plane outage the node controller may have marked the old slot's pods
   * NotReady until their kubelets report again), so where the rollback persists it verifies again
   * rather than giving up; the stuck alarm tells people meanwhile.
   */
  private async verifyRestored(target: Target, slot: Slot): Promise<void> {
    for (;;) {
      try {
        await this.act('restore', `verify ${target.service} serves ${slot}`).verifyTraffic({ target, slot, timeoutSeconds: 60 });
        return;
      } catch (error) {
        const cause = error instanceof ActivityFailure ? error.cause : error;
        if (!this.persistentRollback || !(cause instanceof ApplicationFailure) || cause.type !== ErrorType.TrafficNotVerified) throw error;
        log.warn('the old slot does not serve yet; verifying again', { error: describeError(error) });
        this.status.message = `rolling back: ${describeError(error)}; verifying again`;
      }
    }
  }

  /** Why an abort cannot be taken now, or null when it can. The one place the rule lives. */
  private abortRefusal(): string | null {
    if (this.cleanupStarted) return ABORT_AFTER_CLEANUP_MESSAGE;
    const phase = this.status.phase;
    if (phase === Phase.RollingBack || phase === Phase.RolledBack || phase === Phase.Failed || phase === Phase.Succeeded) {
      return `abort rejected: the deployment is ${phase}`;
    }
    const awaiting = this.status.awaiting;
    if (this.approved && awaiting && !this.abortRequested) {
      // Both arrived at the same instant: the approval was first, and it is what happens.
      return `abort rejected: the ${awaiting.gate} gate was approved at the same moment, and the approval came first; abort again to roll back`;
    }
    return null;
  }

  /** Why an approval cannot be taken now, or null when it can. */
  private approvalRefusal(request: ApproveRequest): string | null {
    if (this.abortRequested) return `approve rejected: an abort is rolling the deployment back (${this.abortMessage()})`;
    const awaiting = this.status.awaiting;
    if (!awaiting) return `nothing to approve: the deployment is ${this.status.phase}, not waiting at a gate`;
    if (request.gate !== undefined && request.gate !== awaiting.gate) {
      return `the deployment waits at gate '${awaiting.gate}', not '${request.gate}'`;
    }
    return null;
  }

  private takeAbort(request: AbortRequest): OperatorAnswer {
    const phase = this.status.phase;
    if (this.abortRequested) return { message: `already aborting: ${this.abortMessage()}`, phase };
    const entry = { reason: request.reason || 'no reason given', by: request.by || 'unknown', at: now() };
    this.abortRequested = true;
    this.status.abort = entry;
    this.status.message = `abort requested by ${entry.by}: ${entry.reason}`;
    log.info('abort requested', entry);
    this.forward.cancel();
    return { message: `abort accepted in ${phase}: rolling back`, phase };
  }

  private takeApproval(request: ApproveRequest): OperatorAnswer {
    const gate = this.status.awaiting?.gate;
    this.approved = true;
    log.info('approved', { gate, by: request.by ?? 'unknown' });
    return { message: `approved gate ${gate}`, phase: this.status.phase };
  }

  private abortMessage(): string {
    const abort = this.status.abort;
    return abort ? `aborted by ${abort.by}: ${abort.reason}` : 'the workflow was cancelled';
  }

  /** Once an abort was requested, whatever interrupted the phase is the abort's doing. */
  private failureOf(error: unknown): PhaseFailure {
    if (this.abortRequested || isCancellation(error)) return new PhaseFailure(RollbackReason.Aborted, this.abortMessage());
    if (error instanceof PhaseFailure) return error;
    return failureFrom(error, RollbackReason.ActivityError);
  }

  private slots(): { target: Target; active: Slot; idle: Slot; idleBefore: SlotState } {
    if (!this.target || !this.live) throw new Error('the live state has not been read yet');
    const active = this.live.activeSlot;
    const idle = otherSlot(active);
    return { target: this.target, active, idle, idleBefore: this.live.slots[idle] };
  }

  /** Tells people (through the worker's webhook, if any); never fails the deployment. */
  private async notify(kind: DeploymentEvent['kind'], message: string, reason: string | null = null, failedCheck: string | null = null): Promise<void> {
    if (!patched(Patch.Notifications)) return;
    const { app, namespace, version, image } = this.status;
    try {
      await CancellationScope.nonCancellable(() =>
        this.act('quick', `notify: ${kind}`).notify({ kind, app, namespace, version, image, message, reason, failedCheck, workflowId: workflowInfo().workflowId }),
      );
    } catch (error) {
      log.warn('notification failed', { kind, error: describeError(error) });
    }
  }

  /** Activities of one kind of call, with a summary the Temporal UI shows on the event. */
  private act(kind: CallKind, summary: string) {
    const options = this.options[kind];
    if (kind === 'write' && !patched(Patch.SettledWrites)) {
      // Recorded before writes were waited for: replay them as they ran.
      return proxyActivities<Activities>({ ...options, cancellationType: ActivityCancellationType.TRY_CANCEL, summary });
    }
    return proxyActivities<Activities>({ ...options, summary });
  }

  /**
   * Whether this run carries search attributes: the client sets them at start only where the
   * namespace has them registered, and upserting unregistered ones would fail the workflow task.
   */
  private get isIndexed(): boolean {
    return workflowInfo().typedSearchAttributes.get(SearchAttribute.App) !== undefined;
  }

  private enterPhase(phase: Phase, message: string): void {
    const previous = this.status.transitions.at(-1);
    if (previous && previous.phase !== phase) {
      const spent = new Date().getTime() - new Date(previous.at).getTime();
      this.metrics.phaseDuration.record(spent, { app: this.spec.app, phase: previous.phase });
    }
    this.status.phase = phase;
    this.status.message = message;
    this.status.transitions.push({ phase, at: now(), message });
    this.publishDetails();
    if (this.isIndexed) upsertSearchAttributes([{ key: SearchAttribute.Phase, value: phase }]);
    log.info(`phase ${phase}: ${message}`);
  }

  /** The Temporal UI's current details: phase, slots and the SLO table, as markdown. */
  private publishDetails(): void {
    const s = this.status;
    const lines = [
      `**${s.phase}**: ${s.message}`,
      '',
      `${s.app} ${s.version} (${s.image}), ${s.fromSlot ?? '?'} → ${s.toSlot ?? '?'}, active: ${s.activeSlot ?? '?'}`,
    ];
    if (s.smoke) lines.push('', `smoke: ${s.smoke.checks.filter((c) => c.verdict !== 'failed').length}/${s.smoke.checks.length} passed`);
    if (s.rollback) {
      const r = s.rollback;
      lines.push('', `rollback since ${r.startedAt}${r.step ? `, step: ${r.step}` : ''}${r.stuckSince ? `, **stuck since ${r.stuckSince}** (still retrying)` : ''}${r.seconds !== null ? `, done in ${r.seconds.toFixed(1)} s` : ''}`);
    }
    if (s.monitor) {
      const m = s.monitor;
      lines.push('', `monitor tick ${m.tick}/${m.ticks}: ${m.successful} ok, ${m.failed} failed, ${m.inconclusive} inconclusive, ${m.errors} errors`);
      lines.push('', '| SLO | value | rule | verdict |', '|---|---|---|---|');
      for (const x of Object.values(m.latest)) {
        lines.push(`| ${x.name}${x.gate ? '' : ' (warning)'} | ${formatValue(x.value)} | ${x.comparison} ${x.threshold} | ${x.result} |`);
      }
    }
    setCurrentDetails(lines.join('\n'));
  }

  private async finish(
    outcome: Outcome,
    reason: RollbackReason | null,
    message: string,
    failedCheck: string | null,
    liveSlot: Slot | null,
    liveImage: string | null,
  ): Promise<DeploymentResult> {
    const phase = outcome === Outcome.Succeeded ? Phase.Succeeded : outcome === Outcome.RolledBack ? Phase.RolledBack : Phase.Failed;
    this.enterPhase(phase, message);
    const { app, namespace, image, version, fromSlot, toSlot } = this.status;
    if (patched(Patch.OutcomeInMemo)) {
      // Visibility lists show the memo: `bluegreen list` reads outcomes from it.
      upsertMemo({ outcome, reason, liveSlot, liveImage });
    }
    this.metrics.finished.add(1, { app, namespace, outcome, reason: reason ?? 'none' });
    if (this.isIndexed) upsertSearchAttributes([{ key: SearchAttribute.Outcome, value: outcome }]);
    const kind = outcome === Outcome.Succeeded ? 'succeeded' : outcome === Outcome.RolledBack ? 'rolled-back' : 'failed';
    await this.notify(kind, message, reason, failedCheck);
    return {
      outcome,
      app,
      namespace,
      image,
      version,
      fromSlot,
      toSlot,
      liveSlot,
      liveImage,
      reason,
      failedCheck,
      message,
      warnings: [...this.warnings],
      ...(this.status.rollback ? { rollbackSeconds: this.status.rollback.seconds } : {}),
      status: this.status,
    };
  }
}

function isHealthy(slot: SlotState): boolean {
  return slot.replicas > 0 && slot.readyReplicas >= slot.replicas;
}

/** The first failed gated measurement of a tick, as the reason to roll back. */
function breachOf(measurements: readonly Measurement[]): PhaseFailure {
  const breach = measurements.find((m) => m.gate && m.result === AnalysisResult.Failed);
  if (!breach) return new PhaseFailure(RollbackReason.SloBreach, 'an SLO was breached', 'slo');
  return new PhaseFailure(
    RollbackReason.SloBreach,
    `SLO '${breach.name}' breached: ${formatValue(breach.value)} (must be ${breach.comparison} ${breach.threshold})`,
    breach.name,
  );
}

/**
 * Deploys `spec.image` to the idle slot, smoke-tests it, switches traffic, watches the SLOs and
 * scales the old slot down, rolling back by itself when any gate fails or `abort` arrives.
 * Completes with the result when the new version went live. Otherwise it fails, with the reason as
 * the failure's message and the whole result as its details, so the Temporal UI's list and
 * `ExecutionStatus = "Failed"` tell a rollback from a success (runs recorded before this completed).
 */
export async function blueGreenDeploymentWorkflow(spec: DeploymentSpec): Promise<DeploymentResult> {
  const result = await new BlueGreenDeployment(spec).run();
  if (result.outcome !== Outcome.Succeeded && patched(Patch.FailedExecution)) {
    throw ApplicationFailure.create({
      type: result.outcome === Outcome.RolledBack ? DeploymentFailureType.RolledBack : DeploymentFailureType.Failed,
      message: `${result.outcome}${result.reason ? ` (${result.reason})` : ''}: ${result.message}`,
      details: [result],
      nonRetryable: true,
    });
  }
  return result;
}

/** An Update's validator: a refusal is an error the sender gets back; nothing is recorded. */
function refuseWith(refusal: string | null): void {
  if (refusal !== null) throw new Error(refusal);
}
