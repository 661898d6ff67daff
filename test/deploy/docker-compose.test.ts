/**
 * Docker does not run on the machines this project is tested on, so docker-compose.yml is checked
 * for its structure: the services a team's first shared setup needs, their images and ports, the
 * worker's environment wired to the Temporal and Prometheus services, and a Prometheus
 * configuration that the real Prometheus accepts and that scrapes the worker. Temporal on
 * PostgreSQL is the setup test/temporal-harness runs for real (test/e2e/temporal-postgres): the
 * same Go module, the same schema and namespace scripts, the same PostgreSQL major, and only
 * variables the server's embedded config template reads.
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
  command?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, unknown> | string[];
}
// `merge`: compose reads YAML merge keys (`<<: *anchor`).
const compose = parseYaml(readFileSync(`${ROOT}docker-compose.yml`, 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};

describe('docker-compose.yml', () => {
  it('has Temporal on PostgreSQL, the Temporal UI, Prometheus and the worker', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), [
      'postgresql',
      'prometheus',
      'temporal',
      'temporal-namespace',
      'temporal-schema',
      'temporal-ui',
      'worker',
    ]);
    assert.match(compose.services['temporal-ui']!.image!, /^temporalio\/ui:\d+\.\d+\.\d+$/);
    assert.match(compose.services['prometheus']!.image!, /^prom\/prometheus:v\d+\.\d+\.\d+$/);
    assert.equal(compose.services['worker']!.build, '.');
    assert.deepEqual(
      compose.services['worker']!.depends_on,
      { 'temporal-namespace': { condition: 'service_completed_successfully' } },
      'the worker starts once the namespace is there',
    );
  });

  it('runs Temporal as the tested setup does: the same module, scripts, PostgreSQL major and template variables', async () => {
    // PostgreSQL: the major the harness runs (Debian's postgresql-15).
    assert.equal(compose.services['postgresql']!.image, 'postgres:15');
    const harness = readFileSync(`${ROOT}test/temporal-harness/temporal-postgres.ts`, 'utf8');
    assert.match(harness, /\/usr\/lib\/postgresql\/15\/bin/);
    // The server and the SQL tool: built from deploy/temporal/go.mod, the module setup.sh builds the harness's from.
    for (const name of ['temporal-schema', 'temporal', 'temporal-namespace'])
      assert.equal(compose.services[name]!.build, './deploy/temporal', name);
    const dockerfile = readFileSync(`${ROOT}deploy/temporal/Dockerfile`, 'utf8');
    assert.match(dockerfile, /^COPY go\.mod go\.sum \.\/$/m);
    assert.match(dockerfile, /go build -trimpath -o \/out\/temporal-server go\.temporal\.io\/server\/cmd\/server/);
    const setup = readFileSync(`${ROOT}scripts/setup.sh`, 'utf8');
    assert.match(
      setup,
      /build_cached \.tools\/temporal-sql-tool deploy\/temporal -- go build .*go\.temporal\.io\/server\/cmd\/tools\/sql$/m,
    );
    assert.match(
      setup,
      /build_cached \.tools\/temporal-server deploy\/temporal -- go build .*go\.temporal\.io\/server\/cmd\/server$/m,
    );
    // The schema and the namespace: the scripts the harness runs.
    assert.deepEqual(compose.services['temporal-schema']!.command, ['sh', '/etc/temporal/schema.sh']);
    assert.deepEqual(compose.services['temporal-namespace']!.command, ['sh', '/etc/temporal/namespace.sh']);
    assert.match(harness, /join\(DEPLOY, 'schema\.sh'\)/);
    assert.match(harness, /join\(DEPLOY, 'namespace\.sh'\)/);
    // Every variable compose gives the server is one its embedded config template reads.
    const { stdout } = await run('go', ['list', '-m', '-f', '{{.Dir}}', 'go.temporal.io/server'], {
      cwd: `${ROOT}deploy/temporal`,
    });
    const template = readFileSync(`${stdout.trim()}/common/config/config_template_embedded.yaml`, 'utf8');
    const read = new Set([...template.matchAll(/env "([A-Z_]+)"/g)].map((m) => m[1]));
    const environment = compose.services['temporal']!.environment!;
    assert.equal(environment['DB'], 'postgres12');
    for (const key of Object.keys(environment))
      assert.ok(read.has(key), `${key} is read by the server's config template`);
    for (const key of ['POSTGRES_SEEDS', 'DB_PORT', 'POSTGRES_USER', 'POSTGRES_PWD', 'DB', 'BIND_ON_IP'])
      assert.match(harness, new RegExp(`\\b${key}\\b`), `the harness sets ${key} too`);
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
    assert.ok(
      worker.volumes!.some((v) => v.endsWith(':/home/node/.kube/config:ro')),
      'the kubeconfig is mounted read-only',
    );
  });

  it('gives Prometheus a configuration the real Prometheus accepts, scraping the worker', async () => {
    const volume = compose.services['prometheus']!.volumes!.find((v) => v.includes('/etc/prometheus/prometheus.yml'))!;
    const file = `${ROOT}${volume.split(':')[0]!.replace(/^\.\//, '')}`;
    const { stdout } = await run('promtool', ['check', 'config', file]);
    assert.match(stdout, /SUCCESS/);
    const config = parseYaml(readFileSync(file, 'utf8')) as {
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    assert.ok(config.scrape_configs.some((job) => job.static_configs.some((s) => s.targets.includes('worker:9464'))));
  });
});
