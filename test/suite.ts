/**
 * How the suite runs its files (scripts/run-suite.ts), in one place: which files run apart,
 * which have the CPU first, how many run side by side, and which start first.
 *
 * Files share nothing unless listed here: each starts its own Temporal server, picks free ports,
 * and keeps to its own namespace on the shared control plane (test/helpers/kubernetes.ts). So the
 * runner starts several at once, and a file that fails only when others run beside it has an
 * isolation bug to fix, not a reason to be listed in APART or PRIORITY.
 */
import { availableParallelism, totalmem } from 'node:os';

/**
 * Files that run apart, and why: first, with the CPU first (as PRIORITY's), beside none but the
 * files listed with them. A file whose pods must answer within a bound, beside other files at an
 * equal share of the CPU, misses it; with the CPU first beside them, it starves theirs. The files
 * beside it measure no process's latency: the time-skipping workflow files, whose platform is a
 * recording double, only wait longer. Without the runner's cgroup (see PRIORITY), these run alone
 * after the rest. Keep this list short: every other file waits for it.
 */
export const APART: Record<string, { why: string; beside: readonly string[] }> = {
  'test/e2e/dataplane.e2e.test.ts': {
    why: "500 requests/s through real data planes, each answered within 5 s: beside other files, pods starved of CPU missed that bound (645 timeouts in one run); given the CPU first beside them, it starved theirs (the embedded canary file's p95 latency 0.95 s against its 0.5 s SLO)",
    beside: [
      'test/workflows/blue-green-deployment.test.ts',
      'test/workflows/blue-green-operators.test.ts',
      'test/workflows/canary-deployment.test.ts',
      'test/workflows/release-train.test.ts',
      'test/workflows/plan.test.ts',
      'test/workflows/replay.test.ts',
    ],
  },
  // The runner's own test adds its fixtures' (a JSON object of file to { why, beside }).
  ...(JSON.parse(process.env['BLUEGREEN_SUITE_APART'] ?? '{}') as Record<
    string,
    { why: string; beside: readonly string[] }
  >),
};

/**
 * Files that have the CPU first, and why: each runs beside the others, which meanwhile share a
 * small part of the CPU (a cgroup of theirs whose `cpu.shares` the runner lowers while such a file
 * runs), so that when the two cores are short it is the others that wait. Two of these never run
 * at once. Where the runner cannot make that cgroup (not root, no cgroup v1 `cpu` controller),
 * they run alone after the rest. Keep this list short.
 */
export const PRIORITY: Record<string, string> = {
  'test/e2e/workers-chaos.e2e.test.ts':
    'three workers and fifty deployments on two cores: its SIGKILLs are timed to catch writes in flight, which CPU taken by other files moves',
  // The runner's own test adds its fixtures' (a JSON object of file to reason).
  ...(JSON.parse(process.env['BLUEGREEN_SUITE_PRIORITY'] ?? '{}') as Record<string, string>),
};

/**
 * The other files' `cpu.shares` (cgroup v1; the kernel's default for a group is 1024) while no
 * file of PRIORITY runs, and while one does. Unthrottled, the group weighs about what its files'
 * processes would on their own (a runnable process weighs 1024); throttled, a file of PRIORITY's
 * processes (1024 each) and the real node's pods (`kubepods`, 1024 a core) come first, and the
 * others still get what they leave: the kernel gives spare CPU to whoever is runnable.
 */
export const OTHERS_CPU_SHARES = { unthrottled: 4096, throttled: 256 } as const;

/**
 * Files that hold a resource of which the machine has one, by the resource's name: two files that
 * hold the same one never run at once (others run beside each). A real node's bridge, iptables
 * chains and cgroups are host-wide (test/k8s-harness/real-node.ts), so one runs per machine.
 */
