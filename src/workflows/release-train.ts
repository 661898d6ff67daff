/**
 * The release train: one durable release across clusters, stage by stage. Each stage waits for its
 * window (and the end of any freeze) on a durable timer, for its approval when it needs one, then
 * runs one deployment per cluster as a child workflow on that cluster's task queue: the existing
 * deployment workflows, unchanged, run by the worker that holds that cluster's credentials. The
 * train holds none. Its only activities, on its own worker, ask whether a slow deployment's
 * cluster has a worker polling at all, and notify people when it has none. A stage's soak is its
 * deployments' observe window (keepOldSlotWarm), so a breach there rolls that stage back and stops
 * the train. On a failure or an operator's abort, `onFailure` decides: `hold` stops (earlier stages
 * keep the new version), `rollbackCompleted` undoes the stages that succeeded, newest first, by
 * deploying again what each replaced. Every decision is in the history and in the status, with
 * who made it.
 *
 * Deterministic code only: no I/O, no Node built-ins; time from the SDK's `Date`.
 */
import {
  ApplicationFailure,
  ChildWorkflowCancellationType,
  ChildWorkflowFailure,
  condition,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { ChildWorkflowHandle } from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities/index.js';
import { DeploymentFailureType, Outcome, Phase } from '../shared/deployment-status.js';
import type { DeploymentResult } from '../shared/deployment-status.js';
import { SearchAttribute } from '../shared/search-attributes.js';
import { freezeAt, nextStart, StageState, trainChildId, TrainOnFailure } from '../shared/train.js';
import { deploymentWorkflowId } from '../shared/workflow-id.js';
import type {
  TrainAbortRequest,
  TrainAnswer,
  TrainApproveRequest,
  TrainPlan,
  TrainResult,
  TrainSkipRequest,
  TrainStage,
  TrainStageStatus,
  TrainStatus,
  TrainTarget,
  TrainTargetStatus,
} from '../shared/train.js';
import { blueGreenDeploymentWorkflow } from './blue-green-deployment.js';
import { canaryDeploymentWorkflow } from './canary-deployment.js';
import { abortSignal } from './definitions.js';
import { refuseWith } from './run/commands.js';
import { Patch } from './run/patches.js';
import { now } from './run/status.js';
import {
  trainAbortSignal,
  trainAbortUpdate,
  trainApproveSignal,
  trainApproveUpdate,
  trainSkipUpdate,
  trainStatusQuery,
} from './train-definitions.js';

type Deployment = typeof blueGreenDeploymentWorkflow;

/** A deployment of the app already runs on the target's cluster: the train's was not started. */
class AppBusy extends Error {}

/** On the train's own worker: short, retried; a failed question is asked again at the next bound. */
const { taskQueuePollers, notify } = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
});

export async function releaseTrainWorkflow(plan: TrainPlan): Promise<TrainResult> {
  return await new Train(plan).run();
}

class Train {
  private readonly status: TrainStatus;
  private readonly approved = new Set<string>();
  private readonly skipped = new Set<string>();
  private abort: { by: string; reason: string } | null = null;
  /** Why a stage can never start: no window (with its soak) in the next 14 days. */
  private windowFailure: string | null = null;
  /** The children deploying now, by workflow id: an abort is sent to each. */
  private readonly running = new Map<string, ChildWorkflowHandle<Deployment>>();

  /** Whether each deployment is the app's own on its cluster (Patch.TrainChildIsTheAppsDeployment). */
  private readonly appsOwnIds: boolean;

