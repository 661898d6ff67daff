/**
 * A Prometheus server (Debian's package, installed by scripts/setup.sh), scraping fixed targets,
 * the local platform's file_sd targets file, or the targets an HTTP service discovery endpoint
 * lists (http_sd): every second by default, so that SLO queries see a new pod within a second or
 * two of its start, or at the interval a team runs (15 s to 1 min) where a test or the demo asks
 * for it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopProcess, waitUntilReady } from '../processes/processes.js';

export interface PrometheusOptions {
  /** Working directory: configuration and TSDB. */
  dir: string;
  listen: string;
  /**
   * host:port targets; the path of a file_sd JSON file; or the URL of an http_sd endpoint (Debian's
   * Prometheus is built without Kubernetes discovery), read every 5 s.
   */
  targets: string[] | { file: string } | { http: string };
  /** Extra command-line flags (a web configuration file, say). */
  extraArgs?: string[];
  /** Headers the readiness check needs (basic auth, say). */
  headers?: Record<string, string>;
  /** How often every target is scraped (default 1 s). */
  scrapeIntervalSeconds?: number;
}

export interface PrometheusProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startPrometheus({
  dir,
  listen,
  targets,
  extraArgs = [],
  headers = {},
  scrapeIntervalSeconds = 1,
}: PrometheusOptions): Promise<PrometheusProcess> {
  mkdirSync(dir, { recursive: true });
  const discovery = Array.isArray(targets)
    ? ['    static_configs:', `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`]
    : 'file' in targets
      ? ['    file_sd_configs:', `      - files: ['${targets.file}']`, '        refresh_interval: 1s']
      : ['    http_sd_configs:', `      - url: '${targets.http}'`, '        refresh_interval: 5s'];
  const config = [
    'global:',
    `  scrape_interval: ${scrapeIntervalSeconds}s`,
    // A scrape may take up to its interval, but never over Prometheus's default timeout.
    `  scrape_timeout: ${Math.min(scrapeIntervalSeconds, 10)}s`,
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
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${listen}`,
      '--log.level=warn',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  const url = `http://${listen}`;
  await waitUntilReady('prometheus', child, `${url}/-/ready`, { headers, output: () => output });
  return { url, child, stop: () => stopProcess(child) };
}
