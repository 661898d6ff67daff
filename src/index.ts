/**
 * The library of @bluegreen-temporal/bluegreen: start, watch and steer deployments from your own
 * tooling, as the `bluegreen` CLI does. A deployment runs in a worker (`bluegreen-worker`, or the
 * image built from the Dockerfile); this side only talks to Temporal.
 *
 *   import { connectDeployments, deploymentResult, parseDeploymentSpec } from '@bluegreen-temporal/bluegreen';
 *
 *   const { deployments, close } = await connectDeployments({ TEMPORAL_ADDRESS: 'temporal.example:7233' });
 *   const handle = await deployments.start(parseDeploymentSpec({ app: 'detection-api', image:
 * 'registry.internal/detection-api:v2.2.0' }));
 *   const status = await deployments.status('default', 'detection-api');   // phase, monitor, canary step
 *   await deployments.abort('default', 'detection-api', { reason: 'error budget', by: 'release-bot' });
 *   const result = await deploymentResult(handle);                        // outcome, reason, live slot
 *   await close();
 */
export { connectDeployments, TemporalUnreachableError } from './client/connect.js';
export type { ConnectedDeployments } from './client/connect.js';
export {
  DeploymentAlreadyRunningError,
  DeploymentClient,
  deploymentResult,
  RequestRefusedError,
  WORKFLOW_TYPES,
} from './client/deployment-client.js';
export type { DeploymentSnapshot, DeploymentSummary, OperatorDelivery } from './client/deployment-client.js';
export { loadSpec } from './client/spec-source.js';
export type { SpecSources } from './client/spec-source.js';
export { ConfigError } from './config/env.js';
export { DEFAULT_SLOS, parseDeploymentSpec, SpecValidationError, Strategy } from './deployment-spec/deployment-spec.js';
export type { CanaryStep, DeploymentSpec, DeploymentSpecInput, Slo } from './deployment-spec/deployment-spec.js';
export { Gate, Outcome, Phase, RollbackReason } from './shared/deployment-status.js';
export type {
  AbortRequest,
  ApproveRequest,
  DeploymentResult,
  DeploymentStatus,
  OperatorAnswer,
  PromoteRequest,
} from './shared/deployment-status.js';
export { TrafficRouter } from './shared/traffic.js';
// Release trains (docs/trains.md): `connectDeployments(...).trains.start(parseTrainSpec(yaml))`.
export { TrainClient, trainResult } from './client/train-client.js';
export { parseTrainSpec, TrainSpecError } from './train/train-spec.js';
export type { TrainSpecInput } from './train/train-spec.js';
export type { TrainPlan, TrainStatus, TrainStageStatus, TrainTargetStatus } from './shared/train.js';
