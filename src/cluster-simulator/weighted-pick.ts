/**
 * Smooth weighted round robin (nginx's algorithm): every choice gains its weight, the richest is
 * picked and pays the total. Deterministic: 5/95 picks the first exactly 5 times in every 100, and
 * spreads them out. Used by the local platform wherever a router splits by weight.
 */
export class SmoothWeightedPick {
  private credit = new Map<string, number>();

  /** Forgets the running credit: the next picks start afresh (after the weights change). */
  reset(): void {
    this.credit = new Map();
  }

  /** One of the keys with a positive weight, or null when none has one. */
  pick(weights: Record<string, number>): string | null {
    let total = 0;
    let chosen: string | null = null;
    for (const key of Object.keys(weights).sort()) {
      const weight = weights[key]!;
      if (weight <= 0) continue;
      total += weight;
      const credit = (this.credit.get(key) ?? 0) + weight;
      this.credit.set(key, credit);
      if (chosen === null || credit > this.credit.get(chosen)!) chosen = key;
    }
    if (chosen !== null) this.credit.set(chosen, this.credit.get(chosen)! - total);
    return chosen;
  }
}
