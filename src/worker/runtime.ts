/**
 * The Temporal runtime of a worker process: its logs go through pino as structured JSON, and its
 * metrics (the SDK's own, plus the deployments' counters and phase durations that the workflow
 * records through its replay-safe meter) are served for Prometheus at `metricsAddress`/metrics.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';

export interface RuntimeOptions {
  /** host:port for the Prometheus exporter; none when undefined. */
  metricsAddress?: string;
  logger?: Logger;
  logLevel?: LogLevel;
}

export function installRuntime({ metricsAddress, logger, logLevel = 'INFO' }: RuntimeOptions): void {
  Runtime.install({
    logger: new DefaultLogger(logLevel, (entry) => {
      if (!logger) return;
      const level =
        entry.level === 'TRACE'
          ? 'trace'
          : entry.level === 'DEBUG'
            ? 'debug'
            : entry.level === 'WARN'
              ? 'warn'
              : entry.level === 'ERROR'
                ? 'error'
                : 'info';
      logger[level]({ ...entry.meta }, entry.message);
    }),
    telemetryOptions: metricsAddress ? { metrics: { prometheus: { bindAddress: metricsAddress } } } : {},
  });
}
