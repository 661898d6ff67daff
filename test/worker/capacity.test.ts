/**
 * The worker's cache and concurrency follow its heap: the image's 384 MiB heap (of a 512 MiB
 * limit) holds fewer workflows and activities than a large machine, and an explicit setting wins.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capacityFor, CapacityConfigSchema } from '../../src/worker/capacity.js';
import { parseEnv } from '../../src/config/env.js';

describe('the worker’s capacity from its heap', () => {
  it('sizes the deploy/ worker (384 MiB heap) well below the SDK’s large-machine defaults', () => {
    assert.deepEqual(capacityFor(384), {
      heapMiB: 384,
      maxCachedWorkflows: 82,
      maxConcurrentWorkflowTaskExecutions: 10,
      maxConcurrentActivityTaskExecutions: 46,
    });
  });

  it('grows with the heap up to a large machine’s figures, and keeps the SDK’s minimums on a tiny one', () => {
    assert.deepEqual(capacityFor(4144), {
      heapMiB: 4144,
      maxCachedWorkflows: 1000,
      maxConcurrentWorkflowTaskExecutions: 10,
      maxConcurrentActivityTaskExecutions: 100,
    });
    assert.deepEqual(capacityFor(128), {
      heapMiB: 128,
      maxCachedWorkflows: 10,
      maxConcurrentWorkflowTaskExecutions: 10,
      maxConcurrentActivityTaskExecutions: 5,
    });
    const sizes = [256, 384, 512, 768, 1024].map((heap) => capacityFor(heap));
    for (let i = 1; i < sizes.length; i++) {
      assert.ok(
        sizes[i]!.maxCachedWorkflows >= sizes[i - 1]!.maxCachedWorkflows &&
          sizes[i]!.maxConcurrentActivityTaskExecutions >= sizes[i - 1]!.maxConcurrentActivityTaskExecutions,
      );
    }
  });

  it('takes explicit settings from the environment, the workflow tasks never beyond the cache', () => {
    const overrides = parseEnv(CapacityConfigSchema, {
      BLUEGREEN_MAX_CACHED_WORKFLOWS: '4',
      BLUEGREEN_MAX_CONCURRENT_WORKFLOW_TASKS: '8',
      BLUEGREEN_MAX_CONCURRENT_ACTIVITIES: '20',
    });
    assert.deepEqual(capacityFor(384, overrides), {
      heapMiB: 384,
      maxCachedWorkflows: 4,
      maxConcurrentWorkflowTaskExecutions: 4,
      maxConcurrentActivityTaskExecutions: 20,
    });
  });

  it('refuses a setting that is not a whole number of at least its minimum, naming it', () => {
    assert.throws(
      () => parseEnv(CapacityConfigSchema, { BLUEGREEN_MAX_CACHED_WORKFLOWS: '1' }),
      /BLUEGREEN_MAX_CACHED_WORKFLOWS must be at least 2/,
    );
    assert.throws(
      () => parseEnv(CapacityConfigSchema, { BLUEGREEN_MAX_CONCURRENT_ACTIVITIES: '2.5' }),
      /BLUEGREEN_MAX_CONCURRENT_ACTIVITIES must be a whole number/,
    );
  });
});
