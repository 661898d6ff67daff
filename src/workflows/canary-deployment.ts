/**
 * The canary recipe (docs/PROCEDURE.md, section 6: the procedure's phase 2). The live slot is the
 * stable one and stays fully scaled until promotion; the idle slot takes the canary. Step by step
 * the canary gets more replicas (capacity before weight), then its weight through the traffic
 * router, verified, then a hold judged by the monitor with the same limits as blue-green's. At
 * 100 % the end state is blue-green's: the new slot live with full replicas, the old one scaled to
 * zero after the delay. An abort or a failed step sets the weight to 0, verified, before anything
 * else, and then restores the canary slot.
 *
 * Deterministic code only: no I/O, no Node built-ins, activity types imported as types.
 */
import { condition, log, patched } from '@temporalio/workflow';
import { routeName } from '../shared/target.js';
import type { Target } from '../shared/target.js';
import { AnalysisResult, formatValue, judgeCanaryTick, judgeMonitorTick, MonitorDecision } from '../shared/analysis.js';
import type { CanaryTick, MonitorCounters, StableComparison } from '../shared/analysis.js';
import { Gate, Phase, RollbackReason } from '../shared/deployment-status.js';
import type { CanaryProgress, DeploymentResult, OperatorAnswer, PromoteRequest } from '../shared/deployment-status.js';
import type { Slot } from '../shared/slots.js';
import { canaryReplicasFor, formatShare } from '../shared/traffic.js';
import type { CanaryStep, DeploymentSpec } from '../deployment-spec/deployment-spec.js';
import { awaitApproval } from './run/approvals.js';
import { canaryRequestsLine, canaryTrafficLine, MonitorVerdict } from '../shared/monitor-window.js';
import type { CanaryRules, HoldPolicy, MonitorWindowState } from '../shared/monitor-window.js';
import {
  countTick,
  errorLimitError,
  measuredOrNull,
  measureUntil,
  newMonitorProgress,
  NOTHING_SO_FAR,
  pauseInOneActivity,
  pauseWhileMeasuring,
  readRestartBaseline,
  restartsMeasurement,
  takeAnswer,
  warmUpMessage,
  windowRequests,
  windowTimeout,
} from './run/monitor.js';
import type { MonitorProgress } from '../shared/deployment-status.js';
import { breachOf, PhaseError, phaseErrorFrom } from './run/phase-error.js';
import { Patch } from './run/patches.js';
import { observeLiveSlot } from './run/observe.js';
import { deployIdleSlot, preflight, scaleDownOldSlot, smokeTestIdleSlot } from './run/phases.js';
import { endWith, RunContext } from './run/run-context.js';
import { now } from './run/status.js';
import type { DeploymentOptions } from './run/run-context.js';

/**
 * Deploys `spec.image` to the idle slot as a canary, smoke-tests it, and raises its share of the
 * traffic step by step (`spec.canary.steps`), each held under analysis; promotes it at 100 % and
 * scales the old slot down, or rolls back by itself when a step fails or `abort` arrives.
 * `promote` ends the current hold now (`full`: straight to 100 %). Ends as blue-green's does.
 */
export async function canaryDeploymentWorkflow(
  spec: DeploymentSpec,
  options: DeploymentOptions = {},
): Promise<DeploymentResult> {
  const run = new RunContext(spec, options);
  return endWith(await rolloutCanary(run, new CanarySteps(run)));
}

/** The recipe: one phase per call; any failure leaves through the rollback. */
async function rolloutCanary(run: RunContext, canary: CanarySteps): Promise<DeploymentResult> {
  const rolledBack = await run.runForward(async () => {
    await preflight(run, (spec) => Math.min(...spec.canary.steps.map((step) => step.holdSeconds)));
    const first = canary.begin();
    await deployIdleSlot(run, first);
    await smokeTestIdleSlot(run);
    await awaitApproval(run, Gate.BeforeSwitch, run.spec.gates.approveBeforeSwitch);
    await canary.runSteps();
    await awaitApproval(run, Gate.BeforeCleanup, run.spec.gates.approveBeforeCleanup);
    await observeLiveSlot(run, { warm: true });
  });
  return rolledBack ?? (await scaleDownOldSlot(run));
}

