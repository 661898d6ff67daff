/**
 * The durable record of every accepted detection, and the queue of those not yet delivered to TAK.
 * A detection is committed here (SQLite, WAL) before the API answers, so nothing accepted is lost
 * across restarts or SIGKILL; delivery order is the insertion order (`seq`).
 *
 * Durability: with `synchronous=NORMAL` (the default) a commit is in the WAL, which the operating
 * system keeps across a killed process; `FULL` also fsyncs each commit, so it survives losing the
 * machine's power, at the cost of a disk flush per detection.
 */
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { AccuracyFlag } from './accuracy.js';

export const DeliveryStatus = { Synced: 'SYNCED', PendingSync: 'PENDING_SYNC' } as const;
export type DeliveryStatus = (typeof DeliveryStatus)[keyof typeof DeliveryStatus];

export interface StoredDetection {
  seq: number;
  id: string;
  flag: AccuracyFlag;
  status: DeliveryStatus;
  cot: string;
  receivedAt: number;
  syncedAt: number | null;
}

interface Row {
  seq: number;
  id: string;
  flag: AccuracyFlag;
  cot: string;
  received_at: number;
  /** The time of the first delivery at or past this row; absent (or null) while undelivered. */
  synced_at?: number | null;
}

const fromRow = (row: Row): StoredDetection => ({
  seq: row.seq,
  id: row.id,
  flag: row.flag,
  status: row.synced_at == null ? DeliveryStatus.PendingSync : DeliveryStatus.Synced,
  cot: row.cot,
  receivedAt: row.received_at,
  syncedAt: row.synced_at ?? null,
});

/**
 * Schema 2. Detections are delivered strictly in `seq` order, so what has been delivered is a
 * prefix: each delivered batch appends one row to `deliveries` (its last seq and when), and a
 * detection is SYNCED when its seq is at or below the highest `up_to_seq`. Two small appends per
 * detection, where schema 1 (a status column, a partial index on it and an UPDATE per delivery)
 * wrote twice the pages to the WAL.
 */
const SCHEMA_VERSION = 2;

/** The most detections one prune removes: about a millisecond of deletes. */
export const PRUNE_AT_MOST = 200;

export class OfflineQueue {
  private readonly db: Database.Database;
  private readonly statements;
  private readonly checkpointer: Worker;
  /** Assigned here rather than by SQLite, so that a seq is never reused once its rows are pruned. */
  private nextSeq: number;
  /** One prune, in one transaction; built once, as the delivery loop calls it every 100 deliveries. */
  private readonly pruneOnce: (before: number) => number;

