/**
 * The Release controller's settings: the manifest's environment is one the controller takes, and
 * a bad value stops the real process with exit 2 and the variable named, before it reaches the
 * API server or Temporal.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import type * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { ConfigError, parseEnv } from '../../src/config/env.js';
import { TemporalConfigSchema } from '../../src/config/temporal.js';
import { ControllerEnvSchema } from '../../src/gitops/controller-config.js';

const CONTROLLER = fileURLToPath(new URL('../../bin/bluegreen-controller.js', import.meta.url));
const MANIFEST = fileURLToPath(new URL('../../deploy/gitops/controller.yaml', import.meta.url));

describe('the Release controller settings', () => {
  it("takes the manifest's environment, with client-go's lease timings by default", () => {
    const deployment = parse(readFileSync(MANIFEST, 'utf8')) as k8s.V1Deployment;
    const container = deployment.spec!.template.spec!.containers[0]!;
    assert.deepEqual(container.command, ['node', 'bin/bluegreen-controller.js']);
    assert.equal(deployment.spec!.template.spec!.serviceAccountName, 'bluegreen-release-controller');
    assert.ok(deployment.spec!.replicas! >= 2, 'more than one replica: the Lease elects the leader');
    const env = Object.fromEntries(
      container.env!.map((e) => [e.name, e.value ?? `from ${e.valueFrom?.fieldRef?.fieldPath}`]),
    );
    assert.equal(env['POD_NAME'], 'from metadata.name', "each replica's name in the Lease is its pod's");
    const settings = parseEnv(ControllerEnvSchema, env);
    assert.deepEqual(
      [
        settings.BLUEGREEN_LEASE_NAME,
        settings.BLUEGREEN_LEASE_DURATION_SECONDS,
        settings.BLUEGREEN_RENEW_DEADLINE_SECONDS,
        settings.BLUEGREEN_RETRY_PERIOD_SECONDS,
      ],
      ['bluegreen-release-controller', 15, 10, 2],
    );
    assert.equal(parseEnv(TemporalConfigSchema, env).TEMPORAL_TASK_QUEUE, 'bluegreen');
  });

  it('refuses lease timings under which a leader could act after its lease expired, naming the variables', () => {
    assert.throws(
      () => parseEnv(ControllerEnvSchema, { BLUEGREEN_RENEW_DEADLINE_SECONDS: '20' }),
      (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /BLUEGREEN_RENEW_DEADLINE_SECONDS: .*below BLUEGREEN_LEASE_DURATION_SECONDS/);
        return true;
      },
    );
    assert.throws(
      () => parseEnv(ControllerEnvSchema, { BLUEGREEN_RESYNC_SECONDS: 'often' }),
      /BLUEGREEN_RESYNC_SECONDS: BLUEGREEN_RESYNC_SECONDS must be a number of seconds/,
    );
    assert.throws(
      () => parseEnv(ControllerEnvSchema, { BLUEGREEN_RELEASE_NAMESPACE: 'Team_A' }),
      /BLUEGREEN_RELEASE_NAMESPACE must be a namespace name/,
    );
  });

  it('exits 2 with the variable named when a setting is bad, before it connects anywhere', async () => {
    const failed = await promisify(execFile)(process.execPath, [CONTROLLER], {
      env: { ...process.env, BLUEGREEN_LEASE_DURATION_SECONDS: '-1', TEMPORAL_ADDRESS: '127.0.0.1:9' },
    }).then(
      () => null,
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    assert.ok(failed, 'the process failed');
    assert.equal(failed.code, 2, failed.stdout + failed.stderr);
    assert.match(failed.stdout + failed.stderr, /BLUEGREEN_LEASE_DURATION_SECONDS must be above 0/);
  });
});
