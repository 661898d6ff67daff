/**
 * The SLOs of a slot, measured by instant queries against the Prometheus HTTP API. Each SLO is one
 * measurement: its value, threshold and verdict. No data (an empty result, NaN) is Inconclusive; an
 * HTTP error, a timeout or an answer that is not Prometheus's is Error, never success. Credentials
 * and TLS come from the worker's configuration, never from the spec or the history.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import axios from 'axios';
import type { AxiosInstance } from 'axios';
import { z } from 'zod';
import { AnalysisResult, judgeValue, promDurationSeconds } from '../shared/analysis.js';
import type { Measurement } from '../shared/analysis.js';
import { renderTemplate } from '../shared/template.js';
import { ConfigError } from '../config/env.js';
import type {
  EvaluateSlosRequest,
  RangeSlosRequest,
  ScrapeIntervalReport,
  ScrapeIntervalRequest,
  SloSource,
} from '../activities/contract.js';
import type { SloSeries } from '../shared/evidence.js';
import type { Slo } from '../deployment-spec/deployment-spec.js';
import type { PrometheusConfig } from '../config/worker-settings.js';

/** What Prometheus answers to /api/v1/query; anything else is a malformed answer. */
const sampleValue = z.tuple([z.number(), z.string()]);
const QueryResponseSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.discriminatedUnion('resultType', [
      z.object({
        resultType: z.literal('vector'),
        result: z.array(z.object({ metric: z.record(z.string()), value: sampleValue })),
      }),
      z.object({ resultType: z.literal('scalar'), result: sampleValue }),
      z.object({ resultType: z.literal('matrix'), result: z.array(z.unknown()) }),
      z.object({ resultType: z.literal('string'), result: sampleValue }),
    ]),
  }),
  z.object({ status: z.literal('error'), errorType: z.string(), error: z.string() }),
]);

/** What Prometheus answers to /api/v1/targets (only the fields read here). */
const TargetsResponseSchema = z.object({
  status: z.literal('success'),
  data: z.object({
    activeTargets: z.array(
      z.object({
        labels: z.record(z.string()),
        scrapePool: z.string().optional(),
        scrapeInterval: z.string().optional(),
      }),
    ),
  }),
});

/**
 * Whether a target carries the slot's series, as a deployment's targets are usually labelled: by
 * the slot label (with the app), by the slot Deployment's name, or by a pod of that Deployment.
 */
function isSlotTarget(labels: Record<string, string>, { target, slot }: ScrapeIntervalRequest): boolean {
  if (labels['namespace'] !== undefined && labels['namespace'] !== target.namespace) return false;
  const deployment = target.deployments[slot];
  return (
    (labels[target.slotLabelKey] === slot && (labels['app'] === undefined || labels['app'] === target.app)) ||
    labels['deployment'] === deployment ||
    (labels['pod'] ?? '').startsWith(`${deployment}-`)
  );
}

function readCa(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`PROMETHEUS_CA_PATH: cannot read ${path}: ${(error as Error).message}`);
  }
}

/** What an SLO query's placeholders stand for, for one slot. */
function queryVariables(request: Pick<EvaluateSlosRequest, 'target' | 'slot' | 'version' | 'run' | 'window'>) {
  return {
    app: request.target.app,
    namespace: request.target.namespace,
    slot: request.slot,
    version: request.version,
    // No run: the pods carry no run label, and `run=~"{{run}}|"` then matches unlabelled series only.
    run: request.run ?? '',
    window: request.window,
    service: request.target.service,
  };
}

/** The answer of /api/v1/query_range: a matrix, or an error. */
const RangeResponseSchema = z.union([
  z.object({
    status: z.literal('success'),
    data: z.object({
      resultType: z.literal('matrix'),
      result: z.array(z.object({ values: z.array(z.tuple([z.number(), z.string()])) })),
    }),
  }),
  z.object({ status: z.literal('error'), errorType: z.string(), error: z.string() }),
]);

export class PrometheusSloSource implements SloSource {
  private readonly http: AxiosInstance;

  constructor(private readonly config: PrometheusConfig) {
    const ca = config.PROMETHEUS_CA_PATH ? readCa(config.PROMETHEUS_CA_PATH) : undefined;
    this.http = axios.create({
      baseURL: config.PROMETHEUS_URL.replace(/\/+$/, ''),
      timeout: config.PROMETHEUS_TIMEOUT_MS,
      headers: config.PROMETHEUS_BEARER_TOKEN ? { authorization: `Bearer ${config.PROMETHEUS_BEARER_TOKEN}` } : {},
      auth: config.PROMETHEUS_USERNAME
        ? { username: config.PROMETHEUS_USERNAME, password: config.PROMETHEUS_PASSWORD ?? '' }
        : undefined,
      httpsAgent: new Agent({ ca, rejectUnauthorized: config.PROMETHEUS_INSECURE_SKIP_VERIFY !== 'true' }),
      validateStatus: () => true,
    });
  }

  async evaluateSlos(request: EvaluateSlosRequest): Promise<Measurement[]> {
    return await Promise.all(
      request.slos.map((slo) => this.measure(slo, renderTemplate(slo.query, queryVariables(request)))),
    );
  }

