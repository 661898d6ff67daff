/**
 * The report: what a run tells the world. It holds the status (written only by the reducer in
 * status.ts, through `record`), publishes the Temporal UI's details, the search attributes and the
 * memo, counts the metrics, notifies people, and builds the result the workflow ends with.
 *
 * Deterministic code only: no I/O, no Node built-ins, activity types imported as types.
 */
import {
  CancellationScope,
  log,
  metricMeter,
  patched,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { formatValue } from '../../shared/analysis.js';
import { incidentOf } from '../../shared/deployment-event.js';
import type { DeploymentEvent } from '../../shared/deployment-event.js';
import { Outcome, Phase } from '../../shared/deployment-status.js';
import type { DeploymentResult, DeploymentStatus, RollbackReason } from '../../shared/deployment-status.js';
import { SearchAttribute } from '../../shared/search-attributes.js';
import type { Slot } from '../../shared/slots.js';
import { statusQuery } from '../definitions.js';
import { describeError } from './phase-error.js';
import { Patch } from './patches.js';
import type { RunContext } from './run-context.js';
import { applyEvent, initialStatus } from './status.js';
import type { StatusEvent } from './status.js';

/** The kinds that are incidents (the procedure's §3.1 step 5). */
const INCIDENT_KINDS: readonly DeploymentEvent['kind'][] = [
  'rolled-back',
  'failed',
  'rollback-stuck',
  'observe-breach',
];

/**
 * Deployment metrics, exported by the worker's runtime (replay-safe: not re-counted on replay).
 * Made inside the workflow: the meter exists only in a workflow context, and clients import this
 * module for its types and function name.
 */
function deploymentMetrics() {
  return {
    started: metricMeter.createCounter('bluegreen_deployments_started', 'deployments', 'Deployments started'),
    finished: metricMeter.createCounter(
      'bluegreen_deployments_finished',
      'deployments',
      'Deployments ended, by outcome and reason',
    ),
    phaseDuration: metricMeter.createHistogram('bluegreen_phase_duration', 'int', 'ms', 'Time spent in each phase'),
  };
}

export class RunReport {
  private readonly current: DeploymentStatus;
  private readonly metrics = deploymentMetrics();
  /** Warnings the result carries (an unstable active slot let through, a slow scrape). */
  readonly warnings: string[] = [];
  /** Extra lines for the Temporal UI's details, given by the recipe (the canary's step). */
  detailLines: () => string[] = () => [];

  constructor(private readonly run: RunContext) {
    const { spec } = run;
    this.current = initialStatus(spec);
    this.metrics.started.add(1, { app: spec.app, namespace: spec.namespace });
    setHandler(statusQuery, () => this.current);
  }

  /** The status as the reducer made it: read it here, change it with `record`. */
  get status(): Readonly<DeploymentStatus> {
    return this.current;
  }

  /** Applies what happened to the status (status.ts). */
  record(event: StatusEvent): void {
    applyEvent(this.current, event);
  }

  /** A phase begins: its time in the last one measured, the status, the UI's details and the search attribute. */
  enterPhase(phase: Phase, message: string): void {
    const previous = this.current.transitions.at(-1);
    if (previous && previous.phase !== phase) {
      const spent = new Date().getTime() - new Date(previous.at).getTime();
      this.metrics.phaseDuration.record(spent, { app: this.run.spec.app, phase: previous.phase });
    }
    this.record({ kind: 'phase', phase, message });
    this.publishDetails();
    if (this.isIndexed) upsertSearchAttributes([{ key: SearchAttribute.Phase, value: phase }]);
    log.info(`phase ${phase}: ${message}`);
  }

  /** The Temporal UI's current details: phase, slots, the recipe's lines and the SLO table, as markdown. */
  publishDetails(): void {
    const s = this.current;
    const lines = [
      `**${s.phase}**: ${s.message}`,
      '',
      `${s.app} ${s.version} (${s.image}), ${s.fromSlot ?? '?'} → ${s.toSlot ?? '?'}, active: ${s.activeSlot ?? '?'}`,
      ...this.detailLines(),
    ];
    if (s.smoke)
      lines.push(
        '',
        `smoke: ${s.smoke.checks.filter((c) => c.verdict !== 'failed').length}/${s.smoke.checks.length} passed`,
      );
    if (s.rollback) {
      const r = s.rollback;
      const step = r.step ? `, step: ${r.step}` : '';
      const stuck = r.stuckSince ? `, **stuck since ${r.stuckSince}** (still retrying)` : '';
      const done = r.seconds !== null ? `, done in ${r.seconds.toFixed(1)} s` : '';
      lines.push('', `rollback since ${r.startedAt}${step}${stuck}${done}`);
    }
    if (s.monitor) {
      const m = s.monitor;
      lines.push(
        '',
        `monitor tick ${m.tick}/${m.ticks}: ${m.successful} ok, ${m.failed} failed, ${m.inconclusive} ` +
          `inconclusive, ${m.errors} errors`,
      );
      lines.push('', '| SLO | value | rule | verdict |', '|---|---|---|---|');
      for (const x of Object.values(m.latest)) {
        lines.push(
          `| ${x.name}${x.gate ? '' : ' (warning)'} | ${formatValue(x.value)} | ${x.comparison} ` +
            `${x.threshold} | ${x.result} |`,
        );
      }
    }
    setCurrentDetails(lines.join('\n'));
  }

  /**
   * Tells people (through the worker's webhook and incident receiver, if any); never fails the
   * deployment. A rollback, a failure and a stuck rollback carry the incident: the summary and
   * what its links are built from.
   */
  async notify(
    kind: DeploymentEvent['kind'],
    message: string,
    reason: string | null = null,
    failedCheck: string | null = null,
  ): Promise<void> {
    const run = this.run;
    if (!patched(Patch.Notifications) || run.notifies === false) return;
    const { app, namespace, version, image } = this.current;
    const { workflowId, runId, namespace: temporalNamespace } = workflowInfo();
    const incident = INCIDENT_KINDS.includes(kind)
      ? incidentOf({ status: this.current, spec: run.spec, run: run.id, message, failedCheck, now: new Date() })
      : null;
    try {
      await CancellationScope.nonCancellable(() =>
        run.act('quick', `notify: ${kind}`).notify({
          kind,
          app,
          namespace,
          version,
          image,
          message,
          reason,
          failedCheck,
          workflowId,
          runId,
          temporalNamespace,
          incident,
        }),
      );
    } catch (error) {
      log.warn('notification failed', { kind, error: describeError(error) });
    }
  }

  /** The end: the last phase, the memo and search attribute, the metric, the notification and the result. */
  async finish(
    outcome: Outcome,
    reason: RollbackReason | null,
    message: string,
    failedCheck: string | null,
    liveSlot: Slot | null,
    liveImage: string | null,
  ): Promise<DeploymentResult> {
    const phase =
      outcome === Outcome.Succeeded
        ? Phase.Succeeded
        : outcome === Outcome.RolledBack
          ? Phase.RolledBack
          : Phase.Failed;
    this.enterPhase(phase, message);
    const { app, namespace, image, version, fromSlot, toSlot } = this.current;
    if (patched(Patch.OutcomeInMemo)) {
      // Visibility lists show the memo: `bluegreen list` reads outcomes from it.
      upsertMemo({ outcome, reason, liveSlot, liveImage });
    }
    this.metrics.finished.add(1, { app, namespace, outcome, reason: reason ?? 'none' });
    if (this.isIndexed) upsertSearchAttributes([{ key: SearchAttribute.Outcome, value: outcome }]);
    const kind =
      outcome === Outcome.Succeeded ? 'succeeded' : outcome === Outcome.RolledBack ? 'rolled-back' : 'failed';
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
      ...(this.current.rollback ? { rollbackSeconds: this.current.rollback.seconds } : {}),
      status: this.current,
    };
  }

  /**
   * Whether this run carries search attributes: the client sets them at start only where the
   * namespace has them registered, and upserting unregistered ones would fail the workflow task.
   */
  private get isIndexed(): boolean {
    return workflowInfo().typedSearchAttributes.get(SearchAttribute.App) !== undefined;
  }
}
