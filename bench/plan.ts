/**
 * bench:plan: how long `bluegreen plan` takes on the embedded stack (dev server, worker process,
 * local platform, Prometheus every 1 s): `PLANS` plans of a blue-green release and of a canary
 * (gateway-api, four steps), each timed from the client's start to its answer, with the plan
 * workflow's history size. Nothing is deployed.
 *
 *   npm run bench:plan
 *   PLANS=20 npm run bench:plan
 */
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { EmbeddedStack, freeStackPorts } from '../src/demo/stack.js';
import type { DeploymentSpecInput } from '../src/deployment-spec/deployment-spec.js';
import { testSpec } from '../test/helpers/deployment-harness.js';
import { DETECTION_API_IMAGE } from '../test/helpers/embedded-stack.js';
import { median, percentile } from './statistics.js';

const PLANS = Number(process.env['PLANS'] ?? 10);
const say = (line: string) => process.stdout.write(`${line}\n`);

const stack = new EmbeddedStack({
  stateDir: mkdtempSync(join(tmpdir(), 'bench-plan-')),
  ports: await freeStackPorts(),
  replicaEnv: { LOG_LEVEL: 'error' },
});
await stack.start();
await stack.waitForInitialSlot();
try {
  const kinds: [string, Partial<DeploymentSpecInput>][] = [
    ['blue-green', {}],
    ['canary (gateway-api, 4 steps)', { strategy: 'canary', traffic: { router: 'gateway-api' } }],
  ];
  const rows: string[] = [];
  for (const [label, overrides] of kinds) {
    const times: number[] = [];
    const events: number[] = [];
    for (let i = 0; i < PLANS; i++) {
      const started = performance.now();
      const result = await stack.deployments!.plan(
        testSpec({ image: DETECTION_API_IMAGE('v2.2.0'), replicas: 2, ...overrides }),
      );
      times.push(performance.now() - started);
      if (!result.plan?.proceeds)
        throw new Error(`the plan would not proceed: ${JSON.stringify(result.plan?.checks ?? result.error)}`);
      const history = await new Client({ connection: stack.connection! }).workflow.getHandle(result.id).fetchHistory();
      events.push(history.events?.length ?? 0);
    }
    rows.push(
      `${label.padEnd(30)} | median ${median(times).toFixed(0)} ms, p95 ${percentile(times, 95).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms | ${median(events)} history events`,
    );
  }
  say('');
  say(
    `bench:plan on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${new Date().toISOString().slice(0, 16)}; ${PLANS} plans of each, client start to answer`,
  );
  for (const row of rows) say(row);
} finally {
  await stack.stop();
}
