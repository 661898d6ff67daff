/**
 * The path a service repository takes: `npm pack` builds the tarball (compiled dist/, the client
 * library's type declarations, the `bluegreen` and `bluegreen-worker` bins), a fresh temporary
 * project installs it with `npm install <tarball>`, and its installed commands run: `bluegreen
 * --help`; `bluegreen-worker` against the local platform and the Temporal dev server; `bluegreen
 * deploy --wait` of the detection API, which goes live; `bluegreen status`. No TypeScript runs
 * there: the project has neither tsx nor any of this repository's dev dependencies, and a test
 * imports the library from its own JavaScript. The example pipeline pins the same package and
 * version. The worker image runs the same start command over the same dist/ (no container engine
 * runs here to build it).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { parse as parseYaml } from 'yaml';
import { freePort, stopProcess } from '../../src/processes/processes.js';
import { TakListener } from '../helpers/detection-api-process.js';
import { startLocalPlatform } from '../helpers/local-platform-process.js';
import type { LocalPlatformProcess } from '../helpers/local-platform-process.js';
import { eventually } from '../helpers/eventually.js';
import { startDevServer } from '../helpers/temporal-servers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
};
const TASK_QUEUE = 'bluegreen-package-e2e';

describe('the packed package, installed into a fresh project', () => {
  let project: string;
  let env: TestWorkflowEnvironment;
  let tak: TakListener;
  let local: LocalPlatformProcess;
  let worker: ChildProcess | null = null;
  let workerOutput = '';

  const bin = (name: string) => join(project, 'node_modules', '.bin', name);
  const bluegreen = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(
        bin('bluegreen'),
        ['--address', env.address, '--task-queue', TASK_QUEUE, ...args],
        { cwd: project, timeout: 120_000 },
      );
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };

  before(async () => {
    const packDir = mkdtempSync(join(tmpdir(), 'bluegreen-pack-'));
    // `npm pack` builds dist/ first (prepack); --json names the tarball.
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', packDir], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 300_000,
    });
    const tarball = join(packDir, (JSON.parse(stdout) as { filename: string }[])[0]!.filename);
    project = mkdtempSync(join(tmpdir(), 'service-repo-'));
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'service-repo', private: true, type: 'module' }),
    );
    await run('npm', ['install', '--no-audit', '--no-fund', tarball], {
      cwd: project,
      maxBuffer: 16 * 1024 * 1024,
      timeout: 600_000,
    });
    env = await startDevServer();
    tak = await TakListener.start();
    local = await startLocalPlatform({ takAddress: `127.0.0.1:${tak.port}` });
  });

  after(async () => {
    if (worker) await stopProcess(worker, 30_000);
    await local?.stop();
    await tak?.close();
    await env?.teardown();
  });

  it('holds compiled JavaScript and declarations, and none of the dev dependencies', () => {
    const installed = join(project, 'node_modules', '@bluegreen-temporal', 'bluegreen');
    assert.ok(existsSync(join(installed, 'dist', 'client', 'cli.js')));
    assert.ok(existsSync(join(installed, 'dist', 'index.d.ts')), 'the client library has type declarations');
    assert.ok(!existsSync(join(installed, 'src')), 'no TypeScript source');
    assert.ok(!existsSync(join(project, 'node_modules', 'tsx')), 'tsx is not installed');
    assert.ok(!existsSync(join(project, 'node_modules', 'typescript')), 'typescript is not installed');
    assert.ok(
      !existsSync(join(project, 'node_modules', 'better-sqlite3')),
      'the reference service’s dependencies are not installed',
    );
    assert.ok(!Object.keys(PACKAGE.dependencies).includes('tsx'));
  });

  it('runs the installed bluegreen: --help lists the commands', async () => {
    const { stdout } = await run(bin('bluegreen'), ['--help'], { cwd: project });
    for (const command of ['deploy', 'status', 'abort', 'approve', 'promote', 'list'])
      assert.match(stdout, new RegExp(`\\n  ${command}\\b`));
  });

  it('deploys with the installed bluegreen and bluegreen-worker: the version goes live, and status says so', async () => {
    worker = spawn(bin('bluegreen-worker'), [], {
      cwd: project,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_TASK_QUEUE: TASK_QUEUE,
        BLUEGREEN_PLATFORM: 'local',
        BLUEGREEN_LOCAL_URL: local.controlUrl,
        // No Prometheus here: the spec gates on restarts alone.
        PROMETHEUS_URL: 'http://127.0.0.1:9',
        BLUEGREEN_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.on('data', (chunk) => (workerOutput += chunk));
    worker.stderr!.on('data', (chunk) => (workerOutput += chunk));
    await eventually(async () => /worker started/.test(workerOutput), 'the installed worker started', 120_000);

    const spec = join(project, 'bluegreen.yaml');
    writeFileSync(
      spec,
      [
        'app: detection-api',
        'replicas: 2',
        'readinessTimeoutSeconds: 60',
        'monitor: { durationSeconds: 3, intervalSeconds: 1, slos: [] }',
        'scaleDownDelaySeconds: 0',
        '',
      ].join('\n'),
    );
    const deployed = await bluegreen(
      'deploy',
      '-f',
      spec,
      '--image',
      'registry.internal/detection-api:v2.2.0',
      '--wait',
    );
    assert.equal(deployed.code, 0, `${deployed.stdout}\n${deployed.stderr}\n${workerOutput}`);
    assert.match(deployed.stdout, /Succeeded/);
    const status = await bluegreen('status', 'detection-api', '--json');
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout) as { phase: string; activeSlot: string; version: string };
    assert.deepEqual([parsed.phase, parsed.activeSlot, parsed.version], ['Succeeded', 'green', 'v2.2.0']);
    const live = await local.platform.describe({
      app: 'detection-api',
      namespace: 'default',
      service: 'detection-api-service',
      slotLabelKey: 'slot',
      container: 'detection-api',
      deployments: { blue: 'detection-api-blue', green: 'detection-api-green' },
    });
    assert.deepEqual(
      [live.activeSlot, live.slots.green.image, live.slots.blue.replicas],
      ['green', 'registry.internal/detection-api:v2.2.0', 0],
    );
  });

  it('serves the client library to the project’s own JavaScript', async () => {
    const script = join(project, 'read-status.js');
    writeFileSync(
      script,
      [
        "import { connectDeployments, Outcome } from '@bluegreen-temporal/bluegreen';",
        'const { deployments, close } = await connectDeployments({ TEMPORAL_ADDRESS: process.argv[2], TEMPORAL_TASK_QUEUE: process.argv[3] });',
        "const result = await deployments.result('default', 'detection-api');",
        'await close();',
        'console.log(JSON.stringify({ outcome: result.outcome, succeeded: Outcome.Succeeded, live: result.liveSlot }));',
      ].join('\n'),
    );
    const { stdout } = await run(process.execPath, [script, env.address, TASK_QUEUE], { cwd: project });
    assert.deepEqual(JSON.parse(stdout), { outcome: 'Succeeded', succeeded: 'Succeeded', live: 'green' });
  });

  it('is the package and version the example pipeline installs', () => {
    const pipeline = parseYaml(readFileSync(join(ROOT, '.github/workflows/deploy.example.yml'), 'utf8')) as {
      jobs: { deploy: { steps: { name?: string; run?: string }[] } };
    };
    const install = pipeline.jobs.deploy.steps.find((s) => s.name === 'Install bluegreen')!.run!;
    assert.ok(install.includes(`${PACKAGE.name}@${PACKAGE.version}`), install);
    const calls = pipeline.jobs.deploy.steps.map((s) => s.run ?? '').join('\n');
    assert.doesNotMatch(calls, /npx /, 'no bare name for npx to resolve');
  });
});
