/**
 * The GitOps controller: watches `Release` resources (an informer over the API server's watch) and
 * turns each new generation into a deployment, then mirrors the deployment into the Release's
 * status. Temporal keeps the truth: the run a generation started carries the Release's uid and
 * generation in its memo, so a controller that restarts after starting a run (and before writing
 * the status) finds that run and adopts it instead of starting the generation again.
 *
 * - A new generation while an older generation's deployment runs: that deployment is aborted (it
 *   rolls back), and the new one starts once it has ended.
 * - A generation the controller has taken up (status.observedGeneration) is only mirrored: a
 *   deployment someone starts by hand afterwards is left alone.
 * - A spec the worker's zod schema refuses is reported (Degraded, InvalidSpec), and nothing starts.
 * - An operator with only kubectl annotates the Release (`bluegreen.dev/abort`, `approve`,
 *   `promote`): the controller removes the annotation, then sends the verb, then writes the answer
 *   into `status.lastRequest`. Removing first makes a request act at most once: a promote sent twice
 *   would skip a canary step.
 */
import type * as k8s from '@kubernetes/client-node';
import { WorkflowNotFoundError } from '@temporalio/client';
import {
  DeploymentAlreadyRunningError,
  deploymentResult,
  PlanNotAnsweredError,
  RequestRefusedError,
} from '../client/deployment-client.js';
import type { DeploymentClient, OperatorDelivery, ReleaseOrigin } from '../client/deployment-client.js';
import { parseDeploymentSpec, SpecValidationError } from '../deployment-spec/deployment-spec.js';
import type { DeploymentSpec } from '../deployment-spec/deployment-spec.js';
import { RELEASE_GROUP, RELEASE_PLURAL, RELEASE_VERSION } from './release-resource.js';
import type { Release } from './release-resource.js';
import { MERGE_PATCH, ResourceWatcher } from './resource-watcher.js';
import type { ResourceWatcherOptions } from './resource-watcher.js';
import { releaseStatusOf } from './release-status.js';
import type { OperatorRequestAnswer, ReleasePlan, ReleaseState, ReleaseStatus } from './release-status.js';
import { planLines } from '../plan/plan.js';

/** The annotations an operator sets on a Release, with kubectl only, to act on its deployment. */
export const ReleaseAnnotation = {
  /** Value: the reason. */
  Abort: 'bluegreen.dev/abort',
  /** Value: a note, kept in the answer. */
  Approve: 'bluegreen.dev/approve',
  /** Value: empty for the next step, `full` for 100 % at once. */
  Promote: 'bluegreen.dev/promote',
  /** Any value: plans the Release's current spec (`bluegreen plan`) into `status.plan`; deploys nothing. */
  Plan: 'bluegreen.dev/plan',
} as const;
const VERBS = [
  ['abort', ReleaseAnnotation.Abort],
  ['approve', ReleaseAnnotation.Approve],
  ['promote', ReleaseAnnotation.Promote],
] as const;

export type ReleaseControllerOptions = ResourceWatcherOptions;

/** How long a plan asked for with the annotation may take before it is reported unanswered. */
const PLAN_ANSWER_MS = 15_000;

/** The status fields a deployment sets, some only in some states. */
const MIRRORED = [
  'phase',
  'step',
  'weight',
  'outcome',
  'reason',
  'message',
  'liveSlot',
  'image',
  'workflowId',
  'runId',
];

export class ReleaseController extends ResourceWatcher<Release> {
  /** Runs this controller has asked to abort, so it asks once. */
  private readonly aborted = new Set<string>();

  constructor(
    kubeConfig: k8s.KubeConfig,
    private readonly deployments: DeploymentClient,
    options: ReleaseControllerOptions = {},
  ) {
    super(
      kubeConfig,
      { group: RELEASE_GROUP, version: RELEASE_VERSION, plural: RELEASE_PLURAL, noun: 'release' },
      options,
      'bluegreen-release-controller',
    );
  }

  /** Brings one Release's deployment and status to its newest generation. */
  protected async reconcileOne(release: Release): Promise<void> {
    const { namespace = 'default', name = '', uid = '', generation = 1 } = release.metadata ?? {};
    // An operator's request first: it must not wait behind a slow read of the deployment.
    const lastRequest = (await this.answerRequests(release)) ?? release.status?.lastRequest;
    const plan = (await this.planOnRequest(release)) ?? release.status?.plan;
    const kept = { ...(lastRequest ? { lastRequest } : {}), ...(plan ? { plan } : {}) };
    const state = await this.advance(release, { namespace, name, uid, generation });
    if (state)
      await this.writeStatus(
        release,
        { ...releaseStatusOf(state, generation, release.status?.conditions ?? []), ...kept },
        MIRRORED,
      );
    else if (lastRequest !== release.status?.lastRequest || plan !== release.status?.plan)
      await this.writeStatus(release, { ...(release.status as ReleaseStatus), ...kept }, MIRRORED);
  }

