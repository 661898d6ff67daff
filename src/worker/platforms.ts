/**
 * Chooses the platform and gates the worker drives, from configuration. The worker registers
 * nothing fake: a platform that is not configured (no kubeconfig, say) stops the worker at start
 * with a message saying what to set.
 */
import { z } from 'zod';
import type { ActivityDependencies } from '../activities/index.js';
import { parseEnv } from '../config/env.js';
import { PrometheusSloSource } from '../checks/prometheus-slo-source.js';
import { HttpSmokeRunner } from '../checks/smoke-suite.js';
import { KubernetesPlatform } from '../platforms/kubernetes-platform.js';
import { LocalPlatform } from '../platforms/local-platform.js';
import { Notifiers, WebhookNotifier } from '../notifications/webhook-notifier.js';
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
  const { BLUEGREEN_PLATFORM: platform } = parseEnv(PlatformConfigSchema, env);
  const slo = PrometheusSloSource.fromEnv(env);
  const receivers = [
    { name: 'webhook', notifier: WebhookNotifier.fromEnv(env) },
    { name: 'pagerduty', notifier: PagerDutyNotifier.fromEnv(env) },
  ].flatMap(({ name, notifier }) => (notifier ? [{ name, notifier }] : []));
  const notifier = receivers.length > 0 ? new Notifiers(receivers) : null;
  if (platform === 'local') {
    const local = LocalPlatform.fromEnv(env);
    return {
      platform: local,
      smoke: new HttpSmokeRunner({ resolveEndpoint: (url) => local.resolveServiceUrl(url) }),
      slo,
      notifier,
    };
  }
  return { platform: KubernetesPlatform.fromEnv(env), smoke: new HttpSmokeRunner(), slo, notifier };
}
