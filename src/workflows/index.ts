/** The workflows this worker registers; the worker bundles this file. */
export { blueGreenDeploymentWorkflow } from './blue-green-deployment.js';
export { canaryDeploymentWorkflow } from './canary-deployment.js';
export { planWorkflow } from './plan.js';
export { releaseTrainWorkflow } from './release-train.js';
