/**
 * The links an incident carries: the run in the Temporal UI, and a Prometheus graph of the
 * breached query over the span from the traffic's move to the incident. Built in the worker,
 * which knows where people reach those UIs (BLUEGREEN_TEMPORAL_UI_URL, BLUEGREEN_PROMETHEUS_UI_URL).
 */
import type { DeploymentEvent } from '../shared/deployment-event.js';
import type { IncidentLinksConfig } from '../config/worker-settings.js';

export interface LinkBases {
  temporalUiUrl?: string | undefined;
  prometheusUiUrl?: string | undefined;
}

export interface Link {
  href: string;
  text: string;
}

/** The links' bases, from the settings read at start. */
export function linkBases(config: IncidentLinksConfig): LinkBases {
  return {
    temporalUiUrl: config.BLUEGREEN_TEMPORAL_UI_URL,
    prometheusUiUrl: config.BLUEGREEN_PROMETHEUS_UI_URL ?? config.PROMETHEUS_URL,
  };
}

/** The incident's links, for the bases configured; none for an event that is not an incident. */
export function incidentLinks(event: DeploymentEvent, bases: LinkBases): Link[] {
  if (!event.incident) return [];
  const links: Link[] = [];
  if (bases.temporalUiUrl && event.runId) {
    const ui = bases.temporalUiUrl.replace(/\/+$/, '');
    links.push({
      href:
        `${ui}/namespaces/${encodeURIComponent(event.temporalNamespace ?? 'default')}` +
        `/workflows/${encodeURIComponent(event.workflowId)}/${encodeURIComponent(event.runId)}/history`,
      text: 'the deployment in the Temporal UI',
    });
  }
  const breach = event.incident.breach;
  if (bases.prometheusUiUrl && breach) {
    const end = new Date(breach.to);
    // A minute either side of the span, so the graph shows the slot before and at the breach.
    const rangeSeconds = Math.max(300, Math.ceil((end.getTime() - new Date(breach.from).getTime()) / 1000) + 120);
    const params = new URLSearchParams({
      'g0.expr': breach.query,
      'g0.tab': '0',
      'g0.range_input': `${rangeSeconds}s`,
      'g0.end_input': new Date(end.getTime() + 60_000).toISOString().slice(0, 19).replace('T', ' '),
    });
    links.push({
      href: `${bases.prometheusUiUrl.replace(/\/+$/, '')}/graph?${params.toString()}`,
      text: `${breach.slo} on ${breach.slot} in Prometheus`,
    });
  }
  return links;
}
