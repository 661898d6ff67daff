/**
 * The messages a deployment answers to. Exported constants, named by kind, shared by the workflow
 * and the client so neither can drift from the other. Payloads are plain JSON.
 *
 * The operator verbs exist twice under one name. As Updates (what the client sends) they are
 * validated by the workflow and answered synchronously: accepted, or refused with the reason. As
 * signals they are recorded by Temporal even while no worker runs, so an abort always lands: the
 * client falls back to the signal when no worker answers, and `temporal workflow signal --name
 * abort --input '{"reason":"..."}'` works too. Both go through the same rules in the workflow.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  AbortRequest,
  ApproveRequest,
  DeploymentStatus,
  OperatorAnswer,
  PromoteRequest,
} from '../shared/deployment-status.js';

export const abortSignal = defineSignal<[AbortRequest]>('abort');
export const approveSignal = defineSignal<[ApproveRequest]>('approve');
export const abortUpdate = defineUpdate<OperatorAnswer, [AbortRequest]>('abort');
export const approveUpdate = defineUpdate<OperatorAnswer, [ApproveRequest]>('approve');
/** Canary only: ends the current hold now, or with `full` skips to 100 %. */
export const promoteSignal = defineSignal<[PromoteRequest]>('promote');
export const promoteUpdate = defineUpdate<OperatorAnswer, [PromoteRequest]>('promote');
export const statusQuery = defineQuery<DeploymentStatus>('status');
