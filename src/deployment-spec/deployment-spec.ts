/**
 * The deployment spec: what to deploy, where, and the gates it must pass. Shared by the client,
 * the worker and the activities; never imported by workflow code (which takes the parsed,
 * defaulted `DeploymentSpec` as plain JSON and imports only its type).
 *
 * Defaults are the procedure's numbers (docs/PROCEDURE.md): 3 replicas, 180 s readiness, 5 s smoke
 * timeout, 100 ms latency budget, 5 min of monitoring every 5 s; and checks that fit any HTTP
 * service: `/health` and `/ready` before the switch, the error ratio and p95 latency after it.
 */
import { z } from 'zod';
import { Comparison } from '../shared/analysis.js';
import { PLACEHOLDER, TEMPLATE_VARIABLES } from '../shared/template.js';
import {
  formatShare,
  replicaRatioReplicas,
  replicaRatioShares,
  replicasNeededFor,
  smallestStep,
  SPLITTING_ROUTERS,
  SWITCHING_ROUTERS,
  TRAFFIC_ROUTERS,
  TrafficRouter,
} from '../shared/traffic.js';

/** RFC 1123 label, as Kubernetes requires for namespaces and app names used in object names. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1123 subdomain, as Kubernetes requires for Service and Deployment names. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A Kubernetes label value: at most 63 characters, alphanumeric at both ends. */
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** A Kubernetes label key: optional DNS-subdomain prefix and a name of at most 63 characters. */
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A Prometheus range duration such as 30s, 1m, 1m30s. */
const PROM_DURATION = /^([0-9]+(ms|s|m|h|d|w|y))+$/;

/**
 * An OCI image reference as the distribution reference grammar defines it, with a tag or a digest
 * required: a deployment of an implicit `latest` cannot be reproduced or rolled back to.
 */
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const NAME = `(?:${DOMAIN}\\/)?${PATH_COMPONENT}(?:\\/${PATH_COMPONENT})*`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const IMAGE_REFERENCE = new RegExp(`^(?<name>${NAME})(?::(?<tag>${TAG}))?(?:@(?<digest>${DIGEST}))?$`);

/** An image reference with a tag or a digest; shared with the local platform's configuration. */
export const imageReference = z
  .string()
  .max(4096)
  .regex(IMAGE_REFERENCE, 'image must be an OCI reference such as registry.example/team/app:v1.2.3')
  .refine((image) => /(:[\w][\w.-]{0,127}|@[^@]+)$/.test(image.replace(/^[^/]*\//, '')), {
    message: 'image must name a tag or a digest (an implicit :latest cannot be rolled back to)',
  });

const template = (allowed: readonly string[]) =>
  z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      for (const match of value.matchAll(PLACEHOLDER)) {
        const name = match[1] ?? '';
        if (!allowed.includes(name)) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            message: `unknown placeholder {{${name}}}: allowed are ${allowed.map((a) => `{{${a}}}`).join(', ')}`,
          });
        }
      }
    });

const dnsLabel = (what: string) =>
  z
    .string()
    .max(63, `${what} must be at most 63 characters`)
    .regex(
      DNS_LABEL,
      `${what} must be an RFC 1123 label: lower-case letters, digits and '-', starting and ending alphanumeric`,
    );

const seconds = (what: string) =>
  z.number().int(`${what} must be a whole number of seconds`).positive(`${what} must be greater than 0`);

const jsonScalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** One check of a declarative smoke suite, for services other than the reference workload. */
export const HttpCheckSchema = z
  .object({
    name: z.string().min(1),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']).default('GET'),
    path: z.string().startsWith('/', 'path must start with /'),
    headers: z.record(z.string()).default({}),
    body: z.unknown().optional(),
    expectStatus: z.number().int().min(100).max(599).default(200),
    /** Dotted JSON paths and the value (or one of the values) each must have. */
    expectJson: z.record(z.union([jsonScalar, z.array(jsonScalar).min(1)])).default({}),
    /** Dotted JSON paths that must be present and not null. */
    expectPresent: z.array(z.string().min(1)).default([]),
    latencyBudgetMs: z.number().positive().optional(),
  })
  .strict();

