/**
 * Runs the test files (scripts/run-tests.sh, after the type check and the lint): several at once,
 * as test/suite.ts says, each in a `node --test` of its own, whose output is printed whole when it
 * ends so that files running side by side do not interleave. Ends with each file's wall and CPU
 * time, slowest first, the suite's wall time beside the CPU time it used, and the totals.
 *
 *   node --import tsx scripts/run-suite.ts [node --test options] [files]
 *
 * Options (arguments starting with `--`) go to every file's `node --test`; files given run instead
 * of the whole suite. Exit code 1 when any test failed or any file did not end by itself.
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  APART,
  BACKGROUND_BUILDS,
  concurrency,
  FILE_TIMEOUT_MS,
  HOLDS,
  LONGEST_FIRST,
  OTHERS_CPU_SHARES,
  PRIORITY,
  TEST_TIMEOUT_MS,
} from '../test/suite.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Each file's wall time at its last run on this machine, to start the longest first. */
const LAST_TIMES = process.env['BLUEGREEN_SUITE_TIMES'] ?? join(ROOT, '.state/suite-times.json');

interface Counts {
  tests: number;
  pass: number;
  fail: number;
  cancelled: number;
  skipped: number;
  todo: number;
}

interface FileRun {
  file: string;
  code: number | null;
  wallSeconds: number;
  cpuSeconds: number;
  counts: Counts;
  timedOut: boolean;
  /** For a failed file: why, as its output says (repeated under the summary, where a short excerpt of the output still shows it). */
  why?: string;
}

const COUNT_NAMES = ['tests', 'pass', 'fail', 'cancelled', 'skipped', 'todo'] as const;

/** The counts in the closing lines of node --test's spec reporter (`ℹ pass 12`). */
function countsOf(output: string): Counts {
  const counts: Counts = { tests: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
  for (const name of COUNT_NAMES) {
    const matches = [...output.matchAll(new RegExp(`^ℹ ${name} (\\d+)$`, 'gm'))];
    counts[name] = matches.length > 0 ? Number(matches.at(-1)![1]) : 0;
  }
  return counts;
}

/**
 * The spec reporter's closing `✖ failing tests:` section (each failed test and its error), or the
 * output's last lines when there is none, at most 60 lines.
 */
function whyFailed(output: string): string {
  const lines = output.trimEnd().split('\n');
  const at = lines.findIndex((line) => line.startsWith('✖ failing tests:'));
  const shown = at === -1 ? lines.slice(-30) : lines.slice(at + 1).filter((line) => !/^ℹ /.test(line));
  return shown
    .slice(0, 60)
    .map((line) => `    ${line}`)
    .join('\n');
}

/** A file failed: a test failed or was cancelled, or the file did not end well by itself. */
function isFailed(run: FileRun): boolean {
  return run.code !== 0 || run.counts.fail > 0 || run.counts.cancelled > 0;
}

/** Each file's wall time in seconds at its last run on this machine. */
function lastTimes(): Record<string, number> {
  return existsSync(LAST_TIMES) ? (JSON.parse(readFileSync(LAST_TIMES, 'utf8')) as Record<string, number>) : {};
}

function testFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return entry.name === 'histories' ? [] : testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/**
 * Longest first, by an estimate of each file's wall time: its time at the previous run on this
 * machine; else, for a file test/suite.ts lists, longer than any measured; else a typical file's.
 */
function ordered(files: string[], last: Record<string, number>): string[] {
  const estimate = (file: string) => {
    const listed = LONGEST_FIRST.indexOf(file);
    return last[file] ?? (listed === -1 ? 30 : 10_000 - listed);
  };
  return [...files].sort((a, b) => estimate(b) - estimate(a) || a.localeCompare(b));
}

/** Busy CPU-seconds of the whole machine so far (/proc/stat: all but idle and iowait). */
function machineBusySeconds(): number {
  if (!existsSync('/proc/stat')) return NaN;
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / 100;
}

/** The process groups of the files running now. */
const running = new Set<number>();

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ended already
  }
}

