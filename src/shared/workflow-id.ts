/**
 * One deployment per app at a time: the workflow id is derived from namespace and app, so Temporal
 * itself refuses a second concurrent start. Pure module: safe to import from workflow code.
 */
export function deploymentWorkflowId(namespace: string, app: string): string {
  return `bluegreen/${namespace}/${app}`;
}

/** The task queue the worker polls unless configured otherwise. */
export const DEFAULT_TASK_QUEUE = 'bluegreen';
