/**
 * One replica of a local Deployment: a child process on a port of its own, probed for readiness
 * like a kubelet would (its readiness path, one probe at a time, each with a second's timeout:
 * every 250 ms until it is ready, as a startup probe, then every `readinessPeriodSeconds`; unready
 * after three failures in a row, Kubernetes' default failureThreshold, and ready again on one
 * success), restarted with backoff when it dies and counted as a restart, and stopped with SIGTERM,
 * then SIGKILL after the grace period. A pod stopped or exited leaves its Service at once.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stopProcess } from '../processes/processes.js';

export interface PodSpec {
  name: string;
  namespace: string;
  deployment: string;
  labels: Record<string, string>;
  image: string;
  command: string[];
  env: Record<string, string>;
  cwd: string;
  dataDir: string;
  port: number;
  readinessPath: string;
  /** The ready pod's probe period (a kubelet's periodSeconds). */
  readinessPeriodSeconds: number;
  terminationGracePeriodSeconds: number;
}

export const PodPhase = {
  Pending: 'Pending',
  Running: 'Running',
  Terminating: 'Terminating',
  Terminated: 'Terminated',
} as const;
export type PodPhase = (typeof PodPhase)[keyof typeof PodPhase];

/** What the control API reports of a pod. */
export interface PodStatus {
  name: string;
  image: string;
  labels: Record<string, string>;
  port: number;
  pid: number | null;
  phase: PodPhase;
  ready: boolean;
  restarts: number;
}

/** A pod not ready yet is probed this often (a ready one once a period): it joins its Service at once. */
const STARTUP_PROBE_INTERVAL_MS = 250;
/**
 * Probes failed in a row before a ready pod leaves its Service's endpoints (Kubernetes' default).
 * One slow answer is not an outage: on a loaded node a probe's 1 s timeout passes now and then, and
 * a pod dropped on it leaves the Service with no endpoint (503) when its peer is as slow. With the
 * ready pod's period, it takes seconds of silence (15 s at 5 s), as on a node, not one stall of
 * this process: probed every 250 ms, both pods of a slot left at once after a 4 s stall of a loaded
 * machine, and the router answered 503 (CI, twice).
 */
const FAILURE_THRESHOLD = 3;
const MAX_BACKOFF_MS = 5_000;
/** Lines each container instance keeps for `logs` (a kubelet keeps files; the evidence reads the tail). */
const LOG_RING_LINES = 1000;

/** Something that happened to a pod, as Kubernetes events say it. */
export interface PodEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** The last lines a process wrote (stdout and stderr interleaved, as a container log). */
class LogRing {
  private readonly lines: string[] = [];
  private partial = '';

  write(chunk: Buffer): void {
    const parts = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = parts.pop()!;
    this.lines.push(...parts);
    if (this.lines.length > LOG_RING_LINES) this.lines.splice(0, this.lines.length - LOG_RING_LINES);
  }

  tail(lines: number): string[] {
    return [...this.lines, ...(this.partial ? [this.partial] : [])].slice(-lines);
  }
}

export class Pod {
  phase: PodPhase = PodPhase.Pending;
  ready = false;
  restarts = 0;
  private child: ChildProcess | null = null;
  private probe: NodeJS.Timeout | null = null;
  /** When the last probe started (performance.now()): a ready pod is probed once a period. */
  private lastProbe = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private terminated: Promise<void> | null = null;
  /** Readiness probes failed since the last that passed. */
  private failedProbes = 0;
  /** The running container's log, and the one before it (after a restart), as `kubectl logs --previous`. */
  private log = new LogRing();
  private previousLog: LogRing | null = null;

  constructor(
    readonly spec: PodSpec,
    private readonly onChange: () => void,
    private readonly record: (event: PodEvent) => void = () => undefined,
  ) {}