  constructor(private readonly plan: TrainPlan) {
    this.appsOwnIds = patched(Patch.TrainChildIsTheAppsDeployment);
    this.status = {
      name: plan.name,
      image: plan.image,
      version: plan.version,
      state: 'Running',
      message: `train ${plan.name}: ${plan.version} through ${plan.stages.map((s) => s.name).join(' → ')}`,
      stages: plan.stages.map((stage) => ({
        name: stage.name,
        state: StageState.Pending,
        startedAt: null,
        endedAt: null,
        waitingUntil: null,
        approvedBy: null,
        targets: stage.targets.map((t) => ({
          cluster: t.cluster,
          taskQueue: t.taskQueue,
          workflowId: this.appsOwnIds
            ? deploymentWorkflowId(t.spec.namespace, t.spec.app, t.taskQueue)
            : trainChildId(plan.name, stage.name, t.cluster),
          state: 'Pending',
          outcome: null,
          reason: null,
          message: null,
          liveSlot: null,
          previous: null,
        })),
      })),
      decisions: plan.retry
        ? [
            {
              at: plan.retry.at,
              by: plan.retry.by,
              what: `retried from stage ${plan.retry.stage} (run ${plan.retry.runId})`,
            },
          ]
        : [],
    };
    setHandler(trainStatusQuery, () => this.statusNow());
    setHandler(trainApproveUpdate, (request) => this.takeApproval(request), {
      validator: (request) => refuseWith(this.approvalRefusal(request)),
    });
    setHandler(trainApproveSignal, (request) => {
      const refusal = this.approvalRefusal(request);
      if (refusal === null) this.takeApproval(request);
      else log.warn(`approval ignored: ${refusal}`, { ...request });
    });
    setHandler(trainAbortUpdate, (request) => this.takeAbort(request), {
      validator: (_request: TrainAbortRequest) => refuseWith(this.abortRefusal()),
    });
    setHandler(trainAbortSignal, (request) => {
      if (this.abortRefusal() === null) this.takeAbort(request);
    });
    setHandler(trainSkipUpdate, (request) => this.takeSkip(request), {
      validator: (request) => refuseWith(this.skipRefusal(request)),
    });
  }

  async run(): Promise<TrainResult> {
    for (const [index, stage] of this.plan.stages.entries()) {
      const status = this.status.stages[index]!;
      if (this.abort) return await this.stop(index, null);
      if (this.skipped.has(stage.name)) {
        this.mark(status, StageState.Skipped);
        continue;
      }
      const due = (await this.waitForWindow(stage, status)) && (await this.waitForApproval(stage, status));
      if (this.abort || this.windowFailure) return await this.stop(index, this.windowFailure);
      if (!due) continue;
      const failed = await this.deployStage(stage, status);
      if (failed || this.abort) return await this.stop(index, failed);
      this.mark(status, StageState.Succeeded);
    }
    return this.end('Succeeded', `${this.plan.version} is live through every stage`);
  }

  /** Waits on a durable timer until the stage's window opens and no freeze holds; false: skipped or aborted. */
  private async waitForWindow(stage: TrainStage, status: TrainStageStatus): Promise<boolean> {
    for (;;) {
      const at = new Date();
      const next = nextStart(at, stage.windows, this.plan.freezes, stage.soakSeconds);
      if (next === null) {
        // The line stops here, and onFailure decides about what went live before.
        this.windowFailure =
          `stage ${stage.name}: no window opens within 14 days ` + '(its windows and the freezes leave no minute)';
        return false;
      }
      if (next.getTime() <= at.getTime()) return true;
      const frozen = freezeAt(at, this.plan.freezes);
      this.mark(status, StageState.WaitingForWindow, next.toISOString());
      this.status.message =
        `stage ${stage.name} waits until ${next.toISOString()}` +
        (frozen ? ` (freeze: ${frozen.reason})` : ' (its next window)');
      const interrupted = await condition(
        () => this.abort !== null || this.skipped.has(stage.name),
        next.getTime() - at.getTime(),
        { summary: `stage ${stage.name}: waits for its window until ${next.toISOString()}` },
      );
      if (interrupted) return this.interrupted(stage, status);
    }
  }

  private async waitForApproval(stage: TrainStage, status: TrainStageStatus): Promise<boolean> {
    if (stage.approval !== 'required') return true;
    this.mark(status, StageState.AwaitingApproval);
    const command = `bluegreen train approve ${this.plan.name} ${stage.name}`;
    this.status.message = `stage ${stage.name} waits for approval: ${command}`;
    await condition(() => this.approved.has(stage.name) || this.abort !== null || this.skipped.has(stage.name));
    if (this.abort !== null || this.skipped.has(stage.name)) return this.interrupted(stage, status);
    return true;
  }

