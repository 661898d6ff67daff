/**
 * The messages a deployment answers to. Exported constants, named by kind, shared by the workflow
 * and the client so neither can drift from the other. Payloads are plain JSON: an operator can
 * send them with `temporal workflow signal --name abort --input '{"reason":"..."}'` as well.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { AbortRequest, ApproveRequest, DeploymentStatus } from '../shared/deployment-status.js';

export const abortSignal = defineSignal<[AbortRequest]>('abort');
export const approveSignal = defineSignal<[ApproveRequest]>('approve');
export const statusQuery = defineQuery<DeploymentStatus>('status');
