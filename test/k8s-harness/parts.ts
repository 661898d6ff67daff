/**
 * The processes a harness starts (the control plane's parts, the real node's), each logging to
 * `logs/NAME.log`, and the wait that notices one of them has died.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopProcess } from '../../src/processes/processes.js';

export class Parts {
  private readonly parts: { name: string; child: ChildProcess }[] = [];

  constructor(private readonly logs: string) {
    mkdirSync(logs, { recursive: true });
  }

  launch(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const out = createWriteStream(join(this.logs, `${name}.log`));
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    this.parts.push({ name, child });
    return child;
  }

  /** Throws when a part has exited, with the tail of its log. */
  alive(): void {
    for (const { name, child } of this.parts) {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${this.logTail(name)}`);
    }
  }

  /** Stops the part named (by PID) and forgets it; none of that name is fine. */
  async stop(name: string): Promise<void> {
    const part = this.parts.find((p) => p.name === name);
    if (!part) return;
    this.parts.splice(this.parts.indexOf(part), 1);
    await stopProcess(part.child, 10_000);
  }

  /** Sends `signal` to the part named (SIGSTOP and SIGCONT pause and resume it). */
  signal(name: string, signal: NodeJS.Signals): void {
    const part = this.parts.find((p) => p.name === name);
    if (!part) throw new Error(`no part named ${name}`);
    part.child.kill(signal);
  }

  /** Stops every part, the last launched first. */
  async stopAll(): Promise<void> {
    for (const { name } of [...this.parts].reverse()) await this.stop(name);
  }

  private logTail(name: string): string {
    try {
      return readFileSync(join(this.logs, `${name}.log`), 'utf8').slice(-3000);
    } catch {
      return '';
    }
  }
}

/** Polls `predicate` until it holds, calling `check` first each time (it throws when a part died). */
export async function until(predicate: () => Promise<boolean>, what: string, timeoutMs: number, check: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    check();
    try {
      if (await predicate()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs / 1000} s${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
