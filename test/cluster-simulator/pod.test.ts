/**
 * A local pod's readiness as a kubelet judges it, against real processes: a tiny HTTP server whose
 * /ready fails a given number of times in a row, counted by the probes it answers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Pod } from '../../src/cluster-simulator/pod.js';
import type { PodEvent } from '../../src/cluster-simulator/pod.js';
import { freePort } from '../../src/processes/processes.js';
import { eventually } from '../helpers/eventually.js';

/**
 * A server that answers /ready 200, except `failures` 503s in a row after the `after`-th probe;
 * /probes says how many it has answered.
 */
const FLAKY_READY = `
const [port, after, failures] = process.argv.slice(1).map(Number);
let probes = 0;
require('node:http').createServer((req, res) => {
  if (req.url !== '/ready') return res.end(String(probes));
  probes += 1;
  res.writeHead(probes > after && probes <= after + failures ? 503 : 200).end();
}).listen(port, '127.0.0.1');
`;

/** A pod of the flaky server, probed every `periodSeconds` once ready; `probes()` asks the server how many it answered. */
async function flakyPod(after: number, failures: number, periodSeconds: number) {
  const port = await freePort();
  const events: PodEvent[] = [];
  const pod = new Pod(
    {
      name: 'flaky-1',
      namespace: 'default',
      deployment: 'flaky',
      labels: {},
      image: 'flaky:1',
      command: [process.execPath, '-e', FLAKY_READY, String(port), String(after), String(failures)],
      env: {},
      cwd: process.cwd(),
      dataDir: mkdtempSync(join(tmpdir(), 'pod-')),
      port,
      readinessPath: '/ready',
      readinessPeriodSeconds: periodSeconds,
      terminationGracePeriodSeconds: 1,
    },
    () => undefined,
    (event) => events.push(event),
  );
  pod.start();
  const probes = async () =>
    Number(
      await fetch(`http://127.0.0.1:${port}/probes`).then(
        (r) => r.text(),
        () => '0',
      ),
    );
  return { pod, events, probes };
}

/** The events of a pod of the flaky server (probed every 250 ms), until four probes have passed after its failures. */
async function podThrough(after: number, failures: number): Promise<PodEvent[]> {
  const { pod, events, probes } = await flakyPod(after, failures, 0.25);
  try {
    // Probes pass `after` times, fail `failures` times, then pass: a few more past that.
    await eventually(async () => (await probes()) > after + failures + 4, 'the probes past the failures', 20_000);
    return events;
  } finally {
    await pod.terminate();
  }
}

const readiness = (events: PodEvent[]) =>
  events.filter((e) => ['Ready', 'Unhealthy'].includes(e.reason)).map((e) => e.reason);

describe('a local pod readiness probe', () => {
  it('keeps a ready pod in its endpoints through two failed probes in a row', async () => {
    assert.deepEqual(readiness(await podThrough(3, 2)), ['Ready']);
  });

  it('takes a pod out after three failed probes in a row, and back in on the next that passes', async () => {
    assert.deepEqual(readiness(await podThrough(3, 3)), ['Ready', 'Unhealthy', 'Ready']);
  });

  it('probes a pod every 250 ms until it is ready, then every readinessPeriodSeconds', async () => {
    const { pod, events, probes } = await flakyPod(0, 0, 1);
    try {
      await eventually(async () => readiness(events).includes('Ready'), 'the pod ready', 10_000);
      const before = await probes();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const during = (await probes()) - before;
      assert.ok(during >= 2 && during <= 4, `${during} probes in 3 s at a 1 s period (at 250 ms: about 12)`);
    } finally {
      await pod.terminate();
    }
  });
});
