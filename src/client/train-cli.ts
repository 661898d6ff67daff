/**
 * `bluegreen train`: start a release train, read and follow it, approve a stage, abort the line,
 * skip a stage. The exit codes are the other verbs': 0 the train went through (or the verb was
 * taken), 1 it held, rolled back or failed, 2 a bad train spec, 4 refused, 5 recorded while no
 * worker answers.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { parseTrainSpec, TrainSpecError } from '../train/train-spec.js';
import type { TrainStatus } from '../shared/train.js';
import type { OperatorDelivery } from './deployment-client.js';
import type { TrainClient } from './train-client.js';
import { trainResult } from './train-client.js';

export interface TrainCommandContext {
  withTrains<T>(body: (trains: TrainClient) => Promise<T>): Promise<T>;
  report(verb: string, name: string, answer: OperatorDelivery, json?: boolean): void;
  defaultOperator(): string;
}

const out = (line: string) => process.stdout.write(`${line}\n`);

export function trainCommand({ withTrains, report, defaultOperator }: TrainCommandContext): Command {
  const train = new Command('train').description('a release train: one version through stages and clusters');

  train
    .command('start')
    .description('start a train from its spec (checked, every stage validated, before anything starts)')
    .requiredOption('-f, --file <path>', 'the train spec (YAML)')
    .option('--image <ref>', 'the image, over the file')
    .option('--wait', 'follow the train to its end; the exit code is its outcome')
    .option('--json', 'machine-readable output')
    .action(async (options: { file: string; image?: string; wait?: boolean; json?: boolean }) => {
      const plan = parseTrainSpec({
        ...readTrainFile(options.file),
        ...(options.image ? { image: options.image } : {}),
      });
      await withTrains(async (trains) => {
        const handle = await trains.start(plan);
        if (options.json && !options.wait) out(JSON.stringify({ workflowId: handle.workflowId, train: plan.name }));
        else if (!options.json)
          out(`train ${plan.name} started: ${plan.version} through ${plan.stages.map((s) => s.name).join(' → ')}`);
        if (options.wait) end(await follow(trains, plan.name, options.json === true), options.json === true);
      });
    });

  train
    .command('status')
    .description('the stages of a train: state, clusters, outcome, waits')
    .argument('<name>', 'the train')
    .option('--json', 'machine-readable output')
    .action(async (name: string, options: { json?: boolean }) => {
      await withTrains(async (trains) => {
        const status = await trains.status(name);
        out(options.json ? JSON.stringify(status, null, 2) : renderTrain(status));
      });
    });

  train
    .command('watch')
    .description('follow a train to its end; the exit code is its outcome')
    .argument('<name>', 'the train')
    .option('--json', 'machine-readable output (the final status)')
    .action(async (name: string, options: { json?: boolean }) => {
      await withTrains(async (trains) => end(await follow(trains, name, options.json === true), options.json === true));
    });

  train
    .command('approve')
    .description('approve the stage a train waits at')
    .argument('<name>', 'the train')
    .argument('[stage]', 'the stage you mean to approve')
    .option('--by <operator>', 'who is approving', defaultOperator())
    .option('--json', 'machine-readable output')
    .action(async (name: string, stage: string | undefined, options: { by: string; json?: boolean }) => {
      await withTrains(async (trains) => {
        report('train approve', name, await trains.approve(name, { stage, by: options.by }), options.json);
      });
    });

  train
    .command('abort')
    .description('stop the line: abort the running deployments, then apply onFailure')
    .argument('<name>', 'the train')
    .requiredOption('--reason <text>', 'why')
    .option('--by <operator>', 'who is aborting', defaultOperator())
    .option('--json', 'machine-readable output')
    .action(async (name: string, options: { reason: string; by: string; json?: boolean }) => {
      await withTrains(async (trains) => {
        report('train abort', name, await trains.abort(name, { reason: options.reason, by: options.by }), options.json);
      });
    });

  train
    .command('retry')
    .description('go on from a stage that failed for a reason outside the release (a new run of the train)')
    .argument('<name>', 'the train')
    .argument('<stage>', 'the failed stage')
    .option('--by <operator>', 'who is retrying', defaultOperator())
    .option('--wait', 'follow the train to its end; the exit code is its outcome')
    .option('--json', 'machine-readable output')
    .action(async (name: string, stage: string, options: { by: string; wait?: boolean; json?: boolean }) => {
      await withTrains(async (trains) => {
        const handle = await trains.retry(name, { stage, by: options.by });
        if (!options.json) out(`train ${name} goes on from stage ${stage}`);
        else if (!options.wait) out(JSON.stringify({ workflowId: handle.workflowId, train: name, from: stage }));
        if (options.wait) end(await follow(trains, name, options.json === true), options.json === true);
      });
    });

  train
    .command('skip')
    .description('skip a stage that has not begun deploying')
    .argument('<name>', 'the train')
    .argument('<stage>', 'the stage')
    .option('--by <operator>', 'who is skipping', defaultOperator())
    .option('--json', 'machine-readable output')
    .action(async (name: string, stage: string, options: { by: string; json?: boolean }) => {
      await withTrains(async (trains) => {
        report('train skip', name, await trains.skip(name, { stage, by: options.by }), options.json);
      });
    });

  return train;
}

function readTrainFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TrainSpecError([{ path: '(file)', message: `cannot read ${file}: ${(error as Error).message}` }]);
  }
  try {
    return parseYaml(text) as Record<string, unknown>;
  } catch (error) {
    throw new TrainSpecError([{ path: '(file)', message: `${file} is not valid YAML: ${(error as Error).message}` }]);
  }
}

/** Prints each change of the train's message until it ends; returns its end. */
async function follow(trains: TrainClient, name: string, quiet: boolean): Promise<TrainStatus> {
  const handle = trains.handle(name);
  let last = '';
  const ended = trainResult(handle);
  for (;;) {
    const done = await Promise.race([ended.then((s) => s), sleep(2_000).then(() => null)]);
    if (done) return done;
    const status = await trains.status(name).catch(() => null);
    if (status && status.message !== last && !quiet) out(`${new Date().toISOString().slice(11, 19)} ${status.message}`);
    last = status?.message ?? last;
  }
}