export type HttpCheck = z.output<typeof HttpCheckSchema>;

export const SmokeSuite = {
  /** The procedure's seven checks against the reference detection API (its preset). */
  DetectionApi: 'detection-api',
  /** The spec's own `checks`; by default `/health` and `/ready` answer 200. */
  Http: 'http',
} as const;

/** The product's default smoke checks: what any service with health and readiness endpoints answers. */
const DEFAULT_HTTP_CHECKS = [
  { name: 'health', path: '/health' },
  { name: 'ready', path: '/ready' },
];

const SmokeSchema = z
  .object({
    /** Where the idle slot answers, e.g. a per-slot Service; `{{slot}}` is the idle slot. */
    endpoint: template(['app', 'namespace', 'slot', 'service']).default(
      'http://{{app}}-{{slot}}.{{namespace}}.svc:8000',
    ),
    timeoutSeconds: seconds('smoke.timeoutSeconds').default(5),
    latencyBudgetMs: z.number().positive('smoke.latencyBudgetMs must be greater than 0').default(100),
    /** The procedure only warns on a slow answer; `fail` makes the latency check a gate. */
    latencyBudgetAction: z.enum(['warn', 'fail']).default('warn'),
    suite: z.enum([SmokeSuite.DetectionApi, SmokeSuite.Http]).default(SmokeSuite.Http),
    checks: z.array(HttpCheckSchema).default(DEFAULT_HTTP_CHECKS),
  })
  .strict()
  .superRefine((smoke, ctx) => {
    if (smoke.suite === SmokeSuite.Http && smoke.checks.length === 0) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['checks'],
        message: "suite 'http' needs at least one check",
      });
    }
  });

const GatesSchema = z
  .object({
    approveBeforeSwitch: z.boolean().default(false),
    approveBeforeCleanup: z.boolean().default(false),
    /** How long a gate (or a pause for a decision) waits before it rolls back. */
    approvalTimeoutSeconds: seconds('gates.approvalTimeoutSeconds').default(3600),
  })
  .strict();

export const SloSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][-a-z0-9_]*$/, 'name must be lower-case letters, digits, - and _'),
    /**
     * PromQL over {{app}}, {{namespace}}, {{slot}}, {{version}}, {{run}}, {{window}} and
     * {{service}}; scope it to the new slot, version and run.
     */
    query: template(TEMPLATE_VARIABLES),
    comparison: z.enum([
      Comparison.LessThan,
      Comparison.LessOrEqual,
      Comparison.GreaterThan,
      Comparison.GreaterOrEqual,
    ]),
    threshold: z.number().finite(),
    /** false: reported as a warning, never rolls back (the procedure's CPU and memory rows, PROCEDURE §4). */
    gate: z.boolean().default(true),
    unit: z.string().optional(),
    /**
     * Canary only: the canary is also held to the stable slot's value of the same query over the
     * same window, scaled: `value <comparison> stable * factor + offset` (an error ratio at most
     * the stable's plus 0.5 points: offset 0.005; a p95 at most 1.25 times the stable's: factor
     * 1.25). Both slots serve at once, so the stable is the fairest baseline there is.
     */
    comparedToStable: z
      .object({
        factor: z.number().positive('comparedToStable.factor must be greater than 0').default(1),
        offset: z.number().finite().default(0),
      })
      .strict()
      .optional(),
  })
  .strict();

export type Slo = z.output<typeof SloSchema>;

/**
 * The series of the slot's pods of this run. `run=~"{{run}}|"` takes this run's series, and a
 * service's series that carry no run label at all (so a service that does not label by run is
 * judged by slot and version, as before); an earlier run's series of the same version and slot
 * are left out (a redeploy right after a rollback, under the same tag).
 */
const slotSelector = 'app="{{app}}",namespace="{{namespace}}",slot="{{slot}}",version="{{version}}",run=~"{{run}}|"';