  start(): void {
    mkdirSync(this.spec.dataDir, { recursive: true });
    const file = createWriteStream(join(this.spec.dataDir, 'output.log'), { flags: 'a' });
    const child = spawn(this.spec.command[0]!, this.spec.command.slice(1), {
      cwd: this.spec.cwd,
      env: { ...process.env, ...this.spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = this.log;
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on('data', (chunk: Buffer) => {
        log.write(chunk);
        file.write(chunk);
      });
    }
    child.once('close', () => file.end());
    this.child = child;
    this.phase = PodPhase.Running;
    this.failedProbes = 0;
    this.record({
      type: 'Normal',
      reason: 'Started',
      message:
        `Started container ${this.spec.deployment} ` +
        `(${this.spec.image})${this.restarts > 0 ? `, restart ${this.restarts}` : ''}`,
    });
    child.once('error', () => undefined); // a command that cannot start exits with a code too
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    if (!this.probe) this.probeAfterInterval();
    this.onChange();
  }

  /** The last `lines` lines of the container's log, and of its previous instance if it restarted. */
  logs(lines: number): { log: string[]; previous: string[] | null } {
    return { log: this.log.tail(lines), previous: this.previousLog?.tail(lines) ?? null };
  }

  status(): PodStatus {
    const { name, image, labels, port } = this.spec;
    return {
      name,
      image,
      labels,
      port,
      pid: this.child?.pid ?? null,
      phase: this.phase,
      ready: this.ready,
      restarts: this.restarts,
    };
  }

  /** SIGTERM, SIGKILL after the grace period; resolves when the process is gone. Idempotent. */
  terminate(): Promise<void> {
    this.terminated ??= this.stop();
    return this.terminated;
  }

  private async stop(): Promise<void> {
    this.phase = PodPhase.Terminating;
    this.record({ type: 'Normal', reason: 'Killing', message: `Stopping container ${this.spec.deployment}` });
    this.setReady(false);
    if (this.probe) clearTimeout(this.probe);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.onChange();
    if (this.child) await stopProcess(this.child, this.spec.terminationGracePeriodSeconds * 1000);
    this.phase = PodPhase.Terminated;
    this.onChange();
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.phase === PodPhase.Terminating || this.phase === PodPhase.Terminated || child !== this.child) return;
    // The container died on its own: count it, and start it again after a growing backoff.
    this.restarts += 1;
    this.setReady(false);
    this.phase = PodPhase.Pending;
    this.previousLog = this.log;
    this.log = new LogRing();
    this.onChange();
    const backoff = Math.min(MAX_BACKOFF_MS, 250 * 2 ** (this.restarts - 1));
    this.record({
      type: 'Warning',
      reason: 'BackOff',
      message:
        `Container ${this.spec.deployment} exited (${signal ?? `code ${code}`}); back-off ` +
        `${backoff} ms restarting it`,
    });
    this.restartTimer = setTimeout(() => {
      if (this.phase === PodPhase.Pending) this.start();
    }, backoff);
  }

  /**
   * Every 250 ms, a probe if one is due: always while the pod is not ready (a restarted container
   * too), once a period while it is. As a kubelet, one probe at a time.
   */
  private probeAfterInterval(): void {
    this.probe = setTimeout(() => {
      const due = !this.ready || performance.now() - this.lastProbe >= this.spec.readinessPeriodSeconds * 1000;
      void (due ? this.probeReadiness() : Promise.resolve()).then(() => {
        if (this.phase !== PodPhase.Terminating && this.phase !== PodPhase.Terminated) this.probeAfterInterval();
      });
    }, STARTUP_PROBE_INTERVAL_MS);
  }

  private async probeReadiness(): Promise<void> {
    if (this.phase !== PodPhase.Running || !this.child) return;
    this.lastProbe = performance.now();
    const child = this.child;
    let ready: boolean;
    try {
      const response = await fetch(`http://127.0.0.1:${this.spec.port}${this.spec.readinessPath}`, {
        signal: AbortSignal.timeout(1000),
      });
      ready = response.ok;
      await response.body?.cancel();
    } catch {
      ready = false;
    }
    if (this.phase !== PodPhase.Running || this.child !== child) return;
    this.failedProbes = ready ? 0 : this.failedProbes + 1;
    if (ready || this.failedProbes >= FAILURE_THRESHOLD) this.setReady(ready);
  }

  private setReady(ready: boolean): void {
    if (this.ready === ready) return;
    this.ready = ready;
    if (this.phase === PodPhase.Running) {
      this.record(
        ready
          ? { type: 'Normal', reason: 'Ready', message: `Readiness probe ${this.spec.readinessPath} succeeded` }
          : { type: 'Warning', reason: 'Unhealthy', message: `Readiness probe ${this.spec.readinessPath} failed` },
      );
    }
    this.onChange();
  }
}
