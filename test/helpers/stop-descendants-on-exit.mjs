/**
 * Loaded into the test runner and every test file's process (scripts/run-tests.sh, `--import`).
 *
 * When a file overruns its bound, the runner ends it with SIGTERM and the file's `after` hooks
 * never run: every process it started (Temporal servers, a control plane, the reference service)
 * would live on, and one holding the runner's pipe keeps the runner, and CI, from ever ending.
 * So on SIGTERM, and on any exit, this process stops every process descended from it, by PID.
 * After a file that ended normally there is none left to stop.
 *
 * Plain JavaScript, and inert off the main thread: `--import` reaches worker threads too (the
 * Temporal worker's workflow thread), where tsx does not load .ts and an 'exit' is the thread's.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import process from 'node:process';
import { isMainThread } from 'node:worker_threads';

/**
 * Every process below `root`, read from /proc (Linux); none elsewhere.
 * @param {number} root
 * @returns {number[]}
 */
export function descendantsOf(root) {
  if (!existsSync('/proc')) return [];
  /** @type {Map<number, number[]>} */
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // it ended while we read
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function stopDescendants() {
  // The whole tree is read before the first kill: a killed parent's children are re-parented.
  for (const pid of descendantsOf(process.pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

if (isMainThread) {
  process.once('SIGTERM', () => {
    stopDescendants();
    process.exit(143);
  });
  process.once('exit', stopDescendants);
}