/**
 * The product's default SLOs, for any HTTP service with the conventional metrics: the error ratio
 * (5xx over all requests) and the p95 latency, scoped to the new slot and version. A service adds
 * its own (the detection API's full table is its preset, examples/detection-api/bluegreen.yaml).
 */
export const DEFAULT_SLOS: Slo[] = [
  {
    name: 'error-rate',
    // `or vector(0)`: no 5xx at all is a ratio of 0, while no traffic at all stays no data.
    query:
      `(sum(rate(http_requests_total{${slotSelector},status=~"5.."}[{{window}}])) or vector(0)) / ` +
      `sum(rate(http_requests_total{${slotSelector}}[{{window}}]))`,
    comparison: '<',
    threshold: 0.01,
    gate: true,
    unit: 'ratio',
  },
  {
    name: 'p95-latency',
    query:
      `histogram_quantile(0.95, sum by (le) ` +
      `(rate(http_request_duration_seconds_bucket{${slotSelector}}[{{window}}])))`,
    comparison: '<',
    threshold: 0.5,
    gate: true,
    unit: 'seconds',
  },
];

/**
 * Watching after the deployment: the procedure's hour (§8). The live slot's SLOs and restarts are
 * measured every interval and a breach is notified; the window changes nothing itself. With
 * `keepOldSlotWarm`, the old slot stays up through the window and a breach rolls back as during
 * monitoring (the scale-down waits for the window's end).
 */
const ObserveSchema = z
  .object({
    /** 0 (the default): no window. The procedure's is 3600. */
    durationSeconds: z
      .number()
      .int('observe.durationSeconds must be a whole number of seconds')
      .min(0)
      .max(86_400)
      .default(0),
    /** Seconds between measurements; default 60. */
    intervalSeconds: seconds('observe.intervalSeconds').default(60),
    keepOldSlotWarm: z.boolean().default(false),
  })
  .strict()
  .refine((observe) => observe.durationSeconds === 0 || observe.intervalSeconds <= observe.durationSeconds, {
    message: 'observe.intervalSeconds must not exceed observe.durationSeconds',
    path: ['intervalSeconds'],
  });

const MonitorSchema = z
  .object({
    durationSeconds: seconds('monitor.durationSeconds').default(300),
    intervalSeconds: seconds('monitor.intervalSeconds').default(5),
    /** The range of the rate() windows in the SLO queries. */
    window: z.string().regex(PROM_DURATION, 'window must be a Prometheus duration such as 1m or 30s').default('1m'),
    /** Failed ticks tolerated before rolling back; 0 rolls back on the first breach. */
    failureLimit: z.number().int().min(0).default(0),
    /** Consecutive measurement errors that end the analysis as Error (rollback), as Argo Rollouts. */
    consecutiveErrorLimit: z.number().int().min(1).default(4),
    /** Inconclusive ticks (no data) tolerated before pausing for an operator's decision. */
    inconclusiveLimit: z.number().int().min(0).default(6),
    /** Container restarts of the new slot's pods tolerated during monitoring (the procedure: 0). */
    restartLimit: z.number().int().min(0).default(0),
    /**
     * Seconds at the start of monitoring in which missing data is not counted. Unset: derived from
     * the window and the scrape interval Prometheus reports for the new slot's targets.
     */
    initialDelaySeconds: z
      .number()
      .int('monitor.initialDelaySeconds must be a whole number of seconds')
      .min(0)
      .optional(),
    /**
     * While paused for missing data, this many Successful ticks in a row end the pause by
     * themselves (the data the pause waited for has arrived, and it is good); 0: only a person
     * ends it. A Failed tick while paused rolls back, as during monitoring.
     */
    resumeWhenConclusive: z.number().int().min(0).default(3),
    slos: z.array(SloSchema).default(DEFAULT_SLOS),
  })
  .strict()
  .superRefine((monitor, ctx) => {
    for (const issue of monitorRuleIssues(monitor))
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: issue.path, message: issue.message });
  });

