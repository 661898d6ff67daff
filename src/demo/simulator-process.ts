/**
 * Starts the local platform as its own process (`src/cluster-simulator/main.ts`) from the detection
 * API's example configuration, with the ports, state directory and replica environment the
 * caller chooses: the demo's fixed ports, or a test's free ones.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { z } from 'zod';
import type { LocalPlatformConfigSchema } from '../cluster-simulator/config.js';
import { stopProcess, waitUntilReady } from '../processes/processes.js';
import { LocalPlatform } from '../platforms/local-platform.js';
import type { TrafficRouter } from '../shared/traffic.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * node's arguments for one of our entry points (`src/...ts`): through tsx, or, when
 * BLUEGREEN_COMPILED_SRC names a transpiled copy of src/ (scripts/run-tests.sh makes one per run,
 * beside src/ so that ROOT holds), its JavaScript: a worker through tsx took 4.0 CPU-seconds to
 * load, compiled 1.9, and the suite starts dozens.
 */
export function nodeEntry(entry: string): string[] {
  const compiled = process.env['BLUEGREEN_COMPILED_SRC'];
  return compiled ? [join(compiled, entry.replace(/^src\//, '').replace(/\.ts$/, '.js'))] : ['--import', 'tsx', entry];
}
export const EXAMPLE_CONFIG = join(ROOT, 'examples/detection-api/local-platform.yaml');

export interface LocalPlatformPorts {
  control: number;
  /** The switched Service (detection-api-service) and the two slot Services. */
  router: number;
  blue: number;
  green: number;
  /** The listeners of the HTTPRoute (a Gateway's) and of the Ingress (an NGINX controller's). */
  gateway: number;
  ingress: number;
}

export interface LocalPlatformProcess {
  child: ChildProcess;
  platform: LocalPlatform;
  controlUrl: string;
  routerUrl: string;
  /** Where clients call through each router: the Service, the Gateway, the Ingress controller. */
  entryUrls: Record<TrafficRouter, string>;
  slotUrls: { blue: string; green: string };
  targetsFile: string;
  output: () => string;
  stop(): Promise<void>;
}

const SERVICE_PORT: Record<string, keyof LocalPlatformPorts> = {
  'detection-api-service': 'router',
  'detection-api-blue': 'blue',
  'detection-api-green': 'green',
};

export async function startLocalPlatformProcess({
  stateDir,
  ports,
  env = {},
  blueReplicas,
}: {
  stateDir: string;
  ports: LocalPlatformPorts;
  /** Environment added to every replica of the detection API. */
  env?: Record<string, string>;
  blueReplicas?: number;
}): Promise<LocalPlatformProcess> {
  mkdirSync(stateDir, { recursive: true });
  // The replicas run the detection API compiled (examples/detection-api/dist): compiled again here
  // if a source is newer, so that a bench or a test run on its own runs the sources as they are.
  await promisify(execFile)('bash', ['scripts/setup.sh', '--detection-api'], { cwd: ROOT });
  const config = parseYaml(readFileSync(EXAMPLE_CONFIG, 'utf8')) as z.input<typeof LocalPlatformConfigSchema>;
  config.control = `127.0.0.1:${ports.control}`;
  config.stateDir = stateDir;
  for (const service of config.services) service.listen = `127.0.0.1:${ports[SERVICE_PORT[service.name]!]}`;
  for (const route of config.routes ?? []) route.listen = `127.0.0.1:${ports.gateway}`;
  for (const ingress of config.ingresses ?? []) if (ingress.listen) ingress.listen = `127.0.0.1:${ports.ingress}`;
  if (blueReplicas !== undefined)
    config.deployments.find((d) => d.name === 'detection-api-blue')!.replicas = blueReplicas;
  config.images[0]!.env = { ...config.images[0]!.env, ...env };
  const file = join(stateDir, 'local-platform.yaml');
  writeFileSync(file, toYaml(config));

  const child = spawn(process.execPath, [...nodeEntry('src/cluster-simulator/main.ts'), '--config', file], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const controlUrl = `http://127.0.0.1:${ports.control}`;
  await waitUntilReady('local platform', child, `${controlUrl}/healthz`, { output: () => output, timeoutMs: 30_000 });
  return {
    child,
    platform: new LocalPlatform(controlUrl),
    controlUrl,
    routerUrl: `http://127.0.0.1:${ports.router}`,
    entryUrls: {
      'service-selector': `http://127.0.0.1:${ports.router}`,
      'replica-ratio': `http://127.0.0.1:${ports.router}`,
      'gateway-api': `http://127.0.0.1:${ports.gateway}`,
      ingress: `http://127.0.0.1:${ports.ingress}`,
    },
    slotUrls: { blue: `http://127.0.0.1:${ports.blue}`, green: `http://127.0.0.1:${ports.green}` },
    targetsFile: join(stateDir, 'prometheus-targets.json'),
    output: () => output,
    stop: () => stopProcess(child, 40_000),
  };
}
