/**
 * The reference detection API, tested as the real process it is: its HTTP contract, the CoT events
 * a real TCP listener receives, the durable offline queue across SIGKILL, graceful shutdown under
 * load, the metrics exposition, and fault injection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DetectionApiProcess } from '../helpers/detection-api-process.js';
import {
  postDetection,
  SEED_DETECTION,
  startDetectionApi,
  TakListener,
  tempQueuePath,
} from '../helpers/detection-api-process.js';
import { sample } from '../helpers/prometheus-text.js';

describe('detection API: HTTP contract', () => {
  let tak: TakListener;
  let api: DetectionApiProcess;

  before(async () => {
    tak = await TakListener.start();
    api = await startDetectionApi({
      TAK_ADDRESS: `127.0.0.1:${tak.port}`,
      QUEUE_PATH: tempQueuePath(),
      APP_VERSION: 'v2.2.0',
      SLOT: 'green',
      POD_NAME: 'detection-api-green-7d4f9-x2x7q',
    });
  });

  after(async () => {
    api?.kill('SIGKILL');
    await api?.exited;
    await tak?.close();
  });

  it('answers /health with the TAK link and queue state, and /ready with version and slot', async () => {
    const health = await fetch(`${api.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), {
      status: 'healthy',
      tak: 'connected',
      queue: { depth: 0, held: 0, oldestAgeSeconds: 0 },
    });
    const ready = await fetch(`${api.url}/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', version: 'v2.2.0', slot: 'green' });
  });

  it('names the replica and the version that answered, on every answer: an error too', async () => {
    for (const response of [await fetch(`${api.url}/ready`), await fetch(`${api.url}/api/detections/not-an-id`)]) {
      assert.deepEqual(
        [response.headers.get('x-served-by'), response.headers.get('x-app-version')],
        ['detection-api-green-7d4f9-x2x7q', 'v2.2.0'],
        `${response.url} answered ${response.status}`,
      );
    }
  });

  it('accepts the seed smoke test detection: an id, a GREEN flag, SYNCED to TAK', async () => {
    const { status, body } = await postDetection(api.url, SEED_DETECTION);
    assert.equal(status, 201);
    assert.match(String(body['detection_id']), /^[0-9a-f-]{36}$/);
    assert.equal(body['accuracy_flag'], 'GREEN');
    assert.equal(body['status'], 'SYNCED');
    const stored = await fetch(`${api.url}/api/detections/${body['detection_id']}`);
    assert.equal(stored.status, 200);
    const json = (await stored.json()) as Record<string, unknown>;
    assert.equal(json['status'], 'SYNCED');
    assert.equal(json['accuracy_flag'], 'GREEN');
    assert.ok(json['synced_at']);
  });

  it('grades accuracy by the documented rules, at their boundaries', async () => {
    const cases: [number, number, string][] = [
      [50, 0.8, 'GREEN'],
      [50.01, 0.8, 'YELLOW'],
      [50, 0.79, 'YELLOW'],
      [200, 0.5, 'YELLOW'],
      [200.01, 0.9, 'RED'],
      [10, 0.49, 'RED'],
      [100, 0.85, 'YELLOW'],
    ];
    for (const [accuracy, confidence, flag] of cases) {
      const { status, body } = await postDetection(api.url, {
        ...SEED_DETECTION,
        accuracy_meters: accuracy,
        confidence,
      });
      assert.equal(status, 201);
      assert.equal(body['accuracy_flag'], flag, `accuracy ${accuracy} m, confidence ${confidence}`);
    }
  });

  it('accepts the edges of every range', async () => {
    for (const edge of [
      { latitude: 90, longitude: 180 },
      { latitude: -90, longitude: -180 },
      { confidence: 0 },
      { confidence: 1 },
      { accuracy_meters: 0.001 },
      { class: 'vehicle', timestamp: '2026-11-26T10:00:00Z' },
    ]) {
      const { status } = await postDetection(api.url, { ...SEED_DETECTION, ...edge });
      assert.equal(status, 201, JSON.stringify(edge));
    }
  });

  it('rejects each bad field with 422, naming it', async () => {
    const { status, body } = await postDetection(api.url, {
      source: '',
      latitude: 90.0001,
      longitude: -180.5,
      accuracy_meters: 0,
      confidence: 1.01,
      timestamp: 'yesterday',
    });
    assert.equal(status, 422);
    assert.deepEqual(
      (body['fields'] as { field: string; message: string }[]).map((f) => f.field),
      ['source', 'latitude', 'longitude', 'accuracy_meters', 'confidence', 'timestamp'],
    );
    const missing = await postDetection(api.url, { source: 'x' });
    assert.equal(missing.status, 422);
    assert.deepEqual(
      (missing.body['fields'] as { field: string; message: string }[]).map((f) => `${f.field}: ${f.message}`),
      [
        'latitude: latitude is required',
        'longitude: longitude is required',
        'accuracy_meters: accuracy_meters is required',
        'confidence: confidence is required',
      ],
    );
    const notJson = await postDetection(api.url, '{"source":');
    assert.equal(notJson.status, 400);
    assert.match(String(notJson.body['error']), /not valid JSON/);
  });

  it('answers 404 for an unknown detection id', async () => {
    const response = await fetch(`${api.url}/api/detections/00000000-0000-0000-0000-000000000000`);
    assert.equal(response.status, 404);
  });

  it('sends each detection to TAK as a valid CoT event', async () => {
    const before = tak.events.length;
    const sent = Date.now();
    const { body } = await postDetection(api.url, {
      ...SEED_DETECTION,
      latitude: 40.7128,
      longitude: -74.006,
      accuracy_meters: 100,
      confidence: 0.85,
      class: 'truck',
    });
    const events = await tak.waitForEvents(before + 1);
    const event = events.find((e) => e.uid === body['detection_id']);
    assert.ok(event, 'the event carries the detection id as its uid');
    assert.equal(event.type, 'a-u-G');
    assert.equal(event.how, 'm-p');
    assert.deepEqual([event.point.lat, event.point.lon, event.point.ce], [40.7128, -74.006, 100]);
    const time = Date.parse(event.time);
    assert.ok(Math.abs(time - sent) < 5000, `event time ${event.time} is the receive time`);
    assert.equal(Date.parse(event.stale) - time, 5 * 60 * 1000);
    assert.match(event.remarks, /source=test-uav confidence=0\.85 accuracy_flag=YELLOW class=truck/);
  });
});

describe('detection API: TAK down', () => {
  it('queues detections durably, survives SIGKILL, and delivers them in order once TAK returns, 3 held in memory at a time', async () => {
    const tak = await TakListener.start();
    await tak.close(); // the port is known, nothing listens: TAK is down
    const queuePath = tempQueuePath();
    // 3 in memory: the first process holds 3 of its 20 and counts the rest in the file; the
    // second reads them from the file 3 at a time as delivery goes.
    const env = { TAK_ADDRESS: `127.0.0.1:${tak.port}`, QUEUE_PATH: queuePath, QUEUE_HELD_IN_MEMORY: '3' };
    const first = await startDetectionApi(env);
    const ids: string[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const { status, body } = await postDetection(first.url, { ...SEED_DETECTION, source: `uav-${i}` });
        assert.equal(status, 201);
        assert.equal(body['status'], 'PENDING_SYNC');
        ids.push(String(body['detection_id']));
      }
      const health = (await (await fetch(`${first.url}/health`)).json()) as {
        tak: string;
        queue: { depth: number; held: number };
      };
      assert.deepEqual([health.tak, health.queue.depth, health.queue.held], ['disconnected', 20, 3]);
    } finally {
      first.kill('SIGKILL');
      await first.exited;
    }

    const second = await startDetectionApi(env);
    try {
      assert.equal(
        ((await (await fetch(`${second.url}/api/detections/${ids[7]}`)).json()) as { status: string }).status,
        'PENDING_SYNC',
      );
      // Five more, while its 3 held are the oldest: they wait in the file behind the rest.
      for (let i = 20; i < 25; i++) {
        const { body } = await postDetection(second.url, { ...SEED_DETECTION, source: `uav-${i}` });
        ids.push(String(body['detection_id']));
      }
      const health = (await (await fetch(`${second.url}/health`)).json()) as { queue: { depth: number; held: number } };
      assert.deepEqual([health.queue.depth, health.queue.held], [25, 3]);
      await tak.listen(); // TAK is back
      const events = await tak.waitForEvents(25);
      await new Promise((resolve) => setTimeout(resolve, 500)); // nothing more may arrive
      assert.deepEqual(
        tak.events.map((e) => e.uid),
        ids,
        'every accepted detection, once, in the order accepted',
      );
      assert.deepEqual(
        events.map((e) => e.remarks.split(' ')[0]),
        ids.map((_, i) => `source=uav-${i}`),
      );
      const stored = (await (await fetch(`${second.url}/api/detections/${ids[24]}`)).json()) as { status: string };
      assert.equal(stored.status, 'SYNCED');
    } finally {
      second.kill('SIGKILL');
      await second.exited;
      await tak.close();
    }
  });

  it('turns /health 503 with the reason when the oldest queued detection is too old, while /live, the liveness probe, stays 200', async () => {
    const api = await startDetectionApi({
      TAK_ADDRESS: '127.0.0.1:1',
      QUEUE_PATH: tempQueuePath(),
      QUEUE_MAX_AGE_SECONDS: '1',
    });
    try {
      await postDetection(api.url, SEED_DETECTION);
      await new Promise((resolve) => setTimeout(resolve, 1300));
      const health = await fetch(`${api.url}/health`);
      assert.equal(health.status, 503);
      const body = (await health.json()) as { status: string; reason: string };
      assert.equal(body.status, 'unhealthy');
      assert.match(body.reason, /oldest undelivered detection waits \d+ s \(limit 1 s\)/);
      // A restart would not bring TAK back: the process answers, so it lives.
      const live = await fetch(`${api.url}/live`);
      assert.deepEqual([live.status, await live.json()], [200, { status: 'alive' }]);
    } finally {
      api.kill('SIGKILL');
      await api.exited;
    }
  });
});

describe('detection API: graceful shutdown', () => {
  it('answers the requests that come after SIGTERM on kept-alive connections, closing each, then refuses connections, and keeps every accepted detection', async () => {
    const tak = await TakListener.start();
    const queuePath = tempQueuePath();
    const env = { TAK_ADDRESS: `127.0.0.1:${tak.port}`, QUEUE_PATH: queuePath, FAULT_LATENCY_MS: '40' };
    const api = await startDetectionApi(env);
    const accepted: string[] = [];
    const refused: string[] = [];
    const unanswered: string[] = [];
    const failures: string[] = [];
    /** After SIGTERM: each answer's status and whether it closed its connection. */
    const draining: { status: number; close: boolean }[] = [];
    let signalled = false;
    let stop = false;
    // A steady stream from 8 clients on kept-alive connections (undici's), before and after
    // SIGTERM, until the service is gone.
    const clients = Array.from({ length: 8 }, async (_, client) => {
      for (let i = 0; !stop && i < 500; i++) {
        try {
          const response = await fetch(`${api.url}/api/detections`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ...SEED_DETECTION, source: `c${client}-${i}` }),
          });
          const body = (await response.json()) as Record<string, unknown>;
          if (signalled)
            draining.push({ status: response.status, close: response.headers.get('connection') === 'close' });
          if (response.status === 201) accepted.push(String(body['detection_id']));
          else failures.push(`HTTP ${response.status}`);
        } catch (error) {
          const code = (error as { cause?: { code?: string } }).cause?.code ?? String(error);
          if (code === 'ECONNREFUSED') {
            refused.push(code);
            return;
          }
          // The connection closed without an answer; whether the request was accepted anyway is
          // checked below against what reached TAK.
          if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') unanswered.push(code);
          else failures.push(code);
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const acceptedBeforeSigterm = accepted.length;
    signalled = true;
    api.kill('SIGTERM');
    const code = await api.exited;
    stop = true;
    await Promise.all(clients);
    assert.equal(code, 0, api.output());
    // A connection the server accepted just before it stopped listening, but whose request it had
    // not read yet, is closed unanswered; the comparison with TAK below proves no such request was
    // accepted.
    assert.deepEqual(failures, [], 'every request got a 201, a refused connection, or a closed one');
    assert.ok(acceptedBeforeSigterm > 20, `a steady stream was flowing (${acceptedBeforeSigterm} accepted)`);
    // (The first answers read after SIGTERM may have been sent before it, without the close.)
    assert.deepEqual(
      draining.filter((d) => d.status !== 201),
      [],
      'every request that came while draining was answered 201',
    );
    assert.ok(
      draining.filter((d) => d.close).length >= 8,
      `the answers while draining closed their connections (${JSON.stringify(draining)})`,
    );
    assert.ok(refused.length > 0, 'connections were refused once the service stopped listening');

    const restarted = await startDetectionApi(env);
    try {
      for (const id of accepted) {
        const response = await fetch(`${restarted.url}/api/detections/${id}`);
        assert.equal(response.status, 200, `accepted detection ${id} was kept`);
      }
      await tak.waitForEvents(accepted.length);
      await new Promise((resolve) => setTimeout(resolve, 500)); // nothing more may arrive
      // Exactly the answered 201s reached TAK: nothing accepted was lost, and no request that went
      // unanswered had been accepted.
      assert.deepEqual(new Set(tak.events.map((e) => e.uid)), new Set(accepted));
    } finally {
      restarted.kill('SIGKILL');
      await restarted.exited;
      await tak.close();
    }
  });

  it('answers 503 shutting_down on /health while draining, and completes the detection in flight', async () => {
    const api = await startDetectionApi({
      TAK_ADDRESS: '127.0.0.1:1',
      QUEUE_PATH: tempQueuePath(),
      FAULT_LATENCY_MS: '1500',
    });
    try {
      // Requests already in flight (each held 1.5 s by the injected latency) when SIGTERM arrives.
      const inFlight = [fetch(`${api.url}/health`), postDetection(api.url, SEED_DETECTION)];
      await new Promise((resolve) => setTimeout(resolve, 300));
      api.kill('SIGTERM');
      const [health, post] = await Promise.all(inFlight);
      assert.equal((health as Response).status, 503);
      assert.deepEqual(await (health as Response).json(), { status: 'shutting_down' });
      assert.equal((post as { status: number }).status, 201, 'a detection accepted before SIGTERM completes');
      assert.equal(await api.exited, 0);
    } finally {
      api.kill('SIGKILL');
    }
  });
});