/**
 * The rules between monitor fields. zod runs an object's refinements only once every field in it
 * is valid, so parseDeploymentSpec also checks them on the raw input: a spec with a bad SLO and
 * an interval longer than the window hears about both at once.
 */
function monitorRuleIssues(monitor: {
  durationSeconds?: unknown;
  intervalSeconds?: unknown;
  slos?: unknown;
}): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const duration = typeof monitor.durationSeconds === 'number' ? monitor.durationSeconds : 300;
  const interval = typeof monitor.intervalSeconds === 'number' ? monitor.intervalSeconds : 5;
  if (interval > duration)
    issues.push({ path: ['intervalSeconds'], message: `must not exceed monitor.durationSeconds (${duration})` });
  const seen = new Set<string>();
  (Array.isArray(monitor.slos) ? (monitor.slos as unknown[]) : []).forEach((slo, index) => {
    const name = (slo as { name?: unknown } | null)?.name;
    if (typeof name !== 'string') return;
    if (seen.has(name)) issues.push({ path: ['slos', index, 'name'], message: `duplicate SLO name '${name}'` });
    seen.add(name);
  });
  return issues;
}

const RollbackSchema = z
  .object({
    /**
     * A restore that the platform keeps refusing with transient errors (an API server down for an
     * upgrade) goes on retrying, backoff capped at 10 s; after this long it is reported stuck: a
     * `rollback-stuck` notification, and the state in `status`. Argo Rollouts has no such alarm.
     */
    stuckAfterSeconds: seconds('rollback.stuckAfterSeconds').default(120),
    /** Capture the failing slot's evidence before scaling it down (after traffic is restored). */
    captureEvidence: z.boolean().default(true),
  })
  .strict();

export const Strategy = {
  BlueGreen: 'blueGreen',
  Canary: 'canary',
} as const;
export type Strategy = (typeof Strategy)[keyof typeof Strategy];

const CanaryStepSchema = z
  .object({
    /** The canary's share of the traffic, in percent, from this step on. */
    weight: z
      .number()
      .int('weight must be a whole percent')
      .min(1, 'weight must be at least 1')
      .max(100, 'weight must be at most 100'),
    /** How long the step is held under analysis before the next (the procedure: 10 minutes). */
    holdSeconds: seconds('holdSeconds').default(600),
    /** Held under analysis until an operator runs `bluegreen promote`, however long that takes. */
    untilPromote: z.boolean().default(false),
  })
  .strict();

export type CanaryStep = z.output<typeof CanaryStepSchema>;

/** The procedure's phase 2: 5, 25, 50 and 100 %, each held 10 minutes under analysis. */
const DEFAULT_CANARY_STEPS = [5, 25, 50, 100].map((weight) => ({ weight, holdSeconds: 600, untilPromote: false }));

const CanarySchema = z
  .object({
    steps: z.array(CanaryStepSchema).min(1, 'canary.steps needs at least one step').default(DEFAULT_CANARY_STEPS),
    /**
     * Requests the canary must have served within the monitor window before a tick can be
     * Successful; below it the tick is Inconclusive. At 5 % a quiet hour gives few requests, and
     * a success without data is not one.
     */
    minRequests: z.number().int().min(0).default(50),
    /** The requests a slot served within the window (the same labels as the SLO queries). */
    requestsQuery: template(TEMPLATE_VARIABLES).default(
      `sum(increase(http_requests_total{${slotSelector}}[{{window}}]))`,
    ),
    /**
     * How much longer a hold goes on when its end finds no Successful tick (too few requests, no
     * data); after that the deployment pauses for an operator.
     */
    maxHoldExtensionSeconds: z.number().int().min(0).default(600),
  })
  .strict()
  .superRefine((canary, ctx) => {
    // Weights out of range have their own issue already.
    const valid = (weight: number) => Number.isInteger(weight) && weight >= 1 && weight <= 100;
    canary.steps.forEach((step, index) => {
      const previous = canary.steps[index - 1];
      if (previous && valid(step.weight) && valid(previous.weight) && step.weight <= previous.weight) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['steps', index, 'weight'],
          message: `weights must rise step by step: ${step.weight} follows ${previous.weight}`,
        });
      }
    });
    const last = canary.steps.at(-1);
    if (last && valid(last.weight) && last.weight !== 100) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['steps', canary.steps.length - 1, 'weight'],
        message: `the last step must send 100 % to the canary (it sends ${last.weight})`,
      });
    }
  });

