/**
 * The GitOps controller on the real control plane and the Temporal dev server, with a worker as
 * the worker ServiceAccount and the controller as its own ServiceAccount, bound to the Role of
 * deploy/gitops/controller-role.yaml:
 * - `kubectl apply -f` of a Release runs a deployment; `kubectl get releases -w` shows its phases
 *   go by, and the status follows it to Succeeded;
 * - a new image during monitoring rolls the old generation back and deploys the new one;
 * - a controller that restarts before writing its status adopts the run it started;
 * - two Releases of one app take turns: neither aborts the other's deployment;
 * - a spec the API server takes but the spec's rules refuse is reported, and nothing starts;
 * - annotations approve and abort, each answered in the status and removed;
 * - a canary's step and weight in the status and in kubectl get -w, promoted with an annotation;
 * - an abort annotation while no worker runs is recorded, and rolls back once a worker is back;
 * - each verb of the Role is needed: without it, something fails with 403;
 * - two controller processes: exactly one acts, and the other takes over when it is killed.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DeploymentClient, deploymentResult } from '../../src/client/deployment-client.js';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import { RELEASE_GROUP, RELEASE_PLURAL, RELEASE_VERSION } from '../../src/gitops/release-resource.js';
import { LeaderElector } from '../../src/gitops/leader-election.js';
import { ReleaseAnnotation, ReleaseController } from '../../src/gitops/release-controller.js';
import type { Release } from '../../src/gitops/release-resource.js';
import { Phase } from '../../src/shared/deployment-status.js';
import { deploymentWorkflowId } from '../../src/shared/workflow-id.js';
import { eventually } from '../helpers/eventually.js';
import {
  applyInNamespace,
  assertFirstDeploymentState,
  createBlueGreenApp,
  deleteBlueGreenApp,
  fileNamespace,
  startClusterWithManifests,
} from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startKubernetesWorker } from '../helpers/kubernetes-worker.js';
import type { KubernetesWorker } from '../helpers/kubernetes-worker.js';
import { startDevServer } from '../helpers/temporal-servers.js';

const GITOPS = fileURLToPath(new URL('../../deploy/gitops', import.meta.url));
const ROLE = fileURLToPath(new URL('../../deploy/gitops/controller-role.yaml', import.meta.url));
const CONTROLLER = fileURLToPath(new URL('../../bin/bluegreen-controller.js', import.meta.url));
const CONTROLLER_SA = 'bluegreen-release-controller';
const TASK_QUEUE = 'bluegreen-release-controller';
const NAMESPACE = fileNamespace(import.meta.url);
const run = promisify(execFile);
const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

describe('the Release controller, on a real control plane and Temporal', () => {
  let env: TestWorkflowEnvironment;
  let cluster: Cluster;
  let worker: KubernetesWorker;
  let api: k8s.CustomObjectsApi;
  let client: DeploymentClient;
  let controller: ReleaseController;
  let controllerConfig: k8s.KubeConfig;
  let kubectl: (...args: string[]) => Promise<string>;
  const dir = mkdtempSync(join(tmpdir(), 'bluegreen-release-controller-'));
  const apps = ['rel-a', 'rel-b', 'rel-c', 'rel-d', 'rel-e', 'rel-f', 'rel-g', 'rel-h', 'rel-i'];

  const release = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: `${RELEASE_GROUP}/${RELEASE_VERSION}`,
    kind: 'Release',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      replicas: 1,
      readinessTimeoutSeconds: 60,
      smoke: { endpoint: worker.referenceUrl },
      scaleDownDelaySeconds: 0,
      ...spec,
    },
  });
  const read = async (name: string) =>
    (await api.getNamespacedCustomObject({
      group: RELEASE_GROUP,
      version: RELEASE_VERSION,
      namespace: NAMESPACE,
      plural: RELEASE_PLURAL,
      name,
    })) as Release;
  const create = async (body: ReturnType<typeof release>) =>
    (await api.createNamespacedCustomObject({
      group: RELEASE_GROUP,
      version: RELEASE_VERSION,
      namespace: NAMESPACE,
      plural: RELEASE_PLURAL,
      body,
    })) as Release;
  const runsOf = async (app: string) => {
    const runs: string[] = [];
    for await (const execution of env.client.workflow.list({
      query: `WorkflowId = '${deploymentWorkflowId(NAMESPACE, app, TASK_QUEUE)}'`,
    }))
      runs.push(execution.runId);
    return runs;
  };

  /** `kubectl annotate release NAME KEY=VALUE` in this file's namespace, as a team with only kubectl would. */
  const annotate = (name: string, annotation: string) =>
    kubectl('annotate', '--namespace', NAMESPACE, 'release', name, annotation);

  /** What a user sees in a second terminal: `kubectl get releases -w`, its lines the printer columns. */
  const watchReleases = () => {
    const child = spawn(
      'kubectl',
      [
        '--kubeconfig',
        cluster.plane.kubeconfigPath,
        '--namespace',
        NAMESPACE,
        'get',
        'releases',
        '--watch',
        '--output-watch-events',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    return { output: () => output, stop: () => child.kill() };
  };

  before(async () => {
    [env, cluster] = await Promise.all([startDevServer(), startClusterWithManifests({ namespace: NAMESPACE })]);
    kubectl = async (...args: string[]) =>
      (await run('kubectl', ['--kubeconfig', cluster.plane.kubeconfigPath, ...args])).stdout;
    // What a team applies: the CRD, the controller's Role, ServiceAccount and Deployment (its pods do not run here: the tests run the controller themselves).
    await applyInNamespace(cluster.plane, GITOPS, NAMESPACE);
    await kubectl('wait', '--for', 'condition=Established', 'crd/releases.bluegreen.dev', '--timeout=60s');
    for (const app of apps)
      await createBlueGreenApp(cluster.apps, cluster.core, app, {
        namespace: NAMESPACE,
        replicas: app === 'rel-h' ? 2 : 1,
      });
    const token = await cluster.plane.mintToken(NAMESPACE, 'bluegreen-worker');
    worker = await startKubernetesWorker(env, cluster.plane.configForToken(token), TASK_QUEUE);
    api = cluster.plane.adminConfig().makeApiClient(k8s.CustomObjectsApi);
    client = new DeploymentClient(env.client, TASK_QUEUE);
    controllerConfig = cluster.plane.configForToken(await cluster.plane.mintToken(NAMESPACE, CONTROLLER_SA));
    controller = new ReleaseController(controllerConfig, client, { namespace: NAMESPACE, resyncMs: 1000 });
    await controller.start();
  });

  after(async () => {
    await controller?.stop();
    await worker?.stop().catch(() => undefined); // already stopped if a drill failed without a worker
    if (cluster) {
      for (const app of apps) await deleteBlueGreenApp(cluster, app, NAMESPACE);
      await cluster.plane.stop();
    }
    await env?.teardown();
  });

  it('runs a deployment on kubectl apply of a Release; kubectl get -w shows its phases, and its status follows them to Succeeded', async () => {
    const manifest = join(dir, 'rel-a.yaml');
    writeFileSync(
      manifest,
      stringify(
        release('rel-a', {
          image: 'registry.internal/rel-a:v2.0.0',
          monitor: { durationSeconds: 6, intervalSeconds: 2, slos: [] },
        }),
      ),
    );
    const watcher = watchReleases();
    try {
      await kubectl('apply', '-f', manifest);
      await eventually(async () => (await read('rel-a')).status?.outcome === 'Succeeded', 'rel-a Succeeded', 120_000);
      await eventually(async () => / Succeeded /.test(watcher.output()), 'kubectl get -w shows Succeeded', 10_000);
    } finally {
      watcher.stop();
    }
    const lines = watcher.output().trim().split('\n');
    assert.match(lines[0]!, /^EVENT\s+NAME\s+IMAGE\s+PHASE\s+STEP\s+WEIGHT\s+OUTCOME\s+AGE/);
    // The status is mirrored every second: a phase shorter than that (Deploying one replica) may not show.
    const order = Object.values(Phase) as string[];
    const phases = lines
      .filter((line) => line.split(/\s+/)[1] === 'rel-a')
      .map((line) => line.split(/\s+/)[3]!)
      .filter((phase, i, all) => order.includes(phase) && phase !== all[i - 1]);
    assert.ok(
      phases.length >= 3 && phases.includes('Monitoring') && phases.at(-1) === 'Succeeded',
      `kubectl get -w showed the phases go by: ${phases.join(' → ')}`,
    );
    assert.deepEqual(
      [...phases].sort((x, y) => order.indexOf(x) - order.indexOf(y)),
      phases,
      'in the order of the procedure',
    );
    // Blue-green has no step or weight: those columns stay empty.
    assert.match(
      lines.at(-1)!,
      /^MODIFIED\s+rel-a\s+registry\.internal\/rel-a:v2\.0\.0\s+Succeeded\s+Succeeded\s+\d+s$/,
    );
    const { status } = await read('rel-a');
    assert.equal(status!.observedGeneration, 1);
    assert.equal(status!.workflowId, deploymentWorkflowId(NAMESPACE, 'rel-a', TASK_QUEUE));
    assert.deepEqual([status!.image, status!.liveSlot], ['registry.internal/rel-a:v2.0.0', 'green']);
    const conditions = Object.fromEntries(status!.conditions!.map((c) => [c.type, c.status]));
    assert.deepEqual(conditions, {
      Progressing: 'False',
      Healthy: 'True',
      Degraded: 'False',
      Ready: 'True',
      Reconciling: 'False',
      Stalled: 'False',
    });
    await assertFirstDeploymentState(
      cluster,
      'rel-a',
      'registry.internal/rel-a:v2.0.0',
      'Succeeded',
      'rel-a',
      NAMESPACE,
    );
    assert.equal((await runsOf('rel-a')).length, 1, 'one run for the one generation');
  });

  it('rolls the old generation back and deploys the new one when the image changes during monitoring', async () => {
    await create(
      release('rel-b', {
        image: 'registry.internal/rel-b:v2.0.0',
        monitor: { durationSeconds: 120, intervalSeconds: 2, slos: [] },
      }),
    );
    await eventually(
      async () => (await read('rel-b')).status?.phase === 'Monitoring',
      'rel-b generation 1 monitoring',
      120_000,
    );
    const first = (await read('rel-b')).status!.runId!;
    await api.patchNamespacedCustomObject(
      {
        group: RELEASE_GROUP,
        version: RELEASE_VERSION,
        namespace: NAMESPACE,
        plural: RELEASE_PLURAL,
        name: 'rel-b',
        body: { spec: { image: 'registry.internal/rel-b:v3.0.0', monitor: { durationSeconds: 4 } } },
      },
      MERGE_PATCH,
    );
    await eventually(
      async () => {
        const status = (await read('rel-b')).status;
        return status?.observedGeneration === 2 && status.outcome === 'Succeeded';
      },
      'rel-b generation 2 Succeeded',
      180_000,
    );
    const older = await deploymentResult(client.handle(NAMESPACE, 'rel-b', first));
    assert.deepEqual([older.outcome, older.reason], ['RolledBack', 'Aborted']);
    assert.match(older.status.abort!.reason, /superseded by generation 2 of Release rel-b/);
    const { status } = await read('rel-b');
    assert.notEqual(status!.runId, first);
    // v2.0.0 went to green and back; v3.0.0 then went to green from blue.
    const green = await cluster.apps.readNamespacedDeployment({ name: 'rel-b-green', namespace: NAMESPACE });
    assert.equal(green.spec!.template.spec!.containers[0]!.image, 'registry.internal/rel-b:v3.0.0');
    const service = await cluster.core.readNamespacedService({ name: 'rel-b-service', namespace: NAMESPACE });
    assert.equal(service.spec!.selector!['slot'], 'green');
    assert.equal((await runsOf('rel-b')).length, 2, 'one run per generation');
  });

  it('adopts, after a restart, the run it started before it could write the status: nothing starts twice', async () => {
    await controller.stop();
    // The controller is gone: its start of generation 1 happens now, by hand, as it would have.
    const created = await create(
      release('rel-c', {
        image: 'registry.internal/rel-c:v2.0.0',
        monitor: { durationSeconds: 6, intervalSeconds: 2, slos: [] },
      }),
    );
    const spec = parseDeploymentSpec({ ...created.spec, app: 'rel-c', namespace: NAMESPACE });
    const started = await client.start(spec, {
      release: { uid: created.metadata!.uid!, name: 'rel-c', generation: 1 },
    });
    assert.equal((await read('rel-c')).status, undefined, 'no status was written');
    controller = new ReleaseController(controllerConfig, client, { namespace: NAMESPACE, resyncMs: 1000 });
    await controller.start();
    await eventually(async () => (await read('rel-c')).status?.outcome === 'Succeeded', 'rel-c Succeeded', 120_000);
    assert.equal((await read('rel-c')).status!.runId, started.firstExecutionRunId, 'the run it started was adopted');
    assert.deepEqual(await runsOf('rel-c'), [started.firstExecutionRunId], 'and no other started');
  });

  it("takes turns when two Releases name one app: the second waits, and neither aborts the other's deployment", async () => {
    await create(
      release('rel-i-first', {
        app: 'rel-i',
        image: 'registry.internal/rel-i:v2.0.0',
        monitor: { durationSeconds: 10, intervalSeconds: 2, slos: [] },
      }),
    );
    await eventually(
      async () => (await read('rel-i-first')).status?.phase === 'Monitoring',
      'rel-i-first monitoring',
      120_000,
    );
    const first = (await read('rel-i-first')).status!.runId!;
    await create(
      release('rel-i-second', {
        app: 'rel-i',
        image: 'registry.internal/rel-i:v3.0.0',
        monitor: { durationSeconds: 4, intervalSeconds: 2, slos: [] },
      }),
    );
    await eventually(
      async () => /being deployed by Release rel-i-first/.test((await read('rel-i-second')).status?.message ?? ''),
      'rel-i-second waits its turn',
      30_000,
    );
    await eventually(
      async () => (await read('rel-i-second')).status?.outcome === 'Succeeded',
      'rel-i-second Succeeded',
      120_000,
    );
    const firstResult = await deploymentResult(client.handle(NAMESPACE, 'rel-i', first));
    assert.equal(firstResult.outcome, 'Succeeded', 'the first was not aborted');
    assert.equal((await read('rel-i-first')).status!.outcome, 'Succeeded');
    assert.equal((await runsOf('rel-i')).length, 2);
    // v2.0.0 went live on green, then v3.0.0 on blue.
    const service = await cluster.core.readNamespacedService({ name: 'rel-i-service', namespace: NAMESPACE });
    assert.equal(service.spec!.selector!['slot'], 'blue');
    const blue = await cluster.apps.readNamespacedDeployment({ name: 'rel-i-blue', namespace: NAMESPACE });
    assert.equal(blue.spec!.template.spec!.containers[0]!.image, 'registry.internal/rel-i:v3.0.0');
  });

  it('reports a spec the API server takes but the spec rules refuse, and starts nothing', async () => {
    // Canary steps must end at 100 %: a rule of the spec, not of the schema.
    await create(
      release('rel-d', {
        image: 'registry.internal/rel-d:v2.0.0',
        strategy: 'canary',
        canary: { steps: [{ weight: 25, holdSeconds: 30 }] },
      }),
    );
    await eventually(
      async () =>
        (await read('rel-d')).status?.conditions?.some((c) => c.type === 'Degraded' && c.status === 'True') === true,
      'rel-d Degraded',
      30_000,
    );
    const { status } = await read('rel-d');
    const degraded = status!.conditions!.find((c) => c.type === 'Degraded')!;
    assert.equal(degraded.reason, 'InvalidSpec');
    assert.match(degraded.message, /spec\.canary\.steps/);
    assert.deepEqual(await runsOf('rel-d'), []);
  });

  it('takes approve and abort as annotations, each answered in the status and removed; one after the end is refused', async () => {
    await create(
      release('rel-e', {
        image: 'registry.internal/rel-e:v2.0.0',
        gates: { approveBeforeSwitch: true },
        monitor: { durationSeconds: 120, intervalSeconds: 2, slos: [] },
      }),
    );
    await eventually(
      async () => (await read('rel-e')).status?.phase === 'AwaitingApproval',
      'rel-e awaiting approval',
      120_000,
    );
    const answered = async (verb: string) => {
      await eventually(
        async () => (await read('rel-e')).status?.lastRequest?.verb === verb,
        `the ${verb} answered`,
        30_000,
      );
      const current = await read('rel-e');
      assert.equal(
        current.metadata!.annotations?.[`bluegreen.dev/${verb}`],
        undefined,
        `the ${verb} annotation is removed`,
      );
      return current.status!.lastRequest!;
    };

    await annotate('rel-e', `${ReleaseAnnotation.Approve}=release notes read`);
    const approved = await answered('approve');
    assert.deepEqual([approved.answer, approved.value], ['Accepted', 'release notes read'], approved.message);
    await eventually(
      async () => (await read('rel-e')).status?.phase === 'Monitoring',
      'rel-e monitoring after the approval',
      60_000,
    );

    await annotate('rel-e', `${ReleaseAnnotation.Abort}=p95 latency too high`);
    const aborted = await answered('abort');
    assert.equal(aborted.answer, 'Accepted', aborted.message);
    await eventually(async () => (await read('rel-e')).status?.outcome === 'RolledBack', 'rel-e rolled back', 60_000);
    const result = await deploymentResult(client.handle(NAMESPACE, 'rel-e'));
    assert.deepEqual(
      [result.outcome, result.reason, result.status.abort!.reason],
      ['RolledBack', 'Aborted', 'p95 latency too high'],
    );
    assert.match(
      result.status.abort!.by ?? '',
      new RegExp(`annotation bluegreen\\.dev/abort on Release ${NAMESPACE}/rel-e`),
    );
    const conditions = Object.fromEntries((await read('rel-e')).status!.conditions!.map((c) => [c.type, c.status]));
    assert.deepEqual([conditions['Degraded'], conditions['Healthy']], ['True', 'False']);
    await assertFirstDeploymentState(
      cluster,
      'rel-e',
      'registry.internal/rel-e:v2.0.0',
      'RolledBack',
      'rel-e',
      NAMESPACE,
    );

    await annotate('rel-e', `${ReleaseAnnotation.Promote}=full`);
    const promoted = await answered('promote');
    assert.equal(promoted.answer, 'Refused');
    assert.match(promoted.message, /the deployment is over/);
    assert.equal((await runsOf('rel-e')).length, 1, 'nothing else started');
  });

  it('plans the current spec of a Release annotated bluegreen.dev/plan into status.plan, and deploys nothing', async () => {
    const before = (await read('rel-e')).metadata!.generation;
    await annotate('rel-e', `${ReleaseAnnotation.Plan}=`);
    await eventually(async () => (await read('rel-e')).status?.plan !== undefined, 'rel-e planned', 60_000);
    const current = await read('rel-e');
    assert.equal(current.metadata!.annotations?.[ReleaseAnnotation.Plan], undefined, 'the plan annotation is removed');
    const plan = current.status!.plan!;
    assert.deepEqual([plan.verdict, plan.generation], ['WouldProceed', before], plan.lines.join('\n'));
    assert.match(plan.id ?? '', new RegExp(`^bluegreen/plan/${NAMESPACE}/rel-e/[0-9a-f]{8}$`));
    assert.match(
      plan.lines[0]!,
      new RegExp(
        `^${NAMESPACE}/rel-e v2\\.0\\.0 \\(registry\\.internal/rel-e:v2\\.0\\.0\\), blueGreen through service-selector: would proceed$`,
      ),
    );
    assert.ok(
      plan.lines.some((line) => /^ok {3}write deploy v2\.0\.0 to rel-e-green x1: accepted as a dry run/.test(line)),
      plan.lines.join('\n'),
    );
    assert.equal((await runsOf('rel-e')).length, 1, 'the plan deployed nothing');
    assert.equal(current.status!.outcome, 'RolledBack', 'the deployment it mirrors is unchanged');
  });

  it("shows a canary's step and weight as it goes, and takes promote as an annotation", async () => {
    const watcher = watchReleases();
    try {
      await create(
        release('rel-h', {
          image: 'registry.internal/rel-h:v2.0.0',
          replicas: 2,
          strategy: 'canary',
          traffic: { router: 'replica-ratio' },
          // One canary replica beside two stable ones is 33 %, held until promoted.
          canary: {
            steps: [
              { weight: 33, untilPromote: true },
              { weight: 100, holdSeconds: 2 },
            ],
            minRequests: 0,
          },
          monitor: { durationSeconds: 4, intervalSeconds: 2, slos: [] },
        }),
      );
      await eventually(
        async () => {
          const status = (await read('rel-h')).status;
          return status?.phase === 'Monitoring' && status.step === 1 && status.weight === 33;
        },
        'rel-h held at step 1, 33 %',
        120_000,
      );
      const service = await cluster.core.readNamespacedService({ name: 'rel-h-service', namespace: NAMESPACE });
      assert.deepEqual(service.spec!.selector, { app: 'rel-h' }, 'both slots serve');

      await annotate('rel-h', `${ReleaseAnnotation.Promote}=`);
      await eventually(
        async () => (await read('rel-h')).status?.lastRequest?.verb === 'promote',
        'the promote answered',
        30_000,
      );
      const promoted = (await read('rel-h')).status!.lastRequest!;
      assert.equal(promoted.answer, 'Accepted', promoted.message);
      await eventually(async () => (await read('rel-h')).status?.outcome === 'Succeeded', 'rel-h Succeeded', 120_000);
      await eventually(
        async () => /\srel-h\s.*\sSucceeded\s/.test(watcher.output()),
        'kubectl get -w shows rel-h Succeeded',
        10_000,
      );
    } finally {
      watcher.stop();
    }
    const { status } = await read('rel-h');
    assert.deepEqual([status!.step, status!.weight, status!.liveSlot], [2, 100, 'green']);
    // An empty column (no outcome yet) prints nothing: match the lines whole.
    const rows = watcher
      .output()
      .split('\n')
      .filter((line) => line.split(/\s+/)[1] === 'rel-h');
    assert.ok(
      rows.some((row) => /\sMonitoring\s+1\s+33\s+\d+s$/.test(row)),
      `kubectl get -w showed step 1 at 33 %:\n${rows.join('\n')}`,
    );
    assert.ok(
      rows.some((row) => /\sSucceeded\s+2\s+100\s+Succeeded\s+\d+s$/.test(row)),
      `and step 2 at 100 %, Succeeded:\n${rows.join('\n')}`,
    );
    const service = await cluster.core.readNamespacedService({ name: 'rel-h-service', namespace: NAMESPACE });
    assert.deepEqual(service.spec!.selector, { app: 'rel-h', slot: 'green' });
    const green = await cluster.apps.readNamespacedDeployment({ name: 'rel-h-green', namespace: NAMESPACE });
    assert.deepEqual(
      [green.spec!.template.spec!.containers[0]!.image, green.spec!.replicas],
      ['registry.internal/rel-h:v2.0.0', 2],
    );
  });

  it('records an abort annotation made while no worker runs, and rolls back once a worker is back', async () => {
    await create(
      release('rel-g', {
        image: 'registry.internal/rel-g:v2.0.0',
        monitor: { durationSeconds: 120, intervalSeconds: 2, slos: [] },
      }),
    );
    await eventually(async () => (await read('rel-g')).status?.phase === 'Monitoring', 'rel-g monitoring', 120_000);
    await worker.stop();
    await annotate('rel-g', `${ReleaseAnnotation.Abort}=aborted while the worker was gone`);
    await eventually(
      async () => (await read('rel-g')).status?.lastRequest?.verb === 'abort',
      'the abort answered',
      30_000,
    );
    const recorded = (await read('rel-g')).status!.lastRequest!;
    assert.equal(recorded.answer, 'Recorded', recorded.message);
    assert.match(recorded.message, /no worker answered within 5 s/);
    assert.equal(
      (await read('rel-g')).metadata!.annotations?.[ReleaseAnnotation.Abort],
      undefined,
      'the annotation is removed',
    );
    // Traffic stays on the new slot until a worker runs the rollback: nothing half-switches.
    const service = await cluster.core.readNamespacedService({ name: 'rel-g-service', namespace: NAMESPACE });
    assert.equal(service.spec!.selector!['slot'], 'green');

    worker = await startKubernetesWorker(
      env,
      cluster.plane.configForToken(await cluster.plane.mintToken(NAMESPACE, 'bluegreen-worker')),
      TASK_QUEUE,
    );
    await eventually(async () => (await read('rel-g')).status?.outcome === 'RolledBack', 'rel-g rolled back', 60_000);
    const result = await deploymentResult(client.handle(NAMESPACE, 'rel-g'));
    assert.deepEqual([result.reason, result.status.abort!.reason], ['Aborted', 'aborted while the worker was gone']);
    await assertFirstDeploymentState(
      cluster,
      'rel-g',
      'registry.internal/rel-g:v2.0.0',
      'RolledBack',
      'rel-g',
      NAMESPACE,
    );
  });

  it('needs each verb of its Role: without any one of them, something fails with 403', async () => {
    const documents = parseAllDocuments(readFileSync(ROLE, 'utf8')).map(
      (d) =>
        d.toJS() as {
          kind: string;
          metadata: { namespace?: string };
          rules?: { resources: string[]; verbs: string[] }[];
        },
    );
    const role = documents.find((d) => d.kind === 'Role')!;
    const grants = role.rules!.flatMap((rule, index) =>
      rule.verbs.map((verb) => ({ index, verb, resource: rule.resources.join(',') })),
    );
    // What fails, and where the controller says so, without each grant.
    const failing: Record<string, RegExp> = {
      'releases list': /^release watch failed/,
      'releases watch': /^release watch failed/,
      'releases patch': /^release reconcile failed/,
      'releases/status patch': /^release reconcile failed/,
      'leases get': /^lease acquisition failed/,
      'leases create': /^lease acquisition failed/,
      'leases update': /^lease renewal failed/,
    };
    assert.deepEqual(
      grants.map((g) => `${g.resource} ${g.verb}`).sort(),
      Object.keys(failing).sort(),
      'the Role grants exactly these',
    );

    const cases = [null, ...grants];
    const runTag = Date.now().toString(36); // a control plane kept between runs (BLUEGREEN_TEST_CONTROL_PLANE) has the last run's namespaces
    for (const [n, without] of cases.entries()) {
      const namespace = `release-rbac-${n}-${runTag}`;
      const rules = role
        .rules!.map((rule, index) => ({
          ...rule,
          verbs: rule.verbs.filter((verb) => !(without && index === without.index && verb === without.verb)),
        }))
        .filter((rule) => rule.verbs.length > 0);
      const file = join(dir, `${namespace}.yaml`);
      writeFileSync(
        file,
        documents
          .map((d) =>
            stringify({
              ...d,
              metadata: { ...d.metadata, namespace },
              ...(d.kind === 'Role' ? { rules } : {}),
              ...(d.kind === 'RoleBinding'
                ? { subjects: [{ kind: 'ServiceAccount', name: CONTROLLER_SA, namespace }] }
                : {}),
            }),
          )
          .join('---\n'),
      );
      await kubectl('create', 'namespace', namespace);
      await kubectl('apply', '-f', file);
      await api.createNamespacedCustomObject({
        group: RELEASE_GROUP,
        version: RELEASE_VERSION,
        namespace,
        plural: RELEASE_PLURAL,
        // A spec the rules refuse (so no deployment is needed) and an approval to answer: every grant is used.
        body: {
          ...release('app', {
            image: 'registry.internal/app:v2.0.0',
            strategy: 'canary',
            canary: { steps: [{ weight: 25, holdSeconds: 30 }] },
          }),
          metadata: { name: 'app', namespace, annotations: { [ReleaseAnnotation.Approve]: '' } },
        },
      });
      const config = cluster.plane.configForToken(await cluster.plane.mintToken(namespace, CONTROLLER_SA));
      const logs: { line: string; code?: unknown }[] = [];
      const log = (line: string, fields?: Record<string, unknown>) => logs.push({ line, code: fields?.['code'] });
      const rbacController = new ReleaseController(config, client, {
        namespace,
        identity: 'rbac',
        resyncMs: 500,
        retryMs: 500,
        log,
      });
      const elector = new LeaderElector(config, {
        namespace,
        name: 'lease',
        identity: 'rbac',
        leaseDurationMs: 3000,
        renewDeadlineMs: 2000,
        retryMs: 500,
        log,
        onStartedLeading: () => void rbacController.start(),
        onStoppedLeading: () => rbacController.stop(),
      });
      const elected = elector.run();
      try {
        if (without === null) {
          await eventually(
            async () => {
              const { status, metadata } = (await api.getNamespacedCustomObject({
                group: RELEASE_GROUP,
                version: RELEASE_VERSION,
                namespace,
                plural: RELEASE_PLURAL,
                name: 'app',
              })) as Release;
              return (
                status?.conditions?.some((c) => c.reason === 'InvalidSpec') === true &&
                status.lastRequest?.answer === 'Refused' &&
                !metadata?.annotations?.[ReleaseAnnotation.Approve]
              );
            },
            'the full Role: status written, annotation answered and removed',
            20_000,
          );
          const renewed = (
            await cluster.plane
              .adminConfig()
              .makeApiClient(k8s.CoordinationV1Api)
              .readNamespacedLease({ name: 'lease', namespace })
          ).spec!;
          await eventually(
            async () => {
              const now = (
                await cluster.plane
                  .adminConfig()
                  .makeApiClient(k8s.CoordinationV1Api)
                  .readNamespacedLease({ name: 'lease', namespace })
              ).spec!;
              return String(now.renewTime) !== String(renewed.renewTime) && now.holderIdentity === 'rbac';
            },
            'the full Role: the lease renewed',
            10_000,
          );
          assert.deepEqual(
            logs.filter((l) => l.code === 403),
            [],
            'no 403 with the whole Role',
          );
        } else {
          const expected = failing[`${without.resource} ${without.verb}`]!;
          await eventually(
            async () => logs.some((l) => l.code === 403 && expected.test(l.line)),
            `without ${without.resource} ${without.verb}: a 403 in "${expected.source}"; logged: ${JSON.stringify(logs.slice(-5))}`,
            20_000,
          );
        }
      } finally {
        await elector.stop();
        await rbacController.stop();
        await elected;
      }
    }
  });

  it('runs as two processes of which exactly one acts; the other takes over when the leader is killed', async () => {
    await controller.stop();
    const kubeconfig = join(dir, 'controller.kubeconfig');
    writeFileSync(kubeconfig, controllerConfig.exportConfig());
    const leases = cluster.plane.adminConfig().makeApiClient(k8s.CoordinationV1Api);
    const lease = async () =>
      (
        await leases
          .readNamespacedLease({ name: 'bluegreen-release-controller', namespace: NAMESPACE })
          .catch(() => null)
      )?.spec;
    const processes: { id: string; child: ChildProcess; output: string }[] = [];
    const startController = (id: string) => {
      const child = spawn(process.execPath, [CONTROLLER], {
        env: {
          ...process.env,
          BLUEGREEN_KUBECONFIG: kubeconfig,
          BLUEGREEN_RELEASE_NAMESPACE: NAMESPACE,
          BLUEGREEN_CONTROLLER_ID: id,
          TEMPORAL_ADDRESS: env.address,
          TEMPORAL_NAMESPACE: 'default',
          TEMPORAL_TASK_QUEUE: TASK_QUEUE,
          BLUEGREEN_LEASE_DURATION_SECONDS: '6',
          BLUEGREEN_RENEW_DEADLINE_SECONDS: '4',
          BLUEGREEN_RETRY_PERIOD_SECONDS: '1',
          BLUEGREEN_RESYNC_SECONDS: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const entry = { id, child, output: '' };
      child.stdout!.on('data', (chunk: Buffer) => (entry.output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (entry.output += chunk.toString()));
      processes.push(entry);
      return entry;
    };
    const statusWriters = async (name: string) =>
      ((await read(name)).metadata!.managedFields ?? [])
        .filter((f) => f.subresource === 'status')
        .map((f) => f.manager);
    try {
      const a = startController('controller-a');
      await eventually(async () => (await lease())?.holderIdentity === 'controller-a', 'controller-a leads', 30_000);
      const transitions = (await lease())!.leaseTransitions ?? 0;
      const b = startController('controller-b');
      await eventually(async () => b.output.includes('campaigning for the lease'), 'controller-b campaigning', 30_000);

      await create(
        release('rel-f', {
          image: 'registry.internal/rel-f:v2.0.0',
          monitor: { durationSeconds: 30, intervalSeconds: 2, slos: [] },
        }),
      );
      await eventually(async () => (await read('rel-f')).status?.phase === 'Monitoring', 'rel-f monitoring', 120_000);
      assert.deepEqual(await statusWriters('rel-f'), ['controller-a'], 'only the leader wrote the status');
      assert.doesNotMatch(b.output, /"msg":"(leading|deployment started)"/, 'the other replica did nothing');
      assert.match(a.output, /"msg":"deployment started"/);

      a.child.kill('SIGKILL');
      await eventually(
        async () => (await lease())?.holderIdentity === 'controller-b',
        'controller-b took the lease over',
        30_000,
      );
      await eventually(async () => (await read('rel-f')).status?.outcome === 'Succeeded', 'rel-f Succeeded', 120_000);
      assert.ok((await statusWriters('rel-f')).includes('controller-b'), 'the new leader mirrors the deployment');
      assert.match(b.output, /"msg":"took over the lease"/);
      assert.equal(
        (await lease())?.leaseTransitions,
        transitions + 1,
        'one transition: from controller-a to controller-b',
      );
      assert.equal((await runsOf('rel-f')).length, 1, 'the deployment started once');
      await assertFirstDeploymentState(
        cluster,
        'rel-f',
        'registry.internal/rel-f:v2.0.0',
        'Succeeded',
        'rel-f',
        NAMESPACE,
      );

      const exited = new Promise<number | null>((resolve) => b.child.once('exit', resolve));
      b.child.kill('SIGTERM');
      assert.equal(await exited, 0, b.output);
      assert.equal((await lease())?.holderIdentity, '', 'the lease was handed back on SIGTERM');
    } finally {
      for (const { child } of processes) if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
