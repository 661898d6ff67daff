/**
 * The monitor: every interval, the SLOs and restarts of a slot, judged by the pure limits of
 * `judgeMonitorTick`; a warm-up derived from the scrape interval; a pause for missing data that
 * goes on measuring. One short activity per tick, then a condition on the abort, so every sample
 * is in the history and an abort interrupts the wait at once.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  log,
  patched,
} from '@temporalio/workflow';
import type { MonitorWindowRequest } from '../../activities/contract.js';
import type { Target } from '../../shared/target.js';
import {
  AnalysisResult,
  judgeMonitorTick,
  judgeTick,
  MonitorDecision,
  monitorWarmUp,
  promDurationSeconds,
} from '../../shared/analysis.js';
import type { Measurement, MonitorCounters } from '../../shared/analysis.js';
import { Gate, Phase, RollbackReason } from '../../shared/deployment-status.js';
import type { MonitorProgress } from '../../shared/deployment-status.js';
import {
  countTick,
  freshProgress,
  MonitorVerdict,
  RESTARTS_MEASUREMENT,
  restartsMeasurement as measuredRestarts,
} from '../../shared/monitor-window.js';
import type { MonitorPolicy, MonitorWindowResult, MonitorWindowState } from '../../shared/monitor-window.js';
import type { Slot } from '../../shared/slots.js';
import { awaitApproval, openGate } from './approvals.js';
import { breachOf, describeError, PhaseError, phaseErrorFrom } from './phase-error.js';
import { Patch } from './patches.js';
import type { RunContext } from './run-context.js';

export { countTick, RESTARTS_MEASUREMENT };

/**
 * How long the monitor must wait before missing data means anything: from the scrape interval
 * Prometheus reports (or the spec's `initialDelaySeconds`). The new slot has no pods yet, so it
 * is read from the live slot's targets, which the same scrape configuration covers (the same
 * Deployment template); failing that, from every active target; failing that, Prometheus's
 * default is assumed, the longer wait. Its warnings (a window or a duration too short for that
 * interval) are given now, before anything changes, and kept in the result.
 */
export async function planWarmUp(
  run: RunContext,
  live: Slot,
  durationSeconds = run.spec.monitor.durationSeconds,
): Promise<void> {
  if (!patched(Patch.ScrapeAwareMonitor)) return;
  let scrape: { seconds: number | null; source: string } = { seconds: null, source: 'no SLO is measured' };
  if (run.spec.monitor.slos.length > 0) {
    try {
      scrape = await run
        .act('quick', `scrape interval of ${live}'s targets`)
        .readScrapeInterval({ target: run.target!, slot: live });
    } catch (error) {
      scrape = { seconds: null, source: describeError(error) };
    }
  }
  applyWarmUp(run, scrape, durationSeconds);
}

/** The monitor's warm-up from the scrape interval read (`scrape`: what preflight found). */
export function applyWarmUp(
  run: RunContext,
  scrape: { seconds: number | null; source: string },
  durationSeconds = run.spec.monitor.durationSeconds,
): void {
  const monitor = run.spec.monitor;
  if (monitor.slos.length > 0) {
    if (scrape.seconds === null && monitor.initialDelaySeconds === undefined) {
      run.report.warnings.push(
        `the scrape interval could not be read (${scrape.source}): the warm-up assumes Prometheus's default`,
      );
    }
  }
  run.warmUp = monitorWarmUp({
    windowSeconds: promDurationSeconds(monitor.window),
    intervalSeconds: monitor.intervalSeconds,
    durationSeconds,
    scrapeIntervalSeconds: scrape.seconds,
    initialDelaySeconds: monitor.initialDelaySeconds,
  });
  if (monitor.slos.length > 0) run.report.warnings.push(...run.warmUp.warnings);
  for (const warning of run.report.warnings) log.warn(warning);
}

/** The restart count a slot starts monitoring from. */
export async function readRestartBaseline(run: RunContext, target: Target, slot: Slot): Promise<number> {
  return await run
    .act('quick', `restart baseline of ${slot}`)
    .readRestarts({ target, slot })
    .catch((error: unknown) => {
      throw phaseErrorFrom(error, RollbackReason.ActivityError);
    });
}