  /** What the newest generation's deployment is now, after starting or aborting what it needs. */
  private async advance(
    release: Release,
    { namespace, name, uid, generation }: { namespace: string; name: string; uid: string; generation: number },
  ): Promise<ReleaseState | null> {
    const app = release.spec.app ?? name;
    let spec: DeploymentSpec;
    try {
      spec = parseDeploymentSpec({ ...release.spec, app, namespace });
    } catch (error) {
      if (error instanceof SpecValidationError)
        return { kind: 'invalid', message: error.issues.map((i) => `spec.${i.path}: ${i.message}`).join('; ') };
      throw error;
    }
    const taken = release.status?.observedGeneration === generation && release.status.runId;
    if (taken) {
      // An ended deployment does not change: its Release is left alone until a new generation (or an annotation).
      if (release.status!.outcome) return null;
      return await this.stateOfRun(namespace, name, app, release.status!.runId!);
    }

    // Not taken up yet (or taken up by a controller that stopped before writing the status).
    const latest = await this.deployments
      .handle(namespace, app)
      .describe()
      .catch(() => null);
    const origin = latest?.memo?.['release'] as ReleaseOrigin | undefined;
    if (latest && origin?.uid === uid && origin.generation === generation)
      return await this.stateOfRun(namespace, name, app, latest.runId);
    if (latest?.status.name === 'RUNNING') {
      if (origin && origin.uid !== uid) {
        // Two Releases of one app would abort each other's deployments without end: this one waits its turn.
        return {
          kind: 'waiting',
          message:
            `app ${app} is being deployed by Release ${origin.name} (generation ${origin.generation}, run ` +
            `${latest.runId}); generation ${generation} starts once it has ended`,
        };
      }
      const older = origin ? `generation ${origin.generation}` : 'a deployment not started by this Release';
      const waiting: ReleaseState = {
        kind: 'waiting',
        message: `generation ${generation} starts once ${older} (run ${latest.runId}) has ended`,
      };
      if (this.aborted.has(latest.runId)) return null;
      this.log('aborting the deployment of an older generation', {
        release: `${namespace}/${name}`,
        runId: latest.runId,
        generation,
      });
      try {
        await this.deployments.abort(namespace, app, {
          reason: `superseded by generation ${generation} of Release ${name}`,
          by: 'release-controller',
        });
        this.aborted.add(latest.runId);
      } catch (error) {
        // Past the point of no return (cleanup has begun), or already aborting: it ends on its own.
        if (!(error instanceof RequestRefusedError)) throw error;
        this.aborted.add(latest.runId);
        this.log('the older deployment refused the abort; waiting for it to end', {
          release: `${namespace}/${name}`,
          runId: latest.runId,
          answer: error.message,
        });
      }
      return waiting;
    }
    try {
      const handle = await this.deployments.start(spec, { release: { uid, name, generation } });
      this.log('deployment started', {
        release: `${namespace}/${name}`,
        generation,
        runId: handle.firstExecutionRunId,
      });
      return await this.stateOfRun(namespace, name, app, handle.firstExecutionRunId);
    } catch (error) {
      // Started meanwhile by someone else: the next resync sees it.
      if (error instanceof DeploymentAlreadyRunningError) return null;
      throw error;
    }
  }