const objectName = (what: string) => z.string().max(253).regex(DNS_SUBDOMAIN, `${what} must be an RFC 1123 subdomain`);

const TrafficProbeSchema = z
  .object({
    /** Where clients enter, e.g. `http://{{service}}.{{namespace}}.svc:8000/ready`, a Gateway's listener. */
    url: template(['app', 'namespace', 'service']).refine((url) => /^https?:\/\/[^/]/.test(url), {
      message: 'probe.url must be an http:// or https:// URL',
    }),
    /** The Host header, for a Gateway or an Ingress that routes by host. */
    host: z.string().min(1).optional(),
    /** The answer's header that names the pod that answered (its name begins with the slot Deployment's). */
    servedByHeader: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, 'probe.servedByHeader must be an HTTP header name')
      .default('x-served-by'),
    inARow: z.number().int().min(1).max(1000).default(20),
  })
  .strict();

const TrafficSchema = z
  .object({
    /**
     * How traffic moves: `service-selector` (the Service's selector names the live slot),
     * `replica-ratio` (one Service over both slots, split by replicas), `gateway-api` (an
     * HTTPRoute's weighted backendRefs), `ingress` (an Ingress's backend, and NGINX's canary
     * annotations for a canary). Defaults: service-selector for blueGreen, replica-ratio for canary
     * (neither needs anything beyond Services).
     */
    router: z.enum(TRAFFIC_ROUTERS as [TrafficRouter, ...TrafficRouter[]]).optional(),
    /** The per-slot Services that gateway-api and ingress route to (and the smoke suite reaches). */
    slotServicePattern: template(['app', 'slot', 'namespace'])
      .refine((p) => p.includes('{{slot}}'), {
        message: 'slotServicePattern must contain {{slot}} so the two slots differ',
      })
      .default('{{app}}-{{slot}}'),
    /** gateway-api: the HTTPRoute whose rules name the slot Services; defaults to the app's name. */
    httpRoute: objectName('httpRoute').optional(),
    /** ingress: the Ingress whose paths name a slot Service; defaults to `<app>-ingress`. */
    ingress: objectName('ingress').optional(),
    /**
     * ingress, canary: the second Ingress carrying NGINX's canary annotations; defaults to
     * `<ingress>-canary`, made when missing.
     */
    canaryIngress: objectName('canaryIngress').optional(),
    /**
     * Verify a full route by traffic too, not only by reading the router's object back: requests
     * to `url` must be answered by the slot's pods `inARow` times in a row before a switch, a
     * canary's 100 % or a restore counts as done (and before the other slot is scaled down).
     */
    probe: TrafficProbeSchema.optional(),
  })
  .strict();

/**
 * The rules between strategy, router, replicas and steps: a plan the router cannot express is
 * rejected here, naming the field, before anything changes.
 */
