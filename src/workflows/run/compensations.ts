/**
 * Undo steps, pushed as each change is made (before the write they undo: a cancelled write may
 * still land) and run last-in first-out, uncancellable, by the rollback.
 */
import { describeError } from './phase-error.js';

export class Compensations {
  private readonly steps: { name: string; run: () => Promise<void> }[] = [];

  push(name: string, run: () => Promise<void>): void {
    this.steps.push({ name, run });
  }

  get isEmpty(): boolean {
    return this.steps.length === 0;
  }

  clear(): void {
    this.steps.length = 0;
  }

  /**
   * Runs every step, newest first. Stops at the first step that fails: undoing further (say,
   * scaling the new slot down while the selector still points at it) would make things worse.
   * Returns the failed step's description, or null when everything was undone.
   */
  async runAll(onStep: (name: string) => void = () => undefined): Promise<string | null> {
    while (this.steps.length > 0) {
      const step = this.steps[this.steps.length - 1]!;
      onStep(step.name);
      try {
        await step.run();
      } catch (error) {
        return `${step.name}: ${describeError(error)}`;
      }
      this.steps.pop();
    }
    return null;
  }
}
