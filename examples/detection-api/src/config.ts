/**
 * The detection API's configuration, from the environment, validated: a bad variable stops the
 * service at start with its name and rule, rather than misbehaving later.
 */
import { hostname } from 'node:os';
import { z } from 'zod';

const ratio = z.coerce.number().min(0).max(1);
const nonNegative = z.coerce.number().min(0);

export const ConfigSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** Reported as labels on every metric, so SLO queries can select a slot without relabelling. */
  APP_NAME: z.string().min(1).default('detection-api'),
  APP_VERSION: z.string().min(1).default('dev'),
  SLOT: z.string().default(''),
  /** The deployment run that rolled out this pod (its `bluegreen.dev/run` label); '' for none. */
  RUN: z.string().default(''),
  NAMESPACE: z.string().default('default'),
  /**
   * Named in every answer's `x-served-by`, so that a client can tell which replica answered it: the
   * host name by default, which in a Kubernetes pod is the pod's name.
   */
  POD_NAME: z.string().min(1).default(hostname()),
  /** The TAK server's CoT TCP input, host:port. */
  TAK_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:[0-9]{1,5}$/, 'TAK_ADDRESS must be host:port')
    .default('127.0.0.1:8087'),
  /** The durable offline queue (SQLite). */
  QUEUE_PATH: z.string().min(1).default('./detection-queue.sqlite'),
  /** NORMAL survives a killed process; FULL also survives power loss, at a disk flush per detection. */
  QUEUE_SYNCHRONOUS: z.enum(['NORMAL', 'FULL']).default('NORMAL'),
  /**
   * How many undelivered detections are held in memory, oldest first; the rest wait in the queue's
   * file and are read in pages as delivery catches up, so a TAK outage fills the disk, not the memory.
   */
  QUEUE_HELD_IN_MEMORY: z.coerce.number().int().min(1).default(10_000),
  /** /health turns 503 when the oldest undelivered detection is older than this. */
  QUEUE_MAX_AGE_SECONDS: nonNegative.default(300),
  /** How long a request waits for TAK delivery before answering PENDING_SYNC. */
  TAK_SYNC_TIMEOUT_MS: nonNegative.default(250),
  /**
   * After SIGTERM, how long the service keeps answering (503, closing each connection) before it
   * stops listening, so that kept-alive clients let go rather than write into a closing socket.
   */
  SHUTDOWN_DRAIN_MS: nonNegative.default(500),
  /**
   * Answers on one kept-alive connection before the service closes it (0: no limit). Behind a
   * Kubernetes Service a connection stays with the pod kube-proxy chose for it, so after the
   * Service's selector moves, a client that keeps its connections alive goes on reaching the old
   * slot until they close: a limit makes it reconnect, and its new connections reach the new slot.
   */
  MAX_REQUESTS_PER_CONNECTION: nonNegative.default(0),
  /** Seconds after SIGTERM before the process exits, whatever is still running. */
  SHUTDOWN_GRACE_SECONDS: nonNegative.default(30),
  /** Fault injection, off by default: a share of 5xx answers on the API. */
  FAULT_ERROR_RATE: ratio.default(0),
  /** Fault injection: latency added to every API answer. */
  FAULT_LATENCY_MS: nonNegative.default(0),
  /** Fault injection: latency added before each TAK delivery. */
  FAULT_TAK_LATENCY_MS: nonNegative.default(0),
  /**
   * Fault injection: the API faults above (error rate, latency) begin this many seconds after
   * start, as a regression that shows only under sustained traffic: it passes a smoke test, then
   * breaches an SLO while monitored.
   */
  FAULT_AFTER_SECONDS: nonNegative.default(0),
  /** Fault injection: the process exits with an error this many seconds after start. */
  FAULT_CRASH_AFTER_SECONDS: nonNegative.optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.output<typeof ConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const result = ConfigSchema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `  - ${i.path.join('.')}: ${i.message}`);
  throw new Error(`invalid configuration:\n${lines.join('\n')}`);
}