/** How a hold ended. */
type HoldEnd = 'held' | 'promoted' | 'resumed';

/** The canary's own state and steps, beside the shared run context. */
class CanarySteps {
  private progress: CanaryProgress | null = null;
  private promoteRequested = false;
  private promoteFull = false;
  /** Replicas the canary slot runs now. */
  private replicas = 0;
  /** The canary slot's restarts before its first step (Patch.OneLoop: read by the first hold's activity). */
  private baseline: number | null = null;

  constructor(private readonly run: RunContext) {
    run.report.record({ kind: 'strategy', strategy: 'canary' });
    run.report.detailLines = () => this.detailLines();
    run.commands.listenForPromote(
      (request) => this.takePromotion(request),
      () => run.commands.promotionRefusal(this.progress),
    );
  }

  private get spec(): DeploymentSpec {
    return this.run.spec;
  }

  private get steps(): CanaryStep[] {
    return this.spec.canary.steps;
  }

  /** Starts the canary's status once the spec is validated; returns the first step's replicas. */
  begin(): number {
    this.replicas = canaryReplicasFor(this.spec.traffic.router, this.spec.replicas, this.steps[0]!.weight);
    this.progress = {
      router: this.spec.traffic.router,
      step: 0,
      steps: this.steps.length,
      weight: 0,
      stepWeight: 0,
      effectiveWeight: null,
      observedShare: null,
      canaryRequests: null,
      stableRequests: null,
      canaryReplicas: this.replicas,
      hold: null,
      analysis: null,
      sharedCause: null,
      completed: [],
      promotedBy: null,
    };
    this.run.report.record({ kind: 'canary', progress: this.progress });
    return this.replicas;
  }

  /** The steps: capacity, then weight (verified), then the hold; 100 % is the promotion. */
  async runSteps(): Promise<void> {
    const run = this.run;
    const progress = this.progress!;
    const { target, active: stable, idle: canary } = run.slots();
    const router = this.spec.traffic.router;
    const oneLoop = patched(Patch.OneLoop);
    if (!oneLoop) this.baseline = await readRestartBaseline(run, target, canary);
    // Pushed before the first weight is written: a cancelled write may still land, and weight 0
    // (all traffic to the stable slot, which never shrank) is idempotent. It runs before the
    // canary slot is restored: traffic leaves the canary first.
    run.rollback.undo.push(`send all traffic back to ${stable}`, async () => {
      await run
        .act('restore', `set the weight of ${canary} to 0 %`)
        .setTrafficWeight({ target, router, stable, canary, weight: 0 });
      progress.weight = 0;
      run.report.record({ kind: 'routed', active: stable });
      await run.rollback.verifyRestoring(() =>
        run
          .act('restore', `verify ${routeName(target)} sends everything to ${stable}`)
          .verifyTrafficWeight({ target, router, stable, canary, weight: 0, timeoutSeconds: 60 }),
      );
    });
    for (let index = 0; index < this.steps.length; index++) {
      if (this.promoteFull) index = this.steps.length - 1;
      const step = this.steps[index]!;
      const label = `step ${index + 1}/${this.steps.length}`;
      Object.assign(progress, {
        step: index + 1,
        stepWeight: step.weight,
        analysis: null,
        sharedCause: null,
        hold: null,
      });
      // Each hold is measured afresh: the previous step's ticks are in its `completed` entry.
      run.report.record({ kind: 'monitor', progress: null });
      await this.ensureCapacity(target, canary, step, label);
      await this.setWeight(target, stable, canary, step.weight, label);
      const startedAt = new Date().getTime();
      const end = oneLoop
        ? await this.holdInOneActivity(target, stable, canary, step, label)
        : await this.hold(target, stable, canary, this.baseline!, step, label);
      progress.completed.push({
        step: index + 1,
        weight: step.weight,
        observedShare: progress.observedShare,
        canaryRequests: progress.canaryRequests,
        seconds: (new Date().getTime() - startedAt) / 1000,
      });
      const how =
        end === 'promoted'
          ? `promoted by ${progress.promotedBy ?? 'an operator'}`
          : end === 'resumed'
            ? 'resumed after a pause'
            : 'held';
      run.report.record({ kind: 'message', message: `${label}: ${step.weight} % ${how}` });
      run.report.publishDetails();
    }
    run.report.record({
      kind: 'message',
      message: `the canary ${canary} serves 100 % after ${this.steps.length} steps`,
    });
  }

