/**
 * Plain-text rendering of a deployment for people: phase lines as they pass, smoke checks, monitor
 * ticks and the SLO table. Lines only, no cursor tricks, so CI logs read the same as terminals.
 */
import { Presets, SingleBar } from 'cli-progress';
import { formatValue } from '../shared/analysis.js';
import type { Measurement } from '../shared/analysis.js';
import type {
  ActiveSlotCheck,
  CanaryProgress,
  DeploymentResult,
  DeploymentStatus,
} from '../shared/deployment-status.js';
import { formatShare } from '../shared/traffic.js';
import type { DeploymentSnapshot } from './deployment-client.js';

function time(iso: string): string {
  return iso.slice(11, 19);
}

/** A canary's step in one line: the weight set beside the share observed. */
export function formatCanary(c: CanaryProgress): string {
  const observed = c.observedShare === null ? 'no share observed yet' : `${formatShare(c.observedShare)} % observed`;
  const requests =
    c.canaryRequests === null
      ? 'no canary requests yet'
      : `${Math.round(c.canaryRequests)} canary requests in the window`;
  return (
    `step ${c.step}/${c.steps}: ${c.weight} % set, ${observed} (${requests}), canary replicas: ` +
    `${c.canaryReplicas}${c.analysis ? `, ${c.analysis}` : ''}`
  );
}

export function formatMeasurement(m: Measurement): string {
  const mark =
    m.result === 'Successful' ? 'ok' : m.result === 'Failed' ? (m.gate ? 'FAIL' : 'warn') : m.result.toLowerCase();
  return `${m.name}=${formatValue(m.value)} (${m.comparison} ${m.threshold}) ${mark}`;
}

/**
 * Remembers what was printed, so each status poll prints only what is new. On a terminal the
 * monitor window is a progress bar carrying the latest value of each SLO; elsewhere (CI logs,
 * pipes) every tick is a plain line.
 */
export class ProgressPrinter {
  private transitions = 0;
  private smokePrinted = false;
  private tick = 0;
  private pausedTicks = 0;
  /** The canary step whose ticks are being printed: each step's hold counts its ticks afresh. */
  private step = 0;
  private bar: SingleBar | null = null;

  constructor(
    private readonly write: (line: string) => void,
    private readonly terminal: NodeJS.WriteStream | null = null,
  ) {}

  update(status: DeploymentStatus): void {
    // Ticks of the window already on screen that came with the phase after it (a window is one
    // activity, seen between polls through its heartbeat) belong before that phase's line.
    if (this.tick > 0 && (!status.canary || status.canary.step === this.step)) this.showTicks(status);
    if (this.bar && status.transitions.length > this.transitions) this.stopBar();
    status.transitions.slice(this.transitions).forEach((t, offset) => {
      // The smoke checks belong right after the smoke phase, however many phases a poll brings.
      if (status.transitions[this.transitions + offset - 1]?.phase === 'SmokeTesting') this.printSmoke(status);
      this.write(`[${time(t.at)}] ${t.phase.padEnd(16)} ${t.message}`);
    });
    this.transitions = status.transitions.length;
    this.printSmoke(status);
    if (status.canary && status.canary.step !== this.step) {
      this.stopBar();
      this.step = status.canary.step;
      this.tick = 0;
      this.pausedTicks = 0;
    }
    const monitor = status.monitor;
    if (monitor && (monitor.pausedTicks ?? 0) > this.pausedTicks) {
      // Paused for missing data, the monitor goes on measuring: the operator decides on these.
      this.stopBar();
      this.write(
        `    paused, still measuring: ${Object.values(monitor.latest)
          .filter((m) => m.gate)
          .map(formatMeasurement)
          .join(', ')}`,
      );
      this.pausedTicks = monitor.pausedTicks ?? 0;
    }
    this.showTicks(status);
  }

  /** The ticks not shown yet: on a terminal, the bar (started while Monitoring); elsewhere, a line. */
  private showTicks(status: DeploymentStatus): void {
    const monitor = status.monitor;
    if (!monitor || monitor.tick <= this.tick) return;
    const slos = readings(status, monitor);
    if (this.bar) {
      this.bar.update(monitor.tick, { slos });
    } else if (this.terminal && status.phase === 'Monitoring') {
      this.bar = new SingleBar(
        {
          stream: this.terminal,
          format: '    monitor [{bar}] {value}/{total} | {slos}',
          barsize: 24,
          hideCursor: true,
          clearOnComplete: false,
        },
        Presets.legacy,
      );
      this.bar.start(monitor.ticks, monitor.tick, { slos });
    } else {
      this.write(`    monitor ${monitor.tick}/${monitor.ticks}: ${slos}`);
    }
    this.tick = monitor.tick;
  }