function planIssues(spec: {
  strategy: Strategy;
  traffic: {
    router?: TrafficRouter | undefined;
    httpRoute?: string | undefined;
    ingress?: string | undefined;
    canaryIngress?: string | undefined;
  };
  replicas: number;
  canary: { steps: CanaryStep[] };
}): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const { traffic } = spec;
  const router =
    traffic.router ?? (spec.strategy === Strategy.Canary ? TrafficRouter.ReplicaRatio : TrafficRouter.ServiceSelector);
  if (traffic.httpRoute !== undefined && router !== TrafficRouter.GatewayApi) {
    issues.push({
      path: ['traffic', 'httpRoute'],
      message: `httpRoute is read only by traffic.router gateway-api (the router is ${router})`,
    });
  }
  for (const field of ['ingress', 'canaryIngress'] as const) {
    if (traffic[field] !== undefined && router !== TrafficRouter.Ingress) {
      issues.push({
        path: ['traffic', field],
        message: `${field} is read only by traffic.router ingress (the router is ${router})`,
      });
    }
  }
  if (spec.strategy === Strategy.BlueGreen) {
    if (!SWITCHING_ROUTERS.includes(router)) {
      issues.push({
        path: ['traffic', 'router'],
        message:
          `strategy blueGreen switches all traffic at once, through ${SWITCHING_ROUTERS.join(', ')}; '${router}' ` +
          `only splits traffic, for strategy canary`,
      });
    }
    return issues;
  }
  if (!SPLITTING_ROUTERS.includes(router)) {
    issues.push({
      path: ['traffic', 'router'],
      message: `${router} moves all traffic at once: a canary needs ${SPLITTING_ROUTERS.join(', ')}`,
    });
    return issues;
  }
  spec.canary.steps.forEach((step, index) => {
    // A weight out of range has its own issue already.
    if (!Number.isInteger(step.weight) || step.weight < 1 || step.weight > 100) return;
    if (router !== TrafficRouter.ReplicaRatio) {
      const smallest = smallestStep(router, spec.replicas);
      if (step.weight < smallest)
        issues.push({
          path: ['canary', 'steps', index, 'weight'],
          message: `${router} cannot send less than ${formatShare(smallest)} % to the canary`,
        });
      return;
    }
    if (replicaRatioReplicas(spec.replicas, step.weight) !== null) return;
    issues.push({
      path: ['canary', 'steps', index, 'weight'],
      message:
        `${step.weight} % cannot be expressed by replica-ratio with replicas ${spec.replicas}: beside the fully ` +
        `scaled stable slot ` +
        `the canary's share is c/(${spec.replicas}+c), so the weights it can set (within ${formatShare(1)} point) ` +
        `are ${replicaRatioShares(spec.replicas)}; ` +
        `set one of those, replicas to ${replicasNeededFor(step.weight)} (the fewest that can), or traffic.router ` +
        `gateway-api or ingress`,
    });
  });
  return issues;
}

/**
 * The spec as written, before defaults: what parseDeploymentSpec checks, and the Release CRD's
 * schema is generated from.
 */
export const SpecInputSchema = z
  .object({
    app: dnsLabel('app'),
    namespace: dnsLabel('namespace').default('default'),
    image: imageReference,
    /** The version label; defaults to the image tag (or the digest's first 12 hex digits). */
    version: z.string().max(63).regex(LABEL_VALUE, 'version must be a valid Kubernetes label value').optional(),
    replicas: z
      .number()
      .int('replicas must be a whole number')
      .min(1, 'replicas must be at least 1')
      .max(1000)
      .default(3),
    slotLabelKey: z.string().regex(LABEL_KEY, 'slotLabelKey must be a valid Kubernetes label key').default('slot'),
    /** The Service whose selector carries the slot label; defaults to `<app>-service`, as in the procedure. */
    service: z.string().max(253).regex(DNS_SUBDOMAIN, 'service must be an RFC 1123 subdomain').optional(),
    deploymentNamePattern: template(['app', 'slot', 'namespace'])
      .refine((p) => p.includes('{{slot}}'), {
        message: 'deploymentNamePattern must contain {{slot}} so the two slots differ',
      })
      .default('{{app}}-{{slot}}'),
    /** The container whose image is set; defaults to the app name. */
    container: dnsLabel('container').optional(),
    readinessTimeoutSeconds: seconds('readinessTimeoutSeconds').default(180),
    smoke: SmokeSchema.default({}),
    gates: GatesSchema.default({}),
    monitor: MonitorSchema.default({}),
    rollback: RollbackSchema.default({}),
    observe: ObserveSchema.default({}),
    /**
     * Preflight measures the active slot's gated SLOs once and refuses to deploy onto one that
     * breaches them (PROCEDURE §2.1). true lets the deployment through all the same (a hotfix
     * during an incident); the result and the history record that it was let through.
     */
    allowUnstableActive: z.boolean().default(false),
    /** Set by `bluegreen undo`: the successful deployment (its run and version) this one undoes. */
    undoOf: z
      .object({ runId: z.string().min(1), version: z.string().min(1) })
      .strict()
      .optional(),
    /** Seconds between the end of monitoring and scaling the old slot to zero (Argo's default 30). */
    scaleDownDelaySeconds: z.number().int().min(0).default(30),
    /** blueGreen (the default): all traffic at once after the smoke suite. canary: step by step. */
    strategy: z.enum([Strategy.BlueGreen, Strategy.Canary]).default(Strategy.BlueGreen),
    traffic: TrafficSchema.default({}),
    /** The canary's steps and analysis; read only with `strategy: canary`. */
    canary: CanarySchema.default({}),
  })
  .strict()
  .superRefine((spec, ctx) => {
    for (const issue of planIssues(spec))
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: issue.path, message: issue.message });
  });

