/**
 * Temporal on PostgreSQL, the shared setup docker-compose.yml describes, without Docker: Debian's
 * PostgreSQL 15, and the Temporal server and its SQL tool built from their Go module by
 * scripts/setup.sh (deploy/temporal/go.mod: the release compose builds its image from). The
 * schema is set up by deploy/temporal/schema.sh and the `default` namespace registered by
 * deploy/temporal/namespace.sh, the scripts compose runs. The server is configured through the
 * environment of its embedded config template, as the compose service is. Each process can be
 * restarted on its data; everything started is stopped by PID.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { freePort, stopProcess } from '../../src/processes/processes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy/temporal');
export const TEMPORAL_SERVER = join(ROOT, '.tools/temporal-server');
export const TEMPORAL_SQL_TOOL = join(ROOT, '.tools/temporal-sql-tool');
/** The Temporal server release built and run (deploy/temporal/go.mod), compose's too. */
export const TEMPORAL_SERVER_VERSION = /go\.temporal\.io\/server (v[0-9.]+)/.exec(
  readFileSync(join(DEPLOY, 'go.mod'), 'utf8'),
)![1]!;
const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';
/** PostgreSQL refuses to run as root: it runs as the system's `postgres` user. */
const POSTGRES_USER = 'postgres';

const run = promisify(execFile);

export interface TemporalOnPostgres {
  /** host:port of the frontend's gRPC API. */
  address: string;
  /** Seconds from the first process start to the namespace registered. */
  startSeconds: number;
  /** Stops the Temporal server (SIGTERM) and starts it again on the same database. */
  restartServer(): Promise<void>;
  /** Stops PostgreSQL (fast shutdown: connections cut) for `downMs`, then starts it on its data. */
  restartPostgres(downMs?: number): Promise<void>;
  /** What the server printed since its last start. */
  serverLog(): string;
  stop(): Promise<void>;
}