  /** Sends the verbs of the operator annotations the Release carries, each once; the last answer. */
  private async answerRequests(release: Release): Promise<OperatorRequestAnswer | undefined> {
    const { namespace = 'default', name = '', annotations = {} } = release.metadata ?? {};
    const present = VERBS.filter(([, key]) => key in annotations);
    if (present.length === 0) return undefined;
    const app = release.spec.app ?? name;
    // Removed first, with the resourceVersion read: a request is sent at most once, even if two reconciles race.
    await this.removeAnnotations(
      release,
      present.map(([, key]) => key),
    );
    const requests = present.map(([verb, key]) => ({ verb, key, value: annotations[key] ?? '' }));
    for (const [, key] of present) delete annotations[key];
    // The run the verbs reach: the app's latest, as the CLI's verbs do.
    const runId = await this.deployments
      .handle(namespace, app)
      .describe()
      .then((d) => d.runId)
      .catch(() => undefined);
    let answer: OperatorRequestAnswer | undefined;
    for (const { verb, key, value } of requests) {
      const by = `annotation ${key} on Release ${namespace}/${name}`;
      let delivery: OperatorDelivery;
      try {
        delivery =
          verb === 'abort'
            ? await this.deployments.abort(namespace, app, { reason: value || 'aborted with an annotation', by })
            : verb === 'approve'
              ? await this.deployments.approve(namespace, app, { by })
              : await this.deployments.promote(namespace, app, { by, full: value === 'full' });
        answer = {
          verb,
          value,
          answer: delivery.delivery === 'accepted' ? 'Accepted' : 'Recorded',
          message: delivery.message,
          time: new Date().toISOString(),
          ...(runId ? { runId } : {}),
        };
      } catch (error) {
        if (!(error instanceof RequestRefusedError || error instanceof WorkflowNotFoundError)) throw error;
        const message =
          error instanceof RequestRefusedError
            ? error.message
            : `${verb} rejected: no deployment of ${app} was ever started`;
        answer = {
          verb,
          value,
          answer: 'Refused',
          message,
          time: new Date().toISOString(),
          ...(runId ? { runId } : {}),
        };
      }
      this.log('operator request answered', { release: `${namespace}/${name}`, ...answer });
    }
    return answer;
  }

  /**
   * Plans the Release's current spec when it carries `bluegreen.dev/plan`, as `bluegreen plan`
   * does (through the worker, nothing changed); the annotation is removed first, so a request plans once.
   */
  private async planOnRequest(release: Release): Promise<ReleasePlan | undefined> {
    const { namespace = 'default', name = '', annotations = {}, generation = 1 } = release.metadata ?? {};
    if (!(ReleaseAnnotation.Plan in annotations)) return undefined;
    await this.removeAnnotations(release, [ReleaseAnnotation.Plan]);
    delete annotations[ReleaseAnnotation.Plan];
    let spec: DeploymentSpec;
    try {
      spec = parseDeploymentSpec({ ...release.spec, app: release.spec.app ?? name, namespace });
    } catch (error) {
      if (!(error instanceof SpecValidationError)) throw error;
      return {
        generation,
        plannedAt: new Date().toISOString(),
        verdict: 'InvalidSpec',
        lines: error.issues.map((i) => `spec.${i.path}: ${i.message}`),
      };
    }
    let result;
    try {
      // Bounded: a Release's other requests wait behind its plan.
      result = await this.deployments.plan(spec, { answerWithinMs: PLAN_ANSWER_MS });
    } catch (error) {
      if (!(error instanceof PlanNotAnsweredError)) throw error;
      return { generation, plannedAt: new Date().toISOString(), verdict: 'Unreadable', lines: [error.message] };
    }
    const verdict = result.error
      ? result.error.invalid
        ? 'InvalidSpec'
        : 'Unreadable'
      : result.plan!.proceeds
        ? 'WouldProceed'
        : 'WouldFail';
    this.log('release planned', { release: `${namespace}/${name}`, generation, id: result.id, verdict });
    return {
      id: result.id,
      generation,
      plannedAt: result.plannedAt,
      verdict,
      lines: result.plan ? planLines(result.plan) : [result.error!.message],
    };
  }

  /** Removes annotations with the resourceVersion read, so two reconciles that race act once. */
  private async removeAnnotations(release: Release, keys: string[]): Promise<void> {
    const { namespace = 'default', name = '' } = release.metadata ?? {};
    const body = {
      metadata: {
        resourceVersion: release.metadata!.resourceVersion,
        annotations: Object.fromEntries(keys.map((key) => [key, null])),
      },
    };
    const patched = (await this.api.patchNamespacedCustomObject(
      { ...this.ref(namespace, name), body },
      MERGE_PATCH,
    )) as Release;
    release.metadata!.resourceVersion = patched.metadata?.resourceVersion;
  }

  private async stateOfRun(namespace: string, name: string, app: string, runId: string): Promise<ReleaseState | null> {
    const handle = this.deployments.handle(namespace, app, runId);
    const description = await handle.describe();
    if (description.status.name === 'RUNNING') {
      this.reconcileWhenEnded(namespace, name, runId, handle);
      // No worker answers yet: the status is written once one does.
      const status = await this.deployments.status(namespace, app, runId).catch(() => null);
      return status ? { kind: 'running', workflowId: handle.workflowId, runId, status } : null;
    }
    return { kind: 'ended', workflowId: handle.workflowId, runId, result: await deploymentResult(handle) };
  }
}
