/** Calling platform adapters directly in tests: a recording progress, and a failure to inspect. */
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/activity';
import type { Progress } from '../../src/activities/contract.js';

/** A Progress that records its heartbeats and is never cancelled. */
export function progress(): Progress & { beats: unknown[] } {
  const beats: unknown[] = [];
  return { beats, heartbeat: (details) => beats.push(details), signal: new AbortController().signal };
}

/** The ApplicationFailure a call rejects with; fails the test if it resolves or throws anything else. */
export async function rejection(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await promise.then(
    () => assert.fail('expected a failure'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(error)}`);
  return error;
}