/** Fresh counts for people, with the warm-up where it applies. */
export function newMonitorProgress(run: RunContext, ticks: number, durationSeconds: number): MonitorProgress {
  const progress = freshProgress(ticks, durationSeconds, run.spec.monitor.intervalSeconds);
  const warmUp = run.warmUp;
  if (warmUp)
    Object.assign(progress, {
      warmUpSeconds: warmUp.seconds,
      scrapeIntervalSeconds: warmUp.scrapeIntervalSeconds,
      consecutiveInconclusive: 0,
    });
  return progress;
}

/** In words, for the phase message: how long missing data is not counted, and why. */
export function warmUpMessage(run: RunContext): string {
  const warmUp = run.warmUp;
  if (!warmUp) return '';
  const from =
    warmUp.scrapeIntervalSeconds === null
      ? 'monitor.initialDelaySeconds'
      : `scrape interval ${warmUp.scrapeIntervalSeconds} s`;
  return `; missing data counts after a ${warmUp.seconds} s warm-up (${from})`;
}

/** Blue-green's phase 4: every interval for the monitor window, the SLOs and restarts of the new slot. */
export async function monitorSlot(run: RunContext, target: Target, slot: Slot): Promise<void> {
  const monitor = run.spec.monitor;
  const ticks = Math.max(1, Math.floor(monitor.durationSeconds / monitor.intervalSeconds));
  if (patched(Patch.MonitorLoop)) return await monitorInOneActivity(run, target, slot, ticks);
  const baseline = await readRestartBaseline(run, target, slot);
  const progress = newMonitorProgress(run, ticks, monitor.durationSeconds);
  run.report.record({ kind: 'monitor', progress });
  const warmUp = run.warmUp;
  run.report.enterPhase(
    Phase.Monitoring,
    `monitoring ${slot} for ${monitor.durationSeconds} s every ${monitor.intervalSeconds} s${warmUpMessage(run)}`,
  );
  const startedAt = new Date().getTime();
  let counters: MonitorCounters = { failed: 0, consecutiveErrors: 0, inconclusive: 0 };
  /** A pause for missing data, measuring on (with the warm-up), until the data comes or a person decides. */
  const pause = (why: string) => pauseWhileMeasuring(run, target, slot, baseline, progress, counters, why);
  for (let tick = 1; tick <= ticks; tick++) {
    const measurements = await measureSlot(run, target, slot, baseline, `monitor tick ${tick}/${ticks}`);
    const result = measurements === null ? AnalysisResult.Error : judgeTick(measurements);
    const warmingUp = warmUp !== null && new Date().getTime() - startedAt < warmUp.seconds * 1000;
    progress.tick = tick;
    for (const m of measurements ?? []) progress.latest[m.name] = m;
    run.report.record({
      kind: 'message',
      message:
        `monitor tick ${tick}/${ticks}: ` +
        `${result}${warmingUp && result === AnalysisResult.Inconclusive ? ' (warming up: not counted)' : ''}`,
    });
    const judged = judgeMonitorTick(monitor, counters, result, { warmingUp, consecutive: warmUp !== null });
    counters = judged.counters;
    countTick(progress, result, counters);
    if (judged.decision === MonitorDecision.Breach) throw breachOf(measurements ?? []);
    if (judged.decision === MonitorDecision.ErrorLimit) throw errorLimitError(run, progress.consecutiveErrors);
    if (judged.decision === MonitorDecision.Pause) {
      if (warmUp) {
        const paused = await pause(`no data for ${monitor.inconclusiveLimit + 1} ticks in a row after the warm-up`);
        counters = paused.counters;
        run.report.enterPhase(Phase.Monitoring, `monitoring ${slot}: ${paused.how} at tick ${tick}/${ticks}`);
      } else {
        await awaitApproval(run, Gate.Inconclusive, true);
        run.report.enterPhase(Phase.Monitoring, `monitoring ${slot}: resumed by an operator at tick ${tick}/${ticks}`);
      }
    }
    run.report.publishDetails();
    if (
      await condition(() => run.commands.abortRequested, monitor.intervalSeconds * 1000, {
        summary: `monitor tick ${tick}/${ticks}: next in ${monitor.intervalSeconds} s`,
      })
    ) {
      throw new PhaseError(RollbackReason.Aborted, run.commands.abortMessage());
    }
  }
  if (progress.successful === 0) {
    // A window in which nothing could be measured proves nothing: an operator decides.
    if (warmUp) await pause(`not one tick of the ${monitor.durationSeconds} s window had data`);
    else await awaitApproval(run, Gate.Inconclusive, true);
  }
  run.report.record({
    kind: 'message',
    message: `monitoring passed: ${progress.successful}/${ticks} ticks successful`,
  });
}