  /** Leaves the bar as its last state and gives the terminal back to plain lines. */
  stopBar(): void {
    this.bar?.stop();
    this.bar = null;
  }

  private printSmoke(status: DeploymentStatus): void {
    if (!status.smoke || this.smokePrinted) return;
    for (const check of status.smoke.checks) {
      const latency = check.latencyMs === null ? '' : ` ${check.latencyMs.toFixed(0)} ms`;
      this.write(`    smoke ${check.verdict.padEnd(7)} ${check.name}${latency}: ${check.message}`);
    }
    this.smokePrinted = true;
  }
}

/** A tick's readings in one line: the canary's traffic, each gated SLO against its rule, the warm-up. */
function readings(status: DeploymentStatus, monitor: NonNullable<DeploymentStatus['monitor']>): string {
  const warmingUp =
    monitor.warmUpSeconds !== undefined && (monitor.tick - 1) * monitor.intervalSeconds < monitor.warmUpSeconds;
  return (
    (status.canary ? `${formatCanary(status.canary)} | ` : '') +
    Object.values(monitor.latest)
      .filter((m) => m.gate)
      .map(formatMeasurement)
      .join(', ') +
    (warmingUp && !status.canary ? ' (warm-up: no data is not counted yet)' : '')
  );
}

/** The preflight stability check in one line: the verdict, and why or what breached. */
export function formatActiveCheck(check: ActiveSlotCheck): string {
  const breached = check.measurements.filter((m) => m.gate && m.result === 'Failed').map(formatMeasurement);
  const why =
    check.verdict === 'breaching'
      ? breached.join('; ')
      : (check.detail ?? check.measurements.map(formatMeasurement).join('; '));
  const through = check.allowedUnstable ? ' (let through: allowUnstableActive)' : '';
  return `active slot ${check.slot} ${check.verdict}${why ? `: ${why}` : ''}${through}`;
}

/** The `status` command's view: phase, slots, gate, abort, and the SLO table. */
export function renderStatus(status: DeploymentStatus): string {
  const lines = [
    `deployment ${status.namespace}/${status.app} ${status.version} (${status.image})`,
    `phase:   ${status.phase}: ${status.message}`,
    `slots:   ${status.fromSlot ?? '?'} -> ${status.toSlot ?? '?'}; active ${status.activeSlot ?? '?'}, idle ` +
      `${status.idleSlot ?? '?'}`,
  ];
  if (status.activeCheck) lines.push(`preflight: ${formatActiveCheck(status.activeCheck)}`);
  if (status.awaiting) lines.push(`waiting: gate ${status.awaiting.gate} until ${status.awaiting.timeoutAt}`);
  if (status.abort) lines.push(`abort:   by ${status.abort.by} at ${status.abort.at}: ${status.abort.reason}`);
  for (const rejected of status.rejectedAborts) lines.push(`refused: abort by ${rejected.by}: ${rejected.message}`);
  if (status.rollback) {
    const r = status.rollback;
    const state =
      r.seconds !== null
        ? `done in ${r.seconds.toFixed(1)} s`
        : r.stuckSince
          ? `STUCK since ${r.stuckSince}, still retrying`
          : 'running';
    lines.push(`rollback: since ${r.startedAt}, ${state}${r.step ? ` (step: ${r.step})` : ''}`);
  }
  if (status.canary) {
    const c = status.canary;
    lines.push(
      `canary:  ${formatCanary(c)}; router ` +
        `${c.router}${c.effectiveWeight !== null ? `, ${formatShare(c.effectiveWeight)} % in effect` : ''}`,
    );
    if (c.hold) {
      const until = c.hold.untilPromote ? 'until promoted' : `${c.hold.seconds} s`;
      const extended = c.hold.extendedSeconds ? `, extended ${c.hold.extendedSeconds} s` : '';
      lines.push(`hold:    since ${c.hold.since}, ${until}${extended}`);
    }
    if (c.sharedCause) lines.push(`shared cause: ${c.sharedCause}`);
    for (const done of c.completed)
      lines.push(
        `    step ${done.step} done: ${done.weight} %, ` +
          `${done.observedShare === null ? 'no share observed' : `${formatShare(done.observedShare)} % observed`}, ` +
          `${Math.round(done.seconds)} s`,
      );
  }
  if (status.smoke) {
    const passed = status.smoke.checks.filter((c) => c.verdict !== 'failed').length;
    lines.push(`smoke:   ${passed}/${status.smoke.checks.length} passed against ${status.smoke.endpoint}`);
  }
  if (status.monitor) {
    const m = status.monitor;
    lines.push(
      `monitor: tick ${m.tick}/${m.ticks} (${m.durationSeconds} s every ${m.intervalSeconds} s): ` +
        `${m.successful} ok, ${m.failed} failed, ${m.inconclusive} inconclusive, ${m.errors} errors`,
    );
    for (const measurement of Object.values(m.latest)) {
      lines.push(`    ${measurement.gate ? 'gate   ' : 'warning'} ${formatMeasurement(measurement)}`);
    }
  }
  if (status.observe) {
    const o = status.observe;
    lines.push(
      `observe: tick ${o.tick}/${o.ticks} of ${o.slot} (${o.durationSeconds} s every ${o.intervalSeconds} s, ` +
        `${o.keepOldSlotWarm ? 'old slot warm: a breach rolls back' : 'a breach is notified'}): ` +
        `${o.successful} ok, ${o.failed} failed, ${o.inconclusive} inconclusive, ${o.errors} errors`,
    );
    for (const breach of o.breaches)
      lines.push(
        `    breached ${breach.name}=${formatValue(breach.value)} (${breach.comparison} ` +
          `${breach.threshold}) at ${breach.at}`,
      );
  }
  return lines.join('\n');
}

