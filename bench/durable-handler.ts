/**
 * The second floor for bench:service: the bare handler plus what the detection API's contract
 * makes every request wait for, done by the service's own modules: the SQLite commit (offline
 * queue, WAL, checkpoints in their thread) and the hand-over of a CoT event to TAK. No validation,
 * grading, metrics or hooks. Between this and the bare handler lies the price of the contract;
 * between this and the service, the price of everything else.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { AccuracyFlag } from '../examples/detection-api/src/accuracy.js';
import { OfflineQueue } from '../examples/detection-api/src/offline-queue.js';
import { TakLink } from '../examples/detection-api/src/tak-link.js';
import { TakOutput } from '../examples/detection-api/src/tak-output.js';

const queue = new OfflineQueue(join(mkdtempSync(join(tmpdir(), 'durable-handler-')), 'queue.sqlite'));
const link = new TakLink('127.0.0.1', Number(process.env['TAK_PORT']));
const output = new TakOutput(queue, link, {
  syncTimeoutMs: 250,
  heldInMemory: 10_000,
  addedLatencyMs: 0,
  onDelivered: () => undefined,
});
link.start();

const app = Fastify({ logger: false });
app.post('/api/detections', async (request, reply) => {
  const id = randomUUID();
  const receivedAt = Date.now();
  const status = await output.submit(
    id,
    AccuracyFlag.Green,
    `<event uid="${id}">${JSON.stringify(request.body)}</event>`,
    receivedAt,
  );
  return reply.code(201).send({
    detection_id: id,
    accuracy_flag: AccuracyFlag.Green,
    status,
    received_at: new Date(receivedAt).toISOString(),
  });
});
app.get('/ready', async (_request, reply) =>
  link.connected ? { status: 'ready' } : reply.code(503).send({ status: 'starting' }),
);
await app.listen({ port: Number(process.env['PORT'] ?? 8002), host: '127.0.0.1' });
