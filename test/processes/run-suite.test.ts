/**
 * The suite's runner (scripts/run-suite.ts): files run side by side, each file's output whole, a
 * failure in one file fails the run, and the closing lines count every file's tests.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { cpuCgroup } from './fixtures/cpu-cgroup.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FILES = ['test/processes/fixtures/suite-file.ts', 'test/processes/fixtures/suite-other-file.ts'];

/** A fixture's file name, as it logs itself. */
const name = (file: string) => file.split('/').at(-1)!;

/** The time (ms since the epoch) of the log line that starts with `line`. */
const at = (log: string[], line: string) => Number(log.find((l) => l.startsWith(line))?.split(' ')[2]);

/** The runner on `files`, two at a time; its exit code and output, and the files' log. */
async function runSuite(
  failIn: string,
  files = FILES,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; log: string[]; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'run-suite-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SUITE_LOG: join(dir, 'log'),
    FAIL_IN: failIn,
    BLUEGREEN_TEST_CONCURRENCY: '2',
    BLUEGREEN_SUITE_TIMES: join(dir, 'times.json'),
    ...extraEnv,
  };
  delete env['NODE_TEST_CONTEXT']; // a runner of its own, not a child of this one
  const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'scripts/run-suite.ts', ...files],
      { cwd: ROOT, env, timeout: 60_000 },
      (error, stdout) => resolve({ code: error ? Number((error as { code?: number }).code) : 0, stdout }),
    );
  });
  const log = existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8').trim().split('\n') : [];
  return { code, stdout, log, dir };
}