// Interrupted (Ctrl+C, CI's deadline): the running files end as at their bound.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const pid of running) signalGroup(pid, 'SIGTERM');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

/** What the files of PRIORITY and APART hold while they run, so that two never run at once. */
const THE_CPU_FIRST = 'the CPU first';

/** Why a file has the CPU first while it runs (test/suite.ts's PRIORITY and APART); undefined for the others. */
const cpuFirstWhy = (file: string): string | undefined => PRIORITY[file] ?? APART[file]?.why;
const cpuFirst = (file: string) => cpuFirstWhy(file) !== undefined;

/** The resources a file holds while it runs: its own (test/suite.ts's HOLDS), and the CPU first. */
function resourcesOf(file: string): string[] {
  return [HOLDS[file], cpuFirst(file) ? THE_CPU_FIRST : undefined].filter((r): r is string => r !== undefined);
}

/** The cgroup the other files (those without the CPU first) run in: its `cgroup.procs`, and its share of the CPU lowered or restored. */
interface OthersCgroup {
  procs: string;
  throttle(on: boolean): void;
  remove(): void;
}

/**
 * A cgroup of the v1 `cpu` controller for the other files (those without the CPU first), at OTHERS_CPU_SHARES'
 * unthrottled share; null where none can be made (not root, no cgroup v1 `cpu` controller).
 */
function othersCgroup(): OthersCgroup | null {
  const mount = existsSync('/proc/mounts')
    ? readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((line) => line.split(' '))
        .find(([, , type, options]) => type === 'cgroup' && options?.split(',').includes('cpu'))?.[1]
    : undefined;
  if (!mount) return null;
  // A run that was killed (SIGKILL runs no exit handler) left its group: removed, once empty, by the next.
  for (const group of readdirSync(mount).filter((name) => /^bluegreen-suite-\d+$/.test(name))) {
    if (existsSync(`/proc/${group.slice('bluegreen-suite-'.length)}`)) continue; // its run goes on
    try {
      rmdirSync(join(mount, group));
    } catch {
      // a process of that run still in it: left
    }
  }
  const dir = join(mount, `bluegreen-suite-${process.pid}`);
  const share = (shares: number) => writeFileSync(join(dir, 'cpu.shares'), String(shares));
  try {
    mkdirSync(dir);
    share(OTHERS_CPU_SHARES.unthrottled);
  } catch {
    return null;
  }
  return {
    procs: join(dir, 'cgroup.procs'),
    throttle: (on) => share(on ? OTHERS_CPU_SHARES.throttled : OTHERS_CPU_SHARES.unthrottled),
    remove: () => {
      // A process left behind (a file ended at its bound stops its own) goes back to the root group, so that the group can go.
      try {
        for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean))
          try {
            writeFileSync(join(mount, 'cgroup.procs'), pid);
          } catch {
            // ended meanwhile
          }
        rmdirSync(dir);
      } catch {
        // gone already, or a process still moving out: the group stays, empty, until the machine restarts
      }
    },
  };
}

/**
 * One file in a `node --test` of its own, under bash so that `times` reports the CPU its processes
 * used (those reaped by it or by their parents: every process a file starts is stopped by PID).
 * With `cgroupProcs`, the file and every process it starts run in that cgroup.
 */