/** What the window's activities have measured so far: the counters and the restart baseline. */
export interface WindowSoFar {
  counters: MonitorCounters;
  /** null until the first activity has read it. */
  baseline: number | null;
}

export const NOTHING_SO_FAR: WindowSoFar = {
  counters: { failed: 0, consecutiveErrors: 0, inconclusive: 0 },
  baseline: null,
};

/** A monitor window's activity request for a policy, from what was measured so far. */
export type WindowRequests = (policy: MonitorPolicy, soFar: WindowSoFar) => MonitorWindowRequest;

/**
 * The requests of a window over `slot` whose counts people see in `progress`: the spec's SLOs and
 * limits, measured every `intervalSeconds`; missing data counted only after `warmUpUntil` (ms
 * since the epoch; null: no warm-up) and, when `consecutive`, only in a row.
 */
export function windowRequests(
  run: RunContext,
  target: Target,
  slot: Slot,
  progress: MonitorProgress,
  timing: { intervalSeconds: number; warmUpUntil: number | null; consecutive: boolean },
): WindowRequests {
  const monitor = run.spec.monitor;
  return (policy, { counters, baseline }) => ({
    target,
    slot,
    version: run.spec.version,
    run: run.id,
    window: monitor.window,
    slos: monitor.slos,
    restarts: { baseline, limit: monitor.restartLimit },
    limits: {
      failureLimit: monitor.failureLimit,
      consecutiveErrorLimit: monitor.consecutiveErrorLimit,
      inconclusiveLimit: monitor.inconclusiveLimit,
    },
    ...timing,
    counters,
    progress,
    policy,
  });
}

/** The start-to-close of a window's activity: each tick's reads get 15 s at most, and a minute to spare. */
export function windowTimeout(ticksLeft: number, intervalSeconds: number): string {
  return `${(ticksLeft + 1) * (intervalSeconds + 15) + 60}s`;
}

/**
 * The window in one activity (Patch.MonitorLoop): it measures every interval and returns at a
 * verdict, with every sample in its result. The workflow waits on it or on an abort, which
 * cancels the forward scope and leaves the read behind. Missing data past its limit pauses, still
 * measuring in one activity, until an approval, the pause ending by itself, or the gate's timeout.
 */
