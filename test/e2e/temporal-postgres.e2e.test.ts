/**
 * Deployments on Temporal on PostgreSQL: the shared setup docker-compose.yml describes, run without
 * Docker (test/temporal-harness: Debian's PostgreSQL 15, the Temporal server built from its Go
 * module, the schema set up by Temporal's SQL tool). The worker runs as its own process against the
 * test control plane, as the worker ServiceAccount. Three apps deploy at once (one a crash-looping
 * version, so a rollback too) while the Temporal server process is restarted, and three more while
 * PostgreSQL is restarted (down 5 s, every connection cut). Each deployment ends as its version
 * should, and each app's cluster state is what its outcome says.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { DeploymentClient, deploymentResult } from '../../src/client/deployment-client.js';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import { startWorkerProcess } from '../../src/demo/worker-process.js';
import type { WorkerProcess } from '../../src/demo/worker-process.js';
import { freePort } from '../../src/processes/processes.js';
import type { DeploymentResult } from '../../src/shared/deployment-status.js';
import { startDetectionApi, TakListener, tempQueuePath } from '../helpers/detection-api-process.js';
import type { DetectionApiProcess } from '../helpers/detection-api-process.js';
import { eventually } from '../helpers/eventually.js';
import {
  assertFirstDeploymentState,
  crashLoop,
  createBlueGreenApp,
  deleteBlueGreenApp,
  fileNamespace,
  startClusterWithManifests,
} from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startTemporalOnPostgres, TEMPORAL_SERVER_VERSION } from '../temporal-harness/temporal-postgres.js';
import type { TemporalOnPostgres } from '../temporal-harness/temporal-postgres.js';

const TASK_QUEUE = 'bluegreen-postgres';
const NAMESPACE = fileNamespace(import.meta.url);
const CRASHING = 'v2.0.0-crashloop';
const appName = (i: number) => `pg-${i}`;
const imageOf = (app: string, version: string) => `registry.internal/${app}:${version}`;

describe(`deployments on Temporal ${TEMPORAL_SERVER_VERSION} on PostgreSQL 15, through restarts of the server and of the database`, () => {
  let temporal: TemporalOnPostgres;
  let cluster: Cluster;
  let tak: TakListener;
  let reference: DetectionApiProcess;
  let worker: WorkerProcess;
  let connection: Connection;
  let client: DeploymentClient;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'temporal-postgres-'));
    // Each assigned as it comes up, so that `after` stops it even if the other failed.
    await Promise.all([
      startTemporalOnPostgres({ dir: mkdtempSync(join(tmpdir(), 'temporal-postgres-data-')) }).then(
        (started) => (temporal = started),
      ),
      startClusterWithManifests({ namespace: NAMESPACE }).then((started) => (cluster = started)),
    ]);
    console.log(
      `Temporal ${TEMPORAL_SERVER_VERSION} on PostgreSQL: up in ${temporal.startSeconds.toFixed(1)} s (database, schema, server, namespace)`,
    );
    tak = await TakListener.start();
    reference = await startDetectionApi({ TAK_ADDRESS: `127.0.0.1:${tak.port}`, QUEUE_PATH: tempQueuePath() });
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        createBlueGreenApp(cluster.apps, cluster.core, appName(i), { namespace: NAMESPACE }),
      ),
    );
    const kubeconfig = join(dir, 'worker.kubeconfig');
    writeFileSync(
      kubeconfig,
      cluster.plane.configForToken(await cluster.plane.mintToken(NAMESPACE, 'bluegreen-worker', 3600)).exportConfig(),
    );
    worker = await startWorkerProcess({
      metricsPort: await freePort(),
      env: {
        BLUEGREEN_PLATFORM: 'kubernetes',
        BLUEGREEN_KUBECONFIG: kubeconfig,
        // The cluster's pods are simulated: no SLO queries; the monitor gates on restarts.
        PROMETHEUS_URL: 'http://127.0.0.1:9',
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_TASK_QUEUE: TASK_QUEUE,
        LOG_LEVEL: 'warn',
      },
    });
    connection = await Connection.connect({ address: temporal.address });
    client = new DeploymentClient(new Client({ connection, namespace: 'default' }), TASK_QUEUE);
  });

  after(async () => {
    await worker?.stop();
    await connection?.close();
    reference?.kill('SIGKILL');
    await tak?.close();
    await temporal?.stop();
    if (cluster) {
      for (let i = 0; i < 6; i++) await deleteBlueGreenApp(cluster, appName(i), NAMESPACE);
      await cluster.plane.stop();
    }
  });

  /**
   * Deploys apps `first`..`first + 2` (the last crash-looping), runs `outage` once all three are
   * monitoring, and checks each outcome and each app's state. A result read through the outage is
   * read again: the client's long poll may fail while the server is away; the deployment does not.
   */
  async function deployThrough(first: number, outage: () => Promise<void>): Promise<DeploymentResult[]> {
    const apps = [first, first + 1, first + 2].map(appName);
    const versions = ['v2.0.0', 'v2.0.0', CRASHING];
    const crashing = crashLoop(cluster, CRASHING, NAMESPACE);
    try {
      const handles = await Promise.all(
        apps.map((app, i) =>
          client.start(
            parseDeploymentSpec({
              app,
              namespace: NAMESPACE,
              image: imageOf(app, versions[i]!),
              replicas: 1,
              readinessTimeoutSeconds: 120,
              smoke: { endpoint: reference.url },
              monitor: { durationSeconds: 40, intervalSeconds: 5, slos: [] },
              scaleDownDelaySeconds: 0,
            }),
          ),
        ),
      );
      // The good versions monitoring (the crash-looping one may be rolling back already).
      await eventually(
        async () =>
          (await Promise.all(apps.slice(0, 2).map((app) => client.status(NAMESPACE, app)))).every(
            (s) => s.phase === 'Monitoring',
          ),
        'both good versions monitoring',
        60_000,
      );
      await outage();
      const results = await Promise.all(
        handles.map(async (handle) => {
          for (let attempt = 1; ; attempt++) {
            try {
              return await deploymentResult(handle);
            } catch (error) {
              if (attempt >= 20) throw error;
              await new Promise((resolve) => setTimeout(resolve, 1000));
            }
          }
        }),
      );
      for (const [i, result] of results.entries()) {
        const context = `${apps[i]} ${versions[i]}: ${result.outcome} (${result.reason ?? ''}: ${result.message})`;
        if (versions[i] === CRASHING)
          assert.deepEqual([result.outcome, result.failedCheck], ['RolledBack', 'pod-restarts'], context);
        else assert.equal(result.outcome, 'Succeeded', context);
        await assertFirstDeploymentState(
          cluster,
          apps[i]!,
          imageOf(apps[i]!, versions[i]!),
          versions[i] === CRASHING ? 'RolledBack' : 'Succeeded',
          context,
          NAMESPACE,
        );
      }
      return results;
    } finally {
      await crashing.stop();
    }
  }

  it('ends each deployment as its version should while the Temporal server process is restarted', async () => {
    let seconds = 0;
    await deployThrough(0, async () => {
      const started = performance.now();
      await temporal.restartServer();
      seconds = (performance.now() - started) / 1000;
    });
    console.log(`Temporal server restarted during monitoring: answering again after ${seconds.toFixed(1)} s`);
  });

  it('ends each deployment as its version should while PostgreSQL is restarted, down 5 s with every connection cut', async () => {
    let seconds = 0;
    await deployThrough(3, async () => {
      const started = performance.now();
      await temporal.restartPostgres(5000);
      seconds = (performance.now() - started) / 1000;
    });
    console.log(
      `PostgreSQL stopped (fast shutdown) and started again during monitoring: accepting connections after ${seconds.toFixed(1)} s`,
    );
  });
});
