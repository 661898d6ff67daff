/**
 * The messages a release train answers to, shared by the train workflow and the client. As with a
 * deployment, each operator verb is an Update (validated, answered) and a signal (recorded even
 * while no worker runs), through the same rule.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  TrainAbortRequest,
  TrainAnswer,
  TrainApproveRequest,
  TrainSkipRequest,
  TrainStatus,
} from '../shared/train.js';

export const trainStatusQuery = defineQuery<TrainStatus>('trainStatus');
export const trainApproveUpdate = defineUpdate<TrainAnswer, [TrainApproveRequest]>('approve');
export const trainApproveSignal = defineSignal<[TrainApproveRequest]>('approve');
export const trainAbortUpdate = defineUpdate<TrainAnswer, [TrainAbortRequest]>('abort');
export const trainAbortSignal = defineSignal<[TrainAbortRequest]>('abort');
export const trainSkipUpdate = defineUpdate<TrainAnswer, [TrainSkipRequest]>('skip');