function end(status: TrainStatus, json: boolean): void {
  out(json ? JSON.stringify(status, null, 2) : renderTrain(status));
  if (status.state !== 'Succeeded') process.exitCode = 1;
}

/**
 * The train as a table of stages: each stage's state (until when it waits, or when its next window
 * opens) and each cluster's: its state, live slot, phase, the soak left, a missing worker.
 */
export function renderTrain(status: TrainStatus): string {
  const lines = [`train ${status.name}: ${status.version} (${status.image})`, `${status.state}: ${status.message}`, ''];
  lines.push(['STAGE'.padEnd(16), 'STATE'.padEnd(18), 'CLUSTERS'].join(' '));
  for (const stage of status.stages) {
    const clusters = stage.targets
      .map((t) => {
        const since = t.workerMissingSince ? ` since ${t.workerMissingSince}, people notified` : '';
        const worker = t.workerSeen === false || since ? ` (no worker polls ${t.taskQueue}${since})` : '';
        const slot = t.liveSlot ? ` (${t.liveSlot})` : '';
        const soak = t.soakLeftSeconds != null ? `, soak ${t.soakLeftSeconds} s left` : '';
        const phase = t.phase && t.state === 'Running' ? ` (${t.phase}${soak})` : '';
        return `${t.cluster} ${t.state}${slot}${phase}${t.reason ? ` ${t.reason}` : ''}${worker}`;
      })
      .join(', ');
    const wait = stage.waitingUntil
      ? ` until ${stage.waitingUntil}`
      : stage.nextWindow
        ? ` (next window ${stage.nextWindow})`
        : '';
    lines.push([stage.name.padEnd(16), `${stage.state}${wait}`.padEnd(18), clusters].join(' '));
  }
  if (status.decisions.length) {
    lines.push('', 'decisions:');
    for (const d of status.decisions) lines.push(`  ${d.at} ${d.by}: ${d.what}`);
  }
  return lines.join('\n');
}
