/**
 * The release train's client: start a train (its spec parsed and every stage's deployment
 * validated first, src/train/train-spec.ts), read its status, and send its verbs (approve, abort,
 * skip) as Updates, falling back to a signal (approve, abort) when no worker answers within 5 s.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { trainWorkflowId } from '../shared/train.js';
import type { TrainAnswer, TrainPlan, TrainStatus } from '../shared/train.js';
import type { ReleaseTrainOrigin } from '../gitops/release-train-resource.js';
import type { releaseTrainWorkflow } from '../workflows/release-train.js';
import { statusQuery } from '../workflows/definitions.js';
import {
  trainAbortSignal,
  trainAbortUpdate,
  trainApproveSignal,
  trainApproveUpdate,
  trainSkipUpdate,
  trainStatusQuery,
} from '../workflows/train-definitions.js';
import {
  DEFAULT_ANSWER_TIMEOUT_MS,
  deliverVerb,
  DeploymentAlreadyRunningError,
  hasSearchAttributes,
  pollerCount,
  RequestRefusedError,
} from './deployment-client.js';
import type { OperatorDelivery } from './deployment-client.js';

export class TrainClient {
  constructor(
    private readonly client: Client,
    /** The queue of the worker that runs the train itself (it needs no cluster's credentials). */
    private readonly taskQueue: string,
  ) {}

  /** Starts a train; `origin`: the ReleaseTrain resource and generation that started it (in its memo). */
  async start(
    plan: TrainPlan,
    { origin }: { origin?: ReleaseTrainOrigin } = {},
  ): Promise<WorkflowHandleWithFirstExecutionRunId<typeof releaseTrainWorkflow>> {
    const workflowId = trainWorkflowId(plan.name);
    try {
      return await this.client.workflow.start<typeof releaseTrainWorkflow>('releaseTrainWorkflow', {
        workflowId,
        taskQueue: this.taskQueue,
        args: [{ ...plan, indexed: await hasSearchAttributes(this.client) }],
        memo: {
          train: plan.name,
          version: plan.version,
          image: plan.image,
          ...(origin ? { releaseTrain: origin } : {}),
        },
        staticSummary: `train ${plan.name}: ${plan.version} through ${plan.stages.map((s) => s.name).join(' → ')}`,
      });
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError)
        throw new DeploymentAlreadyRunningError(workflowId, undefined, null);
      throw error;
    }
  }

  /**
   * `train retry NAME STAGE`: a train that held or failed at STAGE for a reason outside the release
   * (a cluster down, say) goes on from there, as a new run of the same train. The stages before it
   * succeeded and are left out, and so are STAGE's clusters that succeeded.
   */
  async retry(name: string, { stage, by }: { stage: string; by: string }) {
    const handle = this.handle(name);
    const { status: execution, runId } = await handle.describe();
    if (execution.name === 'RUNNING') throw new RequestRefusedError(`retry rejected: train ${name} is still running`);
    const ended = await trainResult(handle);
    const at = ended.stages.findIndex((s) => s.name === stage);
    const failed = ended.stages[at];
    if (!failed) throw new RequestRefusedError(`retry rejected: train ${name} has no stage ${stage}`);
    if (failed.state !== 'Failed')
      throw new RequestRefusedError(
        `retry rejected: stage ${stage} is ${failed.state}; only a failed stage is retried`,
      );
    if (ended.state !== 'Held' && ended.state !== 'Failed')
      throw new RequestRefusedError(
        `retry rejected: the train ended ${ended.state}: ` +
          'what went live was undone or a person stopped it; start it again',
      );
    const input = ((await handle.fetchHistory()).events ?? [])[0]?.workflowExecutionStartedEventAttributes?.input
      ?.payloads?.[0];
    if (!input) throw new RequestRefusedError(`retry rejected: the history of train ${name} holds no plan`);
    const plan = this.client.options.loadedDataConverter.payloadConverter.fromPayload<TrainPlan>(input);
    const succeeded = new Set(failed.targets.filter((t) => t.state === 'Succeeded').map((t) => t.cluster));
    const stages = plan.stages
      .slice(at)
      .map((s, i) => (i === 0 ? { ...s, targets: s.targets.filter((t) => !succeeded.has(t.cluster)) } : s));
    return await this.start({ ...plan, stages, retry: { stage, by, at: new Date().toISOString(), runId } });
  }

  /** The train's latest run, or the run `runId`. */
  handle(name: string, runId?: string): WorkflowHandle<typeof releaseTrainWorkflow> {
    return this.client.workflow.getHandle(trainWorkflowId(name), runId);
  }

  /** The status of the train's latest run (or run `runId`): from the running train, or its result once ended. */
  async status(name: string, runId?: string): Promise<TrainStatus> {
    const handle = this.handle(name, runId);
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') return await trainResult(handle);
    const train = await this.withDeadline(() => handle.query(trainStatusQuery));
    const running = train.stages.flatMap((s) => s.targets).filter((t) => t.state === 'Running');
    // One question per queue: a wave's clusters may share one.
    const queues = [...new Set(running.map((t) => t.taskQueue))];
    // Unknown (undefined) where the server cannot tell, as the time-skipping test server cannot.
    const polls = (queue: string) => pollerCount(this.client, queue).then((n) => n > 0, unknown);
    const polled = new Map(await Promise.all(queues.map(async (queue) => [queue, await polls(queue)] as const)));
    for (const target of running) {
      const seen = polled.get(target.taskQueue);
      if (seen !== undefined) target.workerSeen = seen;
    }
    // Each running deployment's phase, and in its soak (its observe window) the time left.
    await Promise.all(
      running.map(async (target) => {
        if (target.workerSeen === false) return;
        const deployment = await this.withDeadline(() =>
          this.client.workflow.getHandle(target.workflowId).query(statusQuery),
        ).catch(() => null);
        if (!deployment) return;
        target.phase = deployment.phase;
        const observe = deployment.observe;
        if (deployment.phase === 'Observing' && observe)
          target.soakLeftSeconds = Math.max(0, (observe.ticks - observe.tick) * observe.intervalSeconds);
      }),
    );
    return train;
  }

  async approve(name: string, request: { stage?: string; by: string }): Promise<OperatorDelivery> {
    return await this.send(
      name,
      'approve',
      (h) => h.executeUpdate(trainApproveUpdate, { args: [request] }),
      (h) => h.signal(trainApproveSignal, request),
    );
  }

  async abort(name: string, request: { reason: string; by: string }): Promise<OperatorDelivery> {
    return await this.send(
      name,
      'abort',
      (h) => h.executeUpdate(trainAbortUpdate, { args: [request] }),
      (h) => h.signal(trainAbortSignal, request),
    );
  }

  async skip(name: string, request: { stage: string; by: string }): Promise<OperatorDelivery> {
    return await this.send(name, 'skip', (h) => h.executeUpdate(trainSkipUpdate, { args: [request] }), null);
  }

  private async send(
    name: string,
    verb: string,
    update: (handle: WorkflowHandle) => Promise<TrainAnswer>,
    signal: ((handle: WorkflowHandle) => Promise<void>) | null,
  ): Promise<OperatorDelivery> {
    const handle = this.handle(name);
    return await deliverVerb(this.client, {
      handle,
      what: 'the train',
      verb,
      // The train runs on this client's queue: its worker answers the verb.
      taskQueue: this.taskQueue,
      answerTimeoutMs: DEFAULT_ANSWER_TIMEOUT_MS,
      update,
      // skip has no signal: with no worker answering it is an error, not recorded.
      signal:
        signal ??
        (async () => {
          throw new RequestRefusedError(`train ${name}: no worker answered the ${verb}; try again once one runs`);
        }),
    });
  }

  private async withDeadline<T>(call: () => Promise<T>): Promise<T> {
    return await this.client.connection.withDeadline(Date.now() + DEFAULT_ANSWER_TIMEOUT_MS, call);
  }
}

const unknown = (): undefined => undefined;

/**
 * A train's end: its status, whether it succeeded or not (a train that did not succeed fails its
 * workflow with its status as the failure's details).
 */
export async function trainResult(handle: WorkflowHandle): Promise<TrainStatus> {
  try {
    return (await handle.result()) as TrainStatus;
  } catch (error) {
    const details = (error as { cause?: { details?: unknown[] } }).cause?.details;
    const status = details?.[0] as TrainStatus | undefined;
    if (status?.stages) return status;
    throw error;
  }
}