describe('detection API: metrics', () => {
  it('counts known traffic under the seed metric names, labelled with app, version and slot', async () => {
    const tak = await TakListener.start();
    const api = await startDetectionApi({
      TAK_ADDRESS: `127.0.0.1:${tak.port}`,
      QUEUE_PATH: tempQueuePath(),
      APP_VERSION: 'v2.3.0',
      SLOT: 'blue',
      NAMESPACE: 'prod',
    });
    try {
      for (const confidence of [0.9, 0.95, 0.99]) await postDetection(api.url, { ...SEED_DETECTION, confidence });
      await postDetection(api.url, { ...SEED_DETECTION, accuracy_meters: 500 });
      await postDetection(api.url, { source: 'x' });
      await postDetection(api.url, { source: 'y' });
      await fetch(`${api.url}/health`);
      const exposition = await (await fetch(`${api.url}/metrics`)).text();
      const labels = 'app="detection-api",version="v2.3.0",slot="blue",namespace="prod"';
      assert.equal(
        sample(exposition, `http_requests_total{method="POST",route="/api/detections",status="201",${labels}}`),
        4,
      );
      assert.equal(
        sample(exposition, `http_requests_total{method="POST",route="/api/detections",status="422",${labels}}`),
        2,
      );
      assert.equal(sample(exposition, `http_requests_total{method="GET",route="/health",status="200",${labels}}`), 1);
      assert.equal(
        sample(
          exposition,
          `http_request_duration_seconds_count{method="POST",route="/api/detections",status="201",${labels}}`,
        ),
        4,
      );
      assert.equal(
        sample(
          exposition,
          `http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/api/detections",status="201",${labels}}`,
        ),
        4,
      );
      assert.equal(sample(exposition, `tak_output_latency_seconds_count{${labels}}`), 4);
      assert.ok(
        Number.isNaN(sample(exposition, `geolocation_validation_success_rate{${labels}}`)),
        'no rate over 4 detections',
      );
      for (let i = 0; i < 16; i++) await postDetection(api.url, SEED_DETECTION);
      const later = await (await fetch(`${api.url}/metrics`)).text();
      assert.equal(sample(later, `geolocation_validation_success_rate{${labels}}`), 19 / 20);
      // A smoke suite's probe is stored and answered, but is not sensor data: the rate ignores it.
      const probe = await fetch(`${api.url}/api/detections`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'bluegreen-smoke' },
        body: JSON.stringify({ ...SEED_DETECTION, accuracy_meters: 500 }),
      });
      assert.equal(probe.status, 201);
      const afterProbe = await (await fetch(`${api.url}/metrics`)).text();
      assert.equal(sample(afterProbe, `geolocation_validation_success_rate{${labels}}`), 19 / 20);
      assert.equal(
        sample(afterProbe, `http_requests_total{method="POST",route="/api/detections",status="201",${labels}}`),
        21,
      );
      assert.ok(
        (sample(exposition, `process_resident_memory_bytes{${labels}}`) ?? 0) > 0,
        'process metrics are exposed',
      );
    } finally {
      api.kill('SIGKILL');
      await api.exited;
      await tak.close();
    }
  });
});