  constructor(path: string, synchronous: 'NORMAL' | 'FULL' = 'NORMAL') {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${synchronous}`);
    // Checkpoints run in a worker thread (checkpoint-worker.js), never on the event loop.
    this.db.pragma('wal_autocheckpoint = 0');
    this.checkpointer = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
      workerData: { path, intervalMs: 1000 },
    });
    this.checkpointer.unref();
    this.db.transaction(() => this.migrate())();
    this.statements = {
      insert: this.db.prepare<[number, string, string, string, number]>(
        `INSERT INTO detections (seq, id, flag, cot, received_at) VALUES (?, ?, ?, ?, ?)`,
      ),
      pending: this.db.prepare<[number, number], Row>(
        `SELECT * FROM detections WHERE seq > max(?, (SELECT coalesce(max(up_to_seq), 0) FROM deliveries)) ORDER BY seq LIMIT ?`,
      ),
      pendingCount: this.db.prepare<[], { count: number }>(
        `SELECT count(*) AS count FROM detections WHERE seq > (SELECT coalesce(max(up_to_seq), 0) FROM deliveries)`,
      ),
      delivered: this.db.prepare<[number, number]>(`INSERT INTO deliveries (up_to_seq, synced_at) VALUES (?, ?)`),
      byId: this.db.prepare<[string], Row>(`
        SELECT detections.*, (SELECT synced_at FROM deliveries WHERE up_to_seq >= detections.seq ORDER BY up_to_seq LIMIT 1) AS synced_at
        FROM detections WHERE id = ?`),
      // Delivery times grow with up_to_seq: the index makes finding the cut-off one seek.
      lastDeliveredBefore: this.db.prepare<[number], { up_to_seq: number }>(
        `SELECT up_to_seq FROM deliveries WHERE synced_at < ? ORDER BY synced_at DESC LIMIT 1`,
      ),
      oldest: this.db.prepare<[], { seq: number | null }>(`SELECT min(seq) AS seq FROM detections`),
      pruneDetections: this.db.prepare<[number]>(`DELETE FROM detections WHERE seq <= ?`),
      // The newest delivery stays, whatever its age: it is where delivery stands.
      pruneDeliveries: this.db.prepare<[number]>(`
        DELETE FROM deliveries WHERE up_to_seq <= ? AND up_to_seq < (SELECT max(up_to_seq) FROM deliveries)`),
    };
    this.pruneOnce = this.db.transaction((before: number) => {
      const cutoff = this.statements.lastDeliveredBefore.get(before)?.up_to_seq;
      const oldest = this.statements.oldest.get()?.seq;
      if (cutoff === undefined || oldest == null) return 0;
      const upTo = Math.min(cutoff, oldest + PRUNE_AT_MOST - 1);
      const removed = this.statements.pruneDetections.run(upTo).changes;
      this.statements.pruneDeliveries.run(upTo);
      return removed;
    });
    const last = this.db
      .prepare<[], { seq: number | null }>(
        `SELECT max(coalesce((SELECT max(seq) FROM detections), 0), coalesce((SELECT max(up_to_seq) FROM deliveries), 0)) AS seq`,
      )
      .get()!;
    this.nextSeq = (last.seq ?? 0) + 1;
  }

  /** Creates schema 2, or moves a schema-1 queue (undelivered detections and all) into it. */
  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION)
      throw new Error(`the queue at schema ${version} is newer than this service (schema ${SCHEMA_VERSION})`);
    const schema1 =
      this.db.prepare(`SELECT 1 FROM pragma_table_info('detections') WHERE name = 'status'`).get() !== undefined;
    if (schema1) this.db.exec(`ALTER TABLE detections RENAME TO detections_schema1`);
    this.db.exec(`
      CREATE TABLE detections (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        flag TEXT NOT NULL,
        cot TEXT NOT NULL,
        received_at INTEGER NOT NULL
      );
      CREATE TABLE deliveries (
        up_to_seq INTEGER PRIMARY KEY,
        synced_at INTEGER NOT NULL
      );
      CREATE INDEX deliveries_synced_at ON deliveries (synced_at);
    `);
    if (schema1) {
      // Schema 1 delivered in order too: its SYNCED rows are a prefix, one synced_at per batch.
      this.db.exec(`
        INSERT INTO detections (seq, id, flag, cot, received_at) SELECT seq, id, flag, cot, received_at FROM detections_schema1;
        INSERT INTO deliveries (up_to_seq, synced_at)
          SELECT max(seq), synced_at FROM detections_schema1 WHERE status = 'SYNCED' GROUP BY synced_at;
        DROP TABLE detections_schema1;
      `);
    }
    this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }

  /** Commits a new detection as PENDING_SYNC; durable when this returns. */
  insert(id: string, flag: AccuracyFlag, cot: string, receivedAt: number): StoredDetection {
    const seq = this.nextSeq++;
    this.statements.insert.run(seq, id, flag, cot, receivedAt);
    return { seq, id, flag, status: DeliveryStatus.PendingSync, cot, receivedAt, syncedAt: null };
  }

  /** The undelivered detections after `afterSeq`, in delivery order, at most `limit` (-1: all). */
  pending(afterSeq = 0, limit = -1): StoredDetection[] {
    return this.statements.pending.all(afterSeq, limit).map(fromRow);
  }

  /** How many detections are undelivered. */
  pendingCount(): number {
    return this.statements.pendingCount.get()!.count;
  }

  /** Marks every detection up to `seq` delivered, in one append. */
  markDelivered(seq: number, syncedAt: number): void {
    this.statements.delivered.run(seq, syncedAt);
  }

  get(id: string): StoredDetection | null {
    const row = this.statements.byId.get(id);
    return row ? fromRow(row) : null;
  }

  /**
   * Forgets detections delivered before `before` (ms since epoch), at most PRUNE_AT_MOST of the
   * oldest per call, so that one call never holds the event loop for long; the undelivered stay.
   */
  prune(before: number): number {
    return this.pruneOnce(before);
  }

  /** Closes the database after a last checkpoint, so the file is whole without its WAL. */
  async close(): Promise<void> {
    this.db.close();
    const closed = new Promise((resolve) => this.checkpointer.once('message', resolve));
    this.checkpointer.postMessage('close');
    await closed;
    await this.checkpointer.terminate();
  }
}
