/**
 * A real Prometheus for the tests: the product's launcher on a free loopback port in a temporary
 * directory, optionally demanding basic auth itself (its web configuration).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { freePort } from '../../src/processes/processes.js';
import { startPrometheus as launch } from '../../src/cluster-simulator/prometheus-process.js';
import type { PrometheusOptions, PrometheusProcess } from '../../src/cluster-simulator/prometheus-process.js';

export type PrometheusServer = PrometheusProcess;

export async function startPrometheus(
  targets: PrometheusOptions['targets'],
  basicAuth?: { username: string; password: string },
  scrapeIntervalSeconds?: number,
): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
  const extraArgs: string[] = [];
  const headers: Record<string, string> = {};
  if (basicAuth) {
    writeFileSync(
      join(dir, 'web.yml'),
      `basic_auth_users:\n  ${basicAuth.username}: '${bcrypt.hashSync(basicAuth.password, 10)}'\n`,
    );
    extraArgs.push(`--web.config.file=${join(dir, 'web.yml')}`);
    headers['authorization'] = `Basic ${Buffer.from(`${basicAuth.username}:${basicAuth.password}`).toString('base64')}`;
  }
  return await launch({
    dir,
    listen: `127.0.0.1:${await freePort()}`,
    targets,
    extraArgs,
    headers,
    scrapeIntervalSeconds,
  });
}
