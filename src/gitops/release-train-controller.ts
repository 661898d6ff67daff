/**
 * The ReleaseTrain controller: watches `ReleaseTrain` resources and turns each new generation (an
 * image changed in git, say) into a release train, then mirrors the train into the resource's
 * status, stage by stage. As with `Release`, Temporal keeps the truth: the train a generation
 * started carries the resource's uid and generation in its memo, so a controller that restarts
 * after starting it (and before writing the status) adopts it instead of starting it again.
 *
 * - A new generation while an older generation's train runs: that train is aborted (it stops the
 *   line, and its `onFailure` applies), and the new one starts once it has ended.
 * - A train of the same name started by another ReleaseTrain (or by hand) is waited for, never aborted.
 * - A spec the train's schema refuses is reported (`Invalid`, naming every field), and nothing starts.
 * - An ended train's status is written once; the resource is then left alone until a new generation.
 */
import type * as k8s from '@kubernetes/client-node';
import { DeploymentAlreadyRunningError, RequestRefusedError } from '../client/deployment-client.js';
import type { TrainClient } from '../client/train-client.js';
import { parseTrainSpec, TrainSpecError } from '../train/train-spec.js';
import type { TrainPlan, TrainStatus } from '../shared/train.js';
import { ResourceWatcher } from './resource-watcher.js';
import type { ResourceWatcherOptions } from './resource-watcher.js';
import {
  RELEASE_TRAIN_GROUP,
  RELEASE_TRAIN_PLURAL,
  RELEASE_TRAIN_VERSION,
  releaseTrainStatusOf,
} from './release-train-resource.js';
import type { ReleaseTrain, ReleaseTrainOrigin, ReleaseTrainStatus } from './release-train-resource.js';

/** The status fields a train sets, some only in some states: cleared by name when absent. */
const MIRRORED = ['image', 'version', 'stages', 'workflowId', 'runId'];

export class ReleaseTrainController extends ResourceWatcher<ReleaseTrain> {
  /** Trains this controller has asked to abort, by run, so it asks once. */
  private readonly aborted = new Set<string>();

  constructor(
    kubeConfig: k8s.KubeConfig,
    private readonly trains: TrainClient,
    options: ResourceWatcherOptions = {},
  ) {
    super(
      kubeConfig,
      {
        group: RELEASE_TRAIN_GROUP,
        version: RELEASE_TRAIN_VERSION,
        plural: RELEASE_TRAIN_PLURAL,
        noun: 'release train',
      },
      options,
      'bluegreen-release-controller',
    );
  }

  protected async reconcileOne(resource: ReleaseTrain): Promise<void> {
    const status = await this.advance(resource);
    if (status) await this.writeStatus(resource, status, MIRRORED);
  }

  /** Where the newest generation's train stands, after starting or aborting what it needs; null: nothing to write. */
  private async advance(resource: ReleaseTrain): Promise<ReleaseTrainStatus | null> {
    const { namespace = 'default', name = '', uid = '', generation = 1 } = resource.metadata ?? {};
    const trainName = resource.spec.name ?? name;
    let plan: TrainPlan;
    try {
      plan = parseTrainSpec({ ...resource.spec, name: trainName });
    } catch (error) {
      if (!(error instanceof TrainSpecError)) throw error;
      const message = error.issues.map((i) => `spec.${i.path}: ${i.message}`).join('; ');
      return { state: 'Invalid', message, observedGeneration: generation };
    }
    const current = resource.status;
    if (current?.observedGeneration === generation && current.runId) {
      // An ended train does not change: the resource is left alone until a new generation.
      if (current.state !== 'Running') return null;
      return await this.stateOfRun(namespace, name, trainName, current.runId, generation);
    }

    // Not taken up yet (or taken up by a controller that stopped before writing the status).
    const latest = await this.trains
      .handle(trainName)
      .describe()
      .catch(() => null);
    const origin = latest?.memo?.['releaseTrain'] as ReleaseTrainOrigin | undefined;
    if (latest && origin?.uid === uid && origin.generation === generation)
      return await this.stateOfRun(namespace, name, trainName, latest.runId, generation);
    if (latest?.status.name === 'RUNNING') {
      // Waiting keeps the generation the status last described: this one is not taken up yet.
      const waiting = (message: string): ReleaseTrainStatus => ({
        state: 'Waiting',
        message,
        observedGeneration: current?.observedGeneration ?? 0,
      });
      if (origin?.uid !== uid) {
        const by = origin ? `ReleaseTrain ${origin.name}` : 'someone else (bluegreen train start)';
        return waiting(
          `train ${trainName} was started by ${by} and runs; generation ${generation} starts once it ends`,
        );
      }
      if (!this.aborted.has(latest.runId)) {
        this.log('aborting the train of an older generation', { releaseTrain: `${namespace}/${name}`, generation });
        try {
          await this.trains.abort(trainName, {
            reason: `superseded by generation ${generation} of ReleaseTrain ${name}`,
            by: 'release-train-controller',
          });
        } catch (error) {
          // Already aborting, or ending: it ends on its own.
          if (!(error instanceof RequestRefusedError)) throw error;
        }
        this.aborted.add(latest.runId);
      }
      return waiting(
        `generation ${generation} starts once generation ${origin.generation}'s train (run ${latest.runId}) has ended`,
      );
    }
    try {
      const handle = await this.trains.start(plan, { origin: { uid, name, generation } });
      this.log('train started', {
        releaseTrain: `${namespace}/${name}`,
        generation,
        runId: handle.firstExecutionRunId,
      });
      return await this.stateOfRun(namespace, name, trainName, handle.firstExecutionRunId, generation);
    } catch (error) {
      // Started meanwhile by someone else: the next resync sees it.
      if (error instanceof DeploymentAlreadyRunningError) return null;
      throw error;
    }
  }

  /** The status of run `runId` of the train; null while a running train's worker does not answer. */
  private async stateOfRun(
    namespace: string,
    name: string,
    trainName: string,
    runId: string,
    generation: number,
  ): Promise<ReleaseTrainStatus | null> {
    const handle = this.trains.handle(trainName, runId);
    let train: TrainStatus;
    try {
      // A running train's query, or an ended one's result: one describe either way.
      train = await this.trains.status(trainName, runId);
    } catch (error) {
      // A running train whose worker does not answer yet: mirrored at a later resync.
      this.log('release train not answered; mirrored at the next resync', {
        releaseTrain: `${namespace}/${name}`,
        error: error instanceof Error ? error.message : String(error),
      });
      return null;
    }
    if (train.state === 'Running') this.reconcileWhenEnded(namespace, name, runId, handle);
    return releaseTrainStatusOf(train, generation, { workflowId: handle.workflowId, runId });
  }
}
