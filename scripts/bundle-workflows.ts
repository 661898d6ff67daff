/**
 * `npm run bundle:workflows`: the deployment workflows bundled once, ahead of time, into one file
 * a worker loads with BLUEGREEN_WORKFLOW_BUNDLE. A worker without it bundles them at every start,
 * which costs seconds and, for good, memory (webpack's high-water mark stays in its resident set).
 *
 *   npm run bundle:workflows                       # dist/workflow-bundle.js
 *   npm run bundle:workflows -- --out FILE
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { Command } from 'commander';
import { WORKFLOWS_PATH } from '../src/worker/worker.js';

const { out } = new Command('bundle-workflows')
  .option('--out <file>', 'where to write the bundle', 'dist/workflow-bundle.js')
  .parse()
  .opts<{ out: string }>();
const file = resolve(out);
const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH });
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, code);
process.stdout.write(`workflow bundle written to ${file} (${(code.length / 1024).toFixed(0)} KiB)\n`);
