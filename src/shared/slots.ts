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