  /** Capacity before weight: the canary has enough Ready replicas for its share first. */
  private async ensureCapacity(target: Target, canary: Slot, step: CanaryStep, label: string): Promise<void> {
    const run = this.run;
    const needed = canaryReplicasFor(this.spec.traffic.router, this.spec.replicas, step.weight);
    if (needed <= this.replicas) return;
    run.report.enterPhase(
      Phase.Deploying,
      `${label}: scaling the canary ${canary} to ${needed} replicas before its weight rises to ${step.weight} %`,
    );
    try {
      await run.act('write', `scale ${canary} to ${needed} for ${step.weight} %`).deploySlot({
        target,
        slot: canary,
        image: this.spec.image,
        version: this.spec.version,
        run: run.id,
        replicas: needed,
      });
      const ready = await run.act('readiness', `wait for ${needed} ready replicas of ${canary}`).waitForSlotReady({
        target,
        slot: canary,
        replicas: needed,
        timeoutSeconds: this.spec.readinessTimeoutSeconds,
      });
      run.report.record({
        kind: 'message',
        message:
          `${label}: ${ready.readyReplicas}/${needed} replicas of ${canary} ready after ` +
          `${ready.seconds.toFixed(1)} s`,
      });
    } catch (error) {
      throw phaseErrorFrom(error, RollbackReason.ActivityError);
    }
    this.replicas = needed;
    this.progress!.canaryReplicas = needed;
  }

  /** The weight through the router, then read back until it is in effect. */
  private async setWeight(target: Target, stable: Slot, canary: Slot, weight: number, label: string): Promise<void> {
    const run = this.run;
    const progress = this.progress!;
    const router = this.spec.traffic.router;
    run.report.enterPhase(
      Phase.Switching,
      `${label}: ${weight} % of ${routeName(target)} to the canary ${canary} (${router})`,
    );
    try {
      await run
        .act('write', `set the weight of ${canary} to ${weight} %`)
        .setTrafficWeight({ target, router, stable, canary, weight });
      progress.weight = weight;
      if (weight >= 100) {
        run.report.record({ kind: 'routed', active: canary });
      }
      const verified = await run
        .act('waiting', `verify ${routeName(target)} sends ${weight} % to ${canary}`)
        .verifyTrafficWeight({ target, router, stable, canary, weight, timeoutSeconds: 60 });
      progress.effectiveWeight = verified.weight;
      run.report.record({
        kind: 'message',
        message:
          `${label}: ${formatShare(verified.weight)} % to ${canary} in effect (${verified.endpoints[canary]} canary ` +
          `and ${verified.endpoints[stable]} stable endpoints) after ${verified.seconds.toFixed(1)} s`,
      });
    } catch (error) {
      throw phaseErrorFrom(error, RollbackReason.ActivityError);
    }
  }

