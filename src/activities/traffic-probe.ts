/**
 * Verification by traffic: once a router's object reads back all traffic on one slot, requests
 * sent where clients enter (`traffic.probe.url`) must be answered by that slot's pods, `inARow`
 * times in a row, each on a new connection (kube-proxy and most proxies choose a backend per
 * connection). Reading the object back says what the data plane was told; this says what it does:
 * kube-proxy may write its rules seconds after the EndpointSlices move, a proxy may reload later.
 * A slot's pods are known by the header the service names its pod in (their names begin with the
 * slot Deployment's name, as the pods of a Deployment's ReplicaSets do).
 */
import { ApplicationFailure } from '@temporalio/activity';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorType } from '../shared/errors.js';
import type { TargetProbe } from '../shared/target.js';
import type { Progress } from './contract.js';

/** Between two requests of the probe; each waits at most REQUEST_TIMEOUT_MS for its answer. */
const PAUSE_MS = 20;
const REQUEST_TIMEOUT_MS = 2_000;

/** What one request found: the pod its answer named, or why there was none. */
type Answer = { pod: string } | { failed: string };

function ask(probe: TargetProbe): Promise<Answer> {
  const url = new URL(probe.url);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = send(
      url,
      { method: 'GET', agent: false, timeout: REQUEST_TIMEOUT_MS, headers: probe.host ? { host: probe.host } : {} },
      (response) => {
        response.resume();
        const named = response.headers[probe.servedByHeader.toLowerCase()];
        const pod = Array.isArray(named) ? named[0] : named;
        resolve(pod ? { pod } : { failed: `HTTP ${response.statusCode} without ${probe.servedByHeader}` });
      },
    );
    req.once('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.once('error', (error: NodeJS.ErrnoException) => resolve({ failed: error.code ?? error.message }));
    req.end();
  });
}

export interface ProbeReport {
  /** Requests sent until `inARow` answers in a row came from the slot's pods. */
  requests: number;
  seconds: number;
}

/**
 * Sends requests through `probe` until `inARow` in a row are answered by pods of `deployment`.
 * Past `timeoutSeconds`, fails as TrafficNotVerified naming who answered the last requests.
 */
export async function probeUntilServedBy(
  probe: TargetProbe,
  deployment: string,
  timeoutSeconds: number,
  progress: Progress,
): Promise<ProbeReport> {
  const started = performance.now();
  const prefix = `${deployment}-`;
  const recent: string[] = [];
  let inARow = 0;
  for (let requests = 1; ; requests++) {
    const answer = await ask(probe);
    const by = 'pod' in answer ? answer.pod : answer.failed;
    inARow = 'pod' in answer && answer.pod.startsWith(prefix) ? inARow + 1 : 0;
    recent.push(by);
    if (recent.length > 5) recent.shift();
    if (inARow >= probe.inARow) return { requests, seconds: (performance.now() - started) / 1000 };
    progress.heartbeat({ probe: probe.url, requests, inARow, last: by });
    if (performance.now() - started > timeoutSeconds * 1000) {
      throw ApplicationFailure.create({
        type: ErrorType.TrafficNotVerified,
        message:
          `traffic through ${probe.url} not answered by ${deployment} ${probe.inARow} times in a row ` +
          `after ${timeoutSeconds} s (${requests} requests; the last answered by ${recent.join(', ')})`,
        nonRetryable: true,
      });
    }
    await sleep(PAUSE_MS, undefined, { signal: progress.signal });
  }
}
