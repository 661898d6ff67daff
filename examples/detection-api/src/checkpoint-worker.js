/**
 * Checkpoints the offline queue's write-ahead log from a thread of its own. A checkpoint flushes
 * the WAL into the database file with an fsync; run by SQLite's automatic checkpointing, that would
 * stall the service's event loop, and every request with it, for milliseconds at a time.
 *
 * Plain JavaScript: worker threads do not inherit the TypeScript loader the service runs under.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path, intervalMs } = workerData;
const db = new Database(path);
db.pragma('busy_timeout = 1000');

// PASSIVE never waits for, nor blocks, the writer: it copies what it can and tries again later.
const timer = setInterval(() => db.pragma('wal_checkpoint(PASSIVE)'), intervalMs);

parentPort.once('message', () => {
  clearInterval(timer);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  parentPort.postMessage('closed');
});
