/**
 * A typed client for deployments: start one, follow it, abort or approve it, read its status.
 * The CLI is a thin shell over this; CI systems and other tools can use it directly.
 */
import {
  ApplicationFailure,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import proto from '@temporalio/proto';
import {
  abortSignal,
  abortUpdate,
  approveSignal,
  approveUpdate,
  promoteSignal,
  promoteUpdate,
  statusQuery,
} from '../workflows/definitions.js';
import type { blueGreenDeploymentWorkflow } from '../workflows/blue-green-deployment.js';
import type {
  AbortRequest,
  ApproveRequest,
  DeploymentResult,
  DeploymentStatus,
  OperatorAnswer,
  PromoteRequest,
} from '../shared/deployment-status.js';
import { DeploymentFailureType, Phase } from '../shared/deployment-status.js';
import type { Evidence } from '../shared/evidence.js';
import type { MonitorWindowState } from '../shared/monitor-window.js';
import { SEARCH_ATTRIBUTE_KEYS, SearchAttribute } from '../shared/search-attributes.js';
import { DEFAULT_TASK_QUEUE, deploymentWorkflowId } from '../shared/workflow-id.js';
import { parseDeploymentSpec, Strategy } from '../deployment-spec/deployment-spec.js';
import type { PlanResult } from '../plan/plan.js';
import type { planWorkflow } from '../workflows/plan.js';
import type { DeploymentSpec } from '../deployment-spec/deployment-spec.js';

/** The workflow type of each strategy; both take the spec and return the same result. */
export const WORKFLOW_TYPES: Record<Strategy, string> = {
  [Strategy.BlueGreen]: 'blueGreenDeploymentWorkflow',
  [Strategy.Canary]: 'canaryDeploymentWorkflow',
};

/** A visibility query's condition that finds deployments of either strategy. */
const ANY_DEPLOYMENT = `WorkflowType IN (${Object.values(WORKFLOW_TYPES)
  .map((type) => `'${type}'`)
  .join(', ')})`;

/** A second deployment of an app whose deployment is still running. */
export class DeploymentAlreadyRunningError extends Error {
  constructor(
    readonly workflowId: string,
    readonly runId: string | undefined,
    readonly running: DeploymentStatus | null,
  ) {
    const what = running ? `${running.version} (${running.image}), phase ${running.phase}` : 'a deployment';
    super(
      `a deployment of this app is already running: ${what}; workflow ${workflowId}${runId ? ` run ${runId}` : ''}. ` +
        'Wait for it to finish, or abort it first',
    );
    this.name = 'DeploymentAlreadyRunningError';
  }
}

/** An operator request the deployment will not honour in its current phase. */
export class RequestRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestRefusedError';
  }
}

/** How long `plan()` waits for a worker to answer, by default: a plan takes about a second. */
const PLAN_ANSWER_MS = 60_000;

/** A plan no worker answered in time (none runs, or none polls the task queue). */
export class PlanNotAnsweredError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanNotAnsweredError';
  }
}

/** `deploy --plan-id` naming a plan that does not exist. */
export class PlanNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanNotFoundError';
  }
}

/** `undo` of an app with no successful deployment that recorded what it replaced. */
export class NothingToUndoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NothingToUndoError';
  }
}

/** What `undo` deploys: the last success's spec with the version it replaced, and that success. */
export interface UndoPlan {
  spec: DeploymentSpec;
  undone: { runId: string; version: string; image: string; closeTime: string | null };
}

/**
 * How an operator's verb reached the deployment: `accepted`, answered by the workflow through a
 * worker; or `recorded`, durably as a signal while no worker answered, taking effect (under the
 * same rules) as soon as a worker runs.
 */
export interface OperatorDelivery {
  delivery: 'accepted' | 'recorded';
  message: string;
  /** The phase the workflow answered from; null when it was only recorded. */
  phase: Phase | null;
}

/** The Release (its uid and generation) a deployment was started for, by the GitOps controller. */
export interface ReleaseOrigin {
  uid: string;
  name: string;
  generation: number;
}