  private interrupted(stage: TrainStage, status: TrainStageStatus): boolean {
    if (this.abort === null && this.skipped.has(stage.name)) this.mark(status, StageState.Skipped);
    return false;
  }

  /**
   * One child deployment per cluster, at most `maxParallel` at once; returns why the stage failed
   * (more failures than its budget), or null.
   */
  private async deployStage(stage: TrainStage, status: TrainStageStatus): Promise<string | null> {
    this.mark(status, StageState.Deploying);
    const clusters = stage.targets.map((t) => t.cluster).join(', ');
    this.status.message = `stage ${stage.name}: deploying ${this.plan.version} to ${clusters}`;
    const queue = stage.targets.map((target, i) => ({ target, status: status.targets[i]! }));
    let failures = 0;
    const lanes = Array.from({ length: Math.max(1, Math.min(stage.maxParallel, queue.length)) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        if (this.abort || failures > stage.failureBudget) {
          next.status.state = 'Pending';
          continue;
        }
        const ok = await this.deploy(next.target, next.status);
        if (!ok) failures += 1;
      }
    });
    await Promise.all(lanes);
    if (failures > stage.failureBudget) {
      const failed = status.targets.filter((t) => t.state === 'RolledBack' || t.state === 'Failed');
      return (
        `stage ${stage.name}: ${failed.length} of ${stage.targets.length} deployments failed ` +
        `(budget ${stage.failureBudget}): ` +
        failed
          .map(
            (t) =>
              `${t.cluster} ${t.outcome ?? t.state}${t.reason ? ` (${t.reason})` : t.outcome ? '' : `: ${t.message}`}`,
          )
          .join(', ')
      );
    }
    return null;
  }

  /** Runs one cluster's deployment to its end; true when the new version is live there. */
  private async deploy(target: TrainTarget, status: TrainTargetStatus): Promise<boolean> {
    status.state = 'Running';
    this.publishDetails();
    let result: DeploymentResult;
    try {
      result = await this.child(target, target.spec, status.workflowId, { watch: status });
    } catch (error) {
      if (!(error instanceof AppBusy)) throw error;
      status.state = 'Failed';
      status.message = error.message;
      this.publishDetails();
      return false;
    }
    status.outcome = result.outcome;
    status.reason = result.reason;
    status.message = result.message;
    status.liveSlot = result.liveSlot;
    const previous = result.status.previous;
    status.previous = previous ? { image: previous.image, version: previous.version } : null;
    status.state =
      result.outcome === Outcome.Succeeded
        ? 'Succeeded'
        : result.outcome === Outcome.RolledBack
          ? 'RolledBack'
          : 'Failed';
    this.publishDetails();
    return result.outcome === Outcome.Succeeded;
  }

  /** Starts a deployment on the cluster's queue and waits for its result (a failed one's result is in its failure). */
  private async child(
    target: TrainTarget,
    spec: TrainTarget['spec'],
    workflowId: string,
    { undo = false, watch }: { undo?: boolean; watch?: TrainTargetStatus } = {},
  ): Promise<DeploymentResult> {
    const workflow = spec.strategy === 'canary' ? canaryDeploymentWorkflow : blueGreenDeploymentWorkflow;
    let handle: ChildWorkflowHandle<Deployment>;
    try {
      handle = (await startChild(workflow, {
        workflowId,
        taskQueue: target.taskQueue,
        args: [spec as never],
        // A deployment finishes or rolls back by itself: it never dies with the train.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        cancellationType: ChildWorkflowCancellationType.ABANDON,
        ...(patched(Patch.TrainChildListed) ? listedAs(spec, this.plan) : {}),
        staticSummary: `train ${this.plan.name}: ${spec.app} ${spec.version} on ${target.cluster} (${spec.namespace})`,
      })) as ChildWorkflowHandle<Deployment>;
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      throw new AppBusy(
        `a deployment of ${spec.app} in ${spec.namespace} already runs on ${target.cluster} (${workflowId}): ` +
          `the train starts none beside it; let it end (or abort it), then retry the train`,
      );
    }
    // An undo is what the abort asked for: it is not told to abort.
    if (!undo) this.running.set(workflowId, handle);
    let ended = false;
    const watching = watch ? this.watchWorker(target, spec, watch, () => ended) : null;
    try {
      if (this.abort && !undo) await this.sendAbort(handle);
      return await handle.result();
    } catch (error) {
      const result = resultOf(error);
      if (result) return result;
      throw error;
    } finally {
      ended = true;
      this.running.delete(workflowId);
      await watching;
    }
  }

  /**
   * A deployment still running after `workerNoticeSeconds` may be waiting for a worker its cluster
   * no longer runs: the train asks whether any polls the cluster's queue. None: the target says
   * since when, people are notified, and the train asks again at each bound until one polls. It
   * never fails the train: the deployment goes on once its worker is back. Never throws.
   */
  private async watchWorker(
    target: TrainTarget,
    spec: TrainTarget['spec'],
    status: TrainTargetStatus,
    ended: () => boolean,
  ): Promise<void> {
    const bound = this.plan.workerNoticeSeconds;
    if (bound === undefined || !patched(Patch.TrainWorkerNotice)) return;
    for (;;) {
      if (await condition(ended, bound * 1000)) break;
      let pollers: number | null;
      try {
        pollers = await taskQueuePollers(target.taskQueue);
      } catch (error) {
        log.warn('could not ask for the pollers of a queue', { taskQueue: target.taskQueue, error: String(error) });
        continue;
      }
      // A worker polls (or the server cannot tell): it is not asked again.
      if (ended() || pollers === null || pollers > 0) break;
      if (status.workerMissingSince) continue;
      status.workerMissingSince = now();
      const message =
        `train ${this.plan.name}: the deployment to ${target.cluster} has waited ${bound} s and no worker ` +
        `polls task queue ${target.taskQueue}; it goes on once that cluster's worker runs again`;
      this.status.message = message;
      this.publishDetails();
      const { workflowId, runId, namespace: temporalNamespace } = workflowInfo();
      try {
        await notify({
          kind: 'worker-missing',
          app: spec.app,
          namespace: spec.namespace,
          version: spec.version,
          image: spec.image,
          message,
          workflowId,
          runId,
          temporalNamespace,
        });
      } catch (error) {
        log.warn('notification failed', { error: String(error) });
      }
    }
    if (status.workerMissingSince) {
      status.workerMissingSince = null;
      this.status.message = `${target.cluster}'s worker polls ${target.taskQueue} again: its deployment goes on`;
      this.publishDetails();
    }
  }

  /** The line stops at `index`: nothing more starts, and `onFailure` decides about what went live. */
  private async stop(index: number, failure: string | null): Promise<TrainResult> {
    const why = this.abort ? `aborted by ${this.abort.by}: ${this.abort.reason}` : failure!;
    const stopped = this.status.stages[index]!;
    // A stage that deployed failed (or was aborted mid-way); one that had not begun is skipped.
    this.mark(stopped, stopped.state === StageState.Deploying ? StageState.Failed : StageState.Skipped);
    for (const later of this.status.stages.slice(index + 1)) this.mark(later, StageState.Skipped);
    const live = this.status.stages.filter((s) => s.targets.some((t) => t.state === 'Succeeded'));
    if (this.plan.onFailure === TrainOnFailure.Hold || live.length === 0) {
      const kept = live.map((s) => s.name).join(', ');
      return this.end(
        live.length === 0 ? (this.abort ? 'Aborted' : 'Failed') : 'Held',
        `${why}; ` + (kept ? `held: ${kept} keep ${this.plan.version}` : 'no stage went live'),
      );
    }
    const undone = await this.undo(live.reverse());
    return this.end(
      undone ? 'RolledBack' : 'Failed',
      `${why}; ` +
        (undone
          ? `undone, newest first: ${live.map((s) => s.name).join(', ')}`
          : `the undo of ${live.map((s) => s.name).join(', ')} did not complete: see each stage`),
    );
  }

  /** Deploys again what each succeeded deployment replaced, stage by stage, newest first. */
  private async undo(stages: TrainStageStatus[]): Promise<boolean> {
    let complete = true;
    for (const stage of stages) {
      this.mark(stage, StageState.Undoing);
      this.status.message = `undoing stage ${stage.name}`;
      const plan = this.plan.stages.find((s) => s.name === stage.name)!;
      const done = await Promise.all(
        stage.targets.map(async (status, i) => {
          if (status.state !== 'Succeeded') return true;
          const target = plan.targets[i]!;
          if (!status.previous?.image) {
            status.state = 'UndoFailed';
            status.message = `${target.cluster} recorded nothing it replaced: deploy the earlier image by hand`;
            return false;
          }
          const spec = {
            ...target.spec,
            image: status.previous.image,
            version: status.previous.version ?? target.spec.version,
            allowUnstableActive: true,
            undoOf: { runId: status.workflowId, version: target.spec.version },
          };
          const undoId = this.appsOwnIds ? status.workflowId : `${status.workflowId}/undo`;
          let result: DeploymentResult;
          try {
            result = await this.child(target, spec, undoId, { undo: true });
          } catch (error) {
            if (!(error instanceof AppBusy)) throw error;
            status.state = 'UndoFailed';
            status.message = error.message;
            return false;
          }
          status.state = result.outcome === Outcome.Succeeded ? 'Undone' : 'UndoFailed';
          status.message = result.message;
          status.liveSlot = result.liveSlot;
          return result.outcome === Outcome.Succeeded;
        }),
      );
      const ok = done.every(Boolean);
      this.mark(stage, ok ? StageState.Undone : StageState.UndoFailed);
      complete &&= ok;
    }
    return complete;
  }

  private end(state: TrainStatus['state'], message: string): TrainResult {
    this.status.state = state;
    this.status.message = message;
    this.publishDetails();
    log.info(`train ${state}: ${message}`);
    if (state === 'Succeeded') return this.status;
    throw ApplicationFailure.create({
      type: state === 'Held' ? 'TrainHeld' : state === 'RolledBack' ? 'TrainRolledBack' : 'TrainFailed',
      message: `${state}: ${message}`,
      details: [this.status],
      nonRetryable: true,
    });
  }

  private mark(status: TrainStageStatus, state: StageState, waitingUntil: string | null = null): void {
    if (status.startedAt === null && state !== StageState.Pending) status.startedAt = now();
    status.state = state;
    status.waitingUntil = waitingUntil;
    const ended: StageState[] = [StageState.Succeeded, StageState.Failed, StageState.Skipped, StageState.Undone];
    if (ended.includes(state)) status.endedAt = now();
    this.publishDetails();
  }

  /** The Temporal UI's current details: the train's state and a table of its stages, as markdown. */
  private publishDetails(): void {
    const s = this.status;
    const lines = [
      `**${s.state}**: ${s.message}`,
      '',
      '| stage | state | clusters |',
      '|---|---|---|',
      ...s.stages.map((stage) => {
        const wait = stage.waitingUntil ? ` until ${stage.waitingUntil}` : '';
        const clusters = stage.targets.map((t) => `${t.cluster} ${t.state}`).join(', ');
        return `| ${stage.name} | ${stage.state}${wait} | ${clusters} |`;
      }),
    ];
    setCurrentDetails(lines.join('\n'));
  }

  /** The status, with when each stage not begun could start next (its windows, the freezes, its soak). */
  private statusNow(): TrainStatus {
    const at = new Date();
    return {
      ...this.status,
      stages: this.status.stages.map((stage, i) => {
        const plan = this.plan.stages[i]!;
        if (stage.state !== StageState.Pending || plan.windows.length === 0) return stage;
        const next = nextStart(at, plan.windows, this.plan.freezes, plan.soakSeconds);
        return { ...stage, nextWindow: next ? next.toISOString() : null };
      }),
    };
  }

  private current(): TrainStageStatus | null {
    return this.status.stages.find((s) => !['Succeeded', 'Skipped', 'Failed'].includes(s.state)) ?? null;
  }

  private approvalRefusal(request: TrainApproveRequest): string | null {
    if (this.status.state !== 'Running') return `the train is ${this.status.state}`;
    if (this.abort) return `the train is aborting (${this.abort.reason})`;
    const current = this.current();
    if (!current || current.state !== StageState.AwaitingApproval)
      return `no stage waits for approval (${current ? `${current.name} is ${current.state}` : 'none is left'})`;
    if (request.stage !== undefined && request.stage !== current.name)
      return `stage ${current.name} waits for approval, not ${request.stage}`;
    return null;
  }

  private takeApproval(request: TrainApproveRequest): TrainAnswer {
    const stage = this.current()!;
    const by = request.by || 'unknown';
    this.approved.add(stage.name);
    stage.approvedBy = by;
    this.status.decisions.push({ at: now(), by, what: `approved stage ${stage.name}` });
    return { message: `approved stage ${stage.name}` };
  }

  private abortRefusal(): string | null {
    if (this.status.state !== 'Running') return `the train is ${this.status.state}`;
    if (this.abort) return `already aborting: ${this.abort.reason}`;
    return null;
  }

  private takeAbort(request: TrainAbortRequest): TrainAnswer {
    const by = request.by || 'unknown';
    const reason = request.reason || 'no reason given';
    this.abort = { by, reason };
    this.status.decisions.push({ at: now(), by, what: `aborted the train: ${reason}` });
    this.status.message = `abort requested by ${by}: ${reason}`;
    for (const handle of this.running.values()) void this.sendAbort(handle);
    return { message: `train abort accepted: ${this.running.size} running deployment(s) told to abort` };
  }

  private async sendAbort(handle: ChildWorkflowHandle<Deployment>): Promise<void> {
    const abort = this.abort!;
    try {
      await handle.signal(abortSignal, { reason: `train ${this.plan.name}: ${abort.reason}`, by: abort.by });
    } catch (error) {
      log.warn('abort not delivered to a deployment', { workflowId: handle.workflowId, error: String(error) });
    }
  }

  private skipRefusal(request: TrainSkipRequest): string | null {
    if (this.status.state !== 'Running') return `the train is ${this.status.state}`;
    const stage = this.status.stages.find((s) => s.name === request.stage);
    if (!stage) return `no stage ${request.stage} (the stages: ${this.status.stages.map((s) => s.name).join(', ')})`;
    if (![StageState.Pending, StageState.WaitingForWindow, StageState.AwaitingApproval].includes(stage.state as never))
      return `stage ${stage.name} is ${stage.state}: only a stage that has not started deploying can be skipped`;
    return null;
  }

  private takeSkip(request: TrainSkipRequest): TrainAnswer {
    const by = request.by || 'unknown';
    this.skipped.add(request.stage);
    this.status.decisions.push({ at: now(), by, what: `skipped stage ${request.stage}` });
    return { message: `stage ${request.stage} will be skipped` };
  }
}

/** A deployment that did not succeed fails its workflow with its result as the failure's details (endWith). */
function resultOf(error: unknown): DeploymentResult | null {
  if (!(error instanceof ChildWorkflowFailure)) return null;
  const cause = error.cause;
  if (!(cause instanceof ApplicationFailure)) return null;
  if (cause.type !== DeploymentFailureType.RolledBack && cause.type !== DeploymentFailureType.Failed) return null;
  return (cause.details?.[0] as DeploymentResult | undefined) ?? null;
}

/**
 * A train's deployment as a direct deploy is found and read (bluegreen list, status): its memo,
 * and its search attributes where the namespace has them registered.
 */
function listedAs(spec: TrainTarget['spec'], plan: TrainPlan) {
  return {
    memo: { app: spec.app, namespace: spec.namespace, version: spec.version, image: spec.image, train: plan.name },
    ...(plan.indexed
      ? {
          typedSearchAttributes: [
            { key: SearchAttribute.App, value: spec.app },
            { key: SearchAttribute.Version, value: spec.version },
            { key: SearchAttribute.Phase, value: Phase.Preflight },
          ],
        }
      : {}),
  };
}