/** The `status` view when no worker answers: what Temporal holds, and what waits for a worker. */
export function renderSnapshot(snapshot: DeploymentSnapshot): string {
  const lines = [
    `deployment ${snapshot.namespace}/${snapshot.app} ${snapshot.version}: ` +
      `${snapshot.executionStatus}${snapshot.phase ? `, last recorded phase ${snapshot.phase}` : ''}`,
    `no live status: ${snapshot.why}`,
    `workflow ${snapshot.workflowId} run ${snapshot.runId}, started ` +
      `${snapshot.startTime}${snapshot.closeTime ? `, closed ${snapshot.closeTime}` : ''}`,
  ];
  for (const signal of snapshot.pendingSignals) {
    lines.push(`waiting for a worker: ${signal.name} recorded at ${signal.at} ${JSON.stringify(signal.input)}`);
  }
  for (const activity of snapshot.pendingActivities) {
    lines.push(
      `pending: ${activity.activity}, attempt ` +
        `${activity.attempt}${activity.lastFailure ? `, last failure: ${activity.lastFailure}` : ''}`,
    );
  }
  return lines.join('\n');
}

export function renderResult(result: DeploymentResult): string {
  const lines = [`${result.outcome}: ${result.message}`];
  if (result.reason) lines.push(`reason: ${result.reason}${result.failedCheck ? ` (${result.failedCheck})` : ''}`);
  lines.push(`live:   ${result.liveSlot ?? 'unknown slot'} running ${result.liveImage ?? 'unknown image'}`);
  const canary = result.status.canary;
  if (canary) {
    for (const done of canary.completed) {
      lines.push(
        `step ${done.step}/${canary.steps}: ${done.weight} % set, ` +
          `${done.observedShare === null ? 'no share observed' : `${formatShare(done.observedShare)} % observed`} ` +
          `(${done.canaryRequests === null ? 'no' : Math.round(done.canaryRequests)} canary requests ` +
          `in the last window)`,
      );
    }
    if (result.outcome !== 'Succeeded' && canary.step > 0)
      lines.push(`the canary had ${canary.weight} % at step ${canary.step}/${canary.steps} when it was stopped`);
  }
  const check = result.status.activeCheck;
  if (check && check.verdict !== 'stable') lines.push(`preflight: ${formatActiveCheck(check)}`);
  const evidence = result.status.evidence;
  if (evidence) {
    lines.push(
      `evidence of ${evidence.slot} (captured before it was scaled down): ${evidence.breach ?? 'no SLO breach'}; ` +
        `restarted: ${evidence.restartedPods.join(', ') || 'none'}; ${evidence.errorLines.length} error line(s), ` +
        `${evidence.events} event(s); ` +
        `bluegreen evidence ${result.app} -n ${result.namespace} -o DIR writes it all`,
    );
    for (const line of evidence.errorLines.slice(0, 3)) lines.push(`    ${line}`);
  }
  if (typeof result.rollbackSeconds === 'number') lines.push(`rollback took ${result.rollbackSeconds.toFixed(1)} s`);
  for (const warning of result.warnings) lines.push(`warning: ${warning}`);
  return lines.join('\n');
}
