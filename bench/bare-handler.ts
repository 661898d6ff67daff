/**
 * The floor for bench:service: a bare Fastify handler for POST /api/detections that parses the
 * body and answers the same shape, with no validation, storage, TAK delivery or metrics.
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/api/detections', async (_request, reply) =>
  reply.code(201).send({
    detection_id: randomUUID(),
    accuracy_flag: 'GREEN',
    status: 'SYNCED',
    received_at: new Date().toISOString(),
  }),
);
app.get('/ready', async () => ({ status: 'ready' }));
await app.listen({ port: Number(process.env['PORT'] ?? 8001), host: '127.0.0.1' });
