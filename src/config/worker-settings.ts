/**
 * The worker's settings: every adapter's environment variables, with their rules, read once at
 * start by readWorkerSettings (one error names every variable at fault) and handed to each adapter
 * parsed. docs/configuration.md lists them.
 */
import { z } from 'zod';
import { parseEnvParts } from './env.js';
import { KubeConfigEnvSchema } from './kubeconfig.js';

export const PLATFORMS = ['kubernetes', 'local'] as const;

export const PlatformConfigSchema = z.object({
  BLUEGREEN_PLATFORM: z.enum(PLATFORMS, {
    errorMap: () => ({
      message:
        `BLUEGREEN_PLATFORM must be one of ${PLATFORMS.join(', ')}: 'kubernetes' drives a cluster through a ` +
        `kubeconfig, 'local' runs slots as processes on this machine`,
    }),
  }),
});

export type PlatformConfig = z.output<typeof PlatformConfigSchema>;

/** The Prometheus the monitor queries (checks/prometheus-slo-source.ts). */
export const PrometheusConfigSchema = z
  .object({
    PROMETHEUS_URL: z
      .string()
      .regex(/^https?:\/\/[^\s/]+/, 'PROMETHEUS_URL must be an http(s) URL such as http://prometheus:9090'),
    PROMETHEUS_BEARER_TOKEN: z.string().min(1).optional(),
    PROMETHEUS_USERNAME: z.string().min(1).optional(),
    PROMETHEUS_PASSWORD: z.string().min(1).optional(),
    PROMETHEUS_CA_PATH: z.string().min(1).optional(),
    PROMETHEUS_INSECURE_SKIP_VERIFY: z.enum(['true', 'false']).default('false'),
    PROMETHEUS_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.PROMETHEUS_USERNAME) !== Boolean(env.PROMETHEUS_PASSWORD)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['PROMETHEUS_PASSWORD'],
        message: 'basic auth needs both PROMETHEUS_USERNAME and PROMETHEUS_PASSWORD',
      });
    }
    if (env.PROMETHEUS_BEARER_TOKEN && env.PROMETHEUS_USERNAME) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['PROMETHEUS_BEARER_TOKEN'],
        message: 'use either a bearer token or basic auth, not both',
      });
    }
  });

export type PrometheusConfig = z.output<typeof PrometheusConfigSchema>;

/** The Slack-compatible webhook (notifications/webhook-notifier.ts). */
export const WebhookConfigSchema = z.object({
  BLUEGREEN_WEBHOOK_URL: z
    .string()
    .regex(/^https?:\/\/\S+$/, 'BLUEGREEN_WEBHOOK_URL must be an http(s) URL')
    .optional(),
  BLUEGREEN_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
});

export type WebhookConfig = z.output<typeof WebhookConfigSchema>;

/** PagerDuty Events v2 (notifications/pagerduty-notifier.ts). */
export const PagerDutyConfigSchema = z.object({
  BLUEGREEN_PAGERDUTY_ROUTING_KEY: z.string().min(1).optional(),
  BLUEGREEN_PAGERDUTY_URL: z
    .string()
    .regex(/^https?:\/\/\S+$/, 'BLUEGREEN_PAGERDUTY_URL must be an http(s) URL')
    .default('https://events.pagerduty.com/v2/enqueue'),
  BLUEGREEN_PAGERDUTY_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
});
export type PagerDutyConfig = z.output<typeof PagerDutyConfigSchema>;

/** Where an incident's links point (notifications/incident-links.ts). */
export const IncidentLinksConfigSchema = z.object({
  BLUEGREEN_TEMPORAL_UI_URL: z
    .string()
    .regex(/^https?:\/\/\S+$/, 'BLUEGREEN_TEMPORAL_UI_URL must be an http(s) URL such as http://localhost:8233')
    .optional(),
  /** Where people open Prometheus; defaults to PROMETHEUS_URL (which the worker queries). */
  BLUEGREEN_PROMETHEUS_UI_URL: z
    .string()
    .regex(/^https?:\/\/\S+$/, 'BLUEGREEN_PROMETHEUS_UI_URL must be an http(s) URL')
    .optional(),
  PROMETHEUS_URL: z.string().optional(),
});
export type IncidentLinksConfig = z.output<typeof IncidentLinksConfigSchema>;

/** The local platform's control API (platforms/local-platform.ts). */
export const LocalPlatformEnvSchema = z.object({
  /** The local platform's control API. */
  BLUEGREEN_LOCAL_URL: z
    .string()
    .url('BLUEGREEN_LOCAL_URL must be a URL such as http://127.0.0.1:7070')
    .default('http://127.0.0.1:7070'),
});

/** Every part of the worker's settings, parsed from `env` at once. */
export function readWorkerSettings(env: NodeJS.ProcessEnv) {
  return parseEnvParts(
    {
      platform: PlatformConfigSchema,
      prometheus: PrometheusConfigSchema,
      webhook: WebhookConfigSchema,
      pagerDuty: PagerDutyConfigSchema,
      links: IncidentLinksConfigSchema,
      local: LocalPlatformEnvSchema,
      kube: KubeConfigEnvSchema,
    },
    env,
  );
}

export type WorkerSettings = ReturnType<typeof readWorkerSettings>;