/** The uid and gid of a system user, from /etc/passwd. */
function idsOf(user: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no '${user}' user on this machine: install PostgreSQL with 'bash scripts/setup.sh'`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startTemporalOnPostgres({ dir }: { dir: string }): Promise<TemporalOnPostgres> {
  for (const path of [TEMPORAL_SERVER, TEMPORAL_SQL_TOOL, join(POSTGRES_BIN, 'postgres')]) {
    if (!existsSync(path))
      throw new Error(
        `${path} is missing: run 'bash scripts/setup.sh' (it builds Temporal ${TEMPORAL_SERVER_VERSION} and installs PostgreSQL 15)`,
      );
  }
  const started = performance.now();
  const ids = idsOf(POSTGRES_USER);
  const data = join(dir, 'postgres');
  mkdirSync(data, { recursive: true, mode: 0o700 });
  chownSync(dir, ids.uid, ids.gid);
  chownSync(data, ids.uid, ids.gid);
  try {
    await run('test', ['-w', dir], { uid: ids.uid, gid: ids.gid });
  } catch {
    throw new Error(
      `${dir}: the '${POSTGRES_USER}' user cannot reach it (PostgreSQL runs as that user): use a directory whose parents it may enter`,
    );
  }
  const asPostgres = { uid: ids.uid, gid: ids.gid, env: { ...process.env, LC_ALL: 'C.UTF-8' } };
  const password = 'temporal';
  writeFileSync(join(dir, 'pwfile'), `${password}\n`);
  chownSync(join(dir, 'pwfile'), ids.uid, ids.gid);
  await run(
    join(POSTGRES_BIN, 'initdb'),
    ['-D', data, '-U', 'temporal', '--pwfile', join(dir, 'pwfile'), '-A', 'scram-sha-256', '-E', 'UTF8'],
    asPostgres,
  );

  const dbPort = await freePort();
  let postgres: ChildProcess | null = null;
  let postgresLog = '';
  const startPostgres = async () => {
    postgresLog = '';
    postgres = spawn(
      join(POSTGRES_BIN, 'postgres'),
      ['-D', data, '-p', String(dbPort), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`],
      {
        ...asPostgres,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    postgres.stdout!.on('data', (chunk) => (postgresLog += chunk));
    postgres.stderr!.on('data', (chunk) => (postgresLog += chunk));
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ready = await run(join(POSTGRES_BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(dbPort)]).then(
        () => true,
        () => false,
      );
      if (ready) return;
      if (postgres.exitCode !== null || Date.now() > deadline)
        throw new Error(`PostgreSQL did not start:\n${postgresLog}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  const database = {
    POSTGRES_SEEDS: '127.0.0.1',
    DB_PORT: String(dbPort),
    POSTGRES_USER: 'temporal',
    POSTGRES_PWD: password,
  };
  const [
    grpc,
    http,
    membership,
    history,
    historyMembership,
    matching,
    matchingMembership,
    worker,
    workerMembership,
    metrics,
    pprof,
  ] = await Promise.all(Array.from({ length: 11 }, () => freePort()));
  // The embedded config template's variables, as compose sets them (plus the ports, free here).
  const serverEnv = {
    ...database,
    DB: 'postgres12',
    BIND_ON_IP: '127.0.0.1',
    TEMPORAL_BROADCAST_ADDRESS: '127.0.0.1',
    FRONTEND_GRPC_PORT: String(grpc),
    FRONTEND_HTTP_PORT: String(http),
    FRONTEND_MEMBERSHIP_PORT: String(membership),
    HISTORY_GRPC_PORT: String(history),
    HISTORY_MEMBERSHIP_PORT: String(historyMembership),
    MATCHING_GRPC_PORT: String(matching),
    MATCHING_MEMBERSHIP_PORT: String(matchingMembership),
    WORKER_GRPC_PORT: String(worker),
    WORKER_MEMBERSHIP_PORT: String(workerMembership),
    PROMETHEUS_ENDPOINT: `127.0.0.1:${metrics}`,
    PPROF_PORT: String(pprof),
    DYNAMIC_CONFIG_FILE_PATH: join(DEPLOY, 'dynamicconfig.yaml'),
    LOG_LEVEL: 'error',
  };
  const address = `127.0.0.1:${grpc}`;
  let server: ChildProcess | null = null;
  let serverLog = '';
  const startServer = async () => {
    serverLog = '';
    server = spawn(TEMPORAL_SERVER, ['start'], {
      env: { ...process.env, ...serverEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout!.on('data', (chunk) => (serverLog += chunk));
    server.stderr!.on('data', (chunk) => (serverLog += chunk));
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (server.exitCode !== null)
        throw new Error(`the Temporal server exited with ${server.exitCode}:\n${serverLog.slice(-4000)}`);
      const connection = await Connection.connect({ address, connectTimeout: 2000 }).catch(() => null);
      const healthy = await connection?.healthService
        .check({})
        .then((answer) => answer.status === 1)
        .catch(() => false);
      await connection?.close();
      if (healthy) return;
      if (Date.now() > deadline)
        throw new Error(`the Temporal server did not answer within 90 s:\n${serverLog.slice(-4000)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };

  const stop = async () => {
    if (server) await stopProcess(server, 15_000);
    if (postgres) await stopProcess(postgres, 15_000);
  };
  try {
    await startPostgres();
    const schema = join(DEPLOY, 'schema.sh');
    await run('sh', [schema], {
      env: { ...process.env, ...database, SCHEMA_DIR: await schemaDir(), SQL_TOOL: TEMPORAL_SQL_TOOL },
      maxBuffer: 16 * 1024 * 1024,
    });
    await startServer();
    await run('sh', [join(DEPLOY, 'namespace.sh')], {
      env: { ...process.env, TEMPORAL_HTTP: `http://127.0.0.1:${http}`, NAMESPACE: 'default' },
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    address,
    startSeconds: (performance.now() - started) / 1000,
    restartServer: async () => {
      await stopProcess(server!, 15_000);
      await startServer();
    },
    restartPostgres: async (downMs = 0) => {
      // SIGINT: PostgreSQL's fast shutdown, which cuts every connection, as a database failover does.
      const gone = new Promise((resolve) => postgres!.once('exit', resolve));
      postgres!.kill('SIGINT');
      await gone;
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await startPostgres();
    },
    serverLog: () => serverLog,
    stop,
  };
}

/** schema/postgresql/v12 of the server release in the Go module cache (setup.sh downloaded it). */
async function schemaDir(): Promise<string> {
  const { stdout } = await run('go', ['list', '-m', '-f', '{{.Dir}}', 'go.temporal.io/server'], { cwd: DEPLOY });
  return join(stdout.trim(), 'schema/postgresql/v12');
}
