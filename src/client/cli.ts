/**
 * `bluegreen`: start, follow, abort, approve and inspect deployments.
 *
 * Exit codes (stable, for CI):
 *   0  the deployment succeeded (or the command did what it was asked)
 *   1  the deployment rolled back or failed; for plan: a check says it would fail
 *   2  invalid input: a bad spec or flag, or no deployment of that app (for undo: no successful one)
 *   3  Temporal unreachable
 *   4  refused: a deployment of the app is already running, or an abort/approve/promote does not apply now
 *   5  recorded, not yet answered: no worker answered an abort/approve/promote within 5 s, so it was sent
 *      as a signal, which Temporal keeps; it takes effect as soon as a worker runs
 *   130 interrupted: Ctrl+C stopped watching (without --abort-on-interrupt); the deployment goes on
 */
import { userInfo, hostname } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Connection } from '@temporalio/client';
import { connectDeployments, TemporalUnreachableError } from './connect.js';
import { ConfigError } from '../config/env.js';
import type { TemporalConfig } from '../config/temporal.js';
import { Gate, Outcome } from '../shared/deployment-status.js';
import { SpecValidationError } from '../deployment-spec/deployment-spec.js';
import type { DeploymentSpec } from '../deployment-spec/deployment-spec.js';
import {
  DeploymentAlreadyRunningError,
  NothingToUndoError,
  PlanNotFoundError,
  RequestRefusedError,
} from './deployment-client.js';
import { planLines } from '../plan/plan.js';
import type { PlanResult } from '../plan/plan.js';
import type { DeploymentClient, OperatorDelivery } from './deployment-client.js';
import { writeEvidenceBundle } from './evidence-bundle.js';
import { trainCommand } from './train-cli.js';
import type { TrainClient } from './train-client.js';
import { TrainSpecError } from '../train/train-spec.js';
import { ProgressPrinter, renderResult, renderSnapshot, renderStatus } from './render.js';
import { loadSpec } from './spec-source.js';
import type { SpecSources } from './spec-source.js';

export const ExitCode = {
  Succeeded: 0,
  RolledBackOrFailed: 1,
  InvalidInput: 2,
  Unreachable: 3,
  Refused: 4,
  /** No worker answered: the abort or approve is recorded by Temporal and waits for a worker. */
  Recorded: 5,
  /** Ctrl+C stopped the watching; the deployment itself goes on. */
  Interrupted: 130,
} as const;

/** Thrown inside commands to leave with a message and a code. */
class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface GlobalOptions {
  address?: string;
  temporalNamespace?: string;
  taskQueue?: string;
}

function defaultOperator(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return 'cli';
  }
}

async function connect(
  program: Command,
): Promise<{ client: DeploymentClient; trains: TrainClient; connection: Connection; config: TemporalConfig }> {
  const globals = program.opts<GlobalOptions>();
  try {
    const { deployments, trains, connection, config } = await connectDeployments({
      ...process.env,
      ...(globals.address ? { TEMPORAL_ADDRESS: globals.address } : {}),
      ...(globals.temporalNamespace ? { TEMPORAL_NAMESPACE: globals.temporalNamespace } : {}),
      ...(globals.taskQueue ? { TEMPORAL_TASK_QUEUE: globals.taskQueue } : {}),
    });
    return { client: deployments, trains, connection, config };
  } catch (error) {
    if (error instanceof TemporalUnreachableError) throw new Exit(ExitCode.Unreachable, error.message);
    throw error;
  }
}

/** Runs `body` with a connected client, closing the connection after. */
async function withClient<T>(
  program: Command,
  body: (client: DeploymentClient, config: TemporalConfig, trains: TrainClient) => Promise<T>,
): Promise<T> {
  const { client, trains, connection, config } = await connect(program);
  try {
    return await body(client, config, trains);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) {
      throw new Exit(ExitCode.InvalidInput, `no deployment found: ${error.message}`);
    }
    throw error;
  } finally {
    await connection.close();
  }
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Prints how an operator's verb landed; a verb only recorded (no worker) exits 5. */
function report(verb: string, app: string, answer: OperatorDelivery, json = false): void {
  if (json) out(JSON.stringify({ verb, ...answer }));
  else if (answer.delivery === 'accepted') out(`${verb} ${app}: ${answer.message}`);
  else out(`${verb} ${app} RECORDED, not yet answered: ${answer.message}`);
  if (answer.delivery === 'recorded') process.exitCode = ExitCode.Recorded;
}

