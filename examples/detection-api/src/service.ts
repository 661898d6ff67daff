/**
 * The detection API: takes detections from drones and sensors, grades their geolocation, stores
 * them durably and forwards them to TAK as CoT events. The contract the procedure's smoke tests and SLO
 * queries check: /health, /ready, POST /api/detections, GET /api/detections/:id, /metrics.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController } from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { gradeAccuracy } from './accuracy.js';
import type { Config } from './config.js';
import { toCotEvent } from './cot.js';
import { ServiceMetrics } from './metrics.js';
import { OfflineQueue } from './offline-queue.js';
import { TakLink } from './tak-link.js';
import { TakOutput } from './tak-output.js';

export const DetectionSchema = z.object({
  source: z.string().min(1, 'source must not be empty').max(128),
  latitude: z
    .number({ required_error: 'latitude is required' })
    .min(-90, 'latitude must be within -90..90')
    .max(90, 'latitude must be within -90..90'),
  longitude: z
    .number({ required_error: 'longitude is required' })
    .min(-180, 'longitude must be within -180..180')
    .max(180, 'longitude must be within -180..180'),
  accuracy_meters: z
    .number({ required_error: 'accuracy_meters is required' })
    .positive('accuracy_meters must be greater than 0')
    .finite(),
  confidence: z
    .number({ required_error: 'confidence is required' })
    .min(0, 'confidence must be within 0..1')
    .max(1, 'confidence must be within 0..1'),
  class: z.string().min(1).max(64).optional(),
  timestamp: z.string().datetime({ offset: true, message: 'timestamp must be an ISO 8601 date-time' }).optional(),
});

export interface DetectionService {
  app: FastifyInstance;
  metrics: ServiceMetrics;
  /** Starts the TAK link and listens; /ready answers 200 from then on. */
  start(): Promise<string>;
  /** Drains: 503 on health and ready at once, every answer closes its connection, in-flight requests finish, then closes. */
  shutdown(): Promise<void>;
}

const API = /^\/api\//;

