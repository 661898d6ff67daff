import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadSpec } from '../../src/client/spec-source.js';
import { SpecValidationError } from '../../src/deployment-spec/deployment-spec.js';

const dir = mkdtempSync(join(tmpdir(), 'bluegreen-spec-'));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('spec sources', () => {
  it('reads a YAML file and lets flags and --set override it', () => {
    const path = file(
      'spec.yaml',
      [
        'app: detection-api',
        'namespace: prod',
        'image: registry.internal/detection-api:v2.2.0',
        'monitor:',
        '  durationSeconds: 120',
        '',
      ].join('\n'),
    );
    const spec = loadSpec({
      file: path,
      image: 'registry.internal/detection-api:v2.3.0',
      replicas: '5',
      set: ['monitor.intervalSeconds=10', 'gates.approveBeforeSwitch=true', 'smoke.latencyBudgetAction=fail'],
    });
    assert.equal(spec.namespace, 'prod');
    assert.equal(spec.image, 'registry.internal/detection-api:v2.3.0');
    assert.equal(spec.version, 'v2.3.0');
    assert.equal(spec.replicas, 5);
    assert.deepEqual([spec.monitor.durationSeconds, spec.monitor.intervalSeconds], [120, 10]);
    assert.equal(spec.gates.approveBeforeSwitch, true);
    assert.equal(spec.smoke.latencyBudgetAction, 'fail');
  });

  it('accepts the example spec the README and the CI example use', () => {
    const spec = loadSpec({
      file: fileURLToPath(new URL('../../examples/detection-api/bluegreen.yaml', import.meta.url)),
      image: 'registry.internal/detection-api:v2.3.0',
    });
    assert.deepEqual(
      [spec.app, spec.service, spec.version, spec.replicas, spec.monitor.slos.length],
      ['detection-api', 'detection-api-service', 'v2.3.0', 3, 6],
    );
  });

  it('works from flags alone', () => {
    const spec = loadSpec({ app: 'detection-api', namespace: 'staging', image: 'detection-api:v1' });
    assert.deepEqual(
      [spec.app, spec.namespace, spec.image, spec.replicas],
      ['detection-api', 'staging', 'detection-api:v1', 3],
    );
  });

  it('names the line of a YAML syntax error', () => {
    const path = file('broken.yaml', 'app: a\nimage: [a:1\n');
    assert.throws(
      () => loadSpec({ file: path }),
      (error: unknown) => {
        assert.ok(error instanceof SpecValidationError);
        assert.match(error.message, /broken\.yaml is not valid YAML at line \d/);
        return true;
      },
    );
  });

  it('rejects a flag value that breaks a rule, naming the field', () => {
    assert.throws(
      () => loadSpec({ app: 'a', image: 'a:1', replicas: 'three' }),
      /replicas: Expected number, received nan/,
    );
    assert.throws(
      () => loadSpec({ app: 'a', image: 'a:1', set: ['monitor.durationSeconds'] }),
      /\(--set\): 'monitor.durationSeconds' must be path=value/,
    );
    assert.throws(() => loadSpec({ file: join(dir, 'missing.yaml') }), /\(file\): cannot read .*missing\.yaml/);
  });
});
