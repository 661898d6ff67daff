/**
 * Small process and port utilities shared by the local platform, the demo and the tests: a free
 * loopback port, a wait for a child process to answer its readiness URL, and a stop by PID that
 * escalates to SIGKILL after a grace period.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the kernel's ephemeral ports (port-0 binds, outgoing connections) begin: Linux's setting, else IANA's. */
const FIRST_EPHEMERAL_PORT = (() => {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low)) return low;
  } catch {
    // not Linux: IANA's range
  }
  return 49152;
})();

const FIRST_CHOSEN_PORT = 10_000;
const handedOut = new Set<number>();

/**
 * Ports handed out by any process of this machine, one file each, so that two processes (the
 * suite's files run side by side) never hand out the same port between its check and its bind: a
 * worker once failed on a metrics port another file had been given a moment before. A port is
 * held for RESERVED_MS, long enough for the slowest process to bind it.
 */
const RESERVATIONS = join(tmpdir(), 'bluegreen-ports');
const RESERVED_MS = 5 * 60_000;
/** The directory, once this process has made sure it exists. */
let reservationsMade: string | undefined;

/** True if this process now holds `port`'s reservation: none was there, or it had expired. */
function reserve(port: number): boolean {
  const file = join(RESERVATIONS, String(port));
  try {
    reservationsMade ??= mkdirSync(RESERVATIONS, { recursive: true }) ?? RESERVATIONS;
    writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return true; // no shared directory: the bind check alone
  }
  try {
    if (Date.now() - statSync(file).mtimeMs < RESERVED_MS) return false;
    const now = new Date();
    utimesSync(file, now, now);
    return true;
  } catch {
    return false;
  }
}

/**
 * Ports the Fetch standard calls bad: `fetch()` refuses them outright, so a server on one is never
 * seen ready (the Fetch standard's list, from 10,000 up; a worker once got 10080 and its metrics
 * endpoint never answered).
 */
const FETCH_BAD_PORTS = new Set([10080]);

/**
 * A port free on 127.0.0.1 at the time of the call, for a server that binds it later. It is
 * chosen at random below the kernel's ephemeral range, so that between now and that bind no
 * other process can take it by binding port 0 or by connecting out (the Temporal dev server picks
 * a handful of its own ports that way as it starts), and it is never handed out twice by this
 * process nor by another on this machine within RESERVED_MS. Where the range leaves no room below
 * it, the kernel picks.
 */
export async function freePort(): Promise<number> {
  const span = FIRST_EPHEMERAL_PORT - FIRST_CHOSEN_PORT;
  for (let attempt = 0; span >= 1000 && attempt < 100; attempt++) {
    const port = FIRST_CHOSEN_PORT + Math.floor(Math.random() * span);
    if (handedOut.has(port) || FETCH_BAD_PORTS.has(port) || (await bindAndRelease(port)) === null) continue;
    if (!reserve(port)) continue;
    handedOut.add(port);
    return port;
  }
  return (await bindAndRelease(0))!;
}

/** Binds `port` on 127.0.0.1 (0: one the kernel picks) and lets it go: the port, or null if taken. */
async function bindAndRelease(port: number): Promise<number | null> {
  const server = createServer();
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (!bound) return null;
  const chosen = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return chosen;
}

/**
 * Waits for a process to answer its readiness URL, and fails fast (with what the process printed)
 * if it exits first or takes longer than `timeoutMs`.
 */
export async function waitUntilReady(
  what: string,
  child: ChildProcess,
  url: string,
  {
    headers = {},
    output = () => '',
    timeoutMs = 20_000,
  }: { headers?: Record<string, string>; output?: () => string; timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${what} exited with ${child.exitCode ?? child.signalCode}:\n${output()}`);
    try {
      if ((await fetch(url, { headers, signal: AbortSignal.timeout(2000) })).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s:\n${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL once `graceMs` has passed; resolves when the process is gone. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  const gone = exited(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, graceMs);
  });
  await Promise.race([gone, killed]);
  clearTimeout(timer);
  await gone;
}
