/**
 * Docker does not run on the machines this project is tested on, so docker-compose.yml is checked
 * for its structure: the services a team's first shared setup needs, their images and ports, the
 * worker's environment wired to the Temporal and Prometheus services, and a Prometheus
 * configuration that the real Prometheus accepts and that scrapes the worker.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

interface ComposeService {
  image?: string;
  build?: string;
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, unknown> | string[];
}
const compose = parseYaml(readFileSync(`${ROOT}docker-compose.yml`, 'utf8')) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };

describe('docker-compose.yml', () => {
  it('has Temporal on PostgreSQL, the Temporal UI, Prometheus and the worker', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['postgresql', 'prometheus', 'temporal', 'temporal-ui', 'worker']);
    assert.match(compose.services['postgresql']!.image!, /^postgres:\d+/);
    assert.match(compose.services['temporal']!.image!, /^temporalio\/auto-setup:\d+\.\d+\.\d+$/);
    assert.equal(compose.services['temporal']!.environment!['DB'], 'postgres12');
    assert.match(compose.services['temporal-ui']!.image!, /^temporalio\/ui:\d+\.\d+\.\d+$/);
    assert.match(compose.services['prometheus']!.image!, /^prom\/prometheus:v\d+\.\d+\.\d+$/);
    assert.equal(compose.services['worker']!.build, '.');
  });

  it('publishes the ports the README names', () => {
    const ports = (name: string) => compose.services[name]!.ports ?? [];
    assert.ok(ports('temporal').some((p) => p.startsWith('7233:7233')));
    assert.ok(ports('temporal-ui').some((p) => p.startsWith('8080:8080')));
    assert.ok(ports('prometheus').some((p) => p.startsWith('9090:9090')));
    assert.ok(ports('worker').some((p) => p.startsWith('9464:9464')));
  });

  it('wires the worker to Temporal, Prometheus and a mounted kubeconfig', () => {
    const worker = compose.services['worker']!;
    const env = worker.environment!;
    assert.equal(env['TEMPORAL_ADDRESS'], 'temporal:7233');
    assert.equal(env['TEMPORAL_TASK_QUEUE'], 'bluegreen');
    assert.match(env['BLUEGREEN_PLATFORM']!, /kubernetes/);
    assert.match(env['PROMETHEUS_URL']!, /http:\/\/prometheus:9090/);
    assert.equal(env['KUBECONFIG'], '/home/node/.kube/config');
    assert.ok(worker.volumes!.some((v) => v.endsWith(':/home/node/.kube/config:ro')), 'the kubeconfig is mounted read-only');
    assert.ok(Object.keys(worker.depends_on as Record<string, unknown>).includes('temporal'));
  });

  it('gives Prometheus a configuration the real Prometheus accepts, scraping the worker', async () => {
    const volume = compose.services['prometheus']!.volumes!.find((v) => v.includes('/etc/prometheus/prometheus.yml'))!;
    const file = `${ROOT}${volume.split(':')[0]!.replace(/^\.\//, '')}`;
    const { stdout } = await run('promtool', ['check', 'config', file]);
    assert.match(stdout, /SUCCESS/);
    const config = parseYaml(readFileSync(file, 'utf8')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    assert.ok(config.scrape_configs.some((job) => job.static_configs.some((s) => s.targets.includes('worker:9464'))));
  });
});
