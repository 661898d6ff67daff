/**
 * `bluegreen plan` on the real control plane, through a worker authenticated as deploy/'s
 * ServiceAccount, with a real Prometheus scraping a real detection API as the live slot's series:
 * a plan that passes and the deployment of exactly that plan; the live state changed between the
 * plan and its deployment; a Role without `patch` on Deployments; a ResourceQuota too small for the
 * idle slot; a query with a typo; an admission policy that refuses the image under dryRun=All; a
 * canary step below the smallest step. No plan changes anything: the objects' resourceVersions
 * stay as they were.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { stringify as toYaml } from 'yaml';
import { DeploymentClient, deploymentResult } from '../../src/client/deployment-client.js';
import type { DeploymentSpecInput } from '../../src/deployment-spec/deployment-spec.js';
import type { PlanResult } from '../../src/plan/plan.js';
import { PlanResultSchema } from '../../src/client/output-schemas.js';
import { DETECTION_API_SLOS, testSpec } from '../helpers/deployment-harness.js';
import {
  postDetection,
  SEED_DETECTION,
  startDetectionApi,
  TakListener,
  tempQueuePath,
} from '../helpers/detection-api-process.js';
import type { DetectionApiProcess } from '../helpers/detection-api-process.js';
import { eventually } from '../helpers/eventually.js';
import { fileNamespace, startClusterWithManifests } from '../helpers/kubernetes.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { startKubernetesWorker } from '../helpers/kubernetes-worker.js';
import type { KubernetesWorker } from '../helpers/kubernetes-worker.js';
import { startPrometheus } from '../helpers/prometheus.js';
import type { PrometheusServer } from '../helpers/prometheus.js';
import { startDevServer } from '../helpers/temporal-servers.js';

const NS = fileNamespace(import.meta.url);
const TASK_QUEUE = 'bluegreen-plan-e2e';
const BIN = fileURLToPath(new URL('../../bin/bluegreen.js', import.meta.url));
const IMAGE = (tag: string) => `registry.internal/detection-api:${tag}`;
const ERROR_RATE = DETECTION_API_SLOS.find((slo) => slo.name === 'error-rate')!;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('bluegreen plan against a real control plane and Prometheus, as the worker ServiceAccount', () => {
  let env: TestWorkflowEnvironment;
  let cluster: Cluster;
  let worker: KubernetesWorker;
  let tak: TakListener;
  let live: DetectionApiProcess;
  let prometheus: PrometheusServer;
  let client: DeploymentClient;
  let admissionregistration: k8s.AdmissionregistrationV1Api;
  const traffic = { running: true, loop: Promise.resolve() };
  const dir = mkdtempSync(join(tmpdir(), 'plan-e2e-'));

  before(async () => {
    [env, cluster, tak] = await Promise.all([
      startDevServer(),
      startClusterWithManifests({ namespace: NS }),
      TakListener.start(),
    ]);
    // The live slot's series: the reference service labelled as blue's pods are (v2.1.0, no run label).
    live = await startDetectionApi({
      TAK_ADDRESS: `127.0.0.1:${tak.port}`,
      QUEUE_PATH: tempQueuePath(),
      SLOT: 'blue',
      APP_VERSION: 'v2.1.0',
      NAMESPACE: NS,
    });
    prometheus = await startPrometheus([live.url.replace('http://', '')]);
    traffic.loop = (async () => {
      while (traffic.running) {
        await postDetection(live.url, SEED_DETECTION).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const token = await cluster.plane.mintToken(NS, 'bluegreen-worker');
    worker = await startKubernetesWorker(env, cluster.plane.configForToken(token), TASK_QUEUE, null, {
      prometheusUrl: prometheus.url,
    });
    client = new DeploymentClient(env.client, TASK_QUEUE);
    admissionregistration = cluster.plane.adminConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
  });

  after(async () => {
    traffic.running = false;
    await traffic.loop;
    await worker?.stop();
    await prometheus?.stop();
    live?.kill('SIGKILL');
    await tak?.close();
    await cluster?.plane.stop();
    await env?.teardown();
  });

  function spec(tag: string, overrides: Partial<DeploymentSpecInput> = {}): DeploymentSpecInput {
    return {
      app: 'detection-api',
      namespace: NS,
      image: IMAGE(tag),
      replicas: 2,
      readinessTimeoutSeconds: 60,
      smoke: { endpoint: worker.referenceUrl },
      // Reported, not a gate: the cluster's pods are simulated and serve no series, so the deployment of a plan gates on restarts.
      monitor: {
        durationSeconds: 4,
        intervalSeconds: 1,
        window: '10s',
        slos: [{ ...ERROR_RATE, gate: false }],
        initialDelaySeconds: 0,
      },
      scaleDownDelaySeconds: 0,
      ...overrides,
    };
  }

  function cli(...args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [BIN, '--address', env.address, '--task-queue', TASK_QUEUE, ...args],
        { timeout: 120_000 },
        (error, stdout, stderr) => {
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
        },
      );
    });
  }

  /** The resourceVersions of every object a deployment writes, once the controllers have settled them (read alike twice, 1 s apart). */
  async function versions(): Promise<string[]> {
    let last = await read();
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const now = await read();
      if (JSON.stringify(now) === JSON.stringify(last)) return now;
      last = now;
    }
  }

  async function read(): Promise<string[]> {
    const [blue, green, service] = await Promise.all([
      cluster.apps.readNamespacedDeployment({ name: 'detection-api-blue', namespace: NS }),
      cluster.apps.readNamespacedDeployment({ name: 'detection-api-green', namespace: NS }),
      cluster.core.readNamespacedService({ name: 'detection-api-service', namespace: NS }),
    ]);
    return [blue, green, service].map((o) => o.metadata!.resourceVersion!);
  }

  const failing = (result: PlanResult) => result.plan!.checks.filter((c) => c.verdict === 'fail');

  /** A plan through the client; one that could not be made fails the test with its reason. */
  async function plan(input: DeploymentSpecInput): Promise<PlanResult> {
    const result = await client.plan(testSpec(input));
    assert.ok(result.plan, `no plan: ${JSON.stringify(result.error)}`);
    return result;
  }

  it('plans a release that would proceed, changing nothing, and deploys exactly that plan', async () => {
    // Until Prometheus has the live slot's error rate.
    await eventually(async () => {
      const result = await plan(spec('v2.2.0'));
      return result.plan?.checks.some((c) => c.name === 'error-rate on blue' && c.verdict === 'ok') ?? false;
    }, 'the live error rate in Prometheus');
    const file = join(dir, 'spec.yaml');
    writeFileSync(file, toYaml(spec('v2.2.0')));
    const before = await versions();
    const planned = await cli('plan', '-f', file);
    assert.equal(planned.code, 0, planned.stdout + planned.stderr);
    assert.deepEqual(await versions(), before, 'the plan changed nothing');
    const out = planned.stdout;
    assert.match(
      out,
      new RegExp(
        `^${NS}/detection-api v2\\.2\\.0 \\(registry\\.internal/detection-api:v2\\.2\\.0\\), blueGreen through service-selector: would proceed$`,
        'm',
      ),
    );
    assert.match(out, /^live: blue; deploys to: green$/m);
    assert.match(
      out,
      /^green changes: image: registry\.internal\/detection-api:v2\.1\.0 → registry\.internal\/detection-api:v2\.2\.0; version: v2\.1\.0 → v2\.2\.0; replicas: 0 → 2; run label: none → \(this run\)$/m,
    );
    assert.match(out, /^router writes: Service detection-api-service: spec\.selector\.slot blue → green$/m);
    assert.match(out, /^monitor: 4 ticks every 1 s over a 10s window; warm-up 0 s \(scrape interval 1 s\)$/m);
    assert.match(out, /^ok {3}write deploy v2\.2\.0 to detection-api-green x2: accepted as a dry run \(kubernetes\)$/m);
    assert.match(out, /^ok {3}write switch detection-api-service to green: accepted as a dry run/m);
    assert.match(out, /^ok {3}access access: the worker may get deployments, patch deployments, list replicasets/m);
    assert.match(out, /^ok {3}capacity quota: no ResourceQuota in /m);
    assert.match(out, /^ok {3}slo error-rate on blue: 0 \(must be < 0\.01\) now$/m);
    assert.match(out, /^ok {3}slo error-rate for the new version: accepted by Prometheus; no data yet/m);
    assert.match(out, /^ok {3}smoke smoke endpoint of green: http:\/\/127\.0\.0\.1:[0-9]+ resolves/m);
    const id = /^plan (bluegreen\/plan\/\S+)/m.exec(out)![1]!;
    assert.match(out, new RegExp(`^deploy it: bluegreen deploy --plan-id ${id.replace(/\//g, '\\/')}$`, 'm'));

    // The plan is kept: its workflow's result, and the deployment of exactly its spec.
    const kept = await client.planResult(id);
    assert.equal(kept.spec.image, IMAGE('v2.2.0'));
    const refused = await cli('deploy', '--plan-id', id, '--image', IMAGE('v9'));
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--plan-id deploys the planned spec as it is: leave out --image/);
    const deployed = await cli('deploy', '--plan-id', id, '--wait');
    assert.equal(deployed.code, 0, deployed.stdout + deployed.stderr);
    assert.match(deployed.stdout, new RegExp(`as planned by ${id.replace(/\//g, '\\/')}`));
    const green = await cluster.apps.readNamespacedDeployment({ name: 'detection-api-green', namespace: NS });
    assert.equal(green.spec!.template.spec!.containers[0]!.image, IMAGE('v2.2.0'));
  });

  it('refuses to deploy a plan once the live state changed since, naming the change', async () => {
    const result = await plan(spec('v2.3.0'));
    assert.equal(result.plan!.proceeds, true, JSON.stringify(failing(result)));
    assert.equal(result.plan!.idleSlot, 'blue');
    // Someone else rolls out the idle slot meanwhile.
    await cluster.apps.patchNamespacedDeployment(
      {
        name: 'detection-api-blue',
        namespace: NS,
        body: { spec: { template: { spec: { containers: [{ name: 'detection-api', image: IMAGE('v2.2.5') }] } } } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    const before = await versions();
    const outcome = await deploymentResult(await client.start(result.spec, { planned: result }));
    assert.deepEqual(
      [outcome.outcome, outcome.reason, outcome.failedCheck],
      ['Failed', 'PreflightFailed', 'plan'],
      outcome.message,
    );
    assert.match(
      outcome.message,
      new RegExp(
        `the live state changed since plan ${result.id.replace(/\//g, '\\/')}: blue's image was registry\\.internal/detection-api:v2\\.1\\.0, is registry\\.internal/detection-api:v2\\.2\\.5`,
      ),
    );
    assert.deepEqual(await versions(), before, 'nothing was changed');
  });

  it('names the verb a Role without patch on Deployments lacks, and the write it would refuse', async () => {
    const role = await cluster.rbac.readNamespacedRole({ name: 'bluegreen-worker', namespace: NS });
    const rules = role.rules!.map((rule) =>
      rule.resources?.includes('deployments') ? { ...rule, verbs: ['get'] } : rule,
    );
    await cluster.rbac.replaceNamespacedRole({ name: 'bluegreen-worker', namespace: NS, body: { ...role, rules } });
    try {
      let result: PlanResult | null = null;
      await eventually(async () => {
        result = await plan(spec('v2.3.0'));
        return failing(result).some((c) => c.kind === 'access');
      }, 'the Role change in effect');
      const checks = failing(result!);
      assert.equal(result!.plan!.proceeds, false);
      assert.deepEqual(
        checks.filter((c) => c.kind === 'access').map((c) => [c.name, c.detail]),
        [
          [
            'patch deployments (apps)',
            `denied to the worker in ${NS}: deploying the idle slot and scaling the old one would fail with 403`,
          ],
        ],
      );
      assert.ok(
        checks.some(
          (c) =>
            c.kind === 'write' &&
            /^deploy v2\.3\.0 to detection-api-blue/.test(c.name) &&
            /patch deployment detection-api-blue/.test(c.detail),
        ),
        JSON.stringify(checks),
      );
    } finally {
      await cluster.rbac.replaceNamespacedRole({
        name: 'bluegreen-worker',
        namespace: NS,
        body: { ...role, metadata: { name: role.metadata!.name!, namespace: NS } },
      });
    }
  });

  it('says when a ResourceQuota leaves too little room for the idle slot', async () => {
    await cluster.core.createNamespacedResourceQuota({
      namespace: NS,
      body: { metadata: { name: 'small' }, spec: { hard: { pods: '1' } } },
    });
    try {
      const before = await versions();
      const result = await plan(spec('v2.3.0'));
      assert.deepEqual(await versions(), before);
      assert.deepEqual(
        failing(result).map((c) => [c.kind, c.name]),
        [['capacity', 'ResourceQuota small']],
      );
      assert.match(
        failing(result)[0]!.detail,
        /^blue at 2 replicas does not fit: pods: 2 more needed, [01] left of 1$/,
      );
    } finally {
      await cluster.core.deleteNamespacedResourceQuota({ name: 'small', namespace: NS });
    }
  });

  it("shows Prometheus's parse error for a query with a typo, and exits 1", async () => {
    const typo = {
      name: 'error-rate',
      query: 'sum(rate(http_requests_total{app="{{app}}"}[{{window}}])',
      comparison: '<' as const,
      threshold: 0.01,
    };
    const file = join(dir, 'typo.yaml');
    writeFileSync(
      file,
      toYaml(spec('v2.3.0', { monitor: { durationSeconds: 4, intervalSeconds: 1, window: '10s', slos: [typo] } })),
    );
    const before = await versions();
    const planned = await cli('plan', '-f', file, '--json');
    assert.equal(planned.code, 1, planned.stderr);
    assert.deepEqual(await versions(), before);
    const result = PlanResultSchema.parse(JSON.parse(planned.stdout)) as PlanResult;
    assert.equal(result.plan!.proceeds, false);
    const slos = failing(result).filter((c) => c.kind === 'slo');
    assert.deepEqual(
      slos.map((c) => c.name),
      ['error-rate on green', 'error-rate for the new version'],
      'green is live since the first test',
    );
    for (const check of slos) assert.match(check.detail, /query rejected \(bad_data\): .*parse error/);
  });

  it('shows an admission policy refusing the image under dryRun=All', async () => {
    const name = `plan-e2e-images-${NS}`;
    await admissionregistration.createValidatingAdmissionPolicy({
      body: {
        metadata: { name },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              {
                apiGroups: ['apps'],
                apiVersions: ['v1'],
                operations: ['CREATE', 'UPDATE'],
                resources: ['deployments'],
              },
            ],
          },
          validations: [
            {
              expression: "object.spec.template.spec.containers.all(c, !c.image.endsWith(':unsigned'))",
              message: 'images tagged unsigned are not admitted',
            },
          ],
        },
      },
    });
    await admissionregistration.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name },
        spec: {
          policyName: name,
          validationActions: ['Deny'],
          matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NS } } },
        },
      },
    });
    try {
      const before = await versions();
      let result: PlanResult | null = null;
      await eventually(async () => {
        result = await plan(spec('unsigned'));
        return failing(result).length > 0;
      }, 'the policy in effect');
      assert.deepEqual(await versions(), before);
      const [refused, ...others] = failing(result!);
      assert.deepEqual(others, []);
      assert.equal(refused!.name, 'deploy unsigned to detection-api-blue x2');
      assert.match(refused!.detail, /images tagged unsigned are not admitted/);
    } finally {
      await admissionregistration.deleteValidatingAdmissionPolicyBinding({ name });
      await admissionregistration.deleteValidatingAdmissionPolicy({ name });
    }
  });

  it('says so when no worker answers a plan in time, instead of waiting for ever', async () => {
    const nobody = new DeploymentClient(env.client, 'no-worker-polls-this-queue');
    await assert.rejects(nobody.plan(testSpec(spec('v2.3.0')), { answerWithinMs: 1000 }), (error: Error) => {
      assert.equal(error.name, 'PlanNotAnsweredError');
      assert.match(
        error.message,
        /^no worker answered plan bluegreen\/plan\/\S+ within 1 s: is a worker polling task queue no-worker-polls-this-queue\?$/,
      );
      return true;
    });
  });

  it('refuses a canary step below the smallest step the router can hold, as bad input, before planning', async () => {
    const file = join(dir, 'canary.yaml');
    writeFileSync(
      file,
      toYaml(
        spec('v2.3.0', {
          strategy: 'canary',
          traffic: { router: 'replica-ratio' },
          canary: { steps: [{ weight: 5 }, { weight: 100 }] },
        }),
      ),
    );
    const before = await versions();
    const planned = await cli('plan', '-f', file);
    assert.equal(planned.code, 2, planned.stdout);
    assert.match(planned.stderr, /canary\.steps\.0\.weight: 5 % cannot be expressed by replica-ratio with replicas 2/);
    assert.deepEqual(await versions(), before);
  });
});
