/**
 * The release train's spec (YAML, as the deployment spec): the image, the app's base deployment
 * spec, the clusters (each a worker's task queue), the ordered stages with their overrides, soak,
 * approval and windows, the freezes, and what a failure does. Parsed here, on the client: each
 * stage's deployment on each cluster is merged and validated as a deployment spec, so a bad train
 * is refused before anything starts, naming the field (an unknown cluster, an empty wave,
 * overlapping windows, a stage's override the deployment spec refuses).
 */
import { z } from 'zod';
import { parseDeploymentSpec, SpecValidationError } from '../deployment-spec/deployment-spec.js';
import type { DeploymentSpec } from '../deployment-spec/deployment-spec.js';
import { minutesOf, TrainOnFailure, WEEKDAYS, windowsOverlap } from '../shared/train.js';
import type { TrainPlan, TrainStage, TrainWindow } from '../shared/train.js';

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$|^24:00$/;

const WindowSchema = z
  .object({
    days: z.array(z.enum(WEEKDAYS)).min(1, 'a window needs at least one day'),
    from: z.string().regex(HHMM, 'from must be HH:MM (24-hour)'),
    to: z.string().regex(HHMM, 'to must be HH:MM (24-hour; 24:00 is the end of the day)'),
    timeZone: z.string().refine(isTimeZone, (zone) => ({ message: `unknown time zone '${zone}' (use an IANA name)` })),
  })
  .strict()
  .refine((w) => w.from < w.to, { message: 'a window must end after it starts, on the same day', path: ['to'] });

const FreezeSchema = z
  .object({
    from: z.string().datetime({ offset: true }),
    to: z.string().datetime({ offset: true }),
    reason: z.string().min(1),
  })
  .strict()
  .refine((f) => Date.parse(f.from) < Date.parse(f.to), { message: 'a freeze must end after it starts', path: ['to'] });

const StageSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a stage name is lower-case letters, digits and dashes'),
    /** One cluster, or `clusters` for a wave deployed in parallel. */
    cluster: z.string().optional(),
    clusters: z.array(z.string()).optional(),
    /** The namespace on this stage's clusters; the base spec's otherwise. */
    namespace: z.string().optional(),
    /** Fields of the base spec this stage changes (strategy, replicas, gates, monitor...): merged, then validated. */
    overrides: z.record(z.unknown()).default({}),
    soakSeconds: z.number().int().min(0).max(86_400).default(0),
    approval: z.enum(['none', 'required']).default('none'),
    windows: z.array(WindowSchema).default([]),
    maxParallel: z.number().int().min(1).optional(),
    failureBudget: z.number().int().min(0).default(0),
  })
  .strict();

export const TrainSpecSchema = z
  .object({
    /** The train's name (its workflow id): the base spec's app by default. */
    name: z.string().min(1).optional(),
    image: z.string().min(1),
    /** The app's deployment spec without its image: what every stage starts from. */
    base: z.record(z.unknown()),
    /**
     * Each cluster's task queue, and what its deployments change of the base on every stage (its
     * namespace, its smoke endpoint, its router...); a stage's own overrides come after them.
     */
    clusters: z.record(
      z.object({ taskQueue: z.string().min(1), overrides: z.record(z.unknown()).default({}) }).strict(),
    ),
    stages: z.array(StageSchema).min(1, 'a train needs at least one stage'),
    freezes: z.array(FreezeSchema).default([]),
    onFailure: z.enum([TrainOnFailure.Hold, TrainOnFailure.RollbackCompleted]).default(TrainOnFailure.Hold),
    /**
     * How long a stage's deployment may run before the train asks whether its cluster's worker
     * polls at all; with none, people are notified, and asked again each time this passes.
     */
    workerNoticeSeconds: z
      .number()
      .int()
      .min(10, 'at least 10 s: a worker that is restarting is not missing')
      .max(86_400)
      .default(120),
  })
  .strict();

export type TrainSpecInput = z.input<typeof TrainSpecSchema>;

