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
  status: DeliveryStatus;
  cot: string;
  received_at: number;
  synced_at: number | null;
}

const fromRow = (row: Row): StoredDetection => ({
  seq: row.seq,
  id: row.id,
  flag: row.flag,
  status: row.status,
  cot: row.cot,
  receivedAt: row.received_at,
  syncedAt: row.synced_at,
});

export class OfflineQueue {
  private readonly db: Database.Database;
  private readonly statements;
  private readonly checkpointer: Worker;
  /** Built once: the delivery loop calls it for every batch. */
  private readonly markSyncedBatch: (seqs: readonly number[], syncedAt: number) => void;

  constructor(path: string, synchronous: 'NORMAL' | 'FULL' = 'NORMAL') {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${synchronous}`);
    // Checkpoints run in a worker thread (checkpoint-worker.js), never on the event loop.
    this.db.pragma('wal_autocheckpoint = 0');
    this.markSyncedBatch = this.db.transaction((seqs: readonly number[], syncedAt: number) => {
      for (const seq of seqs) this.statements.markSynced.run(syncedAt, seq);
    });
    this.checkpointer = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: { path, intervalMs: 1000 } });
    this.checkpointer.unref();
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS detections (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        flag TEXT NOT NULL,
        status TEXT NOT NULL,
        cot TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        synced_at INTEGER
      );
      DROP INDEX IF EXISTS detections_pending;
      CREATE INDEX IF NOT EXISTS detections_undelivered ON detections (seq) WHERE status = 'PENDING_SYNC';
    `);
    this.statements = {
      insert: this.db.prepare<[string, string, string, number], Row>(
        `INSERT INTO detections (id, flag, status, cot, received_at) VALUES (?, ?, 'PENDING_SYNC', ?, ?) RETURNING *`,
      ),
      pending: this.db.prepare<[], Row>(`SELECT * FROM detections WHERE status = 'PENDING_SYNC' ORDER BY seq`),
      markSynced: this.db.prepare<[number, number]>(`UPDATE detections SET status = 'SYNCED', synced_at = ? WHERE seq = ?`),
      byId: this.db.prepare<[string], Row>(`SELECT * FROM detections WHERE id = ?`),
      prune: this.db.prepare<[number]>(`DELETE FROM detections WHERE status = 'SYNCED' AND synced_at < ?`),
    };
  }

  /** Commits a new detection as PENDING_SYNC; durable when this returns. */
  insert(id: string, flag: AccuracyFlag, cot: string, receivedAt: number): StoredDetection {
    return fromRow(this.statements.insert.get(id, flag, cot, receivedAt)!);
  }

  /** Every undelivered detection, in delivery order (read once, at start). */
  pending(): StoredDetection[] {
    return this.statements.pending.all().map(fromRow);
  }

  /** Marks delivered detections, in one transaction. */
  markSynced(seqs: readonly number[], syncedAt: number): void {
    this.markSyncedBatch(seqs, syncedAt);
  }

  get(id: string): StoredDetection | null {
    const row = this.statements.byId.get(id);
    return row ? fromRow(row) : null;
  }

  /** Forgets delivered detections older than `before` (ms since epoch); the undelivered stay. */
  prune(before: number): number {
    return this.statements.prune.run(before).changes;
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