describe('detection API: fault injection', () => {
  it('answers 5xx on the API at FAULT_ERROR_RATE=1 and stores nothing', async () => {
    const api = await startDetectionApi({
      TAK_ADDRESS: '127.0.0.1:1',
      QUEUE_PATH: tempQueuePath(),
      FAULT_ERROR_RATE: '1',
    });
    try {
      const { status } = await postDetection(api.url, SEED_DETECTION);
      assert.equal(status, 500);
      const health = (await (await fetch(`${api.url}/health`)).json()) as { queue: { depth: number } };
      assert.equal(health.queue.depth, 0);
    } finally {
      api.kill('SIGKILL');
      await api.exited;
    }
  });

  it('adds FAULT_LATENCY_MS to every answer', async () => {
    const api = await startDetectionApi({
      TAK_ADDRESS: '127.0.0.1:1',
      QUEUE_PATH: tempQueuePath(),
      FAULT_LATENCY_MS: '300',
    });
    try {
      const started = performance.now();
      await fetch(`${api.url}/health`);
      assert.ok(performance.now() - started >= 300, 'the injected latency is added');
    } finally {
      api.kill('SIGKILL');
      await api.exited;
    }
  });

  it('crashes after FAULT_CRASH_AFTER_SECONDS', async () => {
    const api = await startDetectionApi({
      TAK_ADDRESS: '127.0.0.1:1',
      QUEUE_PATH: tempQueuePath(),
      FAULT_CRASH_AFTER_SECONDS: '2',
    });
    assert.equal(await api.exited, 70);
    assert.match(api.output(), /injected crash/);
  });

  it('refuses to start on a malformed variable, naming it', async () => {
    await assert.rejects(startDetectionApi({ FAULT_ERROR_RATE: '2', TAK_ADDRESS: 'nowhere' }), (error: Error) => {
      assert.match(error.message, /FAULT_ERROR_RATE: Number must be less than or equal to 1/);
      assert.match(error.message, /TAK_ADDRESS: TAK_ADDRESS must be host:port/);
      return true;
    });
  });
});
