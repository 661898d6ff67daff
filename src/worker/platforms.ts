/**
 * Chooses the platform and gates the worker drives, from configuration. The worker registers
 * nothing fake: a platform that is not configured (no kubeconfig, say) stops the worker at start
 * with a message saying what to set.
 */
import { z } from 'zod';
import type { ActivityDependencies } from '../activities/index.js';
import { parseEnvParts } from '../config/env.js';
import { KubeConfigEnvSchema, loadKubeConfig } from '../config/kubeconfig.js';
import { PrometheusConfigSchema, PrometheusSloSource } from '../checks/prometheus-slo-source.js';
import { HttpSmokeRunner } from '../checks/smoke-suite.js';
import { KubernetesPlatform } from '../platforms/kubernetes-platform.js';
import { LocalPlatform, LocalPlatformEnvSchema } from '../platforms/local-platform.js';
import { IncidentLinksConfigSchema, linkBases } from '../notifications/incident-links.js';
import { PagerDutyConfigSchema } from '../notifications/pagerduty-notifier.js';
import { Notifiers, WebhookConfigSchema, WebhookNotifier } from '../notifications/webhook-notifier.js';
import { PagerDutyNotifier } from '../notifications/pagerduty-notifier.js';

export const PLATFORMS = ['kubernetes', 'local'] as const;

export const PlatformConfigSchema = z.object({
  BLUEGREEN_PLATFORM: z.enum(PLATFORMS, {
    errorMap: () => ({
      message: `BLUEGREEN_PLATFORM must be one of ${PLATFORMS.join(', ')}: 'kubernetes' drives a cluster through a kubeconfig, 'local' runs slots as processes on this machine`,
    }),
  }),
});

export type PlatformConfig = z.output<typeof PlatformConfigSchema>;

/** The dependencies of `createActivities`: the platform, the smoke suite, Prometheus, the webhook and incident receiver. */
export async function loadActivityDependencies(env: NodeJS.ProcessEnv): Promise<ActivityDependencies> {
  // Every adapter's settings read at once: one error names every variable at fault.
  const settings = parseEnvParts(
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
  const slo = new PrometheusSloSource(settings.prometheus);
  const bases = linkBases(settings.links);
  const receivers = [
    { name: 'webhook', notifier: WebhookNotifier.fromSettings(settings.webhook, bases) },
    { name: 'pagerduty', notifier: PagerDutyNotifier.fromSettings(settings.pagerDuty, bases) },
  ].flatMap(({ name, notifier }) => (notifier ? [{ name, notifier }] : []));
  const notifier = receivers.length > 0 ? new Notifiers(receivers) : null;
  if (settings.platform.BLUEGREEN_PLATFORM === 'local') {
    const local = new LocalPlatform(settings.local.BLUEGREEN_LOCAL_URL);
    return {
      platform: local,
      smoke: new HttpSmokeRunner({ resolveEndpoint: (url) => local.resolveServiceUrl(url) }),
      slo,
      notifier,
    };
  }
  return {
    platform: new KubernetesPlatform(loadKubeConfig(env, settings.kube)),
    smoke: new HttpSmokeRunner(),
    slo,
    notifier,
  };
}
