/**
 * The detection API's offline queue on a real SQLite file: delivery recorded as a prefix, pruning
 * that never touches the undelivered nor lets a sequence number come back, and a queue written by
 * schema 1 moved over at start with its undelivered detections.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { AccuracyFlag } from '../../examples/detection-api/src/accuracy.js';
import { DeliveryStatus, OfflineQueue, PRUNE_AT_MOST } from '../../examples/detection-api/src/offline-queue.js';
import { tempQueuePath } from '../helpers/detection-api-process.js';

const HOUR = 3_600_000;

describe('offline queue', () => {
  it('marks delivery as a prefix, with the time of the batch each detection went in', async () => {
    const queue = new OfflineQueue(tempQueuePath());
    try {
      const stored = ['a', 'b', 'c', 'd'].map((id, i) =>
        queue.insert(id, AccuracyFlag.Green, `<event uid="${id}"/>`, 1000 + i),
      );
      assert.deepEqual(
        stored.map((s) => s.seq),
        [1, 2, 3, 4],
      );
      queue.markDelivered(1, 5000);
      queue.markDelivered(3, 6000);
      assert.deepEqual(
        ['a', 'b', 'c', 'd'].map((id) => [queue.get(id)?.status, queue.get(id)?.syncedAt]),
        [
          [DeliveryStatus.Synced, 5000],
          [DeliveryStatus.Synced, 6000],
          [DeliveryStatus.Synced, 6000],
          [DeliveryStatus.PendingSync, null],
        ],
      );
      assert.deepEqual(
        queue.pending().map((p) => [p.id, p.cot, p.receivedAt]),
        [['d', '<event uid="d"/>', 1003]],
      );
      assert.equal(queue.get('nope'), null);
    } finally {
      await queue.close();
    }
  });

  it('prunes what was delivered before the cut-off, keeps the undelivered, and never reuses a seq', async () => {
    const path = tempQueuePath();
    const queue = new OfflineQueue(path);
    try {
      for (const id of ['a', 'b', 'c']) queue.insert(id, AccuracyFlag.Red, '<event/>', 0);
      queue.markDelivered(2, 1 * HOUR);
      queue.markDelivered(3, 30 * HOUR);
      assert.equal(queue.prune(25 * HOUR), 2);
      assert.deepEqual(
        ['a', 'b', 'c'].map((id) => queue.get(id)?.status ?? 'pruned'),
        ['pruned', 'pruned', DeliveryStatus.Synced],
      );
      // Every row delivered and then pruned: the newest delivery still says where delivery stands.
      assert.equal(queue.prune(31 * HOUR), 1);
      assert.deepEqual(queue.pending(), []);
    } finally {
      await queue.close();
    }
    const reopened = new OfflineQueue(path);
    try {
      const next = reopened.insert('d', AccuracyFlag.Green, '<event/>', 0);
      assert.equal(next.seq, 4, 'a new detection never takes the seq of a pruned one');
      assert.deepEqual(
        reopened.pending().map((p) => p.id),
        ['d'],
      );
    } finally {
      await reopened.close();
    }
  });

  it('prunes at most PRUNE_AT_MOST of the oldest per call, so a long backlog goes in short steps', async () => {
    const queue = new OfflineQueue(tempQueuePath());
    try {
      const total = PRUNE_AT_MOST + 50;
      for (let i = 1; i <= total; i++) queue.insert(`d${i}`, AccuracyFlag.Green, '<event/>', 0);
      queue.markDelivered(total, 1 * HOUR);
      assert.equal(queue.prune(2 * HOUR), PRUNE_AT_MOST);
      assert.deepEqual(
        [queue.get(`d${PRUNE_AT_MOST}`), queue.get(`d${PRUNE_AT_MOST + 1}`)?.status],
        [null, DeliveryStatus.Synced],
        'the oldest go first',
      );
      assert.equal(queue.prune(2 * HOUR), 50);
      assert.equal(queue.prune(2 * HOUR), 0);
    } finally {
      await queue.close();
    }
  });

  it('moves a schema-1 queue over at start: delivered rows stay SYNCED, undelivered ones stay queued in order', async () => {
    const path = tempQueuePath();
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec(`
      CREATE TABLE detections (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, flag TEXT NOT NULL, status TEXT NOT NULL,
        cot TEXT NOT NULL, received_at INTEGER NOT NULL, synced_at INTEGER
      );
      CREATE INDEX detections_undelivered ON detections (seq) WHERE status = 'PENDING_SYNC';
      INSERT INTO detections (id, flag, status, cot, received_at, synced_at) VALUES
        ('a', 'GREEN', 'SYNCED', '<event uid="a"/>', 10, 100),
        ('b', 'YELLOW', 'SYNCED', '<event uid="b"/>', 20, 100),
        ('c', 'RED', 'SYNCED', '<event uid="c"/>', 30, 200),
        ('d', 'GREEN', 'PENDING_SYNC', '<event uid="d"/>', 40, NULL),
        ('e', 'GREEN', 'PENDING_SYNC', '<event uid="e"/>', 50, NULL);
    `);
    old.close();

    const queue = new OfflineQueue(path);
    try {
      assert.deepEqual(
        ['a', 'b', 'c'].map((id) => [queue.get(id)?.flag, queue.get(id)?.status, queue.get(id)?.syncedAt]),
        [
          ['GREEN', DeliveryStatus.Synced, 100],
          ['YELLOW', DeliveryStatus.Synced, 100],
          ['RED', DeliveryStatus.Synced, 200],
        ],
      );
      assert.deepEqual(
        queue.pending().map((p) => [p.seq, p.id, p.cot, p.receivedAt]),
        [
          [4, 'd', '<event uid="d"/>', 40],
          [5, 'e', '<event uid="e"/>', 50],
        ],
      );
      assert.equal(queue.insert('f', AccuracyFlag.Green, '<event/>', 60).seq, 6);
    } finally {
      await queue.close();
    }
    const reopened = new OfflineQueue(path);
    try {
      assert.deepEqual(
        reopened.pending().map((p) => p.id),
        ['d', 'e', 'f'],
        'opened again, the moved queue is not moved twice',
      );
    } finally {
      await reopened.close();
    }
  });
});