  /** A hold begins: its counts, its status, and the phase message. */
  private beginHold(step: CanaryStep, label: string): { monitorProgress: MonitorProgress; startedAt: number } {
    const run = this.run;
    const { monitor } = this.spec;
    const progress = this.progress!;
    // A tick at the start and one every interval until the hold is over.
    const ticks = Math.floor(step.holdSeconds / monitor.intervalSeconds) + 1;
    const monitorProgress = newMonitorProgress(run, ticks, step.holdSeconds);
    run.report.record({ kind: 'monitor', progress: monitorProgress });
    const startedAt = new Date().getTime();
    progress.hold = { since: now(), seconds: step.holdSeconds, extendedSeconds: 0, untilPromote: step.untilPromote };
    const until = step.untilPromote
      ? `until promoted (bluegreen promote ${this.spec.app} -n ${this.spec.namespace})`
      : `for ${step.holdSeconds} s`;
    run.report.enterPhase(
      Phase.Monitoring,
      `${label}: holding ${step.weight} % ${until}, ` +
        `measuring every ${monitor.intervalSeconds} s${progress.step === 1 ? warmUpMessage(run) : ''}`,
    );
    return { monitorProgress, startedAt };
  }

  /**
   * One step's hold in one activity (Patch.OneLoop), the monitor window's with the hold's policy:
   * both slots measured every interval and judged together, until the hold is over, a breach, the
   * error limit, a breach both slots share (an operator looks; approved, the hold goes on), or no
   * Successful tick by the end of its extension (a pause, still measuring). `promote` stops it.
   */
  private async holdInOneActivity(
    target: Target,
    stable: Slot,
    canary: Slot,
    step: CanaryStep,
    label: string,
  ): Promise<HoldEnd> {
    const run = this.run;
    const { monitor } = this.spec;
    const progress = this.progress!;
    const { monitorProgress, startedAt } = this.beginHold(step, label);
    const comparedToStable = this.comparedToStable();
    const rules: CanaryRules = {
      stable,
      stableVersion: run.live!.slots[stable].version ?? 'unknown',
      stableRun: run.live!.slots[stable].run ?? '',
      requestsQuery: this.spec.canary.requestsQuery,
      minRequests: this.spec.canary.minRequests,
      comparedToStable,
      sharedCauseAccepted: false,
    };
    const windowed = windowRequests(run, target, canary, monitorProgress, {
      intervalSeconds: monitor.intervalSeconds,
      warmUpUntil: null,
      consecutive: true,
    });
    const request: typeof windowed = (policy, soFar) => ({ ...windowed(policy, soFar), canary: { ...rules } });
    const capSeconds = step.holdSeconds + this.spec.canary.maxHoldExtensionSeconds;
    const policy: HoldPolicy = {
      kind: 'hold',
      label,
      weight: step.weight,
      startedAt,
      holdSeconds: step.holdSeconds,
      capSeconds,
      untilPromote: step.untilPromote,
    };
    let soFar = { ...NOTHING_SO_FAR, baseline: this.baseline };
    for (;;) {
      const end = await measureUntil(
        run,
        `${label}: ${canary} at ${step.weight} % beside ${stable}, every ${monitor.intervalSeconds} s`,
        // A hold until promoted has no end: a retry after this long resumes it.
        step.untilPromote
          ? '24h'
          : windowTimeout(Math.ceil(capSeconds / monitor.intervalSeconds) + 1, monitor.intervalSeconds),
        request(policy, soFar),
        () => this.promoteRequested,
      );
      const state = 'answer' in end ? end.answer : end.stopped;
      if (state) soFar = this.takeHoldTick(state);
      if (!('answer' in end)) {
        if (!this.promoteRequested) throw end.error;
        this.takePromoteRequest();
        return 'promoted';
      }
      const { answer } = end;
      switch (answer.verdict) {
        case MonitorVerdict.Held:
          return 'held';
        case MonitorVerdict.Breach:
          throw breachOf(answer.last ?? []);
        case MonitorVerdict.ErrorLimit:
          throw errorLimitError(run, monitorProgress.consecutiveErrors);
        case MonitorVerdict.SharedCause:
          await awaitApproval(run, Gate.SharedCause, true);
          rules.sharedCauseAccepted = true;
          run.report.enterPhase(
            Phase.Monitoring,
            `${label}: resumed by an operator after a shared cause: ${progress.sharedCause}`,
          );
          break;
        case MonitorVerdict.Pause: {
          // No Successful tick by the end of the extension.
          const lastAt = answer.samples.at(-1)?.at;
          const elapsed = lastAt ? (Date.parse(lastAt) - startedAt) / 1000 : capSeconds;
          const why =
            `${label}: no Successful tick in ${Math.round(elapsed)} s at ${step.weight} % ` +
            `(${canaryRequestsLine(progress.canaryRequests, rules.minRequests)})`;
          const paused = await pauseInOneActivity(run, request, soFar, why);
          if (paused.last) this.takeCanaryTraffic(paused.last);
          this.takePromoteRequest();
          run.report.enterPhase(Phase.Monitoring, `${label}: ${paused.how}`);
          return 'resumed';
        }
        default:
          throw new Error(`a hold cannot end as ${answer.verdict}`);
      }
    }
  }