/** Starts a deployment, says so (or prints its ids as JSON), and with --wait follows it to its end. */
async function startAndFollow(
  client: DeploymentClient,
  spec: DeploymentSpec,
  options: { wait?: boolean; abortOnInterrupt?: boolean; json?: boolean },
  started: (handle: { workflowId: string; firstExecutionRunId: string }) => string,
  planned?: PlanResult,
): Promise<void> {
  const handle = await client.start(spec, planned ? { planned } : {});
  if (!options.json) out(started(handle));
  if (!options.wait) {
    if (options.json) out(JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }));
    return;
  }
  await followToTheEnd(client, spec.namespace, spec.app, options);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The options that make a spec (spec-source.ts), shared by deploy and plan. */
function specOptions(command: Command): Command {
  return command
    .option('-f, --file <spec.yaml>', 'deployment spec (YAML or JSON); flags override its fields')
    .option('--app <name>', 'app name')
    .option('-n, --namespace <name>', 'Kubernetes namespace')
    .option('--image <ref>', 'image reference with a tag or digest')
    .option('--version <label>', 'version label (default: the image tag)')
    .option('--replicas <n>', 'replicas of the new slot')
    .option('--set <path=value>', 'override any spec field, e.g. monitor.durationSeconds=60 (repeatable)', collect)
    .option(
      '--allow-unstable-active',
      'deploy even if the active slot breaches its gated SLOs in preflight (a fix during an incident); ' +
        'the result records it',
    );
}

/** `--plan-id` takes the spec from the plan: another spec source beside it is bad input. */
function refuseOtherSources(options: SpecSources): void {
  const sources = (['file', 'app', 'image', 'version', 'replicas', 'set', 'allowUnstableActive'] as const).filter(
    (key) => options[key] !== undefined,
  );
  if (sources.length > 0)
    throw new Exit(
      ExitCode.InvalidInput,
      `--plan-id deploys the planned spec as it is: leave out ` +
        `${sources.map((key) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`,
    );
}

/** The plan `--plan-id` names, if it planned a deployment that would proceed. */
async function plannedSpec(
  client: DeploymentClient,
  planId: string,
): Promise<PlanResult & { live: NonNullable<PlanResult['live']> }> {
  const planned = await client.planResult(planId);
  if (!planned.plan || !planned.live)
    throw new Exit(
      ExitCode.InvalidInput,
      `plan ${planned.id} has no plan to deploy: ${planned.error?.message ?? 'unknown'}`,
    );
  if (!planned.plan.proceeds)
    throw new Exit(
      ExitCode.InvalidInput,
      `plan ${planned.id} says the deployment would fail; plan again once its checks pass`,
    );
  return { ...planned, live: planned.live };
}

/**
 * Follows a deployment to its end and sets the exit code from its outcome. Ctrl+C sends the procedure's
 * manual abort with `--abort-on-interrupt` and keeps following the rollback; without it, Ctrl+C
 * only stops watching (exit 130) and the deployment goes on.
 */
