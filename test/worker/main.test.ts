/**
 * The worker process refuses to start, with a message saying what to set, when its configuration
 * cannot work: it never registers a fake platform.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { connectionOptions, TemporalConfigSchema } from '../../src/config/temporal.js';
import { parseEnv } from '../../src/config/env.js';

const MAIN = fileURLToPath(new URL('../../src/worker/main.ts', import.meta.url));

function startWorker(env: Record<string, string>): Promise<{ code: number; output: string }> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_') && !k.startsWith('BLUEGREEN_')),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN],
      { env: { ...clean, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code) : 0, output: stdout + stderr });
      },
    );
  });
}

describe('worker process configuration', () => {
  it('refuses to start without a platform, naming the variable and its choices', async () => {
    const { code, output } = await startWorker({});
    assert.equal(code, 2);
    assert.match(output, /BLUEGREEN_PLATFORM must be one of kubernetes, local/);
  });

  it('refuses the kubernetes platform without a kubeconfig, naming what to set', async () => {
    const { code, output } = await startWorker({
      BLUEGREEN_PLATFORM: 'kubernetes',
      PROMETHEUS_URL: 'http://127.0.0.1:9090',
      HOME: '/nonexistent',
    });
    assert.equal(code, 2);
    assert.match(
      output,
      /no kubeconfig at \/nonexistent\/.kube\/config and not running in a cluster: set BLUEGREEN_KUBECONFIG/,
    );
  });

  it('refuses a kubeconfig context that does not exist, listing those that do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
    const file = join(dir, 'config');
    writeFileSync(
      file,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: dev, context: {cluster: c, user: u}}]\ncurrent-context: dev\n',
    );
    const { code, output } = await startWorker({
      BLUEGREEN_PLATFORM: 'kubernetes',
      PROMETHEUS_URL: 'http://127.0.0.1:9090',
      BLUEGREEN_KUBECONFIG: file,
      BLUEGREEN_KUBE_CONTEXT: 'prod',
    });
    assert.equal(code, 2);
    assert.match(output, /BLUEGREEN_KUBE_CONTEXT: no context 'prod' in .*; it has dev/);
  });

  it('refuses to start without a Prometheus to measure the SLOs with', async () => {
    const { code, output } = await startWorker({ BLUEGREEN_PLATFORM: 'kubernetes' });
    assert.equal(code, 2);
    assert.match(output, /PROMETHEUS_URL: Required/);
  });

  it("reads every adapter's settings at once: one error names each variable at fault", async () => {
    const { code, output } = await startWorker({
      BLUEGREEN_PLATFORM: 'local',
      PROMETHEUS_URL: 'prometheus:9090',
      BLUEGREEN_WEBHOOK_URL: 'hooks.example.com/x',
      BLUEGREEN_PAGERDUTY_TIMEOUT_MS: '-1',
      BLUEGREEN_TEMPORAL_UI_URL: 'localhost:8233',
      BLUEGREEN_LOCAL_URL: 'not a url',
    });
    assert.equal(code, 2);
    for (const variable of [
      'PROMETHEUS_URL',
      'BLUEGREEN_WEBHOOK_URL',
      'BLUEGREEN_PAGERDUTY_TIMEOUT_MS',
      'BLUEGREEN_TEMPORAL_UI_URL',
      'BLUEGREEN_LOCAL_URL',
    ])
      assert.match(output, new RegExp(`- ${variable}: `), `${variable} named in: ${output}`);
  });

  it('refuses a prebuilt workflow bundle that is not there, saying how to build one', async () => {
    const { code, output } = await startWorker({
      BLUEGREEN_PLATFORM: 'local',
      BLUEGREEN_WORKFLOW_BUNDLE: '/nonexistent/workflow-bundle.js',
    });
    assert.equal(code, 2);
    assert.match(
      output,
      /BLUEGREEN_WORKFLOW_BUNDLE: no file at \/nonexistent\/workflow-bundle\.js; build it with 'npm run bundle:workflows'/,
    );
  });

  it('refuses a worker capacity below its minimum before connecting anywhere', async () => {
    const { code, output } = await startWorker({
      BLUEGREEN_PLATFORM: 'local',
      BLUEGREEN_MAX_CONCURRENT_WORKFLOW_TASKS: '1',
    });
    assert.equal(code, 2);
    assert.match(output, /BLUEGREEN_MAX_CONCURRENT_WORKFLOW_TASKS must be at least 2/);
  });

  it('names each malformed Temporal variable', async () => {
    const { code, output } = await startWorker({
      BLUEGREEN_PLATFORM: 'local',
      TEMPORAL_ADDRESS: 'no-port',
      TEMPORAL_TLS_CERT_PATH: '/x.pem',
    });
    assert.equal(code, 2);
    assert.match(output, /TEMPORAL_ADDRESS: TEMPORAL_ADDRESS must be host:port/);
    assert.match(
      output,
      /TEMPORAL_TLS_KEY_PATH: mutual TLS needs both TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH/,
    );
  });

  it('turns TLS on for an API key and leaves it off for a plain local server', () => {
    const cloud = connectionOptions(
      parseEnv(TemporalConfigSchema, { TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'k' }),
    );
    assert.deepEqual([cloud.address, cloud.apiKey, typeof cloud.tls], ['ns.acct.tmprl.cloud:7233', 'k', 'object']);
    const local = connectionOptions(parseEnv(TemporalConfigSchema, {}));
    assert.deepEqual([local.address, local.tls], ['localhost:7233', undefined]);
  });
});
