/**
 * A steady stream of detections through a router, at a fixed rate, that keeps the score a user of
 * the service would: answers by status, connection-level failures (no HTTP answer at all) apart
 * from the service's own 5xx, which slot served, and the latency of every answer.
 */
import { Agent, request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface TrafficScore {
  sent: number;
  /** 2xx answers. */
  ok: number;
  /** 5xx answers: the service (or the router finding no endpoint) answered with an error. */
  serverErrors: number;
  /** Other non-2xx answers. */
  otherAnswers: number;
  /** No HTTP answer at all: refused, reset, timed out. The zero-downtime target is none. */
  connectionFailures: number;
  /**
   * Requests sent again because the router had closed the idle kept-alive connection they went out
   * on, before reading them (the keep-alive race every HTTP client meets; see `attempt`).
   */
  resentAfterIdleClose: number;
  /** Answers per Deployment that served them (from the router's x-served-by). */
  servedBy: Record<string, number>;
  /** 5xx answers per Deployment that gave them. */
  serverErrorsBy: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  seconds: number;
  /** The first few connection failures, for a report a person can act on. */
  failureSamples: string[];
  /** The first few 5xx answers: status, who answered, the start of the body, when. */
  serverErrorSamples: string[];
  /**
   * The longest this generator's own process was held from running, in ms: a request's 10 s
   * timeout is this process's timer, so a stall here times out answers that had come.
   */
  generatorStallMs: number;
}

/** Failures and 5xx answers kept as samples, each kind. */
const SAMPLES = 5;

const DETECTION = JSON.stringify({
  source: 'demo-uav',
  latitude: 34.0522,
  longitude: -118.2437,
  accuracy_meters: 12,
  confidence: 0.93,
});

export class TrafficGenerator {
  private running = false;
  private loop: Promise<void> | null = null;
  private inFlight = new Set<Promise<void>>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly latencies: number[] = [];
  private startedAt = 0;
  private stoppedAt = 0;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 20 });
  private readonly report: Omit<TrafficScore, 'p50Ms' | 'p99Ms' | 'seconds' | 'generatorStallMs'> = {
    sent: 0,
    ok: 0,
    serverErrors: 0,
    otherAnswers: 0,
    connectionFailures: 0,
    resentAfterIdleClose: 0,
    servedBy: {},
    serverErrorsBy: {},
    failureSamples: [],
    serverErrorSamples: [],
  };

  /** `rate` requests per second to `url` + /api/detections, at most `maxInFlight` at once. */
  constructor(
    private readonly url: string,
    private readonly rate = 50,
    private readonly maxInFlight = 64,
  ) {}

  start(): void {
    this.running = true;
    this.startedAt = performance.now();
    this.loopDelay.enable();
    this.loop = this.run();
  }

  /** Stops sending, waits for the answers in flight, and returns the score. */
  async stop(): Promise<TrafficScore> {
    this.running = false;
    await this.loop;
    await Promise.all(this.inFlight);
    this.stoppedAt = performance.now();
    this.loopDelay.disable();
    this.agent.destroy();
    return this.snapshot();
  }

  snapshot(): TrafficScore {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    const end = this.stoppedAt || performance.now();
    return {
      ...this.report,
      servedBy: { ...this.report.servedBy },
      serverErrorsBy: { ...this.report.serverErrorsBy },
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      seconds: (end - this.startedAt) / 1000,
      generatorStallMs: Math.round(this.loopDelay.max / 1e6),
    };
  }

  private async run(): Promise<void> {
    const { url } = this;
    const target = new URL('/api/detections', url);
    while (this.running) {
      const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.rate);
      while (this.report.sent < due && this.inFlight.size < this.maxInFlight && this.running) {
        const call = this.send(target).finally(() => this.inFlight.delete(call));
        this.inFlight.add(call);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  private send(target: URL): Promise<void> {
    this.report.sent += 1;
    const started = performance.now();
    return new Promise((resolve) => this.attempt(target, started, resolve, false));
  }

  /**
   * One try of a request. A kept-alive connection the router closed as idle (its keep-alive
   * timeout) can be picked for a request at the moment it closes: the request then fails with
   * ECONNRESET on a reused socket, never read by the router. As browsers and Node's documentation
   * do, such a request is sent once more, on a new connection, and counted apart; any other failure
   * is the router's and counts against zero downtime.
   */
  private attempt(target: URL, started: number, done: () => void, again: boolean): void {
    const call = request(
      target,
      {
        method: 'POST',
        // Sent again, on a connection of its own: the pool may hold other sockets closed as idle.
        agent: again ? false : this.agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(DETECTION) },
        timeout: 10_000,
      },
      (answer) => {
        const status = answer.statusCode ?? 0;
        // Only a 5xx that will be kept as a sample is read; every other body is discarded.
        const sampled = status >= 500 && this.report.serverErrorSamples.length < SAMPLES;
        let body = '';
        if (sampled) answer.on('data', (chunk: Buffer) => (body = (body + chunk.toString()).slice(0, 200)));
        else answer.resume();
        answer.once('end', () => {
          this.latencies.push(performance.now() - started);
          const pod = answer.headers['x-served-by'];
          if (status >= 200 && status < 300) this.report.ok += 1;
          else if (status >= 500) this.serverError(status, pod, body);
          else this.report.otherAnswers += 1;
          if (typeof pod === 'string') {
            const deployment = pod.replace(/-[0-9]+$/, '');
            this.report.servedBy[deployment] = (this.report.servedBy[deployment] ?? 0) + 1;
            if (status >= 500)
              this.report.serverErrorsBy[deployment] = (this.report.serverErrorsBy[deployment] ?? 0) + 1;
          }
          done();
        });
        answer.once('error', (error) => this.fail(error, done));
      },
    );
    call.once('timeout', () => call.destroy(new Error('no answer within 10 s')));
    call.once('error', (error: NodeJS.ErrnoException) => {
      if (!again && call.reusedSocket && error.code === 'ECONNRESET') {
        this.report.resentAfterIdleClose += 1;
        return this.attempt(target, started, done, true);
      }
      this.fail(error, done, call.reusedSocket);
    });
    call.end(DETECTION);
  }

  /** A 5xx answer, the first few kept with when it came, who gave it and what it said. */
  private serverError(status: number, pod: string | string[] | undefined, body: string): void {
    this.report.serverErrors += 1;
    if (this.report.serverErrorSamples.length < SAMPLES) {
      this.report.serverErrorSamples.push(
        `${status} from ${pod ?? 'the router'}: ${body.trim()} (${this.secondsIn()} s in)`,
      );
    }
  }

  /** A connection-level failure, the first few kept with when it came and on what connection. */
  private fail(error: Error, done: () => void, reused?: boolean): void {
    this.report.connectionFailures += 1;
    if (this.report.failureSamples.length < SAMPLES) {
      const connection = reused === undefined ? '' : reused ? ', on a kept-alive connection' : ', on a new connection';
      const what = `${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`.trim();
      this.report.failureSamples.push(`${what} (${this.secondsIn()} s in${connection})`);
    }
    done();
  }

  /** Seconds since the traffic started, as the samples say it. */
  private secondsIn(): string {
    return ((performance.now() - this.startedAt) / 1000).toFixed(1);
  }
}