  /**
   * The scrape interval of the targets that carry the slot's series (the longest, if they differ),
   * from /api/v1/targets; failing that, the longest of all active targets; null when Prometheus
   * cannot tell (unreachable, or too old to report it).
   */
  async readScrapeInterval(request: ScrapeIntervalRequest): Promise<ScrapeIntervalReport> {
    let body: unknown;
    try {
      const response = await this.http.get('/api/v1/targets', { params: { state: 'active' } });
      if (response.status >= 400)
        return { seconds: null, source: `Prometheus answered HTTP ${response.status} to /api/v1/targets` };
      body = response.data;
    } catch (cause) {
      return {
        seconds: null,
        source:
          `Prometheus unreachable at ${this.config.PROMETHEUS_URL}: ` +
          `${(cause as { code?: string }).code ?? (cause as Error).message}`,
      };
    }
    const parsed = TargetsResponseSchema.safeParse(body);
    if (!parsed.success)
      return {
        seconds: null,
        source: `malformed answer from /api/v1/targets: ${parsed.error.issues[0]?.message ?? 'unexpected shape'}`,
      };
    const longest = (targets: { scrapeInterval?: string | undefined }[]) =>
      Math.max(
        ...targets
          .map((t) => promDurationSeconds(t.scrapeInterval ?? ''))
          .filter((seconds) => Number.isFinite(seconds)),
      );
    const targets = parsed.data.data.activeTargets;
    const slotTargets = targets.filter((t) => isSlotTarget(t.labels, request));
    const ofSlot = longest(slotTargets);
    if (Number.isFinite(ofSlot))
      return {
        seconds: ofSlot,
        source: `${slotTargets.length} target(s) of ${request.target.deployments[request.slot]}`,
      };
    const ofAll = longest(targets);
    if (Number.isFinite(ofAll))
      return {
        seconds: ofAll,
        source:
          `no target names ${request.target.deployments[request.slot]}: the longest of ` +
          `${targets.length} active target(s)`,
      };
    return { seconds: null, source: 'Prometheus reports no active target with a scrape interval' };
  }

  async rangeSlos(request: RangeSlosRequest): Promise<SloSeries[]> {
    return await Promise.all(
      request.slos.map(async (slo): Promise<SloSeries> => {
        const query = renderTemplate(slo.query, queryVariables(request));
        const series: SloSeries = {
          name: slo.name,
          query,
          comparison: slo.comparison,
          threshold: slo.threshold,
          gate: slo.gate,
          points: [],
          error: null,
        };
        try {
          const response = await this.http.get('/api/v1/query_range', {
            params: { query, start: request.start, end: request.end, step: request.stepSeconds },
          });
          const parsed = RangeResponseSchema.safeParse(response.data);
          if (!parsed.success)
            return {
              ...series,
              error:
                `Prometheus answered HTTP ${response.status}: ` +
                `${parsed.error.issues[0]?.message ?? 'unexpected shape'}`,
            };
          if (parsed.data.status === 'error')
            return { ...series, error: `query rejected (${parsed.data.errorType}): ${parsed.data.error}` };
          // Several series: at each instant, the one closest to breaching (as a tick judges them).
          const byTime = new Map<number, number>();
          const worse = (a: number, b: number) => (slo.comparison.startsWith('<') ? Math.max(a, b) : Math.min(a, b));
          for (const one of parsed.data.data.result) {
            for (const [t, v] of one.values) {
              const value = Number(v);
              if (Number.isNaN(value)) continue;
              byTime.set(t, byTime.has(t) ? worse(byTime.get(t)!, value) : value);
            }
          }
          return { ...series, points: [...byTime.entries()].sort((a, b) => a[0] - b[0]) };
        } catch (cause) {
          return {
            ...series,
            error:
              `Prometheus unreachable at ${this.config.PROMETHEUS_URL}: ` +
              `${(cause as { code?: string }).code ?? (cause as Error).message}`,
          };
        }
      }),
    );
  }

  private async measure(slo: Slo, query: string): Promise<Measurement> {
    const base = { name: slo.name, comparison: slo.comparison, threshold: slo.threshold, gate: slo.gate };
    const error = (message: string): Measurement => ({ ...base, value: null, result: AnalysisResult.Error, message });
    let body: unknown;
    try {
      const response = await this.http.get('/api/v1/query', { params: { query } });
      if (
        response.status >= 400 &&
        !(response.data && typeof response.data === 'object' && 'errorType' in response.data)
      ) {
        return error(`Prometheus answered HTTP ${response.status}`);
      }
      body = response.data;
    } catch (cause) {
      const code = (cause as { code?: string }).code;
      return error(`Prometheus unreachable at ${this.config.PROMETHEUS_URL}: ${code ?? (cause as Error).message}`);
    }
    const parsed = QueryResponseSchema.safeParse(body);
    if (!parsed.success)
      return error(`malformed answer from Prometheus: ${parsed.error.issues[0]?.message ?? 'unexpected shape'}`);
    if (parsed.data.status === 'error') return error(`query rejected (${parsed.data.errorType}): ${parsed.data.error}`);
    const data = parsed.data.data;
    let values: number[];
    if (data.resultType === 'vector') values = data.result.map((series) => Number(series.value[1]));
    else if (data.resultType === 'scalar') values = [Number(data.result[1])];
    else return error(`the query must give an instant vector or a scalar, not a ${data.resultType}`);
    const numbers = values.filter((v) => !Number.isNaN(v));
    if (numbers.length === 0) {
      return {
        ...base,
        value: null,
        result: AnalysisResult.Inconclusive,
        message: values.length === 0 ? 'no data' : 'NaN (no traffic)',
      };
    }
    // Several series: judge the one closest to breaching.
    const value = slo.comparison.startsWith('<') ? Math.max(...numbers) : Math.min(...numbers);
    return { ...base, value, result: judgeValue(value, slo.comparison, slo.threshold) };
  }
}
