/**
 * bench:cli: what the `bluegreen` command costs a pipeline, installed from the package (compiled
 * JavaScript) against this repository's bin running the TypeScript through tsx. `npm pack` builds
 * the tarball, a fresh temporary project installs it; then RUNS starts of each, for `--help` and
 * for `status` of an app with no deployment (start, connect to a Temporal dev server, one query):
 * wall time and peak resident memory (the process's own VmHWM, read as it exits). Also the
 * tarball's size and file count.
 *
 *   npm run bench:cli
 *   RUNS=20 npm run bench:cli
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../src/demo/simulator-process.js';
import { startDevServer } from '../test/helpers/temporal-servers.js';
import { median } from './statistics.js';

const RUNS = Number(process.env['RUNS'] ?? 10);
const run = promisify(execFile);
const say = (line: string) => process.stdout.write(`${line}\n`);
/** Loaded before the command: prints the process's peak resident memory as it exits. */
const PEAK_RSS = `data:text/javascript,${encodeURIComponent(
  'import { readFileSync } from "node:fs"; process.on("exit", () => process.stderr.write(`\\nVmHWM ${/VmHWM:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]}\\n`));',
)}`;

const packDir = mkdtempSync(join(tmpdir(), 'bench-cli-pack-'));
const { stdout: packed } = await run('npm', ['pack', '--json', '--pack-destination', packDir], {
  cwd: ROOT,
  maxBuffer: 16 * 1024 * 1024,
});
const tarball = (
  JSON.parse(packed) as { filename: string; size: number; unpackedSize: number; entryCount: number }[]
)[0]!;
const project = mkdtempSync(join(tmpdir(), 'bench-cli-project-'));
writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'service-repo', private: true }));
await run('npm', ['install', '--no-audit', '--no-fund', join(packDir, tarball.filename)], {
  cwd: project,
  maxBuffer: 16 * 1024 * 1024,
});

const env = await startDevServer();
try {
  const commands = {
    'compiled (installed package)': join(
      project,
      'node_modules',
      '@bluegreen-temporal',
      'bluegreen',
      'bin',
      'bluegreen.js',
    ),
    'tsx (repository bin)': join(ROOT, 'bin', 'bluegreen.js'),
  };
  const args = { '--help': ['--help'], status: ['--address', env.address, 'status', 'no-such-app'] };
  const rows: string[] = [];
  for (const [what, bin] of Object.entries(commands)) {
    for (const [label, argv] of Object.entries(args)) {
      const seconds: number[] = [];
      const peaks: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const started = performance.now();
        // status of an app with no deployment exits 2 (nothing found): the answer still came from Temporal.
        const stderr = await run(process.execPath, ['--import', PEAK_RSS, bin, ...argv], { cwd: project }).then(
          (done) => done.stderr,
          (failed: { stderr: string }) => failed.stderr,
        );
        seconds.push((performance.now() - started) / 1000);
        peaks.push(Number(/VmHWM (\d+)/.exec(stderr)?.[1] ?? NaN) / 1024);
      }
      rows.push(
        `${what.padEnd(30)} | ${label.padEnd(7)} | ${median(seconds).toFixed(2)} s (${Math.min(...seconds).toFixed(2)}-${Math.max(...seconds).toFixed(2)}) | ${median(peaks).toFixed(0)} MB`,
      );
    }
  }
  say(
    `bench:cli on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 16)}; ${RUNS} starts each`,
  );
  say('command                        | args    | wall: median (min-max) | peak RSS (median)');
  for (const row of rows) say(row);
  say(
    `tarball ${tarball.filename}: ${(tarball.size / 1024).toFixed(1)} kB, ${(tarball.unpackedSize / 1024).toFixed(1)} kB unpacked, ${tarball.entryCount} files`,
  );
} finally {
  await env.teardown();
}
