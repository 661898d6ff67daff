/**
 * The smoke suite, run against the idle slot before any traffic moves: the procedure's seven checks (PROCEDURE §3) for
 * the reference detection API, or the spec's declarative HTTP checks for any other service. A
 * failed check is a verdict with a message, never an exception: the history shows which check
 * failed and why.
 */
import { lookup } from 'node:dns/promises';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import axios from 'axios';
import type { AxiosResponse } from 'axios';
import type { HttpCheck } from '../deployment-spec/deployment-spec.js';
import { SmokeSuite } from '../deployment-spec/deployment-spec.js';
import { renderTemplate } from '../shared/template.js';
import { CheckVerdict } from '../activities/contract.js';
import type { Progress, SmokeCheckResult, SmokeReport, SmokeRequest, SmokeRunner } from '../activities/contract.js';
import { PlanVerdict } from '../plan/plan.js';
import type { PlanCheck } from '../plan/plan.js';

/** The procedure's smoke detections (its API happy path and offline-queue checks, PROCEDURE §3). */
const HAPPY_PATH_DETECTION = {
  source: 'test-uav',
  latitude: 34.0522,
  longitude: -118.2437,
  accuracy_meters: 50,
  confidence: 0.92,
};
const QUEUE_DETECTION = {
  source: 'test-queue',
  latitude: 40.7128,
  longitude: -74.006,
  accuracy_meters: 100,
  confidence: 0.85,
};

interface Call {
  response: AxiosResponse | null;
  latencyMs: number;
  /** Why there is no response: connection refused, timeout, ... */
  error: string | null;
}

