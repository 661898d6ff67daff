/**
 * What the fault-injecting proxies share about writes: they tell a test the moment each write
 * (PATCH, PUT, POST, DELETE) arrives, before it is forwarded, and can hold it, as an API server
 * slow for one request would. A drill sends `abort` while such a write is in flight.
 */
export const WRITES = new Set(['PATCH', 'PUT', 'POST', 'DELETE']);

/** A write as it arrived at the proxy, before it was forwarded. */
export interface ArrivedWrite {
  method: string;
  path: string;
  /** performance.now() at arrival. */
  at: number;
}

export class WriteTap {
  /** Every write is held this long before it is forwarded. */
  writeDelayMs = 0;
  readonly writes: ArrivedWrite[] = [];
  private holds: { path: RegExp; ms: number }[] = [];
  private listeners: ((write: ArrivedWrite) => void)[] = [];

  /** Holds the next write whose path matches for `ms` (instead of `writeDelayMs`). */
  holdNext(path: RegExp, ms: number): void {
    this.holds.push({ path, ms });
  }

  /** Resolves with the next write whose path matches, the moment it arrives. */
  nextWrite(path: RegExp): Promise<ArrivedWrite> {
    return new Promise((resolve) => {
      const listener = (write: ArrivedWrite) => {
        if (!path.test(write.path)) return;
        this.listeners = this.listeners.filter((l) => l !== listener);
        resolve(write);
      };
      this.listeners.push(listener);
    });
  }

  /** Records a request; for a write, returns how long to hold it (0: forward at once). */
  arrive(method: string, path: string): number {
    if (!WRITES.has(method)) return 0;
    const write = { method, path, at: performance.now() };
    this.writes.push(write);
    const hold = this.holds.find((h) => h.path.test(path));
    if (hold) this.holds = this.holds.filter((h) => h !== hold);
    for (const listener of [...this.listeners]) listener(write);
    return hold?.ms ?? this.writeDelayMs;
  }

  /** Runs `forward` after the hold `arrive` chose. */
  static after(delayMs: number, forward: () => void): void {
    if (delayMs > 0) setTimeout(forward, delayMs);
    else forward();
  }
}
