/**
 * The evidence a rollback keeps before the failing slot is scaled down (the procedure's §3.3):
 * its containers' log tails, the events of its objects, each SLO's series over the deployment,
 * the restart counts and what differs between the two slots' pod templates. Pure module: the
 * workflow keeps the summary in the status and the result; the whole of it is the capture
 * activity's result in the history, which `bluegreen evidence` writes out as a bundle.
 */
import { formatValue } from './analysis.js';
import type { Slot } from './slots.js';

export interface ContainerEvidence {
  pod: string;
  container: string;
  ready: boolean;
  restarts: number;
  /** The last lines of its log; of the previous container too, after a restart. */
  log: string[];
  previousLog: string[] | null;
  /** Why the log could not be read, when it could not. */
  logError: string | null;
}

export interface EvidenceEvent {
  at: string | null;
  type: string;
  reason: string;
  /** Kind/name, e.g. Pod/detection-api-green-7d9f-abcde. */
  object: string;
  message: string;
  count: number;
}

/** What the platform holds about the failing slot, read before it is scaled down. */
export interface SlotEvidence {
  deployment: string;
  containers: ContainerEvidence[];
  events: EvidenceEvent[];
  /** `path: other slot → failing slot`, for every pod template field that differs. */
  templateDiff: string[];
  /** What could not be read (a part, never the whole). */
  problems: string[];
}

/** One SLO over the span, as Prometheus holds it: [unix seconds, value]. */
export interface SloSeries {
  name: string;
  query: string;
  comparison: string;
  threshold: number;
  gate: boolean;
  points: [number, number][];
  error: string | null;
}

export interface Evidence {
  collectedAt: string;
  slot: Slot;
  image: string;
  version: string;
  /** When traffic moved to the slot (null: it never did), and the span the series cover. */
  switchedAt: string | null;
  from: string;
  to: string;
  /** The breach that rolled back, if one did. */
  breach: { slo: string; value: number | null; comparison: string; threshold: number } | null;
  platform: SlotEvidence;
  series: SloSeries[];
}

/** What the status and the result keep: enough for the person paged to start. */
export interface EvidenceSummary {
  collectedAt: string;
  slot: Slot;
  /** The breached SLO, its value against its rule. */
  breach: string | null;
  /** Pods that restarted, with their counts. */
  restartedPods: string[];
  /** Log lines that look like errors (at most 10), each with its pod. */
  errorLines: string[];
  events: number;
  warningEvents: string[];
  /** The whole evidence's size as JSON, in bytes (bounded by the capture). */
  bytes: number;
  problems: string[];
}

const ERROR_LINE =
  /\b(error|err|exception|fatal|panic|crash|failed|traceback)\b|"level":\s*(50|60)\b|"level":\s*"(error|fatal)"/i;

export function summarizeEvidence(evidence: Evidence): EvidenceSummary {
  const { breach, platform } = evidence;
  const errorLines: string[] = [];
  for (const container of platform.containers) {
    for (const line of [...(container.previousLog ?? []), ...container.log]) {
      if (errorLines.length < 10 && ERROR_LINE.test(line)) errorLines.push(`${container.pod}: ${line.slice(0, 300)}`);
    }
  }
  return {
    collectedAt: evidence.collectedAt,
    slot: evidence.slot,
    breach: breach
      ? `${breach.slo} = ${formatValue(breach.value)} (must be ${breach.comparison} ${breach.threshold})`
      : null,
    restartedPods: platform.containers.filter((c) => c.restarts > 0).map((c) => `${c.pod} (${c.restarts} restarts)`),
    errorLines,
    events: platform.events.length,
    warningEvents: platform.events
      .filter((e) => e.type === 'Warning')
      .slice(-5)
      .map((e) => `${e.object} ${e.reason}: ${e.message}${e.count > 1 ? ` (x${e.count})` : ''}`),
    bytes: JSON.stringify(evidence).length,
    problems: [
      ...platform.problems,
      ...evidence.series.filter((s) => s.error).map((s) => `series ${s.name}: ${s.error}`),
    ],
  };
}

/** Keeps the evidence within `maxBytes` as JSON: the oldest log lines go first. */
export function boundEvidence(evidence: Evidence, maxBytes: number): Evidence {
  let size = JSON.stringify(evidence).length;
  while (size > maxBytes) {
    const longest = evidence.platform.containers.reduce<ContainerEvidence | null>(
      (a, c) =>
        !a || c.log.length + (c.previousLog?.length ?? 0) > a.log.length + (a.previousLog?.length ?? 0) ? c : a,
      null,
    );
    if (!longest || longest.log.length + (longest.previousLog?.length ?? 0) === 0) break;
    if ((longest.previousLog?.length ?? 0) > longest.log.length)
      longest.previousLog = longest.previousLog!.slice(Math.ceil(longest.previousLog!.length / 4));
    else longest.log = longest.log.slice(Math.ceil(longest.log.length / 4));
    size = JSON.stringify(evidence).length;
  }
  return evidence;
}

/** Every leaf that differs between two plain objects, as `path: before → after` (for the template diff). */
export function diffObjects(before: unknown, after: unknown, path = ''): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) =>
      diffObjects(before[key], after[key], Array.isArray(before) ? `${path}[${key}]` : path ? `${path}.${key}` : key),
    );
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  return [`${path || '(root)'}: ${JSON.stringify(before) ?? 'absent'} → ${JSON.stringify(after) ?? 'absent'}`];
}