describe('the suite runner', () => {
  it('runs files side by side and counts every test of every file', async () => {
    const { code, stdout, log } = await runSuite('');
    assert.equal(code, 0, stdout);
    const [aStart, aEnd, bStart, bEnd] = [
      at(log, 'suite-file.ts start'),
      at(log, 'suite-file.ts end'),
      at(log, 'suite-other-file.ts start'),
      at(log, 'suite-other-file.ts end'),
    ];
    assert.ok(aStart < bEnd && bStart < aEnd, `the two files overlap in time: ${log.join(', ')}`);
    assert.match(stdout, /^suite: 2 files, 2 at a time/m);
    assert.match(stdout, /^suite: 4 passed, 0 failed, 0 skipped$/m);
    assert.match(stdout, /^ℹ pass 4$/m);
    for (const file of FILES)
      assert.match(
        stdout,
        new RegExp(`^\\* +[\\d.]+ s wall +[\\d.]+ s CPU  ${file}$`, 'm'),
        `${file}'s time is listed`,
      );
  });

  it('never runs two files that hold the same resource at once, and ends', async () => {
    const holds = Object.fromEntries(FILES.map((file) => [file, 'the one thing']));
    const { code, stdout, log } = await runSuite('', FILES, { BLUEGREEN_SUITE_HOLDS: JSON.stringify(holds) });
    assert.equal(code, 0, stdout);
    const [aStart, aEnd, bStart, bEnd] = [
      at(log, 'suite-file.ts start'),
      at(log, 'suite-file.ts end'),
      at(log, 'suite-other-file.ts start'),
      at(log, 'suite-other-file.ts end'),
    ];
    assert.ok(aEnd <= bStart || bEnd <= aStart, `one after the other: ${log.join(', ')}`);
    assert.match(stdout, /^suite: 4 passed, 0 failed, 0 skipped$/m);
  });

  it('runs a file that has the CPU first beside the others, whose cgroup has a smaller share meanwhile', async () => {
    const [first, other] = FILES as [string, string];
    // The group a killed run left (its process gone), which this run removes.
    const gone = await new Promise<number>((resolve) => {
      const child = execFile('true', () => resolve(child.pid!));
    });
    const stale = `/sys/fs/cgroup/cpu/bluegreen-suite-${gone}`;
    try {
      mkdirSync(stale);
    } catch {
      // no cgroup v1 `cpu` controller here, or not root: see below
    }
    const { code, stdout, log } = await runSuite('', FILES, {
      BLUEGREEN_SUITE_PRIORITY: JSON.stringify({ [first]: 'told to' }),
      // The first ends only once the other has read its share: they run side by side, and the other reads it meanwhile.
      SUITE_WAIT_FOR: JSON.stringify({ [name(first)]: `${name(other)} cgroup` }),
    });
    const cgroupOf = (file: string) => log.find((l) => l.startsWith(`${name(file)} cgroup `))?.split(' ');
    const [, , firstGroup] = cgroupOf(first) ?? [];
    const [, , otherGroup, otherShares] = cgroupOf(other) ?? [];
    if (/^suite: .* alone afterwards \(no cgroup/m.test(stdout)) {
      // No cgroup here (not root, or no cgroup v1): the file that has the CPU first runs after the rest.
      assert.equal(code, 0, stdout);
      assert.ok(at(log, `${name(other)} end`) <= at(log, `${name(first)} start`), `after the other: ${log.join(', ')}`);
      return;
    }
    assert.equal(code, 0, stdout);
    assert.match(
      stdout,
      /^suite: 2 files, 2 at a time; the CPU first \(the others' cpu.shares 4096 → 256 meanwhile\): test\/processes\/fixtures\/suite-file.ts; first, beside only their own: none$/m,
    );
    // The runner's own group (this test's process's, whose child it is) for the first; a group of the run's for the other.
    const own = cpuCgroup().group;
    assert.equal(firstGroup, own, `the file with the CPU first stays in the runner's group: ${log.join(', ')}`);
    assert.match(otherGroup ?? '', /^\/bluegreen-suite-\d+$/, `the other in the run's group: ${log.join(', ')}`);
    assert.notEqual(otherGroup, own);
    assert.equal(otherShares, '256', `the others' share lowered while the first runs: ${log.join(', ')}`);
    assert.ok(!existsSync(`/sys/fs/cgroup/cpu${otherGroup}`), 'the group is gone once the run has ended');
    assert.ok(!existsSync(stale), `the group of a run whose process is gone (${stale}) was removed`);
  });

  it('runs a file apart first, beside only the files listed with it, and the others once it has ended', async () => {
    const [apart, beside] = FILES as [string, string];
    const third = 'test/processes/fixtures/suite-third-file.ts';
    const { code, stdout, log } = await runSuite('', [third, beside, apart], {
      BLUEGREEN_TEST_CONCURRENCY: '3',
      BLUEGREEN_SUITE_APART: JSON.stringify({ [apart]: { why: 'told to', beside: [beside] } }),
      // The file apart ends only once the one beside it has read its share: they run side by side.
      SUITE_WAIT_FOR: JSON.stringify({ [name(apart)]: `${name(beside)} cgroup` }),
    });
    assert.equal(code, 0, stdout);
    assert.match(stdout, /^suite: 6 passed, 0 failed, 0 skipped$/m);
    const start = (file: string) => at(log, `${name(file)} start`);
    const end = (file: string) => at(log, `${name(file)} end`);
    if (/^suite: .* alone afterwards \(no cgroup/m.test(stdout)) {
      // No cgroup here: the file apart runs alone after the rest.
      assert.ok(end(beside) <= start(apart) && end(third) <= start(apart), `after the others: ${log.join(', ')}`);
      return;
    }
    assert.match(stdout, /; first, beside only their own: test\/processes\/fixtures\/suite-file.ts$/m);
    assert.ok(start(beside) < end(apart) && start(apart) < end(beside), `apart and beside overlap: ${log.join(', ')}`);
    assert.ok(end(apart) <= start(third), `the third starts once the file apart has ended: ${log.join(', ')}`);
    const shares = log.find((l) => l.startsWith(`${name(beside)} cgroup `))?.split(' ')[3];
    assert.equal(shares, '256', `the file beside it at the lowered share: ${log.join(', ')}`);
  });

  it('fails the run when one test of one file fails, and names the file', async () => {
    const { code, stdout } = await runSuite('suite-other-file.ts');
    assert.equal(code, 1);
    assert.match(stdout, /^✖ failed: test\/processes\/fixtures\/suite-other-file.ts$/m);
    assert.match(stdout, /^suite: 3 passed, 1 failed, 0 skipped$/m);
    // Each file's output is printed whole: the failing test's name directly under its file's heading.
    const block = stdout.slice(stdout.indexOf('▶ test/processes/fixtures/suite-other-file.ts'));
    assert.match(
      block.slice(0, block.indexOf('✖ test/processes/fixtures/suite-other-file.ts')),
      /✖ fails when told to/,
    );
    // And again under the summary, with its error, where a short excerpt of the output still shows why.
    const summary = stdout.slice(stdout.indexOf('✖ failed: test/processes/fixtures/suite-other-file.ts'));
    assert.match(summary, /^ {4}✖ fails when told to/m);
    assert.match(summary, /told to fail/);
  });

  it('ends a file past its bound with every process it started, and fails it', async () => {
    // The fixture never ends and holds a `sleep 120` of its own; its tests' own bound is far off.
    const pidFile = join(mkdtempSync(join(tmpdir(), 'run-suite-bound-')), 'pid');
    const started = performance.now();
    const { code, stdout } = await runSuite('', ['test/processes/fixtures/overruns-its-bound.ts'], {
      PID_FILE: pidFile,
      BLUEGREEN_TEST_FILE_TIMEOUT_MS: '3000',
    });
    assert.equal(code, 1);
    assert.match(stdout, /ended at its bound/);
    assert.match(stdout, /^suite: 0 passed, 1 failed, 0 skipped$/m);
    assert.ok(performance.now() - started < 50_000, 'the runner ended by itself, long before the sleep would have');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const state = existsSync(`/proc/${pid}/stat`)
      ? readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0]
      : 'gone';
    assert.ok(state === 'gone' || state === 'Z', `the sleep the file started has ended (state ${state})`);
  });
});