export class TrainSpecError extends Error {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid train spec:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`);
    this.name = 'TrainSpecError';
  }
}

/** Parses a train, merges and validates every stage's deployment spec; throws TrainSpecError naming every bad field. */
export function parseTrainSpec(input: unknown): TrainPlan {
  const parsed = TrainSpecSchema.safeParse(input);
  if (!parsed.success) {
    throw new TrainSpecError(
      parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(train)', message: i.message })),
    );
  }
  const train = parsed.data;
  const issues: { path: string; message: string }[] = [];
  const known = Object.keys(train.clusters);
  // A deployment's workflow id is the app's on its cluster's queue: two clusters on one queue
  // would be one cluster to Temporal, their deployments refused as one already running.
  const byQueue = new Map<string, string>();
  for (const [cluster, { taskQueue }] of Object.entries(train.clusters)) {
    const other = byQueue.get(taskQueue);
    if (other !== undefined)
      issues.push({
        path: `clusters.${cluster}.taskQueue`,
        message: `task queue '${taskQueue}' is cluster ${other}'s too: each cluster polls a queue of its own`,
      });
    byQueue.set(taskQueue, cluster);
  }
  const names = new Set<string>();
  const stages: TrainStage[] = [];
  let version = '';
  let app = '';
  for (const [i, stage] of train.stages.entries()) {
    const at = `stages.${i}`;
    if (names.has(stage.name)) issues.push({ path: `${at}.name`, message: `stage ${stage.name} is named twice` });
    names.add(stage.name);
    if (stage.cluster !== undefined && stage.clusters !== undefined)
      issues.push({ path: at, message: 'name one cluster (cluster) or a wave (clusters), not both' });
    const clusters = stage.clusters ?? (stage.cluster !== undefined ? [stage.cluster] : []);
    if (clusters.length === 0)
      issues.push({
        path: `${at}.${stage.clusters ? 'clusters' : 'cluster'}`,
        message: 'a stage needs a cluster; a wave cannot be empty',
      });
    for (const [j, cluster] of clusters.entries()) {
      if (!known.includes(cluster))
        issues.push({
          path: stage.clusters ? `${at}.clusters.${j}` : `${at}.cluster`,
          message: `unknown cluster '${cluster}' (clusters: ${known.join(', ') || 'none'})`,
        });
    }
    if (new Set(clusters).size !== clusters.length)
      issues.push({ path: `${at}.clusters`, message: 'a wave names each cluster once' });
    if (clusters.length > 0 && stage.failureBudget >= clusters.length)
      issues.push({
        path: `${at}.failureBudget`,
        message: `a budget of ${stage.failureBudget} failures lets every one of the ${clusters.length} clusters fail`,
      });
    for (const [j, w] of stage.windows.entries()) {
      const minutes = minutesOf(w.to) - minutesOf(w.from);
      if (stage.soakSeconds > minutes * 60)
        issues.push({
          path: `${at}.soakSeconds`,
          message: `a ${stage.soakSeconds} s soak does not fit in window ${j} (${w.from} to ${w.to}, ${minutes} min)`,
        });
    }
    for (const [j, a] of stage.windows.entries())
      for (const [k, b] of stage.windows.entries())
        if (k > j && windowsOverlap(a as TrainWindow, b as TrainWindow))
          issues.push({ path: `${at}.windows.${k}`, message: `overlaps window ${j}: merge them` });
    const targets = [];
    for (const cluster of clusters.filter((c) => known.includes(c))) {
      try {
        const spec = stageSpec(train.base, train.clusters[cluster]!.overrides, train.image, stage);
        targets.push({ cluster, taskQueue: train.clusters[cluster]!.taskQueue, spec });
        version = spec.version;
        app = spec.app;
      } catch (error) {
        if (!(error instanceof SpecValidationError)) throw error;
        for (const issue of error.issues)
          issues.push({ path: `${at} on ${cluster} (base + overrides).${issue.path}`, message: issue.message });
      }
    }
    stages.push({
      name: stage.name,
      targets,
      maxParallel: Math.min(stage.maxParallel ?? clusters.length, Math.max(1, clusters.length)),
      failureBudget: stage.failureBudget,
      soakSeconds: stage.soakSeconds,
      approval: stage.approval,
      windows: stage.windows as TrainWindow[],
    });
  }
  if (issues.length > 0) throw new TrainSpecError(issues);
  return {
    name: train.name ?? app,
    image: train.image,
    version,
    stages,
    freezes: train.freezes,
    onFailure: train.onFailure,
    workerNoticeSeconds: train.workerNoticeSeconds,
  };
}

/**
 * A stage's deployment spec on one cluster: the base, the cluster's overrides and then the stage's
 * merged in, the image, the stage's namespace and the soak.
 */
function stageSpec(
  base: Record<string, unknown>,
  cluster: Record<string, unknown>,
  image: string,
  stage: z.output<typeof StageSchema>,
): DeploymentSpec {
  const merged = merge(merge(base, cluster), stage.overrides);
  const soak =
    stage.soakSeconds > 0
      ? {
          observe: {
            durationSeconds: stage.soakSeconds,
            intervalSeconds: Math.min(60, stage.soakSeconds),
            keepOldSlotWarm: true,
          },
        }
      : {};
  return parseDeploymentSpec({
    ...merged,
    image,
    ...(stage.namespace ? { namespace: stage.namespace } : {}),
    ...soak,
  });
}

/** `over` merged into `base`: objects field by field, anything else (arrays included) replaced. */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? merge(current, value) : value;
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
