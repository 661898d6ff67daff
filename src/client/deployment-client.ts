/**
 * A typed client for deployments: start one, follow it, abort or approve it, read its status.
 * The CLI is a thin shell over this; CI systems and other tools can use it directly.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { abortSignal, approveSignal, statusQuery } from '../workflows/definitions.js';
import type { blueGreenDeploymentWorkflow } from '../workflows/blue-green-deployment.js';
import type { AbortRequest, ApproveRequest, DeploymentResult, DeploymentStatus } from '../shared/deployment-status.js';
import { ABORT_AFTER_CLEANUP_MESSAGE, Phase } from '../shared/deployment-status.js';
import { SEARCH_ATTRIBUTE_KEYS, SearchAttribute } from '../shared/search-attributes.js';
import { deploymentWorkflowId } from '../shared/workflow-id.js';
import type { DeploymentSpec } from '../spec/deployment-spec.js';

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

/** Phases after which `abort` is refused: the new version passed monitoring, or it is over. */
const NO_ABORT_PHASES: readonly string[] = [Phase.CleaningUp, Phase.Succeeded, Phase.RolledBack, Phase.Failed, Phase.RollingBack];

/** One line of `bluegreen list`. */
export interface DeploymentSummary {
  workflowId: string;
  runId: string;
  app: string;
  namespace: string;
  version: string;
  /** Temporal's execution status: RUNNING, COMPLETED, ... */
  status: string;
  outcome: string | null;
  /** The phase, where the namespace indexes it (search attributes registered). */
  phase: string | null;
  reason: string | null;
  startTime: string;
  closeTime: string | null;
}

export class DeploymentClient {
  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
  ) {}

  private indexed: Promise<boolean> | null = null;

  /** Whether the namespace has the deployments' search attributes registered (asked once). */
  isIndexed(): Promise<boolean> {
    this.indexed ??= this.client.connection.operatorService
      .listSearchAttributes({ namespace: this.client.options.namespace })
      .then((answer) => SEARCH_ATTRIBUTE_KEYS.every((key) => key.name in (answer.customAttributes ?? {})))
      .catch(() => false);
    return this.indexed;
  }

  /** Starts a deployment; refuses with `DeploymentAlreadyRunningError` if one of the app runs. */
  async start(spec: DeploymentSpec): Promise<WorkflowHandleWithFirstExecutionRunId<typeof blueGreenDeploymentWorkflow>> {
    const workflowId = deploymentWorkflowId(spec.namespace, spec.app);
    const typedSearchAttributes = (await this.isIndexed())
      ? [
          { key: SearchAttribute.App, value: spec.app },
          { key: SearchAttribute.Version, value: spec.version },
          { key: SearchAttribute.Phase, value: Phase.Preflight },
        ]
      : undefined;
    try {
      return await this.client.workflow.start<typeof blueGreenDeploymentWorkflow>('blueGreenDeploymentWorkflow', {
        workflowId,
        taskQueue: this.taskQueue,
        args: [spec],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        memo: { app: spec.app, namespace: spec.namespace, version: spec.version, image: spec.image },
        typedSearchAttributes,
        // What the Temporal UI shows for this deployment before anyone opens its history.
        staticSummary: `deploy ${spec.app} ${spec.version} in ${spec.namespace}`,
        staticDetails: [
          `| app | namespace | version | image | replicas | monitor |`,
          `|---|---|---|---|---|---|`,
          `| ${spec.app} | ${spec.namespace} | ${spec.version} | ${spec.image} | ${spec.replicas} | ${spec.monitor.durationSeconds} s every ${spec.monitor.intervalSeconds} s |`,
        ].join('\n'),
      });
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        const running = this.handle(spec.namespace, spec.app);
        const status = await running.query(statusQuery).catch(() => null);
        const { runId } = await running.describe().catch(() => ({ runId: undefined }));
        throw new DeploymentAlreadyRunningError(workflowId, runId, status);
      }
      throw error;
    }
  }

  /** The latest deployment of an app (running or finished). */
  handle(namespace: string, app: string): WorkflowHandle<typeof blueGreenDeploymentWorkflow> {
    return this.client.workflow.getHandle<typeof blueGreenDeploymentWorkflow>(deploymentWorkflowId(namespace, app));
  }

  async status(namespace: string, app: string): Promise<DeploymentStatus> {
    return await this.handle(namespace, app).query(statusQuery);
  }

  async result(namespace: string, app: string): Promise<DeploymentResult> {
    return await this.handle(namespace, app).result();
  }

  /**
   * Sends `abort`. Refuses before sending when the deployment is past the point where an abort
   * can roll it back; the workflow refuses such an abort too and records it in its status.
   */
  async abort(namespace: string, app: string, request: AbortRequest): Promise<DeploymentStatus> {
    const handle = this.handle(namespace, app);
    const status = await handle.query(statusQuery);
    if (NO_ABORT_PHASES.includes(status.phase)) {
      throw new RequestRefusedError(
        status.phase === Phase.CleaningUp
          ? ABORT_AFTER_CLEANUP_MESSAGE
          : `abort rejected: the deployment is ${status.phase}`,
      );
    }
    await handle.signal(abortSignal, request);
    return status;
  }

  /** Sends `approve`; refuses when no gate is waiting (an approval is not kept for later). */
  async approve(namespace: string, app: string, request: ApproveRequest): Promise<DeploymentStatus> {
    const handle = this.handle(namespace, app);
    const status = await handle.query(statusQuery);
    if (!status.awaiting) {
      throw new RequestRefusedError(`nothing to approve: the deployment is ${status.phase}, not waiting at a gate`);
    }
    if (request.gate && request.gate !== status.awaiting.gate) {
      throw new RequestRefusedError(`the deployment waits at gate '${status.awaiting.gate}', not '${request.gate}'`);
    }
    await handle.signal(approveSignal, { ...request, gate: status.awaiting.gate });
    return status;
  }

  /**
   * Recent deployments, newest first, with their outcome once they have one. Filtering by app or
   * outcome needs the search attributes registered (see `isIndexed`).
   */
  async list({ limit = 20, app, outcome }: { limit?: number; app?: string; outcome?: string } = {}): Promise<DeploymentSummary[]> {
    const conditions = [`WorkflowType = 'blueGreenDeploymentWorkflow'`];
    if (app || outcome) {
      if (!(await this.isIndexed())) {
        throw new RequestRefusedError(
          `filtering by app or outcome needs the search attributes ${SEARCH_ATTRIBUTE_KEYS.map((k) => k.name).join(', ')} registered in this namespace (see the README)`,
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
        app: String(memo['app'] ?? ''),
        namespace: String(memo['namespace'] ?? ''),
        version: String(memo['version'] ?? ''),
        status: execution.status.name,
        outcome: execution.typedSearchAttributes.get(SearchAttribute.Outcome) ?? (typeof memo['outcome'] === 'string' ? memo['outcome'] : null),
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
    const result = handle.result().finally(() => {
      done = true;
    });
    let previous = '';
    while (!done) {
      const status = await handle.query(statusQuery).catch(() => null);
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