function runFile(file: string, options: string[], cgroupProcs?: string): Promise<{ run: FileRun; output: string }> {
  const script =
    'if [ -n "$1" ]; then echo $$ > "$1" || { echo "could not join the cgroup of $1" >&2; exit 97; }; fi; shift; ' +
    'node "$@"; code=$?; times >&3; exit $code';
  const args = [
    '--import',
    'tsx',
    '--import',
    './test/helpers/stop-descendants-on-exit.mjs',
    '--test',
    '--test-reporter=spec',
    `--test-timeout=${TEST_TIMEOUT_MS}`,
    ...options,
    file,
  ];
  const started = performance.now();
  // A process group of its own, so that a file past its bound is ended whole (see below).
  const child = spawn('bash', ['-c', script, 'bash', cgroupProcs ?? '', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0' },
    detached: true,
  });
  running.add(child.pid!);
  let output = '';
  let times = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => (times += chunk.toString()));
  let timedOut = false;
  // Past its bound (node --test's own ends a test at TEST_TIMEOUT_MS; this is the file's), the
  // file's process group gets SIGTERM, on which the file stops every process it started
  // (stop-descendants-on-exit.mjs), and SIGKILL 10 s later.
  const bound = setTimeout(() => {
    timedOut = true;
    signalGroup(child.pid!, 'SIGTERM');
    setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), 10_000).unref();
  }, FILE_TIMEOUT_MS);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(bound);
      running.delete(child.pid!);
      // `times`: the shell's own user and system time, then its children's: "0m1.250s 0m0.310s".
      const children = times.trim().split('\n').at(-1) ?? '';
      const cpuSeconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce(
        (sum, [, m, s]) => sum + Number(m) * 60 + Number(s),
        0,
      );
      const wallSeconds = (performance.now() - started) / 1000;
      resolve({ run: { file, code, wallSeconds, cpuSeconds, counts: countsOf(output), timedOut }, output });
    });
  });
}

interface Build {
  done: boolean;
  ended: Promise<void>;
  /** Null while it runs or once it succeeded; its output if it failed. */
  failure: string | null;
}

