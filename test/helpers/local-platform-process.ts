/**
 * The real local platform as its own process, on free loopback ports and a temporary state
 * directory, with the detection API's replicas delivering to the given TAK address.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalPlatformProcess } from '../../src/demo/simulator-process.js';
import type { LocalPlatformProcess } from '../../src/demo/simulator-process.js';
import { freePort } from '../../src/processes/processes.js';

export type { LocalPlatformProcess };

export async function startLocalPlatform({
  takAddress,
  blueReplicas = 2,
}: {
  takAddress: string;
  blueReplicas?: number;
}): Promise<LocalPlatformProcess> {
  return await startLocalPlatformProcess({
    stateDir: mkdtempSync(join(tmpdir(), 'local-platform-')),
    ports: {
      control: await freePort(),
      router: await freePort(),
      blue: await freePort(),
      green: await freePort(),
      gateway: await freePort(),
      ingress: await freePort(),
    },
    // Replicas drain fast in tests: a scale-down need not wait half a second per pod.
    env: { TAK_ADDRESS: takAddress, SHUTDOWN_DRAIN_MS: '100' },
    blueReplicas,
  });
}
