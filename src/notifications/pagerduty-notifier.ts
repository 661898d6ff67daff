/**
 * Incidents as PagerDuty Events API v2 `trigger` events, a format many incident tools accept:
 * rollbacks, failures, stuck rollbacks and breaches after the deployment only (a wait for approval
 * or a success pages nobody).
 * One run's events share a dedup key, so a stuck rollback and its end update one alert. A receiver
 * that fails is reported and logged; it never fails a deployment.
 */
import type { DeploymentEvent } from '../shared/deployment-event.js';
import { incidentLinks } from './incident-links.js';
import type { LinkBases } from './incident-links.js';
import { deliver } from './webhook-notifier.js';
import type { Notifier } from '../activities/contract.js';
import type { PagerDutyConfig } from '../config/worker-settings.js';

const SEVERITY: Partial<Record<DeploymentEvent['kind'], 'critical' | 'error' | 'warning'>> = {
  'rollback-stuck': 'critical',
  'rolled-back': 'error',
  failed: 'warning',
  'observe-breach': 'error',
};

/** The Events API v2 body of an incident event (PagerDuty limits the summary to 1024 characters). */
export function pagerDutyEvent(event: DeploymentEvent, routingKey: string, bases: LinkBases) {
  const links = incidentLinks(event, bases);
  const temporal = links.find((l) => l.text.includes('Temporal'));
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: `${event.workflowId}/${event.runId ?? ''}`,
    payload: {
      summary: `${event.namespace}/${event.app} ${event.version}: ${event.message}`.slice(0, 1024),
      source: event.workflowId,
      severity: SEVERITY[event.kind] ?? 'info',
      timestamp: event.incident?.breach?.to ?? new Date().toISOString(),
      component: event.app,
      group: event.namespace,
      class: event.reason ?? event.kind,
      custom_details: {
        kind: event.kind,
        image: event.image,
        reason: event.reason ?? null,
        failedCheck: event.failedCheck ?? null,
        summary: event.incident?.summary ?? event.message,
        breach: event.incident?.breach ?? null,
        restarts: event.incident?.restarts ?? null,
        liveSlot: event.incident?.liveSlot ?? null,
      },
    },
    client: 'bluegreen',
    ...(temporal ? { client_url: temporal.href } : {}),
    links,
  };
}

export class PagerDutyNotifier implements Notifier {
  constructor(
    private readonly routingKey: string,
    private readonly url = 'https://events.pagerduty.com/v2/enqueue',
    private readonly bases: LinkBases = {},
    private readonly timeoutMs = 5000,
    private readonly log: (message: string) => void = (message) => process.stderr.write(`${message}\n`),
  ) {}

  /** The notifier the settings ask for, or null when no routing key is set. */
  static fromSettings(config: PagerDutyConfig, bases: LinkBases): PagerDutyNotifier | null {
    if (!config.BLUEGREEN_PAGERDUTY_ROUTING_KEY) return null;
    return new PagerDutyNotifier(
      config.BLUEGREEN_PAGERDUTY_ROUTING_KEY,
      config.BLUEGREEN_PAGERDUTY_URL,
      bases,
      config.BLUEGREEN_PAGERDUTY_TIMEOUT_MS,
    );
  }

  async notify(event: DeploymentEvent): Promise<string> {
    if (!event.incident) return 'not an incident';
    return await deliver(this.url, pagerDutyEvent(event, this.routingKey, this.bases), {
      timeoutMs: this.timeoutMs,
      what: 'incident receiver',
      event,
      log: this.log,
    });
  }
}
