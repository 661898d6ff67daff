/**
 * The procedure's metric names (docs/PROCEDURE.md §4), exactly: http_requests_total, http_request_duration_seconds,
 * tak_output_latency_seconds, geolocation_validation_success_rate; plus process metrics. App,
 * version, slot and namespace are labels on every series, so an SLO query can select the new slot
 * even where no Kubernetes relabelling adds them.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { AccuracyFlag } from './accuracy.js';
import type { Config } from './config.js';

/** How many recent detections the geolocation success rate is computed over. */
export const SUCCESS_RATE_WINDOW = 100;
/**
 * Fewer detections than this and the rate stays NaN (no data): a share of a handful, such as a
 * smoke suite's own probes, is noise that would fail or pass a gate by chance.
 */
export const SUCCESS_RATE_MIN_SAMPLES = 20;

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route' | 'status'>;
  readonly takLatency: Histogram;
  private readonly successRate: Gauge;
  private readonly recentFlags: boolean[] = [];
  private recentGreen = 0;

  constructor(config: Pick<Config, 'APP_NAME' | 'APP_VERSION' | 'SLOT' | 'NAMESPACE'> & Partial<Pick<Config, 'RUN'>>) {
    this.registry.setDefaultLabels({
      app: config.APP_NAME,
      version: config.APP_VERSION,
      slot: config.SLOT,
      namespace: config.NAMESPACE,
      // The run's series apart from an earlier run's of the same version and slot.
      ...(config.RUN ? { run: config.RUN } : {}),
    });
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route and status code',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time to answer HTTP requests',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.takLatency = new Histogram({
      name: 'tak_output_latency_seconds',
      help: 'Time from accepting a detection to handing its CoT event to the TAK server (queue time included)',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [this.registry],
    });
    this.successRate = new Gauge({
      name: 'geolocation_validation_success_rate',
      help: `Share of the last ${SUCCESS_RATE_WINDOW} detections whose geolocation graded GREEN (NaN before ${SUCCESS_RATE_MIN_SAMPLES})`,
      registers: [this.registry],
    });
    this.successRate.set(Number.NaN);
  }

  /** Records one graded detection in the success-rate window. */
  recordFlag(flag: AccuracyFlag): void {
    const green = flag === AccuracyFlag.Green;
    this.recentFlags.push(green);
    if (green) this.recentGreen++;
    if (this.recentFlags.length > SUCCESS_RATE_WINDOW && this.recentFlags.shift()) this.recentGreen--;
    this.successRate.set(
      this.recentFlags.length < SUCCESS_RATE_MIN_SAMPLES ? Number.NaN : this.recentGreen / this.recentFlags.length,
    );
  }
}