  /**
   * What a hold's activity measured, shown to people: the counts, and the canary's traffic; returns
   * its counters and baseline.
   */
  private takeHoldTick(state: MonitorWindowState): {
    counters: MonitorWindowState['counters'];
    baseline: number | null;
  } {
    this.takeCanaryTraffic(state);
    const soFar = takeAnswer(this.run, state);
    this.baseline = soFar.baseline;
    return soFar;
  }

  /** The SLOs held against the stable slot too, by name. */
  private comparedToStable(): Record<string, StableComparison> {
    return Object.fromEntries(
      this.spec.monitor.slos.flatMap((slo) => (slo.comparedToStable ? [[slo.name, slo.comparedToStable]] : [])),
    );
  }

  /** The canary's traffic as its window's last tick found it. */
  private takeCanaryTraffic(state: MonitorWindowState): void {
    const progress = this.progress!;
    if (!state.canary) return;
    const { analysis, observedShare, canaryRequests, stableRequests, sharedCause, extendedSeconds } = state.canary;
    Object.assign(progress, { analysis, observedShare, canaryRequests, stableRequests });
    if (sharedCause) progress.sharedCause = sharedCause;
    if (progress.hold && extendedSeconds > 0) progress.hold.extendedSeconds = extendedSeconds;
  }