/** The spec as users write it (YAML or flags): most fields optional. */
export type DeploymentSpecInput = z.input<typeof SpecInputSchema>;

export const DeploymentSpecSchema = SpecInputSchema.transform((spec) => ({
  ...spec,
  version: spec.version ?? versionFromImage(spec.image),
  service: spec.service ?? `${spec.app}-service`,
  container: spec.container ?? spec.app,
  traffic: trafficOf(spec),
}));

/** The traffic section with its defaults: the router by strategy, and the objects that router names. */
function trafficOf(spec: { app: string; strategy: Strategy; traffic: z.output<typeof TrafficSchema> }) {
  const { traffic } = spec;
  const router =
    traffic.router ?? (spec.strategy === Strategy.Canary ? TrafficRouter.ReplicaRatio : TrafficRouter.ServiceSelector);
  const ingress = traffic.ingress ?? `${spec.app}-ingress`;
  return {
    ...traffic,
    router,
    ...(router === TrafficRouter.GatewayApi ? { httpRoute: traffic.httpRoute ?? spec.app } : {}),
    ...(router === TrafficRouter.Ingress
      ? { ingress, canaryIngress: traffic.canaryIngress ?? `${ingress}-canary` }
      : {}),
  };
}

/** A parsed spec with every default filled in: the workflow's input, plain JSON. */
export type DeploymentSpec = z.output<typeof DeploymentSpecSchema>;

/** The repository of an image: the reference without its tag and digest. */
export function repositoryFromImage(image: string): string {
  return IMAGE_REFERENCE.exec(image)?.groups?.['name'] ?? image;
}

/** The tag of an image, or the first 12 hex digits of its digest. */
export function versionFromImage(image: string): string {
  const match = IMAGE_REFERENCE.exec(image);
  const tag = match?.groups?.['tag'];
  if (tag) return tag.slice(0, 63).replace(/[^A-Za-z0-9]+$/, '');
  const digest = match?.groups?.['digest'] ?? '';
  return digest.split(':')[1]?.slice(0, 12) ?? 'unknown';
}

/** A rejected spec: every offending field, with its path and the rule it broke. */
export class SpecValidationError extends Error {
  readonly issues: { path: string; message: string }[];

  constructor(issues: { path: string; message: string }[]) {
    super(`invalid deployment spec:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`);
    this.name = 'SpecValidationError';
    this.issues = issues;
  }
}

/** Parses and defaults a spec; throws `SpecValidationError` naming every bad field. */
export function parseDeploymentSpec(input: unknown): DeploymentSpec {
  const result = DeploymentSpecSchema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.length > 0 ? issue.path.join('.') : '(spec)',
    message: issue.message,
  }));
  const monitor = (input as { monitor?: unknown } | null)?.monitor;
  if (monitor !== null && typeof monitor === 'object') {
    for (const issue of monitorRuleIssues(monitor)) {
      const path = ['monitor', ...issue.path].join('.');
      if (!issues.some((i) => i.path === path)) issues.push({ path, message: issue.message });
    }
  }
  throw new SpecValidationError(issues);
}
