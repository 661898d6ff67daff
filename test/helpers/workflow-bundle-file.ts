/**
 * The workflow bundle as a file, for worker processes (BLUEGREEN_WORKFLOW_BUNDLE): the suite's,
 * built once by scripts/run-tests.sh, or, for a file run on its own, built into `dir` by
 * scripts/bundle-workflows.ts, as the Dockerfile builds it.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../src/demo/simulator-process.js';

export async function workflowBundleFile(dir: string): Promise<string> {
  const suite = process.env['BLUEGREEN_WORKFLOW_BUNDLE'];
  if (suite) return suite;
  const file = join(dir, 'workflow-bundle.js');
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/bundle-workflows.ts', '--out', file], {
    cwd: ROOT,
  });
  return file;
}
