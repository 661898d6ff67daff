/**
 * A real Prometheus (Debian's package, installed by scripts/setup.sh) on a free loopback port,
 * with a generated configuration that scrapes the given targets every second.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { freePort } from './detection-api-process.js';
import { waitUntilReady } from './wait-until-ready.js';

export interface PrometheusServer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** With `basicAuth`, Prometheus itself demands those credentials (its web configuration). */
export async function startPrometheus(targets: string[], basicAuth?: { username: string; password: string }): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
  const extraArgs: string[] = [];
  const headers: Record<string, string> = {};
  if (basicAuth) {
    writeFileSync(join(dir, 'web.yml'), `basic_auth_users:\n  ${basicAuth.username}: '${bcrypt.hashSync(basicAuth.password, 10)}'\n`);
    extraArgs.push(`--web.config.file=${join(dir, 'web.yml')}`);
    headers['authorization'] = `Basic ${Buffer.from(`${basicAuth.username}:${basicAuth.password}`).toString('base64')}`;
  }
  const port = await freePort();
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: detection-api',
    '    # The service labels its own series with app, version, slot and namespace.',
    '    honor_labels: true',
    '    static_configs:',
    `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const child = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', ...extraArgs],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady('prometheus', child, `${url}/-/ready`, { headers, output: () => output });
  return {
    url,
    child,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
