/**
 * Tells people what a deployment needs or did, as the procedure's "notify team" and "create incident
 * ticket" steps: a Slack-compatible JSON POST (`text`, plus the event's fields for other
 * receivers) when a deployment waits for approval, rolls back, fails or succeeds. A rollback, a
 * failure and a stuck rollback are incidents: their text adds the summary and the links (the run
 * in the Temporal UI, the breached query in Prometheus). A webhook that fails is reported to the
 * caller and logged; it never fails a deployment.
 */
import axios from 'axios';
import type { Notifier } from '../activities/contract.js';
import type { DeploymentEvent } from '../shared/deployment-event.js';
import { incidentLinks } from './incident-links.js';
import type { LinkBases } from './incident-links.js';
import type { WebhookConfig } from '../config/worker-settings.js';

const ICONS: Record<DeploymentEvent['kind'], string> = {
  'awaiting-approval': ':hourglass:',
  'rollback-stuck': ':warning:',
  'rolled-back': ':rewind:',
  failed: ':rotating_light:',
  succeeded: ':white_check_mark:',
  'observe-breach': ':mag:',
  'worker-missing': ':electric_plug:',
};

/**
 * POSTs `body` as JSON; returns 'delivered', or why not (logged). Never throws: a receiver that
 * fails never fails a deployment.
 */
export async function deliver(
  url: string,
  body: unknown,
  {
    timeoutMs,
    what,
    event,
    log,
  }: { timeoutMs: number; what: string; event: DeploymentEvent; log: (message: string) => void },
): Promise<string> {
  let outcome: string;
  try {
    const response = await axios.post(url, body, { timeout: timeoutMs, validateStatus: () => true });
    if (response.status >= 200 && response.status < 300) return 'delivered';
    outcome = `${what} answered HTTP ${response.status}`;
  } catch (error) {
    outcome = `${what} unreachable: ${(error as { code?: string }).code ?? (error as Error).message}`;
  }
  log(`notification not delivered (${event.kind}, ${event.workflowId}): ${outcome}`);
  return outcome;
}

/** The Slack-compatible body: `text` (an incident adds its summary and links), plus the event's fields. */
export function slackMessage(event: DeploymentEvent, bases: LinkBases = {}) {
  const links = incidentLinks(event, bases);
  const lines = [`${ICONS[event.kind]} ${event.namespace}/${event.app} ${event.version}: ${event.message}`];
  // The summary's first line repeats the message.
  if (event.incident) lines.push(...event.incident.summary.split('\n').slice(1));
  if (links.length > 0) lines.push(links.map((link) => `<${link.href}|${link.text}>`).join(' · '));
  return { text: lines.join('\n'), ...event, links };
}

export class WebhookNotifier implements Notifier {
  constructor(
    private readonly url: string,
    private readonly timeoutMs = 5000,
    private readonly log: (message: string) => void = (message) => process.stderr.write(`${message}\n`),
    private readonly bases: LinkBases = {},
  ) {}

  /** The notifier the settings ask for, or null when no webhook is configured. */
  static fromSettings(config: WebhookConfig, bases: LinkBases): WebhookNotifier | null {
    return config.BLUEGREEN_WEBHOOK_URL
      ? new WebhookNotifier(config.BLUEGREEN_WEBHOOK_URL, config.BLUEGREEN_WEBHOOK_TIMEOUT_MS, undefined, bases)
      : null;
  }

  async notify(event: DeploymentEvent): Promise<string> {
    return await deliver(this.url, slackMessage(event, this.bases), {
      timeoutMs: this.timeoutMs,
      what: 'webhook',
      event,
      log: this.log,
    });
  }
}

/** Every configured receiver gets each event; the outcome names each one's delivery. */
export class Notifiers implements Notifier {
  constructor(private readonly receivers: readonly { name: string; notifier: Notifier }[]) {}

  async notify(event: DeploymentEvent): Promise<string> {
    const outcomes = await Promise.all(
      this.receivers.map(async ({ name, notifier }) => `${name}: ${await notifier.notify(event)}`),
    );
    return outcomes.join('; ');
  }
}