/** Reads a dotted path (`a.b.0.c`) from a JSON value. */
export function readPath(value: unknown, path: string): unknown {
  let node = value;
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/**
 * How long the smoke suite waits for the idle slot's endpoint to accept a connection before its
 * first check. The pods are Ready when the suite starts, but a Service reaches them only once the
 * EndpointSlice controller has listed them and each node's kube-proxy has written its rules (about
 * a second on the real node, more under load): until then a Service without endpoints refuses
 * connections. A version that accepts none within this fails its checks as before.
 */
export const SMOKE_CONNECT_GRACE_SECONDS = 15;

/** The connection errors of an endpoint not yet programmed (or not yet listening). */
const NOT_YET = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH']);

/** One TCP connection to `host:port`: null when it is accepted, else the error's code. */
async function connectOnce(host: string, port: number): Promise<string | null> {
  return await new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** Waits, at most `graceSeconds`, until `endpoint` accepts a TCP connection; the checks report what follows. */
async function untilAccepting(endpoint: string, graceSeconds: number, progress: Progress): Promise<void> {
  const url = new URL(endpoint);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  const deadline = performance.now() + graceSeconds * 1000;
  for (let attempt = 1; ; attempt++) {
    const error = await connectOnce(host, port);
    if (error === null || !NOT_YET.has(error) || performance.now() > deadline) return;
    progress.heartbeat({ waitingFor: endpoint, attempt, error });
    await sleep(250, undefined, { signal: progress.signal });
  }
}

export interface SmokeRunnerOptions {
  /** How long to wait for the endpoint to accept a connection (SMOKE_CONNECT_GRACE_SECONDS). */
  connectGraceSeconds?: number;
  /**
   * Turns the endpoint the spec names into one this worker can reach: the local platform answers
   * for cluster DNS names (`http://app-green.default.svc:8000`) with its slot Service's router.
   */
  resolveEndpoint?: (endpoint: string) => Promise<string> | string;
}

export class HttpSmokeRunner implements SmokeRunner {
  constructor(private readonly options: SmokeRunnerOptions = {}) {}

  /** The endpoint the spec names for the slot, and the one this worker reaches it at. */
  private async endpointOf({ smoke, target, slot }: SmokeRequest): Promise<{ named: string; endpoint: string }> {
    const named = renderTemplate(smoke.endpoint, {
      app: target.app,
      namespace: target.namespace,
      slot,
      service: target.service,
    });
    return {
      named,
      endpoint: (this.options.resolveEndpoint ? await this.options.resolveEndpoint(named) : named).replace(/\/+$/, ''),
    };
  }

  async checkEndpoint(request: SmokeRequest): Promise<PlanCheck> {
    const name = `smoke endpoint of ${request.slot}`;
    try {
      const { named, endpoint } = await this.endpointOf(request);
      const { hostname } = new URL(endpoint);
      const { address } = await lookup(hostname);
      return {
        kind: 'smoke',
        name,
        verdict: PlanVerdict.Ok,
        detail: `${named} resolves (${hostname} is ${address}${endpoint === named ? '' : `, through ${endpoint}`})`,
      };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return {
        kind: 'smoke',
        name,
        verdict: PlanVerdict.Fail,
        detail:
          `${request.smoke.endpoint} for ${request.slot} does not resolve from the worker: ` +
          `${code ?? (error as Error).message}`,
      };
    }
  }

  async runSmokeSuite(request: SmokeRequest, progress: Progress): Promise<SmokeReport> {
    const { smoke } = request;
    const { endpoint } = await this.endpointOf(request);
    await untilAccepting(endpoint, this.options.connectGraceSeconds ?? SMOKE_CONNECT_GRACE_SECONDS, progress);
    const http = axios.create({
      baseURL: endpoint,
      timeout: smoke.timeoutSeconds * 1000,
      validateStatus: () => true,
      signal: progress.signal,
      headers: { 'user-agent': 'bluegreen-smoke' },
    });
    const call = async (
      method: string,
      path: string,
      body?: unknown,
      headers?: Record<string, string>,
    ): Promise<Call> => {
      const started = performance.now();
      try {
        const response = await http.request({ method, url: path, data: body, headers });
        return { response, latencyMs: performance.now() - started, error: null };
      } catch (error) {
        return {
          response: null,
          latencyMs: performance.now() - started,
          error: describeHttpError(error, `${endpoint}${path}`, smoke.timeoutSeconds),
        };
      }
    };
    const checks: SmokeCheckResult[] = [];
    const record = (result: SmokeCheckResult) => {
      checks.push(result);
      progress.heartbeat({ check: result.name, verdict: result.verdict });
    };
    if (smoke.suite === SmokeSuite.DetectionApi) {
      await runDetectionApiSuite(call, smoke, record);
    } else {
      for (const check of smoke.checks) record(await runHttpCheck(call, check, smoke));
    }
    return { endpoint, passed: checks.every((c) => c.verdict !== CheckVerdict.Failed), checks };
  }
}

function describeHttpError(error: unknown, url: string, timeoutSeconds: number): string {
  const code = (error as { code?: string }).code;
  if (code === 'ECONNREFUSED') return `connection refused at ${url}`;
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') return `no answer from ${url} within ${timeoutSeconds} s`;
  if (code === 'ENOTFOUND') return `cannot resolve the host of ${url}`;
  return `${url}: ${(error as Error).message}`;
}

const passed = (name: string, call: Call, message: string): SmokeCheckResult => ({
  name,
  verdict: CheckVerdict.Passed,
  latencyMs: call.latencyMs,
  message,
});
const failed = (name: string, call: Call | null, message: string): SmokeCheckResult => ({
  name,
  verdict: CheckVerdict.Failed,
  latencyMs: call?.latencyMs ?? null,
  message,
});

/** 'HTTP 503 {"status":"shutting_down"}', shortened, for messages. */
function answer(response: AxiosResponse): string {
  const body = typeof response.data === 'string' ? response.data : JSON.stringify(response.data);
  return `HTTP ${response.status} ${body.length > 160 ? `${body.slice(0, 160)}...` : body}`;
}

type Caller = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Call>;

/** The procedure's seven checks (PROCEDURE §3), check by check. */
/**
 * One check on one answer: no answer fails with the reason; otherwise `expect` passes it or says
 * what was wrong.
 */
function judge(
  name: string,
  call: Call,
  expect: (response: AxiosResponse) => { passed: string } | { failed: string },
): SmokeCheckResult {
  if (call.error || !call.response) return failed(name, call, call.error ?? 'no answer');
  const verdict = expect(call.response);
  return 'passed' in verdict ? passed(name, call, verdict.passed) : failed(name, call, verdict.failed);
}

async function runDetectionApiSuite(
  call: Caller,
  smoke: SmokeRequest['smoke'],
  record: (r: SmokeCheckResult) => void,
): Promise<void> {
  record(
    judge('health', await call('GET', '/health'), (r) =>
      r.status === 200 && readPath(r.data, 'status') === 'healthy'
        ? { passed: 'healthy' }
        : { failed: `expected HTTP 200 {"status":"healthy"}, got ${answer(r)}` },
    ),
  );

  record(
    judge('ready', await call('GET', '/ready'), (r) =>
      r.status === 200 ? { passed: 'ready' } : { failed: `expected HTTP 200, got ${answer(r)}` },
    ),
  );

  const happy = await call('POST', '/api/detections', HAPPY_PATH_DETECTION);
  const happyResult = judge('api-happy-path', happy, (r) => {
    const id = readPath(r.data, 'detection_id');
    return r.status >= 200 && r.status < 300 && typeof id === 'string' && id !== ''
      ? { passed: `detection_id ${id}` }
      : { failed: `expected a 2xx answer with a detection_id, got ${answer(r)}` };
  });
  record(happyResult);

  record(
    happyResult.verdict !== CheckVerdict.Passed
      ? failed('accuracy-flag', happy, 'not checked: the API happy path failed')
      : judge('accuracy-flag', happy, (r) => {
          const flag = readPath(r.data, 'accuracy_flag');
          return flag === 'GREEN' || flag === 'YELLOW' || flag === 'RED'
            ? { passed: `accuracy_flag ${flag}` }
            : { failed: `expected accuracy_flag GREEN, YELLOW or RED, got ${JSON.stringify(flag)}` };
        }),
  );

  record(
    judge('offline-queue', await call('POST', '/api/detections', QUEUE_DETECTION), (r) => {
      const status = readPath(r.data, 'status');
      return status === 'SYNCED' || status === 'PENDING_SYNC'
        ? { passed: `status ${status}` }
        : { failed: `expected status SYNCED or PENDING_SYNC, got ${answer(r)}` };
    }),
  );

  record(
    judge('metrics', await call('GET', '/metrics'), (r) =>
      r.status === 200 && String(r.data).includes('http_requests_total')
        ? { passed: 'exposition with http_requests_total' }
        : { failed: `expected HTTP 200 with http_requests_total, got HTTP ${r.status}` },
    ),
  );

  const timed = await call('GET', '/health');
  record(latencyVerdict('latency', timed, smoke.latencyBudgetMs, smoke.latencyBudgetAction));
}

/** The latency check: over budget warns (the procedure's choice) or fails (the spec's). */
function latencyVerdict(name: string, timed: Call, budgetMs: number, action: 'warn' | 'fail'): SmokeCheckResult {
  if (timed.error || !timed.response) return failed(name, timed, timed.error ?? 'no answer');
  if (timed.latencyMs <= budgetMs)
    return passed(name, timed, `${timed.latencyMs.toFixed(0)} ms (budget ${budgetMs} ms)`);
  const message = `${timed.latencyMs.toFixed(0)} ms, over the ${budgetMs} ms budget`;
  return action === 'fail'
    ? failed(name, timed, message)
    : { name, verdict: CheckVerdict.Warning, latencyMs: timed.latencyMs, message };
}

/** One declarative check: status, JSON fields, latency. */
async function runHttpCheck(call: Caller, check: HttpCheck, smoke: SmokeRequest['smoke']): Promise<SmokeCheckResult> {
  const result = await call(check.method, check.path, check.body, check.headers);
  if (result.error || !result.response) return failed(check.name, result, result.error ?? 'no answer');
  const response = result.response;
  if (response.status !== check.expectStatus) {
    return failed(check.name, result, `expected HTTP ${check.expectStatus}, got ${answer(response)}`);
  }
  for (const [path, expected] of Object.entries(check.expectJson)) {
    const actual = readPath(response.data, path);
    const allowed = Array.isArray(expected) ? expected : [expected];
    if (!allowed.some((value) => value === actual)) {
      return failed(
        check.name,
        result,
        `expected ${path} to be ${allowed.map((v) => JSON.stringify(v)).join(' or ')}, got ${JSON.stringify(actual)}`,
      );
    }
  }
  for (const path of check.expectPresent) {
    const actual = readPath(response.data, path);
    if (actual === undefined || actual === null)
      return failed(check.name, result, `expected ${path} in the answer, got ${answer(response)}`);
  }
  return latencyVerdict(check.name, result, check.latencyBudgetMs ?? smoke.latencyBudgetMs, smoke.latencyBudgetAction);
}