/** What Temporal holds of a deployment when no worker answers the status query. */
export interface DeploymentSnapshot {
  answeredBy: 'temporal';
  /** Why there is no live status (no worker polls the task queue, or none answered in time). */
  why: string;
  workflowId: string;
  runId: string;
  app: string;
  namespace: string;
  version: string;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, ... */
  executionStatus: string;
  /** The last phase the workflow recorded, where the namespace indexes it. */
  phase: Phase | null;
  workerPollers: number;
  /** Signals recorded since the workflow last ran: they take effect when a worker runs. */
  pendingSignals: { name: string; at: string; input: unknown }[];
  pendingActivities: { activity: string; attempt: number; lastFailure: string | null }[];
  startTime: string;
  closeTime: string | null;
}

/**
 * The result of a finished deployment, whichever way it ended: a deployment that did not go live
 * ends as a workflow failure carrying its result (so the Temporal UI lists it as Failed), and runs
 * recorded before that simply complete with it.
 */
export async function deploymentResult(handle: { result(): Promise<unknown> }): Promise<DeploymentResult> {
  try {
    return (await handle.result()) as DeploymentResult;
  } catch (error) {
    const cause = error instanceof WorkflowFailedError ? error.cause : null;
    const types: readonly string[] = Object.values(DeploymentFailureType);
    if (cause instanceof ApplicationFailure && cause.type && types.includes(cause.type) && cause.details?.[0]) {
      return cause.details[0] as DeploymentResult;
    }
    throw error;
  }
}

/** How long the client waits for a worker's answer before it falls back (the signal, the history). */
export const DEFAULT_ANSWER_TIMEOUT_MS = 5000;

/** One line of `bluegreen list`. */
export interface DeploymentSummary {
  workflowId: string;
  runId: string;
  app: string;
  namespace: string;
  version: string;
  /** blueGreen or canary, from the workflow type. */
  strategy: string;
  /** Temporal's execution status: RUNNING, COMPLETED, ... */
  status: string;
  outcome: string | null;
  /** The phase, where the namespace indexes it (search attributes registered). */
  phase: string | null;
  reason: string | null;
  startTime: string;
  closeTime: string | null;
}

/** Whether the client's namespace has the deployments' search attributes registered (false if it cannot tell). */
export async function hasSearchAttributes(client: Client): Promise<boolean> {
  return await client.connection.operatorService
    .listSearchAttributes({ namespace: client.options.namespace })
    .then((answer) => SEARCH_ATTRIBUTE_KEYS.every((key) => key.name in (answer.customAttributes ?? {})))
    .catch(() => false);
}

