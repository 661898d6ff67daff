/**
 * Traefik (built by scripts/setup.sh --dataplane from test/traefik's module) as a cluster's Gateway
 * API and Ingress controller, out of cluster with the admin's kubeconfig, as its
 * `kubernetesGateway` and `kubernetesIngressNGINX` providers run it:
 * - Gateways of the GatewayClass `traefik` (controller `traefik.io/gateway-controller`) are served
 *   on the entry point whose port is their listener's, and Traefik writes their status and their
 *   routes' (Accepted, ResolvedRefs, with the generation it saw);
 * - Ingresses of the IngressClass `nginx` (controller `k8s.io/ingress-nginx`) are served on the
 *   `web` entry point, NGINX Ingress's annotations read: among them `canary` and `canary-weight`.
 * Both send each request to a ready endpoint of the backend Service's EndpointSlices (a pod IP),
 * as the controllers they stand for do; neither goes through kube-proxy.
 *
 * Every entry point listens on loopback. The providers' throttle is Traefik's default (2 s): a
 * change is applied at most that long after it is seen, as in a cluster.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { freePort } from '../../src/processes/processes.js';
import { Parts, until } from './parts.js';

export const TRAEFIK_BINARY = join(fileURLToPath(new URL('../..', import.meta.url)), '.tools/traefik');
export const GATEWAY_CLASS = 'traefik';
export const GATEWAY_CONTROLLER = 'traefik.io/gateway-controller';
export const INGRESS_CLASS = 'nginx';

export interface Traefik {
  /** The Ingress entry point, `http://127.0.0.1:PORT`. */
  ingressUrl: string;
  /** The port a Gateway's listener names to be served (`http://127.0.0.1:PORT`). */
  gatewayPort: number;
  gatewayUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts Traefik watching `namespace`, with the GatewayClass and IngressClass it serves created
 * (cluster-wide, once), and returns once it answers its ping.
 */
export async function startTraefik(options: {
  dir: string;
  kubeconfigPath: string;
  adminConfig: k8s.KubeConfig;
  namespace: string;
}): Promise<Traefik> {
  const { dir, kubeconfigPath, adminConfig, namespace } = options;
  const [web, gateway, ping] = [await freePort(), await freePort(), await freePort()];
  const config = join(dir, 'traefik.yaml');
  writeFileSync(
    config,
    `entryPoints:
  web: { address: "127.0.0.1:${web}" }
  gateway: { address: "127.0.0.1:${gateway}" }
  ping: { address: "127.0.0.1:${ping}" }
ping: { entryPoint: ping }
log: { level: INFO, noColor: true }
# No call home: nothing here reaches the internet.
global: { checkNewVersion: false, sendAnonymousUsage: false }
providers:
  kubernetesGateway:
    namespaces: [${namespace}]
  kubernetesIngressNGINX:
    watchNamespace: ${namespace}
    ingressClass: ${INGRESS_CLASS}
    httpEntryPoint: web
`,
  );
  await ensureClasses(adminConfig);
  const parts = new Parts(join(dir, 'logs'));
  parts.launch('traefik', TRAEFIK_BINARY, [`--configFile=${config}`], { ...process.env, KUBECONFIG: kubeconfigPath });
  try {
    await until(
      async () => (await fetch(`http://127.0.0.1:${ping}/ping`, { signal: AbortSignal.timeout(1_000) })).ok,
      "Traefik's ping",
      30_000,
      () => parts.alive(),
    );
  } catch (error) {
    await parts.stopAll();
    throw error;
  }
  return {
    ingressUrl: `http://127.0.0.1:${web}`,
    gatewayPort: gateway,
    gatewayUrl: `http://127.0.0.1:${gateway}`,
    stop: () => parts.stopAll(),
  };
}

/** The GatewayClass and IngressClass Traefik serves, created unless they are there. */
async function ensureClasses(config: k8s.KubeConfig): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(config);
  const wanted = [
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GatewayClass',
      metadata: { name: GATEWAY_CLASS },
      spec: { controllerName: GATEWAY_CONTROLLER },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IngressClass',
      metadata: { name: INGRESS_CLASS },
      spec: { controller: 'k8s.io/ingress-nginx' },
    },
  ];
  for (const object of wanted) {
    try {
      await objects.create(object);
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
    }
  }
}
