/**
 * `bluegreen plan` as a short workflow, so the plan is kept: its history holds what the worker read
 * and tried (the planChecks activity's result) and what was concluded, the Temporal UI shows the
 * plan as its details, and `deploy --plan-id` reads it back. Nothing in any cluster changes.
 *
 * Deterministic code only: no I/O, no Node built-ins, activity types imported as types.
 */
import { proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { DeploymentSpec } from '../deployment-spec/deployment-spec.js';
import { ErrorType } from '../shared/errors.js';
import { buildPlan, planLines } from '../plan/plan.js';
import type { PlanResult } from '../plan/plan.js';
import { targetOf } from '../shared/target.js';
import { describeError, errorTypeOf } from './run/phase-error.js';

const { validateSpec, planChecks } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
});

/** Plans `spec`: validated by the worker, checked against the cluster and Prometheus, nothing changed. */
export async function planWorkflow(spec: DeploymentSpec): Promise<PlanResult> {
  const kept = { id: workflowInfo().workflowId, plannedAt: new Date().toISOString() };
  let valid: DeploymentSpec;
  try {
    valid = await validateSpec(spec);
  } catch (error) {
    return { ...kept, spec, plan: null, live: null, error: { invalid: true, message: describeError(error) } };
  }
  try {
    const report = await planChecks(valid);
    const plan = buildPlan(valid, targetOf(valid), report);
    setCurrentDetails(['```', ...planLines(plan), '```'].join('\n'));
    return { ...kept, spec: valid, plan, live: report.live, error: null };
  } catch (error) {
    const invalid = errorTypeOf(error) === ErrorType.InvalidInput;
    return { ...kept, spec: valid, plan: null, live: null, error: { invalid, message: describeError(error) } };
  }
}
