/**
 * Waits for a process the tests started to answer its readiness URL, and fails fast (with what
 * the process printed) if it exits first or takes longer than 20 s.
 */
import type { ChildProcess } from 'node:child_process';

export async function waitUntilReady(
  what: string,
  child: ChildProcess,
  url: string,
  { headers = {}, output = () => '' }: { headers?: Record<string, string>; output?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(url, { headers })).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${what} did not become ready within 20 s:\n${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
