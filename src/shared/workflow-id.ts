/**
 * One deployment per app and cluster at a time: the workflow id is derived from the namespace, the
 * app and the task queue of the cluster's worker, so Temporal itself refuses a second concurrent
 * start. A release train's deployments take the same id on their cluster's queue, so a train and a
 * direct `bluegreen deploy` of the same app on the same cluster never run at once, while the same
 * app deploys to several clusters side by side. Pure module: safe to import from workflow code.
 */
export function deploymentWorkflowId(namespace: string, app: string, taskQueue = DEFAULT_TASK_QUEUE): string {
  return taskQueue === DEFAULT_TASK_QUEUE
    ? `bluegreen/${namespace}/${app}`
    : `bluegreen/${taskQueue}/${namespace}/${app}`;
}

/** The task queue the worker polls unless configured otherwise. */
export const DEFAULT_TASK_QUEUE = 'bluegreen';