export function createDetectionService(config: Config): DetectionService {
  const queue = new OfflineQueue(config.QUEUE_PATH, config.QUEUE_SYNCHRONOUS);
  const [takHost, takPort] = config.TAK_ADDRESS.split(':') as [string, string];
  const link = new TakLink(takHost, Number(takPort));
  const metrics = new ServiceMetrics(config);
  const output = new TakOutput(queue, link, {
    syncTimeoutMs: config.TAK_SYNC_TIMEOUT_MS,
    heldInMemory: config.QUEUE_HELD_IN_MEMORY,
    addedLatencyMs: config.FAULT_TAK_LATENCY_MS,
    onDelivered: (detection, syncedAt) => metrics.takLatency.observe((syncedAt - detection.receivedAt) / 1000),
  });
  let ready = false;
  let draining = false;

  // Requests are counted and timed in the metrics; a log line per request would only cost
  // throughput, so Fastify's own request logs are off. Errors are still logged.
  const app = Fastify({
    logger: { level: config.LOG_LEVEL },
    logController: new LogController({ disableRequestLogging: true }),
    // A request that reaches a draining replica came on a connection its client kept alive (new
    // connections went elsewhere when the endpoint was removed, before SIGTERM): it is answered,
    // not refused, and its connection closed after the answer (onSend below).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    ...(config.MAX_REQUESTS_PER_CONNECTION > 0 ? { maxRequestsPerSocket: config.MAX_REQUESTS_PER_CONNECTION } : {}),
  });

  if (config.FAULT_LATENCY_MS > 0 || config.FAULT_ERROR_RATE > 0) {
    const faultsFrom = performance.now() + config.FAULT_AFTER_SECONDS * 1000;
    app.addHook('onRequest', async (request, reply) => {
      if (performance.now() < faultsFrom) return;
      if (config.FAULT_LATENCY_MS > 0 && request.url !== '/metrics') {
        await new Promise((resolve) => setTimeout(resolve, config.FAULT_LATENCY_MS));
      }
      if (config.FAULT_ERROR_RATE > 0 && API.test(request.url) && Math.random() < config.FAULT_ERROR_RATE) {
        // Logged as a real failing service logs its 500s: what a rollback's evidence picks up.
        request.log.error(
          { url: request.url, fault: 'FAULT_ERROR_RATE' },
          'request failed: injected fault, answering 500',
        );
        return reply.code(500).send({ error: 'injected fault (FAULT_ERROR_RATE)' });
      }
    });
  }

  // Each answer names the replica and the version that gave it (x-served-by, x-app-version), so
  // that traffic through any router can be attributed. While draining, every answer closes its
  // connection, so kept-alive clients let go (their next request opens a connection to a replica
  // that serves) and the server can close once the requests in flight are answered. The hooks on
  // every request take a callback rather than return a promise: on this path each promise is
  // measurable (bench:service).
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('x-served-by', config.POD_NAME).header('x-app-version', config.APP_VERSION);
    if (draining) reply.header('connection', 'close');
    done(null, payload);
  });

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    // Scrapes are not traffic: counting them would make a slot nobody uses look busy and healthy.
    if (route !== '/metrics') {
      const labels = { method: request.method, route, status: String(reply.statusCode) };
      metrics.requests.inc(labels);
      metrics.duration.observe(labels, reply.elapsedTime / 1000);
    }
    done();
  });

  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) app.log.error(error);
    return reply.code(status).send({ error: status === 500 ? 'internal error' : error.message, fields: [] });
  });

  // Liveness: the process answers. Never a dependency's state: a restart does not bring TAK back,
  // and every replica, started together, would restart together (the deep check is /health).
  app.get('/live', async () => ({ status: 'alive' }));

  app.get('/health', async (_request, reply) => {
    if (draining) return reply.code(503).send({ status: 'shutting_down' });
    const { depth, held, oldestReceivedAt } = output.backlog();
    const oldestAgeSeconds = oldestReceivedAt === null ? 0 : (Date.now() - oldestReceivedAt) / 1000;
    const details = { tak: link.connected ? 'connected' : 'disconnected', queue: { depth, held, oldestAgeSeconds } };
    if (oldestAgeSeconds > config.QUEUE_MAX_AGE_SECONDS) {
      return reply.code(503).send({
        status: 'unhealthy',
        reason: `offline queue: the oldest undelivered detection waits ${oldestAgeSeconds.toFixed(0)} s (limit ${config.QUEUE_MAX_AGE_SECONDS} s)`,
        ...details,
      });
    }
    return { status: 'healthy', ...details };
  });

  app.get('/ready', async (_request, reply) => {
    if (draining) return reply.code(503).send({ status: 'draining' });
    if (!ready) return reply.code(503).send({ status: 'starting' });
    return { status: 'ready', version: config.APP_VERSION, slot: config.SLOT };
  });

  app.post('/api/detections', async (request: FastifyRequest, reply: FastifyReply) => {
    const parsed = DetectionSchema.safeParse(request.body);
    if (!parsed.success) {
      return reply.code(422).send({
        error: 'invalid detection',
        fields: parsed.error.issues.map((issue) => ({
          field: issue.path.join('.') || '(body)',
          message: issue.message,
        })),
      });
    }
    const detection = parsed.data;
    const id = randomUUID();
    const receivedAt = Date.now();
    const flag = gradeAccuracy(detection.accuracy_meters, detection.confidence);
    const cot = toCotEvent({
      id,
      source: detection.source,
      latitude: detection.latitude,
      longitude: detection.longitude,
      accuracyMeters: detection.accuracy_meters,
      confidence: detection.confidence,
      detectionClass: detection.class ?? null,
      flag,
      time: detection.timestamp ? new Date(detection.timestamp) : new Date(receivedAt),
    });
    const status = await output.submit(id, flag, cot, receivedAt);
    // A deployment's smoke probes (one deliberately YELLOW) say nothing of the sensors' data
    // quality the success rate measures; they are stored and delivered like any other.
    if (!isSyntheticProbe(request.headers['user-agent'])) metrics.recordFlag(flag);
    return reply
      .code(201)
      .header('location', `/api/detections/${id}`)
      .send({ detection_id: id, accuracy_flag: flag, status, received_at: new Date(receivedAt).toISOString() });
  });

  app.get('/api/detections/:id', async (request: FastifyRequest<{ Params: { id: string } }>, reply) => {
    const stored = queue.get(request.params.id);
    if (!stored) return reply.code(404).send({ error: `no detection ${request.params.id}` });
    return {
      detection_id: stored.id,
      accuracy_flag: stored.flag,
      status: stored.status,
      received_at: new Date(stored.receivedAt).toISOString(),
      synced_at: stored.syncedAt === null ? null : new Date(stored.syncedAt).toISOString(),
    };
  });

  app.get('/metrics', async (_request, reply) => {
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  return {
    app,
    metrics,
    async start() {
      link.start();
      const address = await app.listen({ port: config.PORT, host: config.HOST });
      ready = true;
      // Anything left undelivered by an earlier run goes out first, in order, once TAK answers.
      void output.kick();
      return address;
    },
    async shutdown() {
      draining = true;
      await new Promise((resolve) => setTimeout(resolve, config.SHUTDOWN_DRAIN_MS));
      await app.close();
      await Promise.race([output.kick(), new Promise((resolve) => setTimeout(resolve, 2000))]);
      link.stop();
      await queue.close();
    },
  };
}

/** Requests from the orchestrator's smoke suite (its user agent), as opposed to sensors. */
export function isSyntheticProbe(userAgent: string | undefined): boolean {
  return userAgent?.startsWith('bluegreen-smoke') ?? false;
}