async function monitorInOneActivity(run: RunContext, target: Target, slot: Slot, ticks: number): Promise<void> {
  const { monitor } = run.spec;
  const progress = newMonitorProgress(run, ticks, monitor.durationSeconds);
  run.report.record({ kind: 'monitor', progress });
  run.report.enterPhase(
    Phase.Monitoring,
    `monitoring ${slot} for ${monitor.durationSeconds} s every ${monitor.intervalSeconds} s${warmUpMessage(run)}`,
  );
  const warmUp = run.warmUp;
  const request = windowRequests(run, target, slot, progress, {
    intervalSeconds: monitor.intervalSeconds,
    warmUpUntil: warmUp ? new Date().getTime() + warmUp.seconds * 1000 : null,
    consecutive: warmUp !== null,
  });
  let soFar = NOTHING_SO_FAR;
  for (;;) {
    const answer = await run
      .act(
        'monitor',
        `monitor ${slot}: ticks ${progress.tick + 1} to ${progress.ticks}, every ${monitor.intervalSeconds} s`,
        {
          startToCloseTimeout: windowTimeout(progress.ticks - progress.tick, monitor.intervalSeconds),
        },
      )
      .monitorWindow(request({ kind: 'window' }, soFar));
    soFar = takeAnswer(run, answer);
    if (answer.verdict === MonitorVerdict.Passed) break;
    if (answer.verdict === MonitorVerdict.Breach) throw breachOf(answer.last ?? []);
    if (answer.verdict === MonitorVerdict.ErrorLimit) throw errorLimitError(run, progress.consecutiveErrors);
    const paused = await pauseInOneActivity(
      run,
      request,
      soFar,
      `no data for ${monitor.inconclusiveLimit + 1} ticks in a row after the warm-up`,
    );
    soFar = paused.soFar;
    run.report.enterPhase(
      Phase.Monitoring,
      `monitoring ${slot}: ${paused.how} at tick ${progress.tick}/${progress.ticks}`,
    );
  }
  if (progress.successful === 0) {
    // A window in which nothing could be measured proves nothing: an operator decides.
    await pauseInOneActivity(run, request, soFar, `not one tick of the ${monitor.durationSeconds} s window had data`);
  }
  run.report.record({
    kind: 'message',
    message: `monitoring passed: ${progress.successful}/${progress.ticks} ticks successful`,
  });
}

/** What a window's activity measured, shown to people; returns its counters and baseline. */
export function takeAnswer(run: RunContext, answer: MonitorWindowState): WindowSoFar {
  run.report.record({ kind: 'monitor-answer', progress: answer.progress, message: answer.message });
  run.report.publishDetails();
  return { counters: answer.counters, baseline: answer.baseline };
}

/**
 * How a window's activity ended: its answer, or stopped by the workflow with what it had measured
 * (null: nothing came).
 */
export type WindowEnd = { answer: MonitorWindowResult } | { stopped: MonitorWindowState | null; error: unknown };

/**
 * A window's activity that the workflow may stop: once `stop()` holds (or `timeoutMs` has passed),
 * it is cancelled and waited for, since its cancellation carries what it measured. An abort
 * leaves it behind: the wait here is cancelled with the forward scope, and the read only reads.
 */
export async function measureUntil(
  run: RunContext,
  summary: string,
  startToCloseTimeout: string,
  request: MonitorWindowRequest,
  stop: () => boolean,
  timeoutMs?: number,
): Promise<WindowEnd> {
  const measuring = new CancellationScope();
  const ended: { end: WindowEnd | null } = { end: null };
  const running = measuring.run(() =>
    run
      .act('monitor', summary, {
        startToCloseTimeout,
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      })
      .monitorWindow(request),
  );
  void running.then(
    (answer) => (ended.end = { answer }),
    (error: unknown) => (ended.end = { stopped: cancelledState(error), error }),
  );
  await condition(() => stop() || ended.end !== null, timeoutMs);
  if (ended.end === null) {
    measuring.cancel();
    await condition(() => ended.end !== null);
  }
  return ended.end!;
}

/**
 * Paused for missing data (the gate open, people told), still measuring in one activity. An
 * approval or the gate's timeout cancels it and waits for what it measured (its cancellation
 * carries it); an abort leaves it behind. Returns how the pause ended, the counters then, and
 * what it measured last.
 */
