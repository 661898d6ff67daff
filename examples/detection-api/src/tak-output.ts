/**
 * Delivers accepted detections to TAK in the order they were accepted. Every detection is first
 * committed to the offline queue; one delivery loop sends the queue's head while the link is up, so
 * a detection accepted while older ones wait can never overtake them. A request waits a short
 * while for its own delivery: SYNCED if it made it, PENDING_SYNC if it is queued.
 *
 * The oldest undelivered detections are also held here, in order, so the loop seldom has to ask
 * the database what is next: at most `heldInMemory` of them, the rest read from SQLite in pages as
 * delivery catches up, so that a long TAK outage fills the file, not the memory.
 */
import type { OfflineQueue, StoredDetection } from './offline-queue.js';
import { DeliveryStatus, PRUNE_AT_MOST } from './offline-queue.js';
import type { TakLink } from './tak-link.js';

export interface TakOutputOptions {
  syncTimeoutMs: number;
  /** How many of the oldest undelivered detections are held in memory. */
  heldInMemory: number;
  /** Fault injection: delay before each send. */
  addedLatencyMs: number;
  onDelivered: (detection: StoredDetection, syncedAt: number) => void;
}

/** Delivered rows are kept this long for GET /api/detections/:id, then pruned. */
const KEEP_DELIVERED_MS = 24 * 60 * 60 * 1000;

export class TakOutput {
  private draining: Promise<void> | null = null;
  /**
   * The oldest undelivered detections, oldest first: the database's rows past its last delivery,
   * all of them unless more wait in the file (`depth` beyond them); then at least half of `heldInMemory`.
   */
  private readonly undelivered: StoredDetection[];
  /** How many detections are undelivered, held or not. */
  private depth: number;
  /** Requests waiting for their detection's delivery, by seq: in delivery order, so deadline order. */
  private readonly waiters = new Map<number, { deadline: number; resolve: (synced: boolean) => void }>();
  private expiry: NodeJS.Timeout | null = null;
  private delivered = 0;

  constructor(
    private readonly queue: OfflineQueue,
    private readonly link: TakLink,
    private readonly options: TakOutputOptions,
  ) {
    this.undelivered = queue.pending(0, options.heldInMemory);
    this.depth = queue.pendingCount();
    link.on('connected', () => void this.kick());
  }

  /** How many detections wait for TAK, how many of them are held in memory, and since when the oldest has (ms since epoch). */
  backlog(): { depth: number; held: number; oldestReceivedAt: number | null } {
    return {
      depth: this.depth,
      held: this.undelivered.length,
      oldestReceivedAt: this.undelivered[0]?.receivedAt ?? null,
    };
  }

  /** Commits a detection and tries to deliver it; says where it stands. */
  async submit(id: string, flag: StoredDetection['flag'], cot: string, receivedAt: number): Promise<DeliveryStatus> {
    const stored = this.queue.insert(id, flag, cot, receivedAt);
    // Held only if every older one is, and there is room: else it waits in the file, behind them.
    if (this.undelivered.length === this.depth && this.depth < this.options.heldInMemory) this.undelivered.push(stored);
    this.depth += 1;
    if (!this.link.connected) return DeliveryStatus.PendingSync;
    const synced = new Promise<boolean>((resolve) => {
      this.waiters.set(stored.seq, { deadline: performance.now() + this.options.syncTimeoutMs, resolve });
    });
    this.expireLater();
    void this.kick();
    return (await synced) ? DeliveryStatus.Synced : DeliveryStatus.PendingSync;
  }

  /**
   * One timer for all waiting requests rather than one each: it fires at the oldest waiter's
   * deadline, answers PENDING_SYNC to every waiter past its own, and sets itself for the next.
   */
  private expireLater(): void {
    if (this.expiry !== null) return;
    const oldest = this.waiters.values().next().value;
    if (oldest === undefined) return;
    this.expiry = setTimeout(() => {
      this.expiry = null;
      const now = performance.now();
      for (const [seq, waiter] of this.waiters) {
        if (waiter.deadline > now) break;
        this.waiters.delete(seq);
        waiter.resolve(false);
      }
      this.expireLater();
    }, oldest.deadline - performance.now());
  }

  /** Tops the held detections up from the database, after the last held (or `delivered`, if none is). */
  private readMore(delivered: number): void {
    const after = this.undelivered.at(-1)?.seq ?? delivered;
    const room = this.options.heldInMemory - this.undelivered.length;
    const more = this.queue.pending(after, room);
    this.undelivered.push(...more);
  }

  /** Starts the delivery loop unless it runs; resolves when it has nothing left it can send. */
  kick(): Promise<void> {
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
    return this.draining;
  }

  /**
   * Sends the queue's head in batches: the events of a batch are written in order, in one write,
   * then the batch is marked delivered in one commit. If the link drops mid-batch, the batch stays queued and is
   * sent again on reconnect; the CoT uid makes a repeat an update of the same track, not a new one.
   */
  private async drain(): Promise<void> {
    while (this.link.connected) {
      const batch = this.undelivered.slice(0, 100);
      if (batch.length === 0) return;
      if (this.options.addedLatencyMs > 0)
        await new Promise((r) => setTimeout(r, this.options.addedLatencyMs * batch.length));
      try {
        // One write per batch: one system call here and one read at TAK, however many events.
        await this.link.send(batch.map((detection) => `${detection.cot}\n`).join(''));
      } catch {
        return; // the link went down: the batch stays queued; 'connected' restarts the loop
      }
      const syncedAt = Date.now();
      this.queue.markDelivered(batch.at(-1)!.seq, syncedAt);
      this.undelivered.splice(0, batch.length);
      this.depth -= batch.length;
      if (this.depth > this.undelivered.length && this.undelivered.length < this.options.heldInMemory / 2)
        this.readMore(batch.at(-1)!.seq);
      for (const detection of batch) {
        this.options.onDelivered(detection, syncedAt);
        this.waiters.get(detection.seq)?.resolve(true);
        this.waiters.delete(detection.seq);
      }
      this.delivered += batch.length;
      // Half as often as a prune's limit, so that pruning keeps up with any rate of delivery.
      if (this.delivered >= PRUNE_AT_MOST / 2) {
        this.delivered = 0;
        this.queue.prune(syncedAt - KEEP_DELIVERED_MS);
      }
    }
  }
}
