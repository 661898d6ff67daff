/**
 * Chooses the platform and gates the worker drives, from configuration. The worker registers
 * nothing fake: a platform that is not configured (no kubeconfig, say) stops the worker at start
 * with a message saying what to set.
 */
import type { ActivityDependencies } from '../activities/index.js';
import { readWorkerSettings } from '../config/worker-settings.js';
import { loadKubeConfig } from '../config/kubeconfig.js';
import { PrometheusSloSource } from '../checks/prometheus-slo-source.js';
import { HttpSmokeRunner } from '../checks/smoke-suite.js';
import { KubernetesPlatform } from '../platforms/kubernetes-platform.js';
import { LocalPlatform } from '../platforms/local-platform.js';
import { linkBases } from '../notifications/incident-links.js';
import { Notifiers, WebhookNotifier } from '../notifications/webhook-notifier.js';
import { PagerDutyNotifier } from '../notifications/pagerduty-notifier.js';

/**
 * The dependencies of `createActivities`: the platform, the smoke suite, Prometheus, the webhook
 * and incident receiver.
 */
export async function loadActivityDependencies(env: NodeJS.ProcessEnv): Promise<ActivityDependencies> {
  // Every adapter's settings read at once: one error names every variable at fault.
  const settings = readWorkerSettings(env);
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
