/**
 * The `Release` CRD on the real control plane: generated from the deployment spec's zod schema
 * (deploy/gitops/release-crd.yaml is what the generator writes), accepted and Established by the
 * API server, explained by `kubectl explain`, the example resource applied with its printer
 * columns and status subresource, and a bad resource refused by the API server itself, naming each
 * field's path and rule, before any controller could see it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import { releaseCrdYaml, releaseTrainCrdYaml } from '../../src/gitops/release-crd.js';
import { parseTrainSpec } from '../../src/train/train-spec.js';
import { useControlPlane } from '../k8s-harness/control-plane.js';
import type { ControlPlane } from '../k8s-harness/control-plane.js';
import { eventually } from '../helpers/eventually.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CRD = join(ROOT, 'deploy/gitops/release-crd.yaml');
const EXAMPLE = join(ROOT, 'examples/detection-api/release.yaml');
const TRAIN_CRD = join(ROOT, 'deploy/gitops/release-train-crd.yaml');
const TRAIN_EXAMPLE = join(ROOT, 'examples/detection-api/release-train.yaml');
const run = promisify(execFile);

describe('the Release custom resource on a real API server', () => {
  let plane: ControlPlane;
  let dir: string;
  const kubectl = async (...args: string[]) => await run('kubectl', ['--kubeconfig', plane.kubeconfigPath, ...args]);
  /** kubectl's answer to a command that must fail: its stderr. */
  const refused = async (...args: string[]) => {
    const answer = await kubectl(...args).then(
      () => null,
      (error: { stderr: string }) => error.stderr,
    );
    assert.ok(answer !== null, `kubectl ${args.join(' ')} was accepted`);
    return answer;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'release-crd-'));
    plane = await useControlPlane({ dir });
    await kubectl('apply', '-f', CRD, '-f', TRAIN_CRD);
    await kubectl('wait', '--for', 'condition=Established', 'crd/releases.bluegreen.dev', '--timeout=60s');
    await kubectl('wait', '--for', 'condition=Established', 'crd/releasetrains.bluegreen.dev', '--timeout=60s');
    // Discovery, and the OpenAPI document `kubectl explain` reads, catch up with a new resource
    // some seconds after it is Established.
    await eventually(
      async () =>
        (await kubectl('api-resources', '--api-group', 'bluegreen.dev').catch(() => ({ stdout: '' }))).stdout.includes(
          'releases',
        ),
      'releases discovered',
    );
    await eventually(
      async () => (await kubectl('explain', 'releases.spec').catch(() => ({ stdout: '' }))).stdout.includes('KIND:'),
      'the Release in the OpenAPI document',
      60_000,
    );
  });

  after(async () => {
    // The CRD stays: other files on the shared control plane (the controller's) run beside this one.
    await kubectl('delete', '-f', EXAMPLE, '--ignore-not-found', '--wait=false').catch(() => undefined);
    await kubectl('delete', '-f', TRAIN_EXAMPLE, '--ignore-not-found', '--wait=false').catch(() => undefined);
    await plane?.stop();
  });

  it('is what the generator writes from the zod schema (npm run generate:crd after a spec change)', () => {
    assert.equal(readFileSync(CRD, 'utf8'), releaseCrdYaml());
    assert.equal(
      readFileSync(TRAIN_CRD, 'utf8'),
      releaseTrainCrdYaml(),
      'and the ReleaseTrain CRD from the train spec',
    );
  });

  it('takes the example ReleaseTrain, whose spec is a valid train, and refuses a bad one naming each field', async () => {
    const example = parseYaml(readFileSync(TRAIN_EXAMPLE, 'utf8')) as {
      metadata: { name: string };
      spec: Record<string, unknown>;
    };
    assert.deepEqual(
      parseTrainSpec({ ...example.spec, name: example.metadata.name }).stages.map((s) => s.name),
      ['staging', 'prod-a', 'prod-b'],
    );
    await kubectl('apply', '-f', TRAIN_EXAMPLE);
    await kubectl(
      'patch',
      'releasetrain',
      'detection-api',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { state: 'Running', message: 'stage staging: deploying', observedGeneration: 1 } }),
    );
    const { stdout } = await kubectl('get', 'releasetrains', '-n', 'default');
    const [header, row] = stdout
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s{2,}/));
    assert.deepEqual(header, ['NAME', 'IMAGE', 'STATE', 'MESSAGE', 'AGE']);
    assert.deepEqual(row!.slice(0, 4), [
      'detection-api',
      'registry.internal/detection-api:v2.2.0',
      'Running',
      'stage staging: deploying',
    ]);
    const file = join(dir, 'bad-train.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'bluegreen.dev/v1alpha1',
        kind: 'ReleaseTrain',
        metadata: { name: 'bad-train', namespace: 'default' },
        spec: { base: {}, clusters: {}, stages: [{ name: 'a', cluster: 'x', approval: 'maybe' }], onFailure: 'pray' },
      }),
    );
    const invalid = await refused('apply', '-f', file);
    assert.match(invalid, /spec\.image: Required value/);
    assert.match(invalid, /spec\.stages\[0\]\.approval: Unsupported value: "maybe"/);
    assert.match(invalid, /spec\.onFailure: Unsupported value: "pray"/);
    await kubectl('delete', 'releasetrain', 'detection-api', '-n', 'default');
  });

  it('is explained by kubectl explain, down to the canary steps', async () => {
    const { stdout } = await kubectl('explain', 'releases.spec.canary.steps');
    assert.match(stdout, /KIND:\s+Release/);
    assert.match(stdout, /holdSeconds\t<integer>/);
    assert.match(stdout, /weight\t<integer> -required-/);
  });

  it('takes the example resource, whose spec is a valid deployment spec, and shows its phase, step and weight from the status subresource', async () => {
    const example = parseYaml(readFileSync(EXAMPLE, 'utf8')) as {
      metadata: { name: string; namespace: string };
      spec: Record<string, unknown>;
    };
    const spec = parseDeploymentSpec({
      ...example.spec,
      app: example.metadata.name,
      namespace: example.metadata.namespace,
    });
    assert.equal(spec.strategy, 'canary');
    await kubectl('apply', '-f', EXAMPLE);
    // The status is the controller's: written through the subresource, never by a spec update.
    await kubectl(
      'patch',
      'release',
      'detection-api',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { phase: 'Monitoring', step: 1, weight: 25 } }),
    );
    await kubectl(
      'patch',
      'release',
      'detection-api',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { phase: 'Succeeded' }, spec: { replicas: 4 } }),
    );
    const { stdout } = await kubectl('get', 'releases', '-n', 'default');
    const [header, row] = stdout
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s{2,}/));
    assert.deepEqual(header, ['NAME', 'IMAGE', 'PHASE', 'STEP', 'WEIGHT', 'OUTCOME', 'AGE']);
    assert.deepEqual(row!.slice(0, 5), [
      'detection-api',
      'registry.internal/detection-api:v2.2.0',
      'Monitoring',
      '1',
      '25',
    ]);
    const stored = JSON.parse((await kubectl('get', 'release', 'detection-api', '-o', 'json')).stdout) as {
      spec: { replicas: number; smoke: { checks: { body: unknown }[] } };
    };
    assert.equal(stored.spec.replicas, 4, 'the spec update went through');
    assert.deepEqual(
      stored.spec.smoke.checks[0]!.body,
      example.spec['smoke'] && (example.spec['smoke'] as { checks: { body: unknown }[] }).checks[0]!.body,
      'a request body is kept as written',
    );
    await kubectl('delete', 'release', 'detection-api', '-n', 'default');
  });

  it('is refused by the API server for a bad field, each named with its path and rule', async () => {
    const bad = (spec: Record<string, unknown>) => {
      const file = join(dir, `bad-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: 'bluegreen.dev/v1alpha1',
          kind: 'Release',
          metadata: { name: 'bad', namespace: 'default' },
          spec,
        }),
      );
      return file;
    };
    const invalid = await refused(
      'apply',
      '-f',
      bad({
        image: 'Registry/Bad Image',
        replicas: 0,
        strategy: 'sideways',
        monitor: { intervalSeconds: 'often' },
        canary: { steps: [{ weight: 150, holdSeconds: 60 }] },
      }),
    );
    assert.match(invalid, /spec\.replicas: Invalid value: 0: .*greater than or equal to 1/);
    assert.match(invalid, /spec\.image: Invalid value: "Registry\/Bad Image": .*should match/);
    assert.match(invalid, /spec\.strategy: Unsupported value: "sideways": supported values: "blueGreen", "canary"/);
    assert.match(invalid, /spec\.monitor\.intervalSeconds: Invalid value: "string": .*must be of type integer/);
    assert.match(invalid, /spec\.canary\.steps\[0\]\.weight: Invalid value: 150: .*less than or equal to 100/);
    assert.match(
      await refused('apply', '-f', bad({ image: 'registry.internal/x:v1', colour: 'blue' })),
      /unknown field "spec\.colour"/,
    );
    assert.match(await refused('apply', '-f', bad({ replicas: 2 })), /spec\.image: Required value/);
    await assert.rejects(kubectl('get', 'release', 'bad', '-n', 'default'), /NotFound/, 'nothing was stored');
  });
});