/** Starts each background build a chosen file needs (test/suite.ts), once per command. */
function startBuilds(files: string[]): Map<string, Build> {
  const byCommand = new Map<string, Build>();
  const byFile = new Map<string, Build>();
  const started = (command: readonly string[]): Build => {
    const key = command.join(' ');
    if (!byCommand.has(key)) {
      const startedAt = performance.now();
      const build: Build = { done: false, ended: Promise.resolve(), failure: null };
      build.ended = new Promise((resolve) => {
        const child = spawn(command[0]!, command.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.on('close', (code) => {
          Object.assign(build, { done: true, failure: code === 0 ? null : `${key}: exit ${code}\n${output}` });
          const seconds = (performance.now() - startedAt) / 1000;
          process.stdout.write(
            `suite: background build \`${key}\` ${code === 0 ? 'done' : 'FAILED'} in ${seconds.toFixed(1)} s\n`,
          );
          resolve();
        });
      });
      byCommand.set(key, build);
    }
    return byCommand.get(key)!;
  };
  for (const file of files) {
    const commands = BACKGROUND_BUILDS[file];
    if (!commands) continue;
    const builds = commands.map(started);
    if (builds.length === 1) {
      byFile.set(file, builds[0]!);
      continue;
    }
    // A file that needs several builds: done once all are, failed if one did.
    const all: Build = { done: false, ended: Promise.resolve(), failure: null };
    all.ended = Promise.all(builds.map((b) => b.ended)).then(() => {
      const failures = builds.map((b) => b.failure).filter(Boolean);
      Object.assign(all, { done: true, failure: failures.length > 0 ? failures.join('\n') : null });
    });
    byFile.set(file, all);
  }
  return byFile;
}

async function main(argv: string[]): Promise<number> {
  const options = argv.filter((a) => a.startsWith('--'));
  const chosen = argv.filter((a) => !a.startsWith('--')).map((f) => relative(ROOT, join(process.cwd(), f)));
  const files = chosen.length > 0 ? chosen : testFiles('test');
  const last = lastTimes();
  const cgroup = othersCgroup();
  // However the runner ends, interrupted too (its signal handlers exit).
  if (cgroup) process.once('exit', () => cgroup.remove());
  // Without the cgroup, the files that would have the CPU first run alone after the rest, the machine to themselves.
  const alone = cgroup ? [] : ordered(files.filter(cpuFirst), last);
  // The files apart start first: until each has ended, only the files beside it start.
  const apart = cgroup
    ? ordered(
        files.filter((f) => f in APART),
        last,
      )
    : [];
  const shared = [
    ...apart,
    ...ordered(
      files.filter((f) => !alone.includes(f) && !apart.includes(f)),
      last,
    ),
  ];
  const width = concurrency();
  const list = (some: string[]) => (some.length > 0 ? some.join(', ') : 'none');
  const { unthrottled, throttled } = OTHERS_CPU_SHARES;
  process.stdout.write(
    `suite: ${files.length} files, ${width} at a time; ` +
      (cgroup
        ? `the CPU first (the others' cpu.shares ${unthrottled} → ${throttled} meanwhile): ` +
          `${list(shared.filter((f) => f in PRIORITY))}; first, beside only their own: ${list(apart)}\n`
        : `alone afterwards (no cgroup to lower the others' CPU share): ${list(alone)}\n`),
  );

  const busyAtStart = machineBusySeconds();
  const started = performance.now();
  const runs: FileRun[] = [];
  const finish = ({ run, output }: { run: FileRun; output: string }) => {
    if (isFailed(run)) run.why = whyFailed(output);
    process.stdout.write(`\n▶ ${run.file}\n${output.trimEnd()}\n`);
    process.stdout.write(
      `${isFailed(run) ? '✖' : '✔'} ${run.file}: ${run.counts.pass} passed, ${run.counts.fail + run.counts.cancelled} failed` +
        ` in ${run.wallSeconds.toFixed(1)} s${run.timedOut ? ` (ended at its bound of ${FILE_TIMEOUT_MS / 60_000} min)` : ''}\n`,
    );
    runs.push(run);
  };

  const builds = startBuilds(files);
  // A build the cache answers ends within seconds: wait that long (at most 15 s), so that the
  // files waiting on it start first, as the order asks, not once a lane frees up minutes later.
  const waited = new AbortController();
  await Promise.race([
    Promise.all([...new Set(builds.values())].map((b) => b.ended)),
    sleep(15_000, undefined, { signal: waited.signal }).catch(() => undefined),
  ]);
  waited.abort();
  const queue = [...shared];
  /** The resources (test/suite.ts's HOLDS) held by running files. */
  const held = new Set<string>();
  /** Settles when a build ends or a resource is let go: what can make a waiting file ready. */
  let wake = () => undefined as void;
  let changed = new Promise<void>((resolve) => (wake = resolve));
  const changes = () => {
    wake();
    changed = new Promise<void>((resolve) => (wake = resolve));
  };
  for (const build of new Set(builds.values())) void build.ended.then(changes);
  /** The files running. */
  const runningFiles = new Set<string>();
  /** A file apart starts beside its own only; while one is still to run or running, only its own start. */
  const company = (file: string) =>
    file in APART
      ? [...runningFiles].every((f) => APART[file]!.beside.includes(f))
      : apart.filter((a) => queue.includes(a) || runningFiles.has(a)).every((a) => APART[a]!.beside.includes(file));
  const ready = (file: string) =>
    builds.get(file)?.done !== false && resourcesOf(file).every((r) => !held.has(r)) && company(file);
  /** The next file whose build (if any) has ended and whose resource (if any) is free; waits for one otherwise. */
  const next = async (): Promise<string | undefined> => {
    for (;;) {
      const at = queue.findIndex(ready);
      if (at !== -1) {
        // Held from here, before another lane looks.
        const file = queue.splice(at, 1)[0]!;
        for (const resource of resourcesOf(file)) held.add(resource);
        runningFiles.add(file);
        return file;
      }
      if (queue.length === 0) return undefined;
      await changed;
    }
  };
  const run = async (file: string) => {
    const failure = builds.get(file)?.failure;
    if (failure) {
      const counts = { tests: 1, pass: 0, fail: 1, cancelled: 0, skipped: 0, todo: 0 };
      return finish({
        run: { file, code: 1, wallSeconds: 0, cpuSeconds: 0, counts, timedOut: false },
        output: `its build failed:\n${failure}`,
      });
    }
    const first = cpuFirst(file);
    if (first) cgroup?.throttle(true);
    try {
      finish(await runFile(file, options, first ? undefined : cgroup?.procs));
    } finally {
      if (first) cgroup?.throttle(false);
    }
  };
  const lane = async () => {
    for (let file = await next(); file !== undefined; file = await next()) {
      const why = cpuFirstWhy(file);
      process.stdout.write(`▷ ${file}${why ? ` (the CPU first: ${why})` : ''}\n`);
      await run(file);
      for (const resource of resourcesOf(file)) held.delete(resource);
      runningFiles.delete(file);
      changes();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, queue.length) }, lane));
  for (const file of alone) {
    process.stdout.write(`▷ ${file} (alone: ${cpuFirstWhy(file)})\n`);
    await builds.get(file)?.ended;
    await run(file);
  }

  const wall = (performance.now() - started) / 1000;
  const busy = machineBusySeconds() - busyAtStart;
  report(runs, wall, busy);
  mkdirSync(dirname(LAST_TIMES), { recursive: true });
  writeFileSync(
    LAST_TIMES,
    JSON.stringify({ ...last, ...Object.fromEntries(runs.map((r) => [r.file, Math.round(r.wallSeconds)])) }, null, 2),
  );
  return runs.some(isFailed) ? 1 : 0;
}

