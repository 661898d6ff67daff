/**
 * How much work the worker takes on at once, from the memory it has: V8's heap limit, which
 * `--max-old-space-size` sets (the image's Deployment gives 384 MiB of its 512 MiB limit) or Node
 * derives from the container's limit. The SDK's own defaults are sized for a large machine (100
 * activities and 40 workflow tasks at once, whatever the heap); here every figure follows the heap,
 * and each can be set explicitly.
 */
import { z } from 'zod';

/** Heap the worker needs at rest: its modules (the Kubernetes client alone is large), the SDK, the workflow bundle. */
export const RESERVED_MIB = 150;
/** A cached deployment workflow: its context in the shared V8 isolate and its state (the SDK's own estimate). */
export const CACHED_WORKFLOW_MIB = 1.7;
/** An activity in flight: an API list, a smoke answer, or an evidence capture (512 KB of JSON, copied a few times). */
export const ACTIVITY_MIB = 2;
/**
 * One workflow thread runs the workflow tasks: more at once would only queue in the worker, out of
 * other workers' reach.
 */
export const MAX_WORKFLOW_TASKS = 10;

export interface WorkerCapacity {
  heapMiB: number;
  maxCachedWorkflows: number;
  maxConcurrentWorkflowTaskExecutions: number;
  maxConcurrentActivityTaskExecutions: number;
}

/** Overrides, from the environment: each is a whole number of its own minimum or more. */
export const CapacityConfigSchema = z.object({
  BLUEGREEN_MAX_CACHED_WORKFLOWS: z.coerce
    .number()
    .int('BLUEGREEN_MAX_CACHED_WORKFLOWS must be a whole number')
    .min(2, 'BLUEGREEN_MAX_CACHED_WORKFLOWS must be at least 2')
    .optional(),
  BLUEGREEN_MAX_CONCURRENT_WORKFLOW_TASKS: z.coerce
    .number()
    .int('BLUEGREEN_MAX_CONCURRENT_WORKFLOW_TASKS must be a whole number')
    .min(2, 'BLUEGREEN_MAX_CONCURRENT_WORKFLOW_TASKS must be at least 2')
    .optional(),
  BLUEGREEN_MAX_CONCURRENT_ACTIVITIES: z.coerce
    .number()
    .int('BLUEGREEN_MAX_CONCURRENT_ACTIVITIES must be a whole number')
    .min(1, 'BLUEGREEN_MAX_CONCURRENT_ACTIVITIES must be at least 1')
    .optional(),
});
export type CapacityConfig = z.output<typeof CapacityConfigSchema>;

/**
 * What a heap of `heapMiB` holds once the worker's own needs are met: three fifths for the
 * workflow cache, two fifths for activities in flight; never fewer than the SDK's minimums, never
 * more than a large machine's defaults. An override wins; the workflow tasks never exceed the cache.
 */
export function capacityFor(heapMiB: number, overrides: CapacityConfig = {}): WorkerCapacity {
  const spare = Math.max(0, heapMiB - RESERVED_MIB);
  const maxCachedWorkflows =
    overrides.BLUEGREEN_MAX_CACHED_WORKFLOWS ?? clamp(Math.floor((spare * 0.6) / CACHED_WORKFLOW_MIB), 10, 1000);
  const maxConcurrentActivityTaskExecutions =
    overrides.BLUEGREEN_MAX_CONCURRENT_ACTIVITIES ?? clamp(Math.floor((spare * 0.4) / ACTIVITY_MIB), 5, 100);
  const maxConcurrentWorkflowTaskExecutions = Math.min(
    overrides.BLUEGREEN_MAX_CONCURRENT_WORKFLOW_TASKS ?? MAX_WORKFLOW_TASKS,
    maxCachedWorkflows,
  );
  return {
    heapMiB: Math.round(heapMiB),
    maxCachedWorkflows,
    maxConcurrentWorkflowTaskExecutions,
    maxConcurrentActivityTaskExecutions,
  };
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