async function followToTheEnd(
  client: DeploymentClient,
  namespace: string,
  app: string,
  options: { abortOnInterrupt?: boolean; json?: boolean },
): Promise<void> {
  const printer = new ProgressPrinter(out, process.stdout.isTTY && !options.json ? process.stdout : null);
  const onInterrupt = () => {
    if (!options.abortOnInterrupt) {
      process.stderr.write(`stopped watching; the deployment goes on (bluegreen watch ${app} -n ${namespace})\n`);
      process.exit(ExitCode.Interrupted);
    }
    process.stderr.write('interrupted: sending abort, following the rollback (Ctrl+C again to stop watching)\n');
    process.once('SIGINT', () => process.exit(ExitCode.Interrupted));
    client
      .abort(namespace, app, { reason: 'interrupted (Ctrl+C) during --wait', by: defaultOperator() })
      .then((answer) => process.stderr.write(`${answer.message}\n`))
      .catch((error: unknown) => {
        process.stderr.write(`${(error as Error).message}\n`);
      });
  };
  process.once('SIGINT', onInterrupt);
  try {
    const result = await client.follow(namespace, app, (status) => {
      if (!options.json) printer.update(status);
    });
    printer.stopBar();
    out(options.json ? JSON.stringify(result, null, 2) : renderResult(result));
    if (result.outcome !== Outcome.Succeeded) process.exitCode = ExitCode.RolledBackOrFailed;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
}

export function buildProgram(): Command {
  const program = new Command('bluegreen')
    .description('Blue-green and canary deployments of Kubernetes services as durable Temporal workflows')
    .option('--address <host:port>', 'Temporal frontend address (env TEMPORAL_ADDRESS, default localhost:7233)')
    .option('--temporal-namespace <name>', 'Temporal namespace (env TEMPORAL_NAMESPACE, default "default")')
    .option('--task-queue <name>', 'task queue of the workers (env TEMPORAL_TASK_QUEUE, default "bluegreen")')
    .showHelpAfterError()
    .exitOverride();

  specOptions(program.command('deploy').description('deploy a new version to the idle slot of an app'))
    .option(
      '--plan-id <id>',
      'deploy exactly the spec a plan checked (bluegreen plan prints its id); refused if the live state changed since',
    )
    .option('--wait', 'follow the deployment to its end; the exit code is its outcome')
    .option(
      '--abort-on-interrupt',
      'with --wait: Ctrl+C sends abort (the deployment rolls back) instead of only stopping to watch',
    )
    .option('--json', 'machine-readable output (the result as JSON)')
    .action(
      async (
        options: SpecSources & { planId?: string; wait?: boolean; abortOnInterrupt?: boolean; json?: boolean },
      ) => {
        // A bad spec or flag exits 2 before anything is connected to.
        const loaded = options.planId ? (refuseOtherSources(options), null) : loadSpec(options);
        await withClient(program, async (client, config) => {
          const planned = options.planId ? await plannedSpec(client, options.planId) : undefined;
          const spec = planned?.spec ?? loaded!;
          const started = (handle: { workflowId: string; firstExecutionRunId: string }) =>
            `started ${handle.workflowId} (run ${handle.firstExecutionRunId}): ${spec.app} ${spec.version} ` +
            `in ${spec.namespace}` +
            `${planned ? `, as planned by ${planned.id}` : ''} [Temporal namespace ${config.TEMPORAL_NAMESPACE}]`;
          await startAndFollow(client, spec, options, started, planned);
        });
      },
    );

  specOptions(
    program
      .command('plan')
      .description(
        "what a deployment would do, checked against the cluster, Prometheus and the worker's access, with " +
          'nothing changed; exit 0: it would proceed, 1: a check says it would fail',
      ),
  )
    .option('--json', 'machine-readable output (the plan as JSON)')
    .action(async (options: SpecSources & { json?: boolean }) => {
      const spec = loadSpec(options);
      await withClient(program, async (client, config) => {
        const result = await client.plan(spec);
        if (result.error?.invalid) throw new Exit(ExitCode.InvalidInput, result.error.message);
        if (options.json) out(JSON.stringify(result, null, 2));
        else if (result.error) out(`plan ${result.id}: the live state could not be read: ${result.error.message}`);
        else {
          for (const line of planLines(result.plan!)) out(line);
          const ui = process.env['BLUEGREEN_TEMPORAL_UI_URL'];
          const workflows = `/namespaces/${config.TEMPORAL_NAMESPACE}/workflows/`;
          const link = ui ? ` (${ui.replace(/\/+$/, '')}${workflows}${encodeURIComponent(result.id)})` : '';
          out(`plan ${result.id}${link}`);
          if (result.plan!.proceeds) out(`deploy it: bluegreen deploy --plan-id ${result.id}`);
        }
        if (result.error || !result.plan!.proceeds) process.exitCode = ExitCode.RolledBackOrFailed;
      });
    });

  program
    .command('undo')
    .description("redeploy the version that was live before the app's last successful deployment, through every gate")
    .argument('<app>', 'app name')
    .option('-n, --namespace <name>', 'Kubernetes namespace', 'default')
    .option('--wait', 'follow the undo to its end; the exit code is its outcome')
    .option(
      '--abort-on-interrupt',
      'with --wait: Ctrl+C sends abort (the undo rolls back) instead of only stopping to watch',
    )
    .option('--json', 'machine-readable output (the result as JSON)')
    .action(
      async (
        app: string,
        options: { namespace: string; wait?: boolean; abortOnInterrupt?: boolean; json?: boolean },
      ) => {
        await withClient(program, async (client) => {
          const { spec, undone } = await client.planUndo(options.namespace, app);
          await startAndFollow(
            client,
            spec,
            options,
            (handle) =>
              `undoing ${app} ${undone.version} (run ${undone.runId}): deploying ${spec.version} (${spec.image}), ` +
              `the version live before it, ` +
              `with that deployment's spec; started ${handle.workflowId} (run ${handle.firstExecutionRunId})`,
          );
        });
      },
    );

  program
    .command('evidence')
    .description("write a rollback's evidence (logs, events, SLO series and charts, the template diff) to a directory")
    .argument('<app>', 'app name')
    .option('-n, --namespace <name>', 'Kubernetes namespace', 'default')
    .option('--run <id>', 'the run whose evidence to write (default: the latest deployment)')
    .requiredOption('-o, --output <dir>', 'directory to write the bundle to')
    .option('--json', 'machine-readable output (the files written)')
    .action(async (app: string, options: { namespace: string; run?: string; output: string; json?: boolean }) => {
      await withClient(program, async (client) => {
        const { runId, evidence } = await client.evidence(options.namespace, app, options.run);
        if (!evidence)
          throw new Exit(
            ExitCode.InvalidInput,
            `run ${runId} of ${options.namespace}/${app} captured no evidence (it did not roll back, or ran ` +
              `before the capture existed)`,
          );
        const files = writeEvidenceBundle(evidence, options.output);
        if (options.json) return out(JSON.stringify({ runId, dir: options.output, files }));
        out(
          `evidence of ${options.namespace}/${app} run ${runId} (${evidence.slot}, ${evidence.image}) ` +
            `in ${options.output}:`,
        );
        for (const file of files) out(`  ${file.path} (${file.bytes} bytes)`);
      });
    });

  program
    .command('watch')
    .description('follow the latest deployment of an app to its end; the exit code is its outcome')
    .argument('<app>', 'app name')
    .option('-n, --namespace <name>', 'Kubernetes namespace', 'default')
    .option('--abort-on-interrupt', 'Ctrl+C sends abort (the deployment rolls back) instead of only stopping to watch')
    .option('--json', 'machine-readable output (the result as JSON)')
    .action(async (app: string, options: { namespace: string; abortOnInterrupt?: boolean; json?: boolean }) => {
      await withClient(program, (client) => followToTheEnd(client, options.namespace, app, options));
    });

  program
    .command('abort')
    .description('roll back a running deployment (refused once cleanup has begun)')
    .argument('<app>', 'app name')
    .option('-n, --namespace <name>', 'Kubernetes namespace', 'default')
    .requiredOption('--reason <text>', 'why; recorded in the deployment history')
    .option('--by <operator>', 'who is aborting', defaultOperator())
    .option('--json', 'machine-readable output')
    .action(async (app: string, options: { namespace: string; reason: string; by: string; json?: boolean }) => {
      await withClient(program, async (client) => {
        const answer = await client.abort(options.namespace, app, { reason: options.reason, by: options.by });
        report('abort', `${options.namespace}/${app}`, answer, options.json);
      });
    });

  program
    .command('approve')
    .description('approve the gate a deployment is waiting at')
    .argument('<app>', 'app name')
    .option('-n, --namespace <name>', 'Kubernetes namespace', 'default')
    .addOption(new Option('--gate <gate>', 'the gate you mean to approve').choices(Object.values(Gate)))
    .option('--by <operator>', 'who is approving', defaultOperator())
    .option('--json', 'machine-readable output')
    .action(async (app: string, options: { namespace: string; gate?: Gate; by: string; json?: boolean }) => {
      await withClient(program, async (client) => {
        const answer = await client.approve(options.namespace, app, { by: options.by, gate: options.gate });
        report('approve', `${options.namespace}/${app}`, answer, options.json);
      });
    });

  program
    .command('promote')
    .description("canary: end the current step's hold now and go to the next step")
    .argument('<app>', 'app name')
    .option('-n, --namespace <name>', 'Kubernetes namespace', 'default')
    .option('--full', 'skip the remaining steps: straight to 100 %')
    .option('--by <operator>', 'who is promoting', defaultOperator())
    .option('--json', 'machine-readable output')
    .action(async (app: string, options: { namespace: string; full?: boolean; by: string; json?: boolean }) => {
      await withClient(program, async (client) => {
        const answer = await client.promote(options.namespace, app, { by: options.by, full: options.full === true });
        report('promote', `${options.namespace}/${app}`, answer, options.json);
      });
    });

  program
    .command('status')
    .description('phase, slots and SLO table of the latest deployment of an app')
    .argument('<app>', 'app name')
    .option('-n, --namespace <name>', 'Kubernetes namespace', 'default')
    .option('--json', 'machine-readable output')
    .action(async (app: string, options: { namespace: string; json?: boolean }) => {
      await withClient(program, async (client) => {
        const answer = await client.statusOrSnapshot(options.namespace, app);
        if ('status' in answer)
          return out(options.json ? JSON.stringify(answer.status, null, 2) : renderStatus(answer.status));
        out(options.json ? JSON.stringify(answer.snapshot, null, 2) : renderSnapshot(answer.snapshot));
      });
    });

  program
    .command('list')
    .description('recent deployments and their outcomes, newest first (from Temporal visibility)')
    .option('--limit <n>', 'how many', '20')
    .option('--app <name>', 'only this app (needs the search attributes registered)')
    .option('--outcome <outcome>', 'only Succeeded, RolledBack or Failed (needs the search attributes registered)')
    .option('--json', 'machine-readable output')
    .action(async (options: { limit: string; app?: string; outcome?: string; json?: boolean }) => {
      await withClient(program, async (client) => {
        const deployments = await client.list({
          limit: Number(options.limit),
          app: options.app,
          outcome: options.outcome,
        });
        if (options.json) return out(JSON.stringify(deployments, null, 2));
        out(
          [
            'STARTED'.padEnd(20),
            'NAMESPACE/APP'.padEnd(32),
            'VERSION'.padEnd(14),
            'STRATEGY'.padEnd(10),
            'STATUS'.padEnd(10),
            'OUTCOME',
          ].join(' '),
        );
        for (const d of deployments) {
          const outcome = d.outcome
            ? `${d.outcome}${d.reason ? ` (${d.reason})` : ''}`
            : d.phase
              ? `in ${d.phase}`
              : '-';
          out(
            [
              d.startTime.slice(0, 19).padEnd(20),
              `${d.namespace}/${d.app}`.padEnd(32),
              d.version.padEnd(14),
              d.strategy.padEnd(10),
              d.status.padEnd(10),
              outcome,
            ].join(' '),
          );
        }
      });
    });

  program.addCommand(
    trainCommand({
      withTrains: (body) => withClient(program, (_client, _config, trains) => body(trains)),
      report: (verb, name, answer, json) => report(verb, name, answer, json),
      defaultOperator,
    }),
  );

  return program;
}

/** Runs the CLI and returns the exit code (the bin sets it on the process). */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.Succeeded;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? ExitCode.Succeeded : ExitCode.InvalidInput;
    }
    const [code, message] =
      error instanceof Exit
        ? [error.code, error.message]
        : error instanceof SpecValidationError ||
            error instanceof ConfigError ||
            error instanceof NothingToUndoError ||
            error instanceof TrainSpecError ||
            error instanceof PlanNotFoundError
          ? [ExitCode.InvalidInput, error.message]
          : error instanceof DeploymentAlreadyRunningError || error instanceof RequestRefusedError
            ? [ExitCode.Refused, error.message]
            : [ExitCode.RolledBackOrFailed, `error: ${(error as Error).message ?? String(error)}`];
    process.stderr.write(`${message}\n`);
    return code;
  }
}
