/**
 * Tells people what a deployment needs or did, as the procedure's "notify team" and "create incident
 * ticket" steps: a Slack-compatible JSON POST (`text`, plus the event's fields for other
 * receivers) when a deployment waits for approval, rolls back, fails or succeeds. A webhook that
 * fails is reported to the caller and logged; it never fails a deployment.
 */
import axios from 'axios';
import { z } from 'zod';
import { parseEnv } from '../config/env.js';
import type { DeploymentEvent } from '../shared/deployment-event.js';

export type { DeploymentEvent };


export interface Notifier {
  /** Returns how the delivery went ('delivered', or why not); never throws. */
  notify(event: DeploymentEvent): Promise<string>;
}

export const WebhookConfigSchema = z.object({
  BLUEGREEN_WEBHOOK_URL: z.string().regex(/^https?:\/\/\S+$/, 'BLUEGREEN_WEBHOOK_URL must be an http(s) URL').optional(),
  BLUEGREEN_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
});

const ICONS: Record<DeploymentEvent['kind'], string> = {
  'awaiting-approval': ':hourglass:',
  'rollback-stuck': ':warning:',
  'rolled-back': ':rewind:',
  failed: ':rotating_light:',
  succeeded: ':white_check_mark:',
};

export class WebhookNotifier implements Notifier {
  constructor(
    private readonly url: string,
    private readonly timeoutMs = 5000,
    private readonly log: (message: string) => void = (message) => process.stderr.write(`${message}\n`),
  ) {}

  /** The notifier the environment asks for, or null when no webhook is configured. */
  static fromEnv(env: NodeJS.ProcessEnv): WebhookNotifier | null {
    const config = parseEnv(WebhookConfigSchema, env);
    return config.BLUEGREEN_WEBHOOK_URL ? new WebhookNotifier(config.BLUEGREEN_WEBHOOK_URL, config.BLUEGREEN_WEBHOOK_TIMEOUT_MS) : null;
  }

  async notify(event: DeploymentEvent): Promise<string> {
    const text = `${ICONS[event.kind]} ${event.namespace}/${event.app} ${event.version}: ${event.message}`;
    try {
      const response = await axios.post(this.url, { text, ...event }, { timeout: this.timeoutMs, validateStatus: () => true });
      if (response.status >= 200 && response.status < 300) return 'delivered';
      const outcome = `webhook answered HTTP ${response.status}`;
      this.log(`notification not delivered (${event.kind}, ${event.workflowId}): ${outcome}`);
      return outcome;
    } catch (error) {
      const outcome = `webhook unreachable: ${(error as { code?: string }).code ?? (error as Error).message}`;
      this.log(`notification not delivered (${event.kind}, ${event.workflowId}): ${outcome}`);
      return outcome;
    }
  }
}