function report(runs: FileRun[], wall: number, busy: number): void {
  const byTime = [...runs].sort((a, b) => b.wallSeconds - a.wallSeconds);
  const fileWall = runs.reduce((sum, r) => sum + r.wallSeconds, 0);
  const fileCpu = runs.reduce((sum, r) => sum + r.cpuSeconds, 0);
  const lines = ['', "Each file's wall and CPU time, slowest first (the 15 slowest are marked):"];
  byTime.forEach((r, i) => {
    const mark = i < 15 ? '*' : ' ';
    lines.push(
      `${mark} ${r.wallSeconds.toFixed(1).padStart(7)} s wall ${r.cpuSeconds.toFixed(1).padStart(7)} s CPU  ${r.file}`,
    );
  });
  lines.push(
    '',
    `suite wall time ${wall.toFixed(1)} s for ${fileWall.toFixed(1)} s of files' wall time (${(fileWall / wall).toFixed(2)} files at once on average)`,
    `CPU time: ${fileCpu.toFixed(1)} s used by the files' processes; ${Number.isNaN(busy) ? 'n/a' : busy.toFixed(1)} s busy on the whole machine` +
      ` (${Number.isNaN(busy) ? 'n/a' : ((100 * busy) / wall / availableParallelism()).toFixed(0)} % of ${availableParallelism()} cores)`,
  );
  const failed = runs.filter(isFailed);
  for (const r of failed) {
    lines.push(
      `✖ failed: ${r.file}${r.timedOut ? ' (ended at its bound)' : r.code !== 0 && r.counts.fail === 0 ? ` (exit ${r.code})` : ''}`,
    );
    if (r.why) lines.push(r.why);
  }
  const total = (name: keyof Counts) => runs.reduce((sum, r) => sum + r.counts[name], 0);
  // A failed file whose counts show no failed test (killed, crashed, or a failing hook) counts as one.
  const silent = failed.filter((r) => r.counts.fail + r.counts.cancelled === 0).length;
  for (const name of COUNT_NAMES)
    lines.push(`ℹ ${name} ${total(name) + (name === 'tests' || name === 'fail' ? silent : 0)}`);
  lines.push(`ℹ duration_ms ${(wall * 1000).toFixed(0)}`);
  lines.push(
    `suite: ${total('pass')} passed, ${total('fail') + total('cancelled') + silent} failed, ${total('skipped')} skipped`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

process.exitCode = await main(process.argv.slice(2));
