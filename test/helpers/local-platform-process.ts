/**
 * The real local platform as its own process (`src/local-platform/main.ts`), configured like
 * examples/detection-api/local-platform.yaml but on free loopback ports and a temporary state
 * directory, with the detection API's replicas delivering to the given TAK address.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { freePort, stopProcess, waitUntilReady } from '../../src/local-platform/processes.js';
import { LocalPlatform } from '../../src/platforms/local-platform.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLE = join(ROOT, 'examples/detection-api/local-platform.yaml');

export interface LocalPlatformProcess {
  child: ChildProcess;
  platform: LocalPlatform;
  controlUrl: string;
  /** The switched Service's router: what clients call. */
  routerUrl: string;
  slotUrls: { blue: string; green: string };
  targetsFile: string;
  output: () => string;
  stop(): Promise<void>;
}

export async function startLocalPlatform({ takAddress, blueReplicas = 2 }: { takAddress: string; blueReplicas?: number }): Promise<LocalPlatformProcess> {
  const stateDir = mkdtempSync(join(tmpdir(), 'local-platform-'));
  const config = parseYaml(readFileSync(EXAMPLE, 'utf8')) as {
    control: string;
    stateDir: string;
    services: { name: string; listen: string }[];
    deployments: { name: string; replicas: number }[];
    images: { env: Record<string, string> }[];
  };
  config.control = `127.0.0.1:${await freePort()}`;
  config.stateDir = stateDir;
  for (const service of config.services) service.listen = `127.0.0.1:${await freePort()}`;
  config.deployments.find((d) => d.name === 'detection-api-blue')!.replicas = blueReplicas;
  // Replicas drain fast in tests: a scale-down need not wait half a second per pod.
  Object.assign(config.images[0]!.env, { TAK_ADDRESS: takAddress, SHUTDOWN_DRAIN_MS: '100' });
  const file = join(stateDir, 'local-platform.yaml');
  writeFileSync(file, toYaml(config));

  const child = spawn(process.execPath, ['--import', 'tsx', 'src/local-platform/main.ts', '--config', file], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const controlUrl = `http://${config.control}`;
  await waitUntilReady('local platform', child, `${controlUrl}/healthz`, { output: () => output, timeoutMs: 30_000 });
  const listen = (name: string) => `http://${config.services.find((s) => s.name === name)!.listen}`;
  return {
    child,
    platform: new LocalPlatform(controlUrl),
    controlUrl,
    routerUrl: listen('detection-api-service'),
    slotUrls: { blue: listen('detection-api-blue'), green: listen('detection-api-green') },
    targetsFile: join(stateDir, 'prometheus-targets.json'),
    output: () => output,
    stop: () => stopProcess(child, 40_000),
  };
}
