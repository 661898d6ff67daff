/**
 * A notification's content: what the workflow tells people through the worker's webhook. Pure
 * module: the workflow builds it.
 */
import { formatValue } from './analysis.js';
import type { DeploymentStatus } from './deployment-status.js';
import { renderTemplate } from './template.js';

/** What the workflow reports; plain JSON, recorded in the history as the activity's input. */
export interface DeploymentEvent {
  kind:
    | 'awaiting-approval'
    | 'rollback-stuck'
    | 'rolled-back'
    | 'failed'
    | 'succeeded'
    | 'observe-breach'
    /** A release train's deployment waits for its cluster's worker, which no longer polls. */
    | 'worker-missing';
  app: string;
  namespace: string;
  version: string;
  image: string;
  /** One line for people: what happened and what to do. */
  message: string;
  reason?: string | null;
  failedCheck?: string | null;
  workflowId: string;
  /** The run and its Temporal namespace, for the link to it in the Temporal UI (absent in older runs). */
  runId?: string;
  temporalNamespace?: string;
  /** Set on a rollback, a failure and a stuck rollback: what the person paged needs first. */
  incident?: Incident | null;
}

/** The procedure's incident (§3.1 step 5): a summary and what the links are built from. */
export interface Incident {
  /** A few lines: what happened, what is live now, what breached and by how much, restarts. */
  summary: string;
  /** What is live now, as far as the workflow drove it. */
  liveSlot: string | null;
  /** The gated SLO that breached: its query as the monitor ran it, and the span to graph. */
  breach: IncidentBreach | null;
  /** Restarts of the new slot's pods during monitoring, when it was monitored. */
  restarts: number | null;
}

export interface IncidentBreach {
  slo: string;
  value: number | null;
  comparison: string;
  threshold: number;
  /** The PromQL as it ran against the new slot and version (for the Prometheus graph link). */
  query: string;
  slot: string;
  /** From the traffic's move to the new slot (or the deployment's start) to the incident. */
  from: string;
  to: string;
}

interface IncidentSource {
  status: DeploymentStatus;
  /** The spec as far as it is known (a spec refused in preflight may lack any of it). */
  spec: { monitor?: { window?: string; slos?: readonly { name: string; query: string }[] }; service?: string };
  /** The deployment's run (`{{run}}` in the queries). */
  run: string;
  message: string;
  failedCheck: string | null;
  /** The workflow's time now. */
  now: Date;
}

/** The incident for a rollback or failure, from the status and the spec. */
export function incidentOf({ status, spec, run, message, failedCheck, now }: IncidentSource): Incident {
  // The window after the deployment measured last, if it ran; else the monitor.
  const measured = failedCheck
    ? (status.observe?.latest[failedCheck] ?? status.monitor?.latest[failedCheck] ?? null)
    : null;
  const slo = failedCheck ? spec.monitor?.slos?.find((s) => s.name === failedCheck) : undefined;
  const movedAt =
    status.transitions.find((t) => t.phase === 'Switching' || t.phase === 'Monitoring')?.at ??
    status.transitions[0]?.at ??
    now.toISOString();
  const slot = status.observe?.slot ?? status.toSlot;
  const breach: IncidentBreach | null =
    measured && slo && slot
      ? {
          slo: slo.name,
          value: measured.value,
          comparison: measured.comparison,
          threshold: measured.threshold,
          query: renderTemplate(slo.query, {
            app: status.app,
            namespace: status.namespace,
            slot,
            version: status.version,
            run,
            ...(spec.monitor?.window ? { window: spec.monitor.window } : {}),
            ...(spec.service ? { service: spec.service } : {}),
          }),
          slot,
          from: movedAt,
          to: now.toISOString(),
        }
      : null;
  const restarts = status.monitor ? status.monitor.restarts : null;
  const lines = [`${status.namespace}/${status.app} ${status.version} (${status.image}): ${message}`];
  if (breach)
    lines.push(
      `breached: ${breach.slo} = ${formatValue(breach.value)} (must be ${breach.comparison} ` +
        `${breach.threshold}) on ${breach.slot}`,
    );
  if (restarts) lines.push(`pod restarts on ${slot ?? 'the new slot'} during monitoring: ${restarts}`);
  const backTo =
    status.previous?.image && status.activeSlot === status.previous.slot ? ` (${status.previous.image})` : '';
  lines.push(`live now: ${status.activeSlot ?? 'unknown slot'}${backTo}`);
  return { summary: lines.join('\n'), liveSlot: status.activeSlot, breach, restarts };
}
