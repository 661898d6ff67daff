/**
 * The shapes of the CLI's `--json` output, as zod schemas: the contract CI scripts can rely on
 * (and validate against). `deploy --wait --json` and `watch --json` print a result, `status --json`
 * a status, `list --json` an array of summaries, `deploy --json` without --wait a started run,
 * `plan --json` a plan.
 */
import { z } from 'zod';
import { AnalysisResult, Comparison } from '../shared/analysis.js';
import { Gate, Outcome, Phase, RollbackReason } from '../shared/deployment-status.js';
import { Slot } from '../shared/slots.js';
import { TrafficRouter } from '../shared/traffic.js';

const slot = z.enum([Slot.Blue, Slot.Green]);
const isoTime = z.string().datetime({ offset: true });
const phase = z.nativeEnum(Phase);

export const MeasurementSchema = z
  .object({
    name: z.string(),
    value: z.number().nullable(),
    comparison: z.nativeEnum(Comparison),
    threshold: z.number(),
    gate: z.boolean(),
    result: z.nativeEnum(AnalysisResult),
    message: z.string().optional(),
    stable: z.object({ value: z.number().nullable(), threshold: z.number().nullable() }).strict().optional(),
  })
  .strict();

export const SmokeReportSchema = z
  .object({
    endpoint: z.string(),
    passed: z.boolean(),
    checks: z.array(
      z
        .object({
          name: z.string(),
          verdict: z.enum(['passed', 'warning', 'failed']),
          latencyMs: z.number().nullable(),
          message: z.string(),
        })
        .strict(),
    ),
  })
  .strict();

export const DeploymentStatusSchema = z
  .object({
    app: z.string(),
    namespace: z.string(),
    image: z.string(),
    version: z.string(),
    phase,
    message: z.string(),
    activeSlot: slot.nullable(),
    idleSlot: slot.nullable(),
    fromSlot: slot.nullable(),
    toSlot: slot.nullable(),
    awaiting: z
      .object({ gate: z.nativeEnum(Gate), since: isoTime, timeoutAt: isoTime })
      .strict()
      .nullable(),
    abort: z.object({ reason: z.string(), by: z.string(), at: isoTime }).strict().nullable(),
    rejectedAborts: z.array(
      z.object({ reason: z.string(), by: z.string(), at: isoTime, message: z.string() }).strict(),
    ),
    smoke: SmokeReportSchema.nullable(),
    monitor: z
      .object({
        tick: z.number().int(),
        ticks: z.number().int(),
        durationSeconds: z.number(),
        intervalSeconds: z.number(),
        successful: z.number().int(),
        failed: z.number().int(),
        inconclusive: z.number().int(),
        errors: z.number().int(),
        consecutiveErrors: z.number().int(),
        restarts: z.number().int(),
        latest: z.record(MeasurementSchema),
        warmUpSeconds: z.number().optional(),
        scrapeIntervalSeconds: z.number().nullable().optional(),
        consecutiveInconclusive: z.number().int().optional(),
        pausedTicks: z.number().int().optional(),
      })
      .strict()
      .nullable(),
    rollback: z
      .object({
        startedAt: isoTime,
        seconds: z.number().nullable(),
        stuckSince: isoTime.nullable(),
        step: z.string().nullable(),
      })
      .strict()
      .nullable()
      .optional(),
    strategy: z.enum(['blueGreen', 'canary']).optional(),
    canary: z
      .object({
        router: z.string(),
        step: z.number().int(),
        steps: z.number().int(),
        weight: z.number(),
        stepWeight: z.number(),
        effectiveWeight: z.number().nullable(),
        observedShare: z.number().nullable(),
        canaryRequests: z.number().nullable(),
        stableRequests: z.number().nullable(),
        canaryReplicas: z.number().int(),
        hold: z
          .object({ since: isoTime, seconds: z.number(), extendedSeconds: z.number(), untilPromote: z.boolean() })
          .strict()
          .nullable(),
        analysis: z.string().nullable(),
        sharedCause: z.string().nullable(),
        completed: z.array(
          z
            .object({
              step: z.number().int(),
              weight: z.number(),
              observedShare: z.number().nullable(),
              canaryRequests: z.number().nullable(),
              seconds: z.number(),
            })
            .strict(),
        ),
        promotedBy: z.string().nullable(),
      })
      .strict()
      .nullable()
      .optional(),
    evidence: z
      .object({
        collectedAt: isoTime,
        slot,
        breach: z.string().nullable(),
        restartedPods: z.array(z.string()),
        errorLines: z.array(z.string()),
        events: z.number().int(),
        warningEvents: z.array(z.string()),
        bytes: z.number().int(),
        problems: z.array(z.string()),
      })
      .strict()
      .nullable()
      .optional(),
    observe: z
      .object({
        slot,
        tick: z.number().int(),
        ticks: z.number().int(),
        durationSeconds: z.number(),
        intervalSeconds: z.number(),
        keepOldSlotWarm: z.boolean(),
        successful: z.number().int(),
        failed: z.number().int(),
        inconclusive: z.number().int(),
        errors: z.number().int(),
        breaches: z.array(
          z
            .object({
              name: z.string(),
              value: z.number().nullable(),
              comparison: z.string(),
              threshold: z.number(),
              at: isoTime,
            })
            .strict(),
        ),
        latest: z.record(MeasurementSchema),
      })
      .strict()
      .nullable()
      .optional(),
    previous: z
      .object({ slot, image: z.string().nullable(), version: z.string().nullable() })
      .strict()
      .nullable()
      .optional(),
    activeCheck: z
      .object({
        slot,
        version: z.string().nullable(),
        verdict: z.enum(['stable', 'breaching', 'unknown']),
        measurements: z.array(MeasurementSchema),
        detail: z.string().nullable(),
        allowedUnstable: z.boolean(),
      })
      .strict()
      .nullable()
      .optional(),
    transitions: z.array(z.object({ phase, at: isoTime, message: z.string() }).strict()),
  })
  .strict();

