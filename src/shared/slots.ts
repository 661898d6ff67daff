/**
 * The two slots of a blue-green pair. Pure module: safe to import from workflow code.
 */

/** Slot names as string-literal constants, so they serialise as plain JSON in history. */
export const Slot = {
  Blue: 'blue',
  Green: 'green',
} as const;

export type Slot = (typeof Slot)[keyof typeof Slot];

export const SLOTS: readonly Slot[] = [Slot.Blue, Slot.Green];

/** The slot a deployment goes to is always the one not serving: deploys alternate. */
export function otherSlot(slot: Slot): Slot {
  return slot === Slot.Blue ? Slot.Green : Slot.Blue;
}

export function isSlot(value: unknown): value is Slot {
  return value === Slot.Blue || value === Slot.Green;
}

/**
 * The pod-template label each deployment sets to its run (the workflow's first run id), so a
 * run's series are told from an earlier run's of the same version in the same slot.
 */
export const RUN_LABEL = 'bluegreen.dev/run';

/** What runs in one slot, as the platform reports it. */
export interface SlotState {
  slot: Slot;
  deployment: string;
  /** The image of the target container; null if the Deployment has no such container. */
  image: string | null;
  /** The version its pods are labelled with (the canary's SLO queries read the stable's by it). */
  version?: string | null;
  /**
   * The deployment run that last rolled out its pods (their `bluegreen.dev/run` label); null when
   * they carry none. Queries scoped by `{{run}}` read this slot's series by it.
   */
  run?: string | null;
  replicas: number;
  readyReplicas: number;
  updatedReplicas: number;
  availableReplicas: number;
}

/** Every replica of the slot ready, and at least one: a live slot preflight lets a deployment go on from. */
export function isHealthySlot(slot: SlotState): boolean {
  return slot.replicas > 0 && slot.readyReplicas >= slot.replicas;
}

/**
 * How long the live slot is read again before it is called unhealthy. A pod that misses one
 * readiness probe leaves its Service until the next passes (the procedure's probe: every 5 s, out
 * on a single failure), so one slow answer on a busy node must not refuse a deployment: three probe
 * periods. A slot that stays short of ready this long is refused, as before.
 */
export const ACTIVE_SLOT_SETTLE_MS = 15_000;

/** The live state read in preflight: which slot serves, and what each slot runs. */
export interface LiveState {
  activeSlot: Slot;
  /** What the router's object holds, in words ("Service x selects slot=blue"); absent in histories recorded before. */
  routing?: string;
  slots: Record<Slot, SlotState>;
}
