/**
 * A Prometheus server (Debian's package, installed by scripts/setup.sh) on loopback, scraping
 * every second either fixed targets or the local platform's file_sd targets file, so that SLO
 * queries see a new pod within a second or two of its start.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopProcess, waitUntilReady } from './processes.js';

export interface PrometheusOptions {
  /** Working directory: configuration and TSDB. */
  dir: string;
  listen: string;
  /** host:port targets, or the path of a file_sd JSON file. */
  targets: string[] | { file: string };
  /** Extra command-line flags (a web configuration file, say). */
  extraArgs?: string[];
  /** Headers the readiness check needs (basic auth, say). */
  headers?: Record<string, string>;
}

export interface PrometheusProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startPrometheus({ dir, listen, targets, extraArgs = [], headers = {} }: PrometheusOptions): Promise<PrometheusProcess> {
  mkdirSync(dir, { recursive: true });
  const discovery = Array.isArray(targets)
    ? ['    static_configs:', `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`]
    : ['    file_sd_configs:', `      - files: ['${targets.file}']`, '        refresh_interval: 1s'];
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: detection-api',
    '    # The service labels its own series with app, version, slot and namespace.',
    '    honor_labels: true',
    ...discovery,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const child = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${listen}`, '--log.level=warn', ...extraArgs],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  const url = `http://${listen}`;
  await waitUntilReady('prometheus', child, `${url}/-/ready`, { headers, output: () => output });
  return { url, child, stop: () => stopProcess(child) };
}