export const HOLDS: Record<string, string> = {
  'test/k8s-harness/real-node.test.ts': 'the real node',
  'test/e2e/real-node-deployments.e2e.test.ts': 'the real node',
  'test/e2e/dataplane.e2e.test.ts': 'the real node',
  // The runner's own test adds its fixtures' (a JSON object of file to resource).
  ...(JSON.parse(process.env['BLUEGREEN_SUITE_HOLDS'] ?? '{}') as Record<string, string>),
};

/**
 * Files started first, longest first (their wall time at the last measured run), so that the
 * longest file does not start last and hold the suite up alone. A file not listed starts after
 * these, in path order; the runner also reorders by the times of the previous run on this machine.
 */
export const LONGEST_FIRST: readonly string[] = [
  'test/e2e/real-node-deployments.e2e.test.ts',
  'test/e2e/workers-chaos.e2e.test.ts',
  'test/e2e/abort-drills.e2e.test.ts',
  'test/e2e/kubernetes-abort-drills.e2e.test.ts',
  'test/e2e/scrape-interval-60s.e2e.test.ts',
  'test/workflows/blue-green-deployment.test.ts',
  'test/workflows/blue-green-operators.test.ts',
  'test/client/cli.e2e.test.ts',
  'test/e2e/local-deployments.e2e.test.ts',
  'test/e2e/drills.e2e.test.ts',
  'test/e2e/release-train-drills.e2e.test.ts',
  'test/workflows/release-train.test.ts',
  'test/gitops/release-controller.e2e.test.ts',
  'test/client/package.e2e.test.ts',
  'test/e2e/release-train.e2e.test.ts',
  'test/workflows/canary-deployment.test.ts',
  'test/e2e/canary-deployments.e2e.test.ts',
  'test/e2e/scrape-interval-15s.e2e.test.ts',
  'test/e2e/temporal-postgres.e2e.test.ts',
];

/**
 * How many files run at once: most of a file's time is spent waiting (on timers, scrapes,
 * servers), so twice the cores, bounded by memory (a file with its servers stays under 2 GiB).
 * BLUEGREEN_TEST_CONCURRENCY overrides it.
 */
export function concurrency(env: NodeJS.ProcessEnv = process.env): number {
  const set = Number(env['BLUEGREEN_TEST_CONCURRENCY']);
  if (Number.isInteger(set) && set >= 1) return set;
  const byMemory = Math.floor(totalmem() / 2 ** 31);
  return Math.max(1, Math.min(availableParallelism() * 2, byMemory));
}

/**
 * Builds only some files need, started in the background when the suite starts (scripts/setup.sh
 * leaves them out of `npm test`'s setup) so that the first files run meanwhile; a file listed
 * here is started once its builds have ended, and fails with a build's output if one failed.
 */
export const BACKGROUND_BUILDS: Record<string, readonly (readonly string[])[]> = {
  'test/e2e/temporal-postgres.e2e.test.ts': [['bash', 'scripts/setup.sh', '--temporal-server']],
  'test/e2e/real-node-deployments.e2e.test.ts': [['bash', 'scripts/setup.sh', '--images']],
  'test/e2e/dataplane.e2e.test.ts': [
    ['bash', 'scripts/setup.sh', '--images'],
    ['bash', 'scripts/setup.sh', '--dataplane'],
  ],
};

/**
 * A file's bound as a whole: it is ended (and every process it started with it) past this.
 * BLUEGREEN_TEST_FILE_TIMEOUT_MS overrides it (the runner's own test does).
 */
export const FILE_TIMEOUT_MS = Number(process.env['BLUEGREEN_TEST_FILE_TIMEOUT_MS']) || 20 * 60_000;

/**
 * Each test's bound (node --test's --test-timeout), which node --test also sets on each file as a
 * whole: it counts a file as a test. The blue-green workflow file (then 48 scenarios, each on a
 * time-skipping server of its own; since split in two) took 532 s beside three other files on 2
 * cores (2026-12-07), close to the 10 minutes this was; one run had ended it at that bound.
 */
export const TEST_TIMEOUT_MS = 15 * 60_000;
