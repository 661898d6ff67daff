/**
 * The window after the deployment: the procedure's hour of watching (§8). Every interval, the live
 * slot's SLOs and restarts, as the monitor measures them. Two ways, chosen by the spec:
 *
 * - warm (`observe.keepOldSlotWarm`): before the cleanup, with the old slot still up; a breach or
 *   an abort rolls back as during monitoring.
 * - cold (the default): after the cleanup; a breach is notified (once per SLO) and recorded, and
 *   nothing is changed: going back is a person's call (`bluegreen undo`).
 */
import { condition, isCancellation, patched } from '@temporalio/workflow';
import { AnalysisResult, formatValue, judgeTick } from '../../shared/analysis.js';
import type { Measurement } from '../../shared/analysis.js';
import { Phase, RollbackReason } from '../../shared/deployment-status.js';
import type { ObserveProgress } from '../../shared/deployment-status.js';
import { failedGates, freshProgress, MonitorVerdict } from '../../shared/monitor-window.js';
import { measureSlot, NOTHING_SO_FAR, readRestartBaseline, windowRequests, windowTimeout } from './monitor.js';
import { Patch } from './patches.js';
import { breachOf, describeError, PhaseError } from './phase-error.js';
import type { RunContext } from './run-context.js';

/** Runs the window if the spec asks for it in this way (`warm` or cold); otherwise returns at once. */
export async function observeLiveSlot(run: RunContext, { warm }: { warm: boolean }): Promise<void> {
  const observe = run.spec.observe;
  if (!observe || observe.durationSeconds === 0 || observe.keepOldSlotWarm !== warm) return;
  if (!patched(Patch.Observe)) return;
  if (warm) return await watch(run, true);
  try {
    await watch(run, false);
  } catch (error) {
    // The deployment has succeeded already: a window cut short (cancelled, or its restart baseline
    // unreadable) ends early and undoes nothing.
    const at = `tick ${run.status.observe?.tick ?? 0}/${run.status.observe?.ticks ?? 0}`;
    run.report.warnings.push(
      `observe: the window ended early at ${at}: ` +
        `${isCancellation(error) ? 'the workflow was cancelled' : describeError(error)}`,
    );
  }
}

async function watch(run: RunContext, warm: boolean): Promise<void> {
  const { durationSeconds, intervalSeconds } = run.spec.observe;
  const { target, idle: live, active: old } = run.slots();
  const ticks = Math.max(1, Math.floor(durationSeconds / intervalSeconds));
  const oneActivity = patched(Patch.OneLoop);
  const baseline = oneActivity ? null : await readRestartBaseline(run, target, live);
  const progress: ObserveProgress = {
    slot: live,
    tick: 0,
    ticks,
    durationSeconds,
    intervalSeconds,
    keepOldSlotWarm: warm,
    successful: 0,
    failed: 0,
    inconclusive: 0,
    errors: 0,
    breaches: [],
    latest: {},
  };
  run.report.record({ kind: 'observe', progress });
  run.report.enterPhase(
    Phase.Observing,
    `watching ${live} for ${durationSeconds} s every ${intervalSeconds} s: ` +
      (warm ? `${old} stays warm, so a breach rolls back` : 'a breach is notified, nothing is changed'),
  );
  const startedAt = new Date().getTime();
  if (oneActivity) {
    await watchInOneActivity(run, progress, warm, startedAt);
  } else {
    await watchTickByTick(run, progress, warm, baseline!, startedAt);
  }
  run.report.record({
    kind: 'message',
    message:
      `observed ${live} for ${durationSeconds} s: ${progress.successful}/${ticks} ticks successful` +
      (progress.breaches.length > 0 ? `, breached: ${progress.breaches.map((b) => b.name).join(', ')} (notified)` : ''),
  });
}

/**
 * The window in one activity (Patch.OneLoop), the monitor's: it waits an interval, measures, and
 * returns when the window is over, at a breach when warm, or, when cold, at an SLO's first breach,
 * which people are told of before it goes on.
 */
