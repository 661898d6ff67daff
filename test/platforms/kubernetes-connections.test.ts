/**
 * API clients with their connections kept alive (src/platforms/kubernetes-connections.ts), against
 * the real API server of the test control plane: many calls over one TLS connection, as the
 * kubeconfig's identity; client-node's own `makeApiClient` opens one a call, which is why they exist.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { keptAliveConfiguration } from '../../src/platforms/kubernetes-connections.js';
import { ConfigError } from '../../src/config/env.js';
import { useControlPlane } from '../k8s-harness/control-plane.js';
import type { ControlPlane } from '../k8s-harness/control-plane.js';

/** Counts the TLS connections this process opens to `port` from now on (https.Agent opens them with tls.connect). */
function countTlsConnections(port: number): { count(): number; stop(): void } {
  const connect = tls.connect;
  let count = 0;
  tls.connect = ((...args: unknown[]) => {
    const options = args[0] as { port?: number | string } | undefined;
    if (typeof options === 'object' && Number(options.port) === port) count++;
    return (connect as (...a: unknown[]) => tls.TLSSocket)(...args);
  }) as typeof tls.connect;
  return { count: () => count, stop: () => (tls.connect = connect) };
}

describe('API clients with connections kept alive', () => {
  let plane: ControlPlane;
  let tlsConnections: ReturnType<typeof countTlsConnections>;

  before(async () => {
    plane = await useControlPlane({ dir: mkdtempSync(join(tmpdir(), 'kept-alive-')) });
    tlsConnections = countTlsConnections(Number(new URL(plane.server).port));
  });
  after(async () => {
    tlsConnections?.stop();
    await plane?.stop();
  });

  it('makes five calls over one TLS connection, as the kubeconfig authenticates; makeApiClient opens one a call', async () => {
    const kept = new k8s.CoreV1Api(keptAliveConfiguration(plane.adminConfig()));
    const before = tlsConnections.count();
    // Read as the admin: a call without the kubeconfig's token would be refused (401).
    for (let i = 0; i < 5; i++) assert.equal((await kept.readNamespace({ name: 'default' })).metadata?.name, 'default');
    assert.equal(tlsConnections.count() - before, 1, 'one TLS connection for five calls');

    const own = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
    const then = tlsConnections.count();
    for (let i = 0; i < 5; i++) await own.readNamespace({ name: 'default' });
    assert.equal(tlsConnections.count() - then, 5, "client-node's own client: a connection a call");
  });

  it('is refused a kubeconfig with no current cluster, naming what to set', () => {
    const config = new k8s.KubeConfig();
    config.loadFromOptions({ clusters: [], users: [], contexts: [], currentContext: 'none' });
    assert.throws(
      () => keptAliveConfiguration(config),
      (error: unknown) =>
        error instanceof ConfigError && /current-context, or BLUEGREEN_KUBE_CONTEXT/.test(error.message),
    );
  });
});
