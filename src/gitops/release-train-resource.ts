/**
 * The `ReleaseTrain` resource: a release train declared in git. Its spec is the train spec
 * (docs/trains.md), with the train's name defaulting to the resource's; a new generation (an
 * image changed, say) starts a train. Its status mirrors the train: its state, its message, and
 * one line per stage. Kept apart from the CRD's generator (release-crd.ts), as release-resource.ts is.
 */
import type * as k8s from '@kubernetes/client-node';
import type { TrainStatus } from '../shared/train.js';
import { RELEASE_GROUP, RELEASE_VERSION } from './release-resource.js';

export const RELEASE_TRAIN_GROUP = RELEASE_GROUP;
export const RELEASE_TRAIN_VERSION = RELEASE_VERSION;
export const RELEASE_TRAIN_KIND = 'ReleaseTrain';
export const RELEASE_TRAIN_PLURAL = 'releasetrains';

/** One stage as the status shows it: its state, until when it waits, and each cluster's state. */
export interface ReleaseTrainStageStatus {
  name: string;
  state: string;
  waitingUntil?: string;
  /** "prod-b Succeeded (green), local-2 Running". */
  clusters: string;
}

export interface ReleaseTrainStatus {
  /** Waiting (for an older generation's train to end), Invalid, or the train's own state. */
  state: 'Waiting' | 'Invalid' | TrainStatus['state'];
  message: string;
  image?: string;
  version?: string;
  stages?: ReleaseTrainStageStatus[];
  workflowId?: string;
  runId?: string;
  /** The generation whose train the status describes. */
  observedGeneration: number;
}

/** A ReleaseTrain as read: its spec is the train spec, checked by the controller. */
export interface ReleaseTrain extends k8s.KubernetesObject {
  spec: Record<string, unknown> & { name?: string };
  status?: ReleaseTrainStatus;
}

/** What a train started by a ReleaseTrain carries in its memo: which resource and generation. */
export interface ReleaseTrainOrigin {
  uid: string;
  name: string;
  generation: number;
}

/** The status of a train that runs or ended. */
export function releaseTrainStatusOf(
  train: TrainStatus,
  generation: number,
  run: { workflowId: string; runId: string },
): ReleaseTrainStatus {
  return {
    state: train.state,
    message: train.message,
    image: train.image,
    version: train.version,
    stages: train.stages.map((stage) => ({
      name: stage.name,
      state: stage.state,
      ...(stage.waitingUntil ? { waitingUntil: stage.waitingUntil } : {}),
      clusters: stage.targets.map((t) => `${t.cluster} ${t.state}${t.liveSlot ? ` (${t.liveSlot})` : ''}`).join(', '),
    })),
    ...run,
    observedGeneration: generation,
  };
}