async function watchInOneActivity(
  run: RunContext,
  progress: ObserveProgress,
  warm: boolean,
  startedAt: number,
): Promise<void> {
  const { target } = run.slots();
  const window = freshProgress(progress.ticks, progress.durationSeconds, progress.intervalSeconds);
  const request = windowRequests(run, target, progress.slot, window, {
    intervalSeconds: progress.intervalSeconds,
    warmUpUntil: null,
    consecutive: false,
  });
  let soFar = NOTHING_SO_FAR;
  for (;;) {
    const answer = await run
      .act(
        'monitor',
        `observe ${progress.slot}: ticks ${window.tick + 1} to ${window.ticks}, every ${window.intervalSeconds} s`,
        {
          startToCloseTimeout: windowTimeout(window.ticks - window.tick, window.intervalSeconds),
        },
      )
      .monitorWindow(request({ kind: 'observe', warm, notified: progress.breaches.map((b) => b.name) }, soFar));
    soFar = { counters: answer.counters, baseline: answer.baseline };
    Object.assign(window, answer.progress);
    const { tick, successful, failed, inconclusive, errors, latest } = window;
    Object.assign(progress, { tick, successful, failed, inconclusive, errors, latest });
    run.report.record({ kind: 'message', message: answer.message });
    if (answer.verdict === MonitorVerdict.Breach) throw breachOf(answer.last ?? []);
    if (answer.verdict === MonitorVerdict.NewBreach)
      await notifyBreaches(
        run,
        progress,
        answer.last ?? [],
        answer.samples.at(-1)?.at ?? new Date().toISOString(),
        startedAt,
      );
    run.report.publishDetails();
    if (answer.verdict === MonitorVerdict.Passed) return;
  }
}

/** Cold: each SLO's first breach is recorded, warned of and notified; nothing is changed. */
async function notifyBreaches(
  run: RunContext,
  progress: ObserveProgress,
  measurements: Measurement[],
  at: string,
  startedAt: number,
): Promise<void> {
  const minutes = ((Date.parse(at) - startedAt) / 60_000).toFixed(1);
  for (const m of failedGates(measurements)) {
    if (progress.breaches.some((b) => b.name === m.name)) continue;
    progress.breaches.push({ name: m.name, value: m.value, comparison: m.comparison, threshold: m.threshold, at });
    const message =
      `SLO '${m.name}' breached while observing ${progress.slot}: ${formatValue(m.value)} (must be ` +
      `${m.comparison} ${m.threshold}), ` +
      `${minutes} min into the window; nothing was changed: to go back, bluegreen undo ${run.spec.app} -n ` +
      `${run.spec.namespace}`;
    run.report.warnings.push(`observe: ${message}`);
    await run.report.notify('observe-breach', message, RollbackReason.SloBreach, m.name);
  }
}

/** Recorded before Patch.OneLoop: a timer and an activity per tick. */
async function watchTickByTick(
  run: RunContext,
  progress: ObserveProgress,
  warm: boolean,
  baseline: number,
  startedAt: number,
): Promise<void> {
  const { target } = run.slots();
  const { ticks, intervalSeconds, slot: live } = progress;
  for (let tick = 1; tick <= ticks; tick++) {
    // Waits first: the monitor (or the previous tick) has just measured.
    if (
      await condition(() => run.commands.abortRequested, intervalSeconds * 1000, {
        summary: `observe tick ${tick}/${ticks} in ${intervalSeconds} s`,
      })
    ) {
      // Only reachable while warm: once the cleanup has begun an abort is refused.
      throw new PhaseError(RollbackReason.Aborted, run.commands.abortMessage());
    }
    const measurements = await measureSlot(run, target, live, baseline, `observe tick ${tick}/${ticks}`);
    const result = measurements === null ? AnalysisResult.Error : judgeTick(measurements);
    progress.tick = tick;
    for (const m of measurements ?? []) progress.latest[m.name] = m;
    if (result === AnalysisResult.Successful) progress.successful++;
    if (result === AnalysisResult.Failed) progress.failed++;
    if (result === AnalysisResult.Inconclusive) progress.inconclusive++;
    if (result === AnalysisResult.Error) progress.errors++;
    run.report.record({ kind: 'message', message: `observe tick ${tick}/${ticks}: ${result}` });
    if (result === AnalysisResult.Failed && measurements) {
      if (warm) throw breachOf(measurements);
      await notifyBreaches(run, progress, measurements, new Date().toISOString(), startedAt);
    }
    run.report.publishDetails();
  }
}
