/**
 * Verification by traffic (src/activities/traffic-probe.ts): a full route counts as done only once
 * requests through the entry point are answered by the slot's pods, in a row, each on a new
 * connection. The entry point here is a double of a data plane that applies a change late (as
 * kube-proxy's rules lag an EndpointSlice under load): its lag is the fault the double stands for.
 * The real data planes are tested in test/e2e/dataplane.e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { probeUntilServedBy } from '../../src/activities/traffic-probe.js';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import { ErrorType } from '../../src/shared/errors.js';
import { targetOf } from '../../src/shared/target.js';
import { freePort } from '../../src/processes/processes.js';

/**
 * An entry point double whose backend moves from `before` to `after` pods over `lagMs`, answered
 * at random between them meanwhile (a data plane half through its change), naming its pod in
 * x-served-by. It counts the connections it accepted.
 */
async function laggingEntryPointDouble(before: string[], after: string[], lagMs: number) {
  const startedAt = Date.now();
  let connections = 0;
  const server: Server = createServer((req, res) => {
    const elapsed = Date.now() - startedAt;
    const pods = elapsed < lagMs / 2 ? before : elapsed < lagMs && Math.random() < 0.5 ? before : after;
    res.writeHead(200, { 'x-served-by': pods[Math.floor(Math.random() * pods.length)]! }).end('{"status":"ready"}');
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ready`,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const progress = () => {
  const beats: unknown[] = [];
  return { beats, heartbeat: (details?: unknown) => void beats.push(details), signal: new AbortController().signal };
};

const BLUE = ['detection-api-blue-5f7c9-abcde', 'detection-api-blue-5f7c9-fghij'];
const GREEN = ['detection-api-green-7d8e1-klmno', 'detection-api-green-7d8e1-pqrst'];

describe('verification by traffic', () => {
  const servers: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const server of servers) await server.close();
  });

  it('waits until the entry point has applied the change: answers in a row from the slot, each on its own connection', async () => {
    const entry = await laggingEntryPointDouble(BLUE, GREEN, 1_500);
    servers.push(entry);
    const beat = progress();
    const report = await probeUntilServedBy(
      { url: entry.url, servedByHeader: 'x-served-by', inARow: 20 },
      'detection-api-green',
      30,
      beat,
    );
    assert.ok(report.seconds >= 1.4, `verified after ${report.seconds} s, before the entry point moved`);
    assert.ok(report.requests >= 20);
    assert.equal(entry.connections(), report.requests, 'one connection per request');
    assert.ok(beat.beats.length > 0, 'heartbeated while it waited');
  });

  it("fails naming who answered when the slot's pods never do", async () => {
    const entry = await laggingEntryPointDouble(BLUE, BLUE, 0);
    servers.push(entry);
    const error = await probeUntilServedBy(
      { url: entry.url, servedByHeader: 'x-served-by', inARow: 5 },
      'detection-api-green',
      1,
      progress(),
    ).catch((e: unknown) => e);
    assert.ok(error instanceof ApplicationFailure, String(error));
    assert.equal(error.type, ErrorType.TrafficNotVerified);
    assert.match(
      error.message,
      /^traffic through http:\/\/127\.0\.0\.1:\d+\/ready not answered by detection-api-green 5 times in a row after 1 s \(\d+ requests; the last answered by detection-api-blue-5f7c9-\w+, /,
    );
  });

  it('counts a refused connection as an answer not from the slot', async () => {
    const port = await freePort();
    const error = await probeUntilServedBy(
      { url: `http://127.0.0.1:${port}/ready`, servedByHeader: 'x-served-by', inARow: 1 },
      'detection-api-green',
      1,
      progress(),
    ).catch((e: unknown) => e);
    assert.ok(error instanceof ApplicationFailure, String(error));
    assert.match(error.message, /the last answered by ECONNREFUSED, ECONNREFUSED/);
  });

  it('takes its URL from the spec, rendered for the target; a URL that is not HTTP is refused naming the field', () => {
    const spec = {
      app: 'detection-api',
      namespace: 'detection',
      image: 'registry.internal/detection-api:v2.2.0',
    };
    const target = targetOf(
      parseDeploymentSpec({ ...spec, traffic: { probe: { url: 'http://{{service}}.{{namespace}}.svc:8000/ready' } } }),
    );
    assert.deepEqual(target.traffic?.probe, {
      url: 'http://detection-api-service.detection.svc:8000/ready',
      servedByHeader: 'x-served-by',
      inARow: 20,
    });
    assert.equal(targetOf(parseDeploymentSpec(spec)).traffic?.probe, undefined);
    assert.throws(
      () => parseDeploymentSpec({ ...spec, traffic: { probe: { url: 'detection-api-service:8000' } } }),
      /traffic\.probe\.url: probe\.url must be an http:\/\/ or https:\/\/ URL/,
    );
  });
});
