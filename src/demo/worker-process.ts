/**
 * The worker as its own process, as the stack, the benchmarks and the drills start it: ready once
 * its metrics answer and its log says it polls; stopped gracefully, or SIGKILLed as a crashed node
 * would take it (its activities in flight are then retried elsewhere, once their timeouts pass).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { exited, stopProcess, waitUntilReady } from '../processes/processes.js';
import { nodeEntry, ROOT } from './simulator-process.js';

export interface WorkerProcessOptions {
  /** Node's arguments (default: src/worker/main.ts through tsx). */
  command?: string[] | undefined;
  /** The worker's environment, over this process's. */
  env: Record<string, string>;
  /** The port of BLUEGREEN_METRICS_ADDRESS (on 127.0.0.1), which says the runtime is up. */
  metricsPort: number;
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  /** What it printed so far. */
  output(): string;
  /** SIGKILL: it dies mid-activity; resolves once it is gone. */
  kill(): Promise<void>;
  /** SIGTERM (the worker drains), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a worker process; resolves when it polls its task queue. */
export async function startWorkerProcess({ command, env, metricsPort }: WorkerProcessOptions): Promise<WorkerProcess> {
  let output = '';
  const child = spawn(process.execPath, command ?? nodeEntry('src/worker/main.ts'), {
    cwd: ROOT,
    env: { ...process.env, ...env, BLUEGREEN_METRICS_ADDRESS: `127.0.0.1:${metricsPort}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const worker: WorkerProcess = {
    child,
    output: () => output,
    kill: async () => {
      const gone = exited(child);
      child.kill('SIGKILL');
      await gone;
    },
    stop: (graceMs = 15_000) => stopProcess(child, graceMs),
  };
  try {
    await waitUntilReady('worker', child, `http://127.0.0.1:${metricsPort}/metrics`, {
      output: () => output,
      timeoutMs: 60_000,
    });
    // The metrics endpoint comes up with the runtime; the worker polls once its log says so.
    const deadline = Date.now() + 60_000;
    while (!output.includes('worker started')) {
      if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`worker did not start within 60 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await worker.kill();
    throw error;
  }
  return worker;
}