export class DeploymentClient {
  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
    private readonly answerTimeoutMs = DEFAULT_ANSWER_TIMEOUT_MS,
  ) {}

  private indexed: Promise<boolean> | null = null;

  /** Whether the namespace has the deployments' search attributes registered (asked once). */
  isIndexed(): Promise<boolean> {
    this.indexed ??= hasSearchAttributes(this.client);
    return this.indexed;
  }

  /**
   * Starts a deployment; refuses with `DeploymentAlreadyRunningError` if one of the app runs.
   * `release`: the Release generation it deploys, kept in the run's memo, so that a restarted
   * controller finds the run it started and never starts the same generation twice.
   */
  async start(
    spec: DeploymentSpec,
    { release, planned }: { release?: ReleaseOrigin; planned?: PlanResult } = {},
  ): Promise<WorkflowHandleWithFirstExecutionRunId<typeof blueGreenDeploymentWorkflow>> {
    const workflowId = deploymentWorkflowId(spec.namespace, spec.app, this.taskQueue);
    const typedSearchAttributes = (await this.isIndexed())
      ? [
          { key: SearchAttribute.App, value: spec.app },
          { key: SearchAttribute.Version, value: spec.version },
          { key: SearchAttribute.Phase, value: Phase.Preflight },
        ]
      : undefined;
    try {
      return await this.client.workflow.start<typeof blueGreenDeploymentWorkflow>(WORKFLOW_TYPES[spec.strategy], {
        workflowId,
        taskQueue: this.taskQueue,
        args: planned?.live ? [spec, { planned: { id: planned.id, live: planned.live } }] : [spec],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        memo: {
          app: spec.app,
          namespace: spec.namespace,
          version: spec.version,
          image: spec.image,
          ...(spec.undoOf ? { undoOf: spec.undoOf } : {}),
          ...(release ? { release } : {}),
        },
        typedSearchAttributes,
        // What the Temporal UI shows for this deployment before anyone opens its history.
        staticSummary: spec.undoOf
          ? `undo ${spec.app} to ${spec.version} (undoing ${spec.undoOf.version}) in ` +
            `${spec.namespace}${spec.strategy === Strategy.Canary ? ' (canary)' : ''}`
          : `deploy ${spec.app} ${spec.version} in ` +
            `${spec.namespace}${spec.strategy === Strategy.Canary ? ' (canary)' : ''}`,
        staticDetails: [
          `| app | namespace | version | image | replicas | strategy | monitor |`,
          `|---|---|---|---|---|---|---|`,
          `| ${spec.app} | ${spec.namespace} | ${spec.version} | ${spec.image} | ${spec.replicas} | ` +
            `${describeStrategy(spec)} | ${spec.monitor.durationSeconds} s every ${spec.monitor.intervalSeconds} s |`,
        ].join('\n'),
      });
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        const running = this.handle(spec.namespace, spec.app);
        const status = await this.withDeadline(() => running.query(statusQuery)).catch(() => null);
        const { runId } = await running.describe().catch(() => ({ runId: undefined }));
        throw new DeploymentAlreadyRunningError(workflowId, runId, status);
      }
      throw error;
    }
  }

  /**
   * `bluegreen plan`: what a deployment of `spec` would do, checked by the worker against the
   * cluster, Prometheus and its own access, with nothing changed. Runs as a short workflow
   * (`bluegreen/plan/<namespace>/<app>/<id>`), so the plan is kept and `deploy --plan-id` can
   * deploy exactly what was planned.
   */
  async plan(
    spec: DeploymentSpec,
    { answerWithinMs = PLAN_ANSWER_MS }: { answerWithinMs?: number } = {},
  ): Promise<PlanResult> {
    const handle = await this.client.workflow.start<typeof planWorkflow>('planWorkflow', {
      workflowId: `bluegreen/plan/${spec.namespace}/${spec.app}/${randomUUID().slice(0, 8)}`,
      taskQueue: this.taskQueue,
      args: [spec],
      staticSummary: `plan ${spec.app} ${spec.version} in ${spec.namespace}`,
      // A plan no worker ever takes up does not stay open.
      workflowExecutionTimeout: '10 minutes',
    });
    let timer: NodeJS.Timeout | undefined;
    const unanswered = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const message =
          `no worker answered plan ${handle.workflowId} within ${answerWithinMs / 1000} s: is a worker polling task ` +
          `queue ${this.taskQueue}?`;
        reject(new PlanNotAnsweredError(message));
      }, answerWithinMs);
    });
    const answered = handle.result();
    try {
      return await Promise.race([answered, unanswered]);
    } catch (error) {
      if (error instanceof PlanNotAnsweredError) {
        // Not left waiting for a worker: the plan ends here, and its result's wait with it.
        answered.catch(() => undefined);
        await handle.terminate(error.message).catch(() => undefined);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A plan kept by `plan()`; PlanNotFoundError when there is none. */
  async planResult(id: string): Promise<PlanResult> {
    try {
      return await this.client.workflow.getHandle<typeof planWorkflow>(id).result();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError)
        throw new PlanNotFoundError(`no plan ${id} in Temporal namespace ${this.client.options.namespace}`);
      throw error;
    }
  }

  /**
   * `bluegreen undo`: the app's last successful deployment, found in Temporal's visibility, and a
   * spec that redeploys what was live before it: that deployment's own spec (so the same strategy,
   * gates and SLOs apply) with the image and version its preflight read, marked `undoOf`. The undo
   * is itself the fix for a bad version, so it is let through the stability check (recorded).
   * Undoing again goes back to the version undone, as `kubectl rollout undo` does.
   */
  async planUndo(namespace: string, app: string): Promise<UndoPlan> {
    const workflowId = deploymentWorkflowId(namespace, app, this.taskQueue);
    const completed: { runId: string; closeTime: Date | undefined }[] = [];
    // The latest run first, read directly: visibility lists a run a moment after it ends.
    const latest = await this.client.workflow
      .getHandle(workflowId)
      .describe()
      .catch(() => null);
    if (latest?.status.name === 'COMPLETED') completed.push({ runId: latest.runId, closeTime: latest.closeTime });
    for await (const execution of this.client.workflow.list({
      query: `WorkflowId = '${workflowId.replace(/'/g, '')}' AND ExecutionStatus = 'Completed'`,
    })) {
      if (execution.runId !== latest?.runId) completed.push({ runId: execution.runId, closeTime: execution.closeTime });
      if (completed.length >= 100) break;
    }
    completed.sort((a, b) => (b.closeTime?.getTime() ?? 0) - (a.closeTime?.getTime() ?? 0));
    for (const run of completed) {
      const handle = this.client.workflow.getHandle(workflowId, run.runId);
      const result = await deploymentResult(handle);
      if (result.outcome !== 'Succeeded') continue;
      const previous = result.status.previous;
      if (!previous?.image) {
        throw new NothingToUndoError(
          `the last successful deployment of ${namespace}/${app} (${result.version}, run ${run.runId}) did not ` +
            `record what it replaced ` +
            '(it ran before the record existed): deploy the earlier image by hand',
        );
      }
      const started = ((await handle.fetchHistory()).events ?? [])[0]?.workflowExecutionStartedEventAttributes?.input
        ?.payloads?.[0];
      if (!started) throw new NothingToUndoError(`the history of run ${run.runId} holds no spec`);
      const input =
        this.client.options.loadedDataConverter.payloadConverter.fromPayload<Record<string, unknown>>(started);
      // Its version (and what it undid, if it was an undo) give way to the version it replaced.
      const rest = { ...input };
      delete rest['version'];
      delete rest['undoOf'];
      const spec = parseDeploymentSpec({
        ...rest,
        image: previous.image,
        ...(previous.version ? { version: previous.version } : {}),
        allowUnstableActive: true,
        undoOf: { runId: run.runId, version: result.version },
      });
      return {
        spec,
        undone: {
          runId: run.runId,
          version: result.version,
          image: result.image,
          closeTime: run.closeTime?.toISOString() ?? null,
        },
      };
    }
    throw new NothingToUndoError(`no successful deployment of ${namespace}/${app} to undo`);
  }

  /**
   * A rollback's whole evidence, as the capture returned it into the history: of the latest
   * deployment of the app, or of `runId`. Null when that run captured none (it did not roll back,
   * or ran before the capture existed).
   */
  async evidence(
    namespace: string,
    app: string,
    runId?: string,
  ): Promise<{ runId: string; evidence: Evidence | null }> {
    const handle = this.handle(namespace, app, runId);
    const run = runId ?? (await handle.describe()).runId;
    const events = (await this.handle(namespace, app, run).fetchHistory()).events ?? [];
    const scheduled = events.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'captureEvidence',
    );
    if (!scheduled) return { runId: run, evidence: null };
    const completed = events.find(
      (e) =>
        e.activityTaskCompletedEventAttributes &&
        String(e.activityTaskCompletedEventAttributes.scheduledEventId) === String(scheduled.eventId),
    );
    const payload = completed?.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
    return {
      runId: run,
      evidence: payload
        ? this.client.options.loadedDataConverter.payloadConverter.fromPayload<Evidence>(payload)
        : null,
    };
  }

  /** The latest deployment of an app on this client's cluster (running or finished), or its run `runId`. */
  handle(namespace: string, app: string, runId?: string): WorkflowHandle<typeof blueGreenDeploymentWorkflow> {
    return this.client.workflow.getHandle<typeof blueGreenDeploymentWorkflow>(
      deploymentWorkflowId(namespace, app, this.taskQueue),
      runId,
    );
  }

  /**
   * The app's deployment, for an operator's verb or a status. On a queue other than the default, a
   * deployment started before the id carried the queue runs as `bluegreen/<namespace>/<app>`: while
   * it runs on this queue, it is the one found, so an abort still reaches it.
   */
  private async located(namespace: string, app: string): Promise<WorkflowHandle<typeof blueGreenDeploymentWorkflow>> {
    const handle = this.handle(namespace, app);
    if (this.taskQueue === DEFAULT_TASK_QUEUE) return handle;
    const exists = await handle.describe().then(
      () => true,
      (error: unknown) => !(error instanceof WorkflowNotFoundError),
    );
    if (exists) return handle;
    const earlier = this.client.workflow.getHandle<typeof blueGreenDeploymentWorkflow>(
      deploymentWorkflowId(namespace, app),
    );
    const runsHere = await earlier.describe().then(
      (d) => d.status.name === 'RUNNING' && d.taskQueue === this.taskQueue,
      () => false,
    );
    return runsHere ? earlier : handle;
  }

  /** The live status, from the workflow (needs a worker to answer the query), with the monitor's latest tick. */
  async status(namespace: string, app: string, runId?: string): Promise<DeploymentStatus> {
    const handle = this.handle(namespace, app, runId);
    return await this.withLatestTick(handle, await this.withDeadline(() => handle.query(statusQuery)));
  }

  /**
   * The status with the monitor window's latest tick. A window is one activity that returns at its
   * verdict, so the workflow's status holds the counts as of the window's start; the activity
   * heartbeats each tick's counts, and Temporal keeps the latest on the pending activity (the UI
   * shows them there too). Reading them costs the server no history event, where a progress the
   * workflow published would cost it events on every tick, which the window exists to save.
   */
  async withLatestTick(handle: WorkflowHandle, status: DeploymentStatus): Promise<DeploymentStatus> {
    const observing = status.phase === Phase.Observing && status.observe;
    if (!observing && (!status.monitor || (status.phase !== Phase.Monitoring && status.phase !== Phase.Paused)))
      return status;
    const description = await handle.describe().catch(() => null);
    const window = description?.raw.pendingActivities?.find(
      (activity) => activity.activityType?.name === 'monitorWindow',
    );
    const payload = window?.heartbeatDetails?.payloads?.[0];
    if (!payload) return status;
    const latest = this.client.options.loadedDataConverter.payloadConverter.fromPayload<MonitorWindowState>(payload);
    if (!latest?.progress) return status;
    const message = latest.message || status.message;
    if (status.observe && observing) {
      if (latest.progress.tick < status.observe.tick) return status;
      const { tick, successful, failed, inconclusive, errors, latest: values } = latest.progress;
      return {
        ...status,
        observe: { ...status.observe, tick, successful, failed, inconclusive, errors, latest: values },
        message,
      };
    }
    const counted = (m: { tick: number; pausedTicks?: number }) => m.tick + (m.pausedTicks ?? 0);
    if (counted(latest.progress) < counted(status.monitor!)) return status;
    if (status.canary && latest.canary) {
      const { analysis, observedShare, canaryRequests, stableRequests } = latest.canary;
      return {
        ...status,
        monitor: latest.progress,
        canary: { ...status.canary, analysis, observedShare, canaryRequests, stableRequests },
        message,
      };
    }
    return { ...status, monitor: latest.progress, message };
  }

  /**
   * The live status when a worker answers within the answer timeout; otherwise what Temporal
   * itself holds (execution status, last recorded phase, signals waiting for a worker, pending
   * activities), and why there is no live status.
   */
  async statusOrSnapshot(
    namespace: string,
    app: string,
  ): Promise<{ status: DeploymentStatus } | { snapshot: DeploymentSnapshot }> {
    const handle = await this.located(namespace, app);
    const description = await handle.describe();
    if (description.status.name === 'RUNNING') {
      try {
        return { status: await this.withLatestTick(handle, await this.withDeadline(() => handle.query(statusQuery))) };
      } catch (error) {
        if (!isNoAnswer(error)) throw error;
      }
    } else {
      try {
        // A finished run answers from its history (a worker replays it), or not at all.
        return { status: (await this.withDeadline(() => deploymentResult(handle))).status };
      } catch (error) {
        if (!isNoAnswer(error)) throw error;
      }
    }
    return { snapshot: await this.snapshot(handle, description) };
  }

  async result(namespace: string, app: string): Promise<DeploymentResult> {
    return await deploymentResult(this.handle(namespace, app));
  }

  /**
   * Asks the deployment to roll back. The workflow answers through a worker: accepted, or refused
   * with its reason (`RequestRefusedError`; the rules live in the workflow). When no worker answers
   * within the answer timeout, the abort is sent as a signal instead: Temporal records it at once,
   * and it takes effect, under the same rules, as soon as a worker runs.
   */
  async abort(namespace: string, app: string, request: AbortRequest): Promise<OperatorDelivery> {
    return await this.sendVerb(
      namespace,
      app,
      'abort',
      (handle) => handle.executeUpdate(abortUpdate, { args: [request] }),
      (handle) => handle.signal(abortSignal, request),
    );
  }

  /** Lets the deployment through the gate it waits at; as `abort`, it falls back to the signal. */
  async approve(namespace: string, app: string, request: ApproveRequest): Promise<OperatorDelivery> {
    return await this.sendVerb(
      namespace,
      app,
      'approve',
      (handle) => handle.executeUpdate(approveUpdate, { args: [request] }),
      (handle) => handle.signal(approveSignal, request),
    );
  }

  /**
   * Canary: ends the current step's hold now, or with `full` goes straight to 100 %; as `abort`,
   * it falls back to the signal when no worker answers.
   */
  async promote(namespace: string, app: string, request: PromoteRequest): Promise<OperatorDelivery> {
    return await this.sendVerb(
      namespace,
      app,
      'promote',
      (handle) => handle.executeUpdate(promoteUpdate, { args: [request] }),
      (handle) => handle.signal(promoteSignal, request),
    );
  }

  private async sendVerb(
    namespace: string,
    app: string,
    verb: 'abort' | 'approve' | 'promote',
    update: (handle: WorkflowHandle<typeof blueGreenDeploymentWorkflow>) => Promise<OperatorAnswer>,
    signal: (handle: WorkflowHandle<typeof blueGreenDeploymentWorkflow>) => Promise<void>,
  ): Promise<OperatorDelivery> {
    return await deliverVerb(this.client, {
      handle: await this.located(namespace, app),
      what: 'the deployment',
      verb,
      taskQueue: this.taskQueue,
      answerTimeoutMs: this.answerTimeoutMs,
      update,
      signal,
    });
  }

  /**
   * The workers the server heard polling this client's task queue for workflow tasks in the last
   * minute or so (a worker killed seconds ago is still among them).
   */
  private async workerPollers(): Promise<number> {
    return await queuePollers(this.client, this.taskQueue);
  }

  private async snapshot(
    handle: WorkflowHandle<typeof blueGreenDeploymentWorkflow>,
    description: Awaited<ReturnType<WorkflowHandle['describe']>>,
  ): Promise<DeploymentSnapshot> {
    const memo = (description.memo ?? {}) as Record<string, unknown>;
    const events = (await handle.fetchHistory()).events ?? [];
    let lastRan = -1;
    events.forEach((event, index) => {
      if (event.workflowTaskCompletedEventAttributes) lastRan = index;
    });
    const converter = this.client.options.loadedDataConverter.payloadConverter;
    const pendingSignals = events.slice(lastRan + 1).flatMap((event) => {
      const signal = event.workflowExecutionSignaledEventAttributes;
      if (!signal) return [];
      const payload = signal.input?.payloads?.[0];
      const at = event.eventTime?.seconds
        ? new Date(
            Number(event.eventTime.seconds) * 1000 + Math.floor((event.eventTime.nanos ?? 0) / 1e6),
          ).toISOString()
        : '';
      return [{ name: signal.signalName ?? '', at, input: payload ? converter.fromPayload(payload) : null }];
    });
    const pollers = await this.workerPollers();
    const running = description.status.name === 'RUNNING';
    return {
      answeredBy: 'temporal',
      why: !running
        ? `the deployment is over (${description.status.name}) and no worker answered to read its result`
        : pollers === 0
          ? `no worker polls task queue '${this.taskQueue}'`
          : `no worker answered within ${(this.answerTimeoutMs / 1000).toFixed(0)} s ` +
            `(${describePollers(pollers, this.taskQueue)})`,
      workflowId: description.workflowId,
      runId: description.runId,
      ...memoFields(memo),
      executionStatus: description.status.name,
      phase: (description.typedSearchAttributes.get(SearchAttribute.Phase) as Phase | undefined) ?? null,
      workerPollers: pollers,
      pendingSignals,
      pendingActivities: (description.raw.pendingActivities ?? []).map((activity) => ({
        activity: activity.activityType?.name ?? '',
        attempt: activity.attempt ?? 0,
        lastFailure: activity.lastFailure?.message ?? null,
      })),
      startTime: description.startTime.toISOString(),
      closeTime: description.closeTime?.toISOString() ?? null,
    };
  }

  /** Runs a call that needs a worker's answer, bounded by the answer timeout. */
  private async withDeadline<T>(call: () => Promise<T>): Promise<T> {
    return await this.client.connection.withDeadline(Date.now() + this.answerTimeoutMs, call);
  }

  /**
   * Recent deployments, newest first, with their outcome once they have one. Filtering by app or
   * outcome needs the search attributes registered (see `isIndexed`).
   */
  async list({ limit = 20, app, outcome }: { limit?: number; app?: string; outcome?: string } = {}): Promise<
    DeploymentSummary[]
  > {
    const conditions = [ANY_DEPLOYMENT];
    if (app || outcome) {
      if (!(await this.isIndexed())) {
        throw new RequestRefusedError(
          `filtering by app or outcome needs the search attributes ` +
            `${SEARCH_ATTRIBUTE_KEYS.map((k) => k.name).join(', ')} registered in this namespace (see docs/cli.md)`,
        );
      }
      if (app) conditions.push(`${SearchAttribute.App.name} = '${app.replace(/'/g, '')}'`);
      if (outcome) conditions.push(`${SearchAttribute.Outcome.name} = '${outcome.replace(/'/g, '')}'`);
    }
    const summaries: DeploymentSummary[] = [];
    for await (const execution of this.client.workflow.list({ query: conditions.join(' AND ') })) {
      const memo = (execution.memo ?? {}) as Record<string, unknown>;
      summaries.push({
        workflowId: execution.workflowId,
        runId: execution.runId,
        ...memoFields(memo),
        strategy: execution.type === WORKFLOW_TYPES.canary ? Strategy.Canary : Strategy.BlueGreen,
        status: execution.status.name,
        outcome:
          execution.typedSearchAttributes.get(SearchAttribute.Outcome) ??
          (typeof memo['outcome'] === 'string' ? memo['outcome'] : null),
        phase: execution.typedSearchAttributes.get(SearchAttribute.Phase) ?? null,
        reason: typeof memo['reason'] === 'string' ? memo['reason'] : null,
        startTime: execution.startTime.toISOString(),
        closeTime: execution.closeTime?.toISOString() ?? null,
      });
      if (summaries.length >= limit) break;
    }
    return summaries;
  }

  /**
   * Ends every running deployment in this namespace, recording `reason` in each history (a
   * termination: nothing is compensated). For the embedded default, whose local platform starts
   * afresh: a deployment left from an earlier run must not go on against a platform reset under it.
   * Returns the workflow ids ended.
   */
  async endRunning(reason: string): Promise<string[]> {
    const ended: string[] = [];
    for await (const execution of this.client.workflow.list({
      query: `${ANY_DEPLOYMENT} AND ExecutionStatus = 'Running'`,
    })) {
      await this.client.workflow.getHandle(execution.workflowId, execution.runId).terminate(reason);
      ended.push(execution.workflowId);
    }
    return ended;
  }

  /**
   * Follows a deployment to its end, calling `onStatus` with each new status (polled every
   * `pollMs`), and returns its result.
   */
  async follow(
    namespace: string,
    app: string,
    onStatus: (status: DeploymentStatus) => void,
    pollMs = 500,
  ): Promise<DeploymentResult> {
    const handle = this.handle(namespace, app);
    let done = false;
    const result = deploymentResult(handle).finally(() => {
      done = true;
    });
    let previous = '';
    while (!done) {
      const queried = await this.withDeadline(() => handle.query(statusQuery)).catch(() => null);
      const status = queried && (await this.withLatestTick(handle, queried));
      if (status) {
        const serialised = JSON.stringify(status);
        if (serialised !== previous) onStatus(status);
        previous = serialised;
      }
      await Promise.race([result.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, pollMs))]);
    }
    const final = await result;
    onStatus(final.status);
    return final;
  }
}

