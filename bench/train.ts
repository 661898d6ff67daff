/**
 * bench:train: what a release train costs beyond its deployments, and how fast its abort restores
 * every running stage, on the embedded stack with three local clusters, each with its own worker
 * process, and the train on a worker process of its own (test/helpers/train-stack.ts).
 *
 * - Orchestration overhead of a three-stage train (staging with a soak → prod-a → a wave of two):
 *   the train's wall time minus the time any of its deployments was running, read from its history
 *   on the Temporal server's clock. The soaks and monitor windows are inside the deployments.
 * - Abort → every running stage restored: a wave of three deployments in their monitor windows,
 *   the train aborted; from its abort Update accepted to the last of the deployments' read-back of
 *   its traffic on the old slot (their histories), and, as traffic would see it, to the moment all
 *   three local platforms' Services select the old slot again (polled every 5 ms).
 *
 *   npm run bench:train
 *   RUNS=5 npm run bench:train
 */
import { cpus, totalmem } from 'node:os';
import { parseTrainSpec } from '../src/train/train-spec.js';
import { localTrain, TrainStack } from '../test/helpers/train-stack.js';
import type { LocalCluster } from '../test/helpers/train-stack.js';
import { trainAbortToRestored, trainOverhead } from './histories.js';
import type { Event } from './histories.js';
import { median } from './statistics.js';

const RUNS = Number(process.env['RUNS'] ?? 3);
const say = (line: string) => process.stdout.write(`${line}\n`);
const CLUSTERS: LocalCluster[] = ['local', 'local-2', 'local-3'];

async function main(): Promise<void> {
  const train = new TrainStack(['local-2', 'local-3']);
  await train.start();
  try {
    const overheads: number[] = [];
    const restoredByHistory: number[] = [];
    const restoredByService: number[] = [];
    let tag = 0;
    for (let run = 1; run <= RUNS; run++) {
      const plan = parseTrainSpec(
        localTrain(`bench-${run}`, `v3.${run}.${tag++}`, [
          { name: 'staging', cluster: 'local', soakSeconds: 5 },
          { name: 'prod-a', cluster: 'local-2' },
          { name: 'wave', clusters: ['local-3', 'local'], maxParallel: 2 },
        ]),
      );
      const handle = await train.trains.start(plan);
      const status = await train.result(plan.name);
      if (status.state !== 'Succeeded') throw new Error(`run ${run}: the train did not go through: ${status.message}`);
      const figures = trainOverhead(await events(handle));
      overheads.push(figures.overhead);
      say(
        `run ${run}: a three-stage train ${(figures.wall / 1000).toFixed(2)} s wall, its deployments ran ` +
          `${(figures.deploying / 1000).toFixed(2)} s, the train's overhead ${figures.overhead} ms`,
      );

      const before = await Promise.all(CLUSTERS.map(async (c) => (await train.live(c)).activeSlot));
      const aborted = parseTrainSpec(
        localTrain(`bench-abort-${run}`, `v3.${run}.${tag++}`, [{ name: 'wave', clusters: CLUSTERS }], {
          monitorSeconds: 60,
        }),
      );
      const abortHandle = await train.trains.start(aborted);
      for (const cluster of CLUSTERS) {
        while ((await train.deploymentStatus(cluster))?.phase !== 'Monitoring') await sleep(100);
      }
      const sent = Date.now();
      await train.trains.abort(aborted.name, { reason: 'bench', by: 'bench:train' });
      while (
        (await Promise.all(CLUSTERS.map(async (c) => (await train.live(c)).activeSlot))).some((s, i) => s !== before[i])
      )
        await sleep(5);
      const byService = Date.now() - sent;
      const ended = await train.result(aborted.name);
      if (ended.state !== 'Aborted')
        throw new Error(`run ${run}: the aborted train ended ${ended.state}: ${ended.message}`);
      const children = await Promise.all(CLUSTERS.map((c) => events(train.deployment(c))));
      const byHistory = trainAbortToRestored(await events(abortHandle), children);
      restoredByHistory.push(byHistory);
      restoredByService.push(byService);
      say(
        `run ${run}: abort of a wave of three → every stage's traffic read back on the old slot ${byHistory} ms ` +
          `(histories); every Service selecting the old slot ${byService} ms after the abort was sent`,
      );
    }
    say('');
    say(
      `bench:train on ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
        `${new Date().toISOString().slice(0, 10)}, ${RUNS} runs`,
    );
    say(`orchestration overhead of a three-stage train beyond its deployments: median ${median(overheads)} ms`);
    say(
      `abort → every running stage restored (a wave of three): median ${median(restoredByHistory)} ms by the ` +
        `histories, ${median(restoredByService)} ms until every Service selects the old slot`,
    );
  } finally {
    await train.stop();
  }
}

async function events(handle: { fetchHistory(): Promise<{ events?: Event[] | null }> }): Promise<Event[]> {
  return (await handle.fetchHistory()).events ?? [];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

await main();