export async function pauseInOneActivity(
  run: RunContext,
  request: WindowRequests,
  soFar: WindowSoFar,
  why: string,
): Promise<{ how: string; soFar: WindowSoFar; last: MonitorWindowState | null }> {
  const { monitor, gates } = run.spec;
  const progress = run.status.monitor!;
  const deadline = await openPauseGate(run, why);
  const paused = request({ kind: 'paused', resumeAfter: monitor.resumeWhenConclusive ?? 0 }, soFar);
  try {
    const end = await measureUntil(
      run,
      `paused: measuring ${paused.slot} every ${monitor.intervalSeconds} s`,
      `${gates.approvalTimeoutSeconds + 60}s`,
      paused,
      () => run.commands.approved,
      Math.max(1, deadline - new Date().getTime()),
    );
    const answer = 'answer' in end ? end.answer : end.stopped;
    const current = answer ? takeAnswer(run, answer) : soFar;
    if ('answer' in end) {
      if (end.answer.verdict === MonitorVerdict.Breach) throw breachOf(end.answer.last ?? []);
      if (end.answer.verdict === MonitorVerdict.ErrorLimit) throw errorLimitError(run, progress.consecutiveErrors);
      if (end.answer.verdict === MonitorVerdict.Resumed)
        return {
          how: `resumed by itself after ${end.answer.successes} successful ticks in a row`,
          soFar: current,
          last: answer,
        };
    }
    if (run.commands.approved) return { how: 'resumed by an operator', soFar: current, last: answer };
    if (!answer) throw 'error' in end ? end.error : new Error('the pause ended without an answer');
    throw new PhaseError(
      RollbackReason.NoDecision,
      `nobody approved the ${Gate.Inconclusive} gate within ${gates.approvalTimeoutSeconds} s`,
      Gate.Inconclusive,
    );
  } finally {
    run.report.record({ kind: 'gate', awaiting: null });
  }
}

/** Opens the gate of a pause for missing data that goes on measuring; returns its deadline. */
async function openPauseGate(run: RunContext, why: string): Promise<number> {
  const { intervalSeconds, resumeWhenConclusive } = run.spec.monitor;
  const resumeAfter = resumeWhenConclusive ?? 0;
  return await openGate(
    run,
    Gate.Inconclusive,
    `${why}: approve to go on or abort to roll back` +
      (resumeAfter > 0 ? `; goes on by itself after ${resumeAfter} successful ticks in a row` : '') +
      `; still measuring every ${intervalSeconds} s`,
  );
}

/** What a cancelled window had measured, from its cancellation's details (null: none came). */
function cancelledState(error: unknown): MonitorWindowState | null {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof CancelledFailure ? ((cause.details[0] as MonitorWindowState | undefined) ?? null) : null;
}

export function errorLimitError(run: RunContext, consecutiveErrors: number): PhaseError {
  return new PhaseError(
    RollbackReason.MeasurementErrors,
    `${consecutiveErrors} consecutive measurement errors (limit ${run.spec.monitor.consecutiveErrorLimit}): the ` +
      `SLOs cannot be verified`,
    'measurement',
  );
}

/**
 * Paused for missing data, the monitor goes on measuring every interval and shows the latest
 * values, so the operator decides on facts. The pause ends with an approval, or by itself after
 * `resumeWhenConclusive` Successful ticks in a row; a breach or the error limit rolls back as
 * during monitoring; an abort cancels it; nobody answering within the approval timeout rolls back.
 * Returns how it ended, for the phase message, and the counters as the pause left them.
 * `measure` is the tick (the canary's judges the requests it served too).
 */