  /**
   * One step's hold under analysis. Failed ticks and measurement errors count against the
   * monitor's limits as in blue-green. Missing data (too few requests at 5 %) is judged at the
   * hold's end: the hold ends on a Successful tick, is extended while there is none (up to
   * `canary.maxHoldExtensionSeconds`), and then pauses for an operator, still measuring. A breach
   * that both slots share pauses with that diagnosis instead of rolling back.
   */
  private async hold(
    target: Target,
    stable: Slot,
    canary: Slot,
    baseline: number,
    step: CanaryStep,
    label: string,
  ): Promise<HoldEnd> {
    const run = this.run;
    const { monitor } = this.spec;
    const progress = this.progress!;
    const cap = step.holdSeconds + this.spec.canary.maxHoldExtensionSeconds;
    const { monitorProgress, startedAt } = this.beginHold(step, label);
    let counters: MonitorCounters = { failed: 0, consecutiveErrors: 0, inconclusive: 0 };
    let sharedCauseAccepted = false;
    const measure = async (tick: string): Promise<CanaryTick | null> => {
      const judged = await this.measure(target, stable, canary, baseline, tick);
      if (judged && sharedCauseAccepted && judged.sharedCause !== null) {
        // An operator looked at the shared cause and let the canary go on: not the canary's
        // breach, and no data about the canary either while it lasts.
        const measurements = judged.measurements.map((m) =>
          m.gate && m.result === AnalysisResult.Failed
            ? { ...m, result: AnalysisResult.Inconclusive, message: 'shared cause, accepted by an operator' }
            : m,
        );
        return { ...judged, measurements, result: AnalysisResult.Inconclusive };
      }
      return judged;
    };
    for (let tick = 1; ; tick++) {
      const judged = await measure(`${label} tick ${tick}`);
      const result = judged === null ? AnalysisResult.Error : judged.result;
      monitorProgress.tick = tick;
      progress.analysis = result;
      for (const m of judged?.measurements ?? []) monitorProgress.latest[m.name] = m;
      const elapsed = (new Date().getTime() - startedAt) / 1000;
      const decision = judgeMonitorTick(monitor, counters, result, { warmingUp: true, consecutive: true });
      counters = decision.counters;
      countTick(monitorProgress, result, counters);
      run.report.record({ kind: 'message', message: `${label} tick ${tick}: ${result}${this.trafficLine()}` });
      if (decision.decision === MonitorDecision.Breach || (result === AnalysisResult.Failed && judged?.sharedCause)) {
        if (!judged?.sharedCause) throw breachOf(judged?.measurements ?? []);
        progress.sharedCause = judged.sharedCause;
        counters = { ...counters, failed: Math.max(0, counters.failed - 1) };
        await awaitApproval(run, Gate.SharedCause, true);
        sharedCauseAccepted = true;
        run.report.enterPhase(
          Phase.Monitoring,
          `${label}: resumed by an operator after a shared cause: ${judged.sharedCause}`,
        );
      }
      if (decision.decision === MonitorDecision.ErrorLimit)
        throw errorLimitError(run, monitorProgress.consecutiveErrors);
      if (!step.untilPromote && elapsed >= step.holdSeconds) {
        if (result === AnalysisResult.Successful) return 'held';
        if (elapsed >= cap) {
          const paused = await pauseWhileMeasuring(
            run,
            target,
            canary,
            baseline,
            monitorProgress,
            counters,
            `${label}: no Successful tick in ${Math.round(elapsed)} s at ${step.weight} % (${this.requestsLine()})`,
            async (pausedTick) => (await measure(`${label} ${pausedTick}`))?.measurements ?? null,
          );
          this.takePromoteRequest();
          run.report.enterPhase(Phase.Monitoring, `${label}: ${paused.how}`);
          return 'resumed';
        }
        progress.hold!.extendedSeconds = Math.round(elapsed - step.holdSeconds);
        run.report.record({
          kind: 'message',
          message:
            `${label}: hold extended ${progress.hold!.extendedSeconds} s of at most ` +
            `${this.spec.canary.maxHoldExtensionSeconds} s: last tick ${result}${this.trafficLine()}`,
        });
      }
      run.report.publishDetails();
      const interrupted = await condition(
        () => run.commands.abortRequested || this.promoteRequested,
        monitor.intervalSeconds * 1000,
        {
          summary: `${label} tick ${tick}: next in ${monitor.intervalSeconds} s`,
        },
      );
      if (interrupted && run.commands.abortRequested)
        throw new PhaseError(RollbackReason.Aborted, run.commands.abortMessage());
      if (this.takePromoteRequest()) return 'promoted';
    }
  }