/** The strategy in a few words, for the Temporal UI's summary table. */
function describeStrategy(spec: DeploymentSpec): string {
  if (spec.strategy !== Strategy.Canary) return 'blue-green';
  return `canary ${spec.canary.steps.map((step) => `${step.weight}`).join('/')} % via ${spec.traffic.router}`;
}

/** Whether a call failed because no worker answered in time (as opposed to a refusal or an error). */
export function isNoAnswer(error: unknown): boolean {
  if (error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return true;
  const code =
    (error as { code?: unknown; cause?: { code?: unknown } } | null)?.code ??
    (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  // DEADLINE_EXCEEDED (4), or the query's own "no worker" answers.
  return code === 4 || /deadline|timed? ?out|no poller|Failed to query Workflow/i.test((error as Error)?.message ?? '');
}

/**
 * An operator's verb to a running workflow: an Update answered within `answerTimeoutMs` (refused:
 * RequestRefusedError with the workflow's reason); with no answer, the signal, which Temporal keeps
 * until a worker runs, and the queue's pollers named.
 */
export async function deliverVerb<H extends WorkflowHandle>(
  client: Client,
  options: {
    handle: H;
    /** What the handle is, for a refusal: 'the deployment', 'the train'. */
    what: string;
    verb: string;
    taskQueue: string;
    answerTimeoutMs: number;
    update: (handle: H) => Promise<{ message: string; phase?: OperatorAnswer['phase'] }>;
    signal: (handle: H) => Promise<void>;
  },
): Promise<OperatorDelivery> {
  const { handle, what, verb, taskQueue, answerTimeoutMs, update, signal } = options;
  const { status } = await handle.describe();
  if (status.name !== 'RUNNING') throw new RequestRefusedError(`${verb} rejected: ${what} is over (${status.name})`);
  try {
    const answer = await client.connection.withDeadline(Date.now() + answerTimeoutMs, () => update(handle));
    return { delivery: 'accepted', message: answer.message, phase: answer.phase ?? null };
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError)
      throw new RequestRefusedError(error.cause?.message ?? error.message);
    if (!isNoAnswer(error)) throw error;
  }
  await signal(handle);
  const pollers = await queuePollers(client, taskQueue);
  return {
    delivery: 'recorded',
    message:
      `no worker answered within ${(answerTimeoutMs / 1000).toFixed(0)} s ` +
      `(${describePollers(pollers, taskQueue)}): ` +
      `the ${verb} is recorded by Temporal and takes effect as soon as a worker runs`,
    phase: null,
  };
}

/**
 * The workers the server heard polling `taskQueue` for workflow tasks in the last minute or so (a
 * worker killed seconds ago is still among them); 0 when the server cannot tell.
 */
async function queuePollers(client: Client, taskQueue: string): Promise<number> {
  return await pollerCount(client, taskQueue).catch(() => 0);
}

/** As `queuePollers`, but a server that cannot tell throws (a train's worker asks again, rather than notify). */
export async function pollerCount(client: Client, taskQueue: string): Promise<number> {
  const answer = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue, kind: proto.temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return answer.pollers?.length ?? 0;
}

function describePollers(pollers: number, taskQueue: string): string {
  return pollers === 0
    ? `no worker polls task queue '${taskQueue}'`
    : `${pollers} polled task queue '${taskQueue}' within the last minute, and none answered`;
}

/** What the client puts in every deployment's memo at start. */
function memoFields(memo: Record<string, unknown>): { app: string; namespace: string; version: string } {
  return {
    app: String(memo['app'] ?? ''),
    namespace: String(memo['namespace'] ?? ''),
    version: String(memo['version'] ?? ''),
  };
}