export async function pauseWhileMeasuring(
  run: RunContext,
  target: Target,
  slot: Slot,
  baseline: number,
  progress: MonitorProgress,
  counters: MonitorCounters,
  why: string,
  measure: (tick: string) => Promise<Measurement[] | null> = (tick) => measureSlot(run, target, slot, baseline, tick),
): Promise<{ how: string; counters: MonitorCounters }> {
  const { monitor, gates } = run.spec;
  const resumeAfter = monitor.resumeWhenConclusive ?? 0;
  const deadline = await openPauseGate(run, why);
  let current = counters;
  let successes = 0;
  try {
    for (let tick = 1; ; tick++) {
      const left = deadline - new Date().getTime();
      if (left <= 0) {
        throw new PhaseError(
          RollbackReason.NoDecision,
          `nobody approved the ${Gate.Inconclusive} gate within ${gates.approvalTimeoutSeconds} s`,
          Gate.Inconclusive,
        );
      }
      if (
        await condition(() => run.commands.approved, Math.min(monitor.intervalSeconds * 1000, left), {
          summary: `paused: next measurement in ${monitor.intervalSeconds} s`,
        })
      ) {
        return { how: 'resumed by an operator', counters: current };
      }
      const measurements = await measure(`paused tick ${tick}`);
      const result = measurements === null ? AnalysisResult.Error : judgeTick(measurements);
      for (const m of measurements ?? []) progress.latest[m.name] = m;
      const judged = judgeMonitorTick(monitor, current, result, { consecutive: true });
      current = { ...judged.counters, inconclusive: 0 };
      countTick(progress, result, current);
      progress.pausedTicks = (progress.pausedTicks ?? 0) + 1;
      if (judged.decision === MonitorDecision.Breach) throw breachOf(measurements ?? []);
      if (judged.decision === MonitorDecision.ErrorLimit) throw errorLimitError(run, progress.consecutiveErrors);
      successes = result === AnalysisResult.Successful ? successes + 1 : 0;
      run.report.record({
        kind: 'message',
        message:
          `paused, still measuring: tick ${tick}: ` +
          `${result}${resumeAfter > 0 ? ` (${successes}/${resumeAfter} successful in a row)` : ''}`,
      });
      run.report.publishDetails();
      if (resumeAfter > 0 && successes >= resumeAfter)
        return { how: `resumed by itself after ${successes} successful ticks in a row`, counters: current };
    }
  } finally {
    run.report.record({ kind: 'gate', awaiting: null });
  }
}

/**
 * One tick: SLOs and restarts side by side, in one activity (the workflow's round trips per tick
 * are its cost at scale); null when either could not be measured.
 */
export async function measureSlot(
  run: RunContext,
  target: Target,
  slot: Slot,
  baseline: number,
  tick: string,
): Promise<Measurement[] | null> {
  const monitor = run.spec.monitor;
  if (patched(Patch.FewerRoundTrips)) {
    const measured = await measuredOrNull(
      run.act('measure', `${tick}: SLOs and restarts of ${slot}`).measureSlot({
        target,
        slot,
        version: run.spec.version,
        run: run.id,
        window: monitor.window,
        slos: monitor.slos,
      }),
    );
    return measured && [...measured[0].slos, restartsMeasurement(run, measured[0].restarts, baseline)];
  }
  // Recorded before: two activities a tick.
  const measured = await measuredOrNull(
    run.act('measure', `${tick}: SLOs of ${slot}`).evaluateSlos({
      target,
      slot,
      version: run.spec.version,
      run: run.id,
      window: monitor.window,
      slos: monitor.slos,
    }),
    run.act('measure', `${tick}: restarts of ${slot}`).readRestarts({ target, slot }),
  );
  return measured && [...measured[0], restartsMeasurement(run, measured[1], baseline)];
}

/**
 * A tick's reads, side by side; null when any of them failed, which is a measurement error (an
 * Error tick, counted), logged here. A cancellation is the abort's, not an error: it is rethrown.
 */
export async function measuredOrNull<T extends unknown[]>(
  ...reads: { [K in keyof T]: Promise<T[K]> }
): Promise<T | null> {
  const settled = await Promise.allSettled(reads);
  for (const read of settled) {
    if (read.status === 'rejected' && isCancellation(read.reason)) throw read.reason;
  }
  const failed = settled.find((read): read is PromiseRejectedResult => read.status === 'rejected');
  if (failed) {
    log.warn('measurement error', { error: describeError(failed.reason) });
    return null;
  }
  return settled.map((read) => (read as PromiseFulfilledResult<unknown>).value) as T;
}

/** The restarts since the baseline, as a gated measurement (the procedure: none tolerated, PROCEDURE §4). */
export function restartsMeasurement(run: RunContext, restarts: number, baseline: number): Measurement {
  const measured = measuredRestarts(restarts, baseline, run.spec.monitor.restartLimit);
  // The window after the deployment counts from its own baseline: the monitor's count stays as it ended.
  run.report.record({ kind: 'restarts', restarts: measured.value! });
  return measured;
}
