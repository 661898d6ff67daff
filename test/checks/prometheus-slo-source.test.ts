/**
 * The SLO source against a real Prometheus scraping the real reference service every second, with
 * real traffic: healthy traffic is Successful, injected 5xx fails the error ratio, injected latency
 * fails p95, no traffic is Inconclusive, and Prometheus stopped or wrong is Error.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../../src/processes/processes.js';
import { PrometheusSloSource } from '../../src/checks/prometheus-slo-source.js';
import { PrometheusConfigSchema } from '../../src/config/worker-settings.js';
import { parseEnv } from '../../src/config/env.js';
import type { Measurement } from '../../src/shared/analysis.js';
import type { Slo } from '../../src/deployment-spec/deployment-spec.js';
import { DETECTION_API_SLOS, REFERENCE_TARGET } from '../helpers/deployment-harness.js';
import { eventually } from '../helpers/eventually.js';
import type { DetectionApiProcess } from '../helpers/detection-api-process.js';
import {
  postDetection,
  SEED_DETECTION,
  startDetectionApi,
  TakListener,
  tempQueuePath,
} from '../helpers/detection-api-process.js';
import { startPrometheus } from '../helpers/prometheus.js';
import type { PrometheusServer } from '../helpers/prometheus.js';

function source(url: string): PrometheusSloSource {
  return new PrometheusSloSource(
    parseEnv(PrometheusConfigSchema, { PROMETHEUS_URL: url, PROMETHEUS_TIMEOUT_MS: '2000' }),
  );
}

async function evaluate(
  url: string,
  slos: Slo[] = DETECTION_API_SLOS,
  run?: string,
): Promise<Record<string, Measurement>> {
  const measurements = await source(url).evaluateSlos({
    target: REFERENCE_TARGET,
    slot: 'green',
    version: 'v2.2.0',
    run,
    window: '5s',
    slos,
  });
  return Object.fromEntries(measurements.map((m) => [m.name, m]));
}

/** Sends detections from `clients` concurrent clients until `stop()`. */
function drive(url: string, clients = 4): { stop: () => Promise<void> } {
  let running = true;
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      await postDetection(url, SEED_DETECTION).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** A green-slot service with `env`, scraped by a fresh Prometheus, torn down after `body`. */
async function withScrapedService(
  env: Record<string, string>,
  body: (service: DetectionApiProcess, prometheus: PrometheusServer) => Promise<void>,
) {
  const tak = await TakListener.start();
  const service = await startDetectionApi({
    TAK_ADDRESS: `127.0.0.1:${tak.port}`,
    QUEUE_PATH: tempQueuePath(),
    SLOT: 'green',
    APP_VERSION: 'v2.2.0',
    ...env,
  });
  const prometheus = await startPrometheus([service.url.replace('http://', '')]);
  try {
    await body(service, prometheus);
  } finally {
    await prometheus.stop();
    service.kill('SIGKILL');
    await service.exited;
    await tak.close();
  }
}

/** Drives traffic until Prometheus has rates for it, then measures. */
async function measureUnderTraffic(
  service: DetectionApiProcess,
  prometheus: PrometheusServer,
  clients = 4,
  run?: string,
): Promise<Record<string, Measurement>> {
  const traffic = drive(service.url, clients);
  try {
    let latest: Record<string, Measurement> = {};
    await eventually(async () => {
      latest = await evaluate(prometheus.url, DETECTION_API_SLOS, run);
      return latest['error-rate']?.value !== null && latest['p95-latency']?.value !== null;
    }, 'Prometheus has rates for the traffic');
    await new Promise((resolve) => setTimeout(resolve, 2000)); // a few more scrapes of steady traffic
    return await evaluate(prometheus.url, DETECTION_API_SLOS, run);
  } finally {
    await traffic.stop();
  }
}

describe('Prometheus SLO source against a real Prometheus', () => {
  it('measures healthy traffic as Successful on every gated SLO, scoped to the slot and version', async () => {
    await withScrapedService({}, async (service, prometheus) => {
      const m = await measureUnderTraffic(service, prometheus);
      for (const name of ['error-rate', 'p95-latency', 'tak-output-latency', 'geolocation-accuracy']) {
        assert.equal(m[name]?.result, 'Successful', `${name}: ${JSON.stringify(m[name])}`);
      }
      assert.equal(m['error-rate']?.value, 0);
      assert.equal(m['geolocation-accuracy']?.value, 1);
      assert.ok((m['p95-latency']?.value ?? 1) < 0.5);
      assert.equal(m['cpu-per-pod']?.gate, false, 'CPU is reported as a warning, not a gate');
      assert.notEqual(m['memory-per-pod']?.value, null);
      // The same queries for the other slot find nothing: they are scoped to the slot.
      const blue = await source(prometheus.url).evaluateSlos({
        target: REFERENCE_TARGET,
        slot: 'blue',
        version: 'v2.2.0',
        window: '5s',
        slos: DETECTION_API_SLOS.slice(0, 1),
      });
      assert.equal(blue[0]?.result, 'Inconclusive');
      // And to the version: another version's series in the same slot are not this deployment's.
      const other = await source(prometheus.url).evaluateSlos({
        target: REFERENCE_TARGET,
        slot: 'green',
        version: 'v2.1.0',
        window: '5s',
        slos: DETECTION_API_SLOS.slice(0, 1),
      });
      assert.equal(other[0]?.result, 'Inconclusive');
    });
  });

  it('fails the error ratio when the version answers 5xx, and judges only the run whose pods answered', async () => {
    await withScrapedService({ FAULT_ERROR_RATE: '0.5', RUN: 'run-a' }, async (service, prometheus) => {
      const m = await measureUnderTraffic(service, prometheus, 4, 'run-a');
      assert.equal(m['error-rate']?.result, 'Failed', JSON.stringify(m['error-rate']));
      assert.ok(
        (m['error-rate']?.value ?? 0) > 0.2 && (m['error-rate']?.value ?? 1) < 0.8,
        `about half: ${m['error-rate']?.value}`,
      );
      // Another run of the same version in the same slot (a redeploy under the same tag) does not
      // see them, nor does a run whose pods carry no run label.
      for (const run of ['run-b', '']) {
        const [other] = await source(prometheus.url).evaluateSlos({
          target: REFERENCE_TARGET,
          slot: 'green',
          version: 'v2.2.0',
          run,
          window: '5s',
          slos: DETECTION_API_SLOS.slice(0, 1),
        });
        assert.equal(other?.result, 'Inconclusive', `run '${run}': ${JSON.stringify(other)}`);
      }
    });
  });

  it('fails p95 latency when the version is slow', async () => {
    await withScrapedService({ FAULT_LATENCY_MS: '600' }, async (service, prometheus) => {
      const m = await measureUnderTraffic(service, prometheus, 8);
      assert.equal(m['p95-latency']?.result, 'Failed', JSON.stringify(m['p95-latency']));
      assert.ok((m['p95-latency']?.value ?? 0) > 0.5);
      assert.equal(m['error-rate']?.result, 'Successful');
    });
  });

  it('reports no traffic as Inconclusive, never as success', async () => {
    await withScrapedService({}, async (_service, prometheus) => {
      await eventually(async () => {
        const up = await (await fetch(`${prometheus.url}/api/v1/query?query=up`)).json();
        return (up as { data: { result: unknown[] } }).data.result.length > 0;
      }, 'the first scrape');
      const m = await evaluate(prometheus.url);
      assert.equal(m['error-rate']?.result, 'Inconclusive');
      assert.equal(m['geolocation-accuracy']?.result, 'Inconclusive');
      assert.match(m['geolocation-accuracy']?.message ?? '', /no data|NaN/);
    });
  });

  it('reports Error when Prometheus is stopped, is not Prometheus, or rejects the query', async () => {
    await withScrapedService({}, async (service, prometheus) => {
      const bad: Slo = {
        name: 'bad',
        query: 'sum(rate(http_requests_total[',
        comparison: '<',
        threshold: 1,
        gate: true,
      };
      const rejected = await evaluate(prometheus.url, [bad]);
      assert.equal(rejected['bad']?.result, 'Error');
      assert.match(rejected['bad']?.message ?? '', /query rejected \(bad_data\)/);

      const wrong = await evaluate(service.url, DETECTION_API_SLOS.slice(0, 1));
      assert.equal(wrong['error-rate']?.result, 'Error');
      assert.match(wrong['error-rate']?.message ?? '', /Prometheus answered HTTP 404/);

      await prometheus.stop();
      const stopped = await evaluate(prometheus.url);
      // Refused, or reset when a kept-alive connection to the stopped server is reused.
      for (const m of Object.values(stopped)) {
        assert.equal(m.result, 'Error');
        assert.match(m.message ?? '', /Prometheus unreachable at http:\/\/127\.0\.0\.1:\d+: (ECONNREFUSED|ECONNRESET)/);
      }
    });
  });

  it('authenticates with the worker-configured credentials, and reports a refusal as Error', async () => {
    const tak = await TakListener.start();
    const service = await startDetectionApi({
      TAK_ADDRESS: `127.0.0.1:${tak.port}`,
      QUEUE_PATH: tempQueuePath(),
      SLOT: 'green',
    });
    const prometheus = await startPrometheus([service.url.replace('http://', '')], {
      username: 'bluegreen',
      password: 's3cret-for-tests',
    });
    try {
      const query = {
        target: REFERENCE_TARGET,
        slot: 'green' as const,
        version: 'dev',
        window: '5s',
        slos: DETECTION_API_SLOS.slice(3, 4),
      };
      const refused = await new PrometheusSloSource(
        parseEnv(PrometheusConfigSchema, { PROMETHEUS_URL: prometheus.url }),
      ).evaluateSlos(query);
      assert.equal(refused[0]?.result, 'Error');
      assert.equal(refused[0]?.message, 'Prometheus answered HTTP 401');
      const authenticated = new PrometheusSloSource(
        parseEnv(PrometheusConfigSchema, {
          PROMETHEUS_URL: prometheus.url,
          PROMETHEUS_USERNAME: 'bluegreen',
          PROMETHEUS_PASSWORD: 's3cret-for-tests',
        }),
      );
      // The success rate needs 20 detections before it reads as data.
      for (let i = 0; i < 20; i++) await postDetection(service.url, SEED_DETECTION);
      await eventually(
        async () => (await authenticated.evaluateSlos(query))[0]?.result === 'Successful',
        'an authenticated measurement',
      );
    } finally {
      await prometheus.stop();
      service.kill('SIGKILL');
      await service.exited;
      await tak.close();
    }
  });

  it("reads the scrape interval Prometheus reports for the slot's targets, and says why when it cannot", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scrape-targets-'));
    const file = join(dir, 'targets.json');
    // Two replicas of the two slots, as the local platform (and a pod-role relabelling) label them.
    const [green, blue] = [await freePort(), await freePort()];
    writeFileSync(
      file,
      JSON.stringify([
        {
          targets: [`127.0.0.1:${green}`],
          labels: { namespace: 'default', deployment: 'detection-api-green', pod: 'detection-api-green-0' },
        },
        {
          targets: [`127.0.0.1:${blue}`],
          labels: { namespace: 'default', deployment: 'detection-api-blue', pod: 'detection-api-blue-0' },
        },
      ]),
    );
    const prometheus = await startPrometheus({ file }, undefined, 15);
    try {
      let report = await source(prometheus.url).readScrapeInterval({ target: REFERENCE_TARGET, slot: 'green' });
      await eventually(
        async () =>
          (report = await source(prometheus.url).readScrapeInterval({ target: REFERENCE_TARGET, slot: 'green' }))
            .seconds !== null,
        'the targets are discovered',
      );
      assert.deepEqual(report, { seconds: 15, source: '1 target(s) of detection-api-green' });
    } finally {
      await prometheus.stop();
    }
    const gone = await source(prometheus.url).readScrapeInterval({ target: REFERENCE_TARGET, slot: 'green' });
    assert.equal(gone.seconds, null);
    assert.match(gone.source, /Prometheus unreachable at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED|ECONNRESET/);
  });

  it('names each malformed Prometheus variable', () => {
    assert.throws(
      () => new PrometheusSloSource(parseEnv(PrometheusConfigSchema, { PROMETHEUS_URL: 'prometheus:9090' })),
      /PROMETHEUS_URL: PROMETHEUS_URL must be an http\(s\) URL/,
    );
    assert.throws(
      () =>
        new PrometheusSloSource(
          parseEnv(PrometheusConfigSchema, { PROMETHEUS_URL: 'http://prometheus:9090', PROMETHEUS_USERNAME: 'u' }),
        ),
      /PROMETHEUS_PASSWORD: basic auth needs both PROMETHEUS_USERNAME and PROMETHEUS_PASSWORD/,
    );
  });
});