  /**
   * One tick: both slots' SLOs, the requests each served and the canary's restarts, judged; null on
   * a measurement error.
   */
  private async measure(
    target: Target,
    stable: Slot,
    canary: Slot,
    baseline: number,
    tick: string,
  ): Promise<CanaryTick | null> {
    const run = this.run;
    const { monitor } = this.spec;
    const live = run.live!.slots[stable];
    const request = {
      target,
      canary,
      stable,
      version: this.spec.version,
      stableVersion: live.version ?? 'unknown',
      run: run.id,
      stableRun: live.run ?? '',
      window: monitor.window,
      slos: monitor.slos,
      requestsQuery: this.spec.canary.requestsQuery,
    };
    const oneActivity = patched(Patch.FewerRoundTrips);
    const measured = await measuredOrNull(
      run
        .act('measure', `${tick}: SLOs of ${canary} and ${stable}${oneActivity ? `, restarts of ${canary}` : ''}`)
        .measureCanary(oneActivity ? { ...request, withRestarts: true } : request),
      // Recorded before: the restarts in an activity of their own.
      oneActivity
        ? Promise.resolve(undefined)
        : run.act('measure', `${tick}: restarts of ${canary}`).readRestarts({ target, slot: canary }),
    );
    if (!measured) return null;
    const [analysis, restarts] = measured;
    const restartCount = analysis.canaryRestarts ?? restarts ?? 0;
    const comparedToStable = this.comparedToStable();
    const judged = judgeCanaryTick({
      canary: [...analysis.canary, restartsMeasurement(run, restartCount, baseline)],
      stable: analysis.stable,
      canaryRequests: analysis.canaryRequests,
      stableRequests: analysis.stableRequests,
      minRequests: this.spec.canary.minRequests,
      comparedToStable,
    });
    const progress = this.progress!;
    progress.observedShare = judged.observedShare;
    progress.canaryRequests = analysis.canaryRequests;
    progress.stableRequests = analysis.stableRequests;
    return judged;
  }

  private trafficLine(): string {
    return `; ${canaryTrafficLine(this.progress!.weight, this.progress!, this.spec.canary.minRequests)}`;
  }

  private requestsLine(): string {
    return canaryRequestsLine(this.progress!.canaryRequests, this.spec.canary.minRequests);
  }

  private takePromoteRequest(): boolean {
    const requested = this.promoteRequested;
    this.promoteRequested = false;
    return requested;
  }

  private takePromotion(request: PromoteRequest): OperatorAnswer {
    const run = this.run;
    const progress = this.progress!;
    this.promoteRequested = true;
    this.promoteFull ||= request.full === true;
    progress.promotedBy = request.by ?? 'unknown';
    // A pause for missing data is a hold too: promoting ends it.
    run.commands.approveByPromotion();
    log.info('promote requested', { by: progress.promotedBy, full: this.promoteFull, step: progress.step });
    return {
      message: this.promoteFull
        ? `promoted at step ${progress.step}/${progress.steps}: going straight to 100 %`
        : `promoted: step ${progress.step}/${progress.steps} (${progress.weight} %) ends its hold now`,
      phase: run.status.phase,
    };
  }

  /** The canary's lines in the Temporal UI's details. */
  private detailLines(): string[] {
    const p = this.progress;
    if (!p) return [];
    const lines = [
      '',
      `canary (${p.router}): step ${p.step}/${p.steps}, ${p.weight} % set` +
        (p.effectiveWeight !== null ? ` (${formatShare(p.effectiveWeight)} % in effect)` : '') +
        `, ${p.observedShare === null ? 'no share observed yet' : `${formatShare(p.observedShare)} % observed`}, ` +
        `${formatValue(p.canaryRequests === null ? null : Math.round(p.canaryRequests))} canary requests, canary ` +
        `replicas: ${p.canaryReplicas}` +
        (p.analysis ? `; analysis: ${p.analysis}` : '') +
        (p.hold?.extendedSeconds ? `; hold extended ${p.hold.extendedSeconds} s` : ''),
    ];
    if (p.sharedCause) lines.push('', `**shared cause**: ${p.sharedCause}`);
    for (const c of p.completed)
      lines.push(
        `- step ${c.step}: ${c.weight} %, ` +
          `${c.observedShare === null ? 'no share observed' : `${formatShare(c.observedShare)} % observed`}, ` +
          `${Math.round(c.seconds)} s`,
      );
    return lines;
  }
}
