/**
 * A notification's content: what the workflow tells people through the worker's webhook. Pure
 * module: the workflow builds it.
 */

/** What the workflow reports; plain JSON, recorded in the history as the activity's input. */
export interface DeploymentEvent {
  kind: 'awaiting-approval' | 'rollback-stuck' | 'rolled-back' | 'failed' | 'succeeded';
  app: string;
  namespace: string;
  version: string;
  image: string;
  /** One line for people: what happened and what to do. */
  message: string;
  reason?: string | null;
  failedCheck?: string | null;
  workflowId: string;
}