export const DeploymentResultSchema = z
  .object({
    outcome: z.nativeEnum(Outcome),
    app: z.string(),
    namespace: z.string(),
    image: z.string(),
    version: z.string(),
    fromSlot: slot.nullable(),
    toSlot: slot.nullable(),
    liveSlot: slot.nullable(),
    liveImage: z.string().nullable(),
    reason: z.nativeEnum(RollbackReason).nullable(),
    failedCheck: z.string().nullable(),
    message: z.string(),
    warnings: z.array(z.string()),
    rollbackSeconds: z.number().nullable().optional(),
    status: DeploymentStatusSchema,
  })
  .strict();

export const DeploymentSummarySchema = z
  .object({
    workflowId: z.string(),
    runId: z.string(),
    app: z.string(),
    namespace: z.string(),
    version: z.string(),
    strategy: z.enum(['blueGreen', 'canary']),
    status: z.string(),
    outcome: z.nativeEnum(Outcome).nullable(),
    phase: phase.nullable(),
    reason: z.nativeEnum(RollbackReason).nullable(),
    startTime: isoTime,
    closeTime: isoTime.nullable(),
  })
  .strict();

/** What `status --json` prints when no worker answers: what Temporal itself holds. */
export const DeploymentSnapshotSchema = z
  .object({
    answeredBy: z.literal('temporal'),
    why: z.string(),
    workflowId: z.string(),
    runId: z.string(),
    app: z.string(),
    namespace: z.string(),
    version: z.string(),
    executionStatus: z.string(),
    phase: phase.nullable(),
    workerPollers: z.number().int(),
    pendingSignals: z.array(z.object({ name: z.string(), at: isoTime, input: z.unknown() }).strict()),
    pendingActivities: z.array(
      z.object({ activity: z.string(), attempt: z.number().int(), lastFailure: z.string().nullable() }).strict(),
    ),
    startTime: isoTime,
    closeTime: isoTime.nullable(),
  })
  .strict();

/** What `abort`, `approve` and `promote` print with `--json`. */
export const OperatorAnswerSchema = z
  .object({
    verb: z.enum(['abort', 'approve', 'promote']),
    delivery: z.enum(['accepted', 'recorded']),
    message: z.string(),
    phase: phase.nullable(),
  })
  .strict();

export const StartedSchema = z.object({ workflowId: z.string(), runId: z.string() }).strict();

const slotState = z
  .object({
    slot,
    deployment: z.string(),
    image: z.string().nullable(),
    version: z.string().nullable().optional(),
    run: z.string().nullable().optional(),
    replicas: z.number().int(),
    readyReplicas: z.number().int(),
    updatedReplicas: z.number().int(),
    availableReplicas: z.number().int(),
  })
  .strict();

const change = z
  .object({
    field: z.string(),
    from: z.union([z.string(), z.number()]).nullable(),
    to: z.union([z.string(), z.number()]).nullable(),
  })
  .strict();

/**
 * What `plan --json` prints: the plan, the live state it read and the spec it validated (what
 * `deploy --plan-id` deploys).
 */
export const PlanResultSchema = z
  .object({
    id: z.string(),
    plannedAt: isoTime,
    spec: z.record(z.unknown()),
    plan: z
      .object({
        app: z.string(),
        namespace: z.string(),
        image: z.string(),
        version: z.string(),
        strategy: z.enum(['blueGreen', 'canary']),
        router: z.nativeEnum(TrafficRouter),
        liveSlot: slot,
        idleSlot: slot,
        changes: z.array(change),
        againstLive: z.array(change),
        routerWrites: z.array(z.string()),
        steps: z.array(
          z.object({ weight: z.number(), holdSeconds: z.number().nullable(), replicas: z.number().int() }).strict(),
        ),
        gates: z.array(z.string()),
        monitor: z
          .object({
            warmUpSeconds: z.number(),
            scrapeIntervalSeconds: z.number().nullable(),
            ticks: z.number().int(),
            intervalSeconds: z.number(),
            window: z.string(),
          })
          .strict(),
        timeline: z.array(z.object({ phase: z.string(), seconds: z.number().nullable(), note: z.string() }).strict()),
        leastSeconds: z.number(),
        checks: z.array(
          z
            .object({
              kind: z.enum(['write', 'access', 'capacity', 'slo', 'smoke', 'spec', 'live']),
              name: z.string(),
              verdict: z.enum(['ok', 'warning', 'fail']),
              detail: z.string(),
            })
            .strict(),
        ),
        proceeds: z.boolean(),
      })
      .strict()
      .nullable(),
    live: z
      .object({
        activeSlot: slot,
        routing: z.string().optional(),
        slots: z.object({ blue: slotState, green: slotState }).strict(),
      })
      .strict()
      .nullable(),
    error: z.object({ invalid: z.boolean(), message: z.string() }).strict().nullable(),
  })
  .strict();
