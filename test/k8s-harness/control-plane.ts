/**
 * A real Kubernetes control plane on loopback, from the project's harness binary (this folder's
 * Go module: etcd, kube-apiserver, kube-controller-manager and kube-scheduler of one Kubernetes
 * release, and a node simulator standing in for kubelets). Builds the binary when it is missing or
 * older than its sources, starts each part as its own process on free ports with token
 * authentication and RBAC, waits for /readyz, nodes Ready and the default ServiceAccount, and
 * writes an admin kubeconfig. `mintToken` issues ServiceAccount tokens through the TokenRequest
 * API. Everything started is stopped by PID.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { freePort } from '../../src/processes/processes.js';
import { prepareRealNode } from './real-node.js';
import type { RealNode } from './real-node.js';
import { Parts, until } from './parts.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MODULE_DIR = fileURLToPath(new URL('.', import.meta.url));
export const HARNESS_BINARY = join(ROOT, '.tools/k8s-harness');
/** The Kubernetes release the harness is built from (test/k8s-harness/go.mod). */
export const KUBERNETES_VERSION = /k8s\.io\/kubernetes (v[0-9.]+)/.exec(readFileSync(join(MODULE_DIR, 'go.mod'), 'utf8'))![1]!;

const run = promisify(execFile);

/**
 * The harness binary as scripts/setup.sh builds it (with Kubernetes' version variables): copied
 * from its build cache when the sources are unchanged, else built (minutes the first time).
 */
export async function buildHarness(log: (line: string) => void = () => undefined): Promise<void> {
  const { stderr } = await run('bash', [join(ROOT, 'scripts/setup.sh'), '--k8s-harness'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 40 * 60_000 });
  for (const line of stderr.split('\n').filter(Boolean)) log(line);
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string;
  /** The CA that signed the API server's serving certificate. */
  caFile: string;
  kubeconfigPath: string;
  /** A KubeConfig for the admin user (system:masters). */
  adminConfig(): k8s.KubeConfig;
  /** A KubeConfig that authenticates with `token` (a ServiceAccount's, say), at `server` or the API server. */
  configForToken(token: string, server?: string): k8s.KubeConfig;
  /** Issues a token for a ServiceAccount through the TokenRequest API. */
  mintToken(namespace: string, serviceAccount: string, seconds?: number): Promise<string>;
  /** Seconds from the first process start to /readyz, nodes Ready and the default ServiceAccount. */
  startSeconds: number;
  dir: string;
  stop(): Promise<void>;
  /**
   * Stops the kube-apiserver process alone (etcd, the controllers and the nodes go on), and starts
   * it again on the same port, certificates and etcd: an API server outage. Only on a control
   * plane of this file's own, never the suite's shared one.
   */
  apiServer?: { stop(): Promise<void>; start(): Promise<void> };
  /** The real node, on a control plane started with `realNode`: its address, and where images go in. */
  realNode?: Pick<RealNode, 'name' | 'ip' | 'importImage' | 'stallKubeProxy'>;
}

/**
 * `realNode`: instead of simulated nodes, one real node on this machine (real-node.ts), the API
 * server bound to the node's address so that pods reach it through the `kubernetes` Service.
 * `controllerQps`: the controller manager's requests per second to the API server (its
 * `--kube-api-qps`, burst twice that); unset, Kubernetes' default of 20.
 */
export async function startControlPlane({
  dir,
  nodes = 2,
  realNode = false,
  controllerQps,
  log = () => undefined,
}: {
  dir: string;
  nodes?: number;
  realNode?: boolean;
  controllerQps?: number;
  log?: (line: string) => void;
}): Promise<ControlPlane> {
  await buildHarness(log);
  const expectedNodes = realNode ? 1 : nodes;
  const started = performance.now();
  const parts = new Parts(join(dir, 'logs'));
  const launch = (name: string, args: string[]) => parts.launch(name, HARNESS_BINARY, [name, ...args]);
  const alive = () => parts.alive();
  let node: RealNode | null = null;
  const stop = async () => {
    // The node's failure to clean up is reported after every part has stopped, not instead.
    const failure = await node?.stop().then(
      () => null,
      (error: unknown) => error,
    );
    await parts.stopAll();
    await node?.release();
    if (failure) throw failure;
  };

  try {
    // Credentials: the ServiceAccount signing key, and the admin's bearer token.
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const adminToken = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${adminToken},admin,admin,"system:masters"\n`);

    if (realNode) node = await prepareRealNode({ dir: join(dir, 'node'), harness: HARNESS_BINARY, log });
    const address = node?.ip ?? '127.0.0.1';
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    launch('etcd', ['--data-dir', join(dir, 'etcd'), '--client-url', `http://127.0.0.1:${etcdPort}`, '--peer-url', `http://127.0.0.1:${peerPort}`]);
    await until(async () => (await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok, 'etcd health', 30_000, alive);

    const apiServerArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--bind-address=${address}`,
      `--advertise-address=${address}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // A real node's pods reach the API server through the `kubernetes` Service: its endpoint is kept.
      `--endpoint-reconciler-type=${realNode ? 'lease' : 'none'}`,
      '--enable-priority-and-fairness=false',
      // The simulated kubelets answer on their nodes' InternalIP (their host names resolve nowhere).
      '--kubelet-preferred-address-types=InternalIP',
      '--v=0',
    ];
    launch('kube-apiserver', apiServerArgs);
    const server = `https://${address}:${apiPort}`;
    const caFile = join(dir, 'certs', 'apiserver.crt');
    await until(async () => existsSync(caFile), 'the serving certificate', 60_000, alive);

    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfig(server, caFile, 'admin', adminToken));
    const adminConfig = () => {
      const config = new k8s.KubeConfig();
      config.loadFromFile(kubeconfigPath);
      return config;
    };
    const readyz = () =>
      new Promise<boolean>((resolve) => {
        const ca = readFileSync(caFile);
        get(`${server}/readyz`, { ca, headers: { authorization: `Bearer ${adminToken}` } }, (answer) => {
          answer.resume();
          resolve(answer.statusCode === 200);
        }).once('error', () => resolve(false));
      });
    await until(readyz, 'kube-apiserver /readyz', 90_000, alive);

    launch('kube-controller-manager', [
      `--kubeconfig=${kubeconfigPath}`,
      '--leader-elect=false',
      `--service-account-private-key-file=${join(dir, 'sa.key')}`,
      `--root-ca-file=${caFile}`,
      '--use-service-account-credentials=false',
      `--secure-port=${await freePort()}`,
      '--bind-address=127.0.0.1',
      '--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller',
      ...(controllerQps ? [`--kube-api-qps=${controllerQps}`, `--kube-api-burst=${2 * controllerQps}`] : []),
      '--v=0',
    ]);
    launch('kube-scheduler', [`--kubeconfig=${kubeconfigPath}`, '--leader-elect=false', `--secure-port=${await freePort()}`, '--bind-address=127.0.0.1', '--v=0']);
    if (node) await node.join({ kubeconfigPath, adminConfig });
    else launch('node-simulator', ['--kubeconfig', kubeconfigPath, '--nodes', String(nodes), '--kubelet-port', String(await freePort())]);

    const core = adminConfig().makeApiClient(k8s.CoreV1Api);
    await until(
      async () => {
        const list = await core.listNode();
        return list.items.length >= expectedNodes && list.items.every((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      },
      `${expectedNodes} Ready nodes`,
      60_000,
      alive,
    );
    await until(async () => Boolean(await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })), 'the default ServiceAccount', 60_000, alive);
    await installGatewayApi(adminConfig(), log);
    const startSeconds = (performance.now() - started) / 1000;
    const description: PlaneFile = { server, caFile, kubeconfigPath, startSeconds };
    writeFileSync(join(dir, PLANE_FILE), JSON.stringify(description));
    const apiServer = {
      stop: () => parts.stop('kube-apiserver'),
      start: async () => {
        launch('kube-apiserver', apiServerArgs);
        await until(readyz, 'kube-apiserver /readyz after a restart', 90_000, alive);
      },
    };
    return { ...planeFrom(dir, description, stop), apiServer, ...(node ? { realNode: node } : {}) };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The Gateway API release whose CRDs every control plane serves (DESIGN §4). */
export const GATEWAY_API_VERSION = 'v1.6.3';
const GATEWAY_API_MODULE = 'sigs.k8s.io/gateway-api';

/**
 * The Gateway API's standard-channel CRDs, read from its Go module (the module proxy ships
 * `config/crd/standard/` inside it), applied server-side: the HTTPRoute CRD is too large for the
 * last-applied annotation of a client-side apply. Returns once every CRD is Established.
 */
export async function installGatewayApi(config: k8s.KubeConfig, log: (line: string) => void = () => undefined): Promise<string[]> {
  const started = performance.now();
  const { stdout } = await run('go', ['mod', 'download', '-json', `${GATEWAY_API_MODULE}@${GATEWAY_API_VERSION}`], { cwd: MODULE_DIR, maxBuffer: 16 * 1024 * 1024, timeout: 10 * 60_000 });
  const dir = join((JSON.parse(stdout) as { Dir: string }).Dir, 'config', 'crd', 'standard');
  const objects = k8s.KubernetesObjectApi.makeApiClient(config);
  const names: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const document of parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => d.toJS() as k8s.KubernetesObject | null)) {
      if (!document?.kind) continue;
      await objects.patch(document, undefined, undefined, 'bluegreen-test-harness', true, k8s.PatchStrategy.ServerSideApply);
      if (document.kind === 'CustomResourceDefinition') names.push(document.metadata!.name!);
    }
  }
  const extensions = config.makeApiClient(k8s.ApiextensionsV1Api);
  await until(
    async () => {
      const crds = await Promise.all(names.map((name) => extensions.readCustomResourceDefinition({ name })));
      return crds.every((crd) => crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
    },
    `the Gateway API ${GATEWAY_API_VERSION} CRDs Established`,
    60_000,
    () => undefined,
  );
  log(`Gateway API ${GATEWAY_API_VERSION}: ${names.length} CRDs applied server-side and Established in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return names;
}

/** What a running control plane writes about itself, so other processes can use it. */
interface PlaneFile {
  server: string;
  caFile: string;
  kubeconfigPath: string;
  startSeconds: number;
}
const PLANE_FILE = 'plane.json';

/**
 * The control plane `scripts/run-tests.sh` started for the whole suite (its directory in
 * BLUEGREEN_TEST_CONTROL_PLANE), so each test file does not pay the start-up; otherwise one of
 * this file's own, stopped by `stop()`. A shared one outlives `stop()`: test files on it keep to
 * their own objects or reset the ones they share (`kubectl apply -k deploy/`).
 */
export async function useControlPlane({ dir, log }: { dir: string; log?: (line: string) => void }): Promise<ControlPlane> {
  const shared = process.env['BLUEGREEN_TEST_CONTROL_PLANE'];
  if (shared && existsSync(join(shared, PLANE_FILE))) {
    const description = JSON.parse(readFileSync(join(shared, PLANE_FILE), 'utf8')) as PlaneFile;
    return planeFrom(shared, description, async () => undefined);
  }
  return await startControlPlane({ dir, ...(log ? { log } : {}) });
}

function planeFrom(dir: string, { server, caFile, kubeconfigPath, startSeconds }: PlaneFile, stop: () => Promise<void>): ControlPlane {
  const adminConfig = () => {
    const config = new k8s.KubeConfig();
    config.loadFromFile(kubeconfigPath);
    return config;
  };
  const core = adminConfig().makeApiClient(k8s.CoreV1Api);
  return {
    server,
    caFile,
    kubeconfigPath,
    adminConfig,
    configForToken: (token, at = server) => {
      const config = new k8s.KubeConfig();
      config.loadFromString(kubeconfig(at, caFile, 'token-user', token));
      return config;
    },
    mintToken: async (namespace, serviceAccount, seconds = 3600) => {
      const answer = await core.createNamespacedServiceAccountToken({
        name: serviceAccount,
        namespace,
        body: { spec: { audiences: [], expirationSeconds: seconds } },
      });
      return answer.status!.token;
    },
    startSeconds,
    dir,
    stop,
  };
}

function kubeconfig(server: string, caFile: string, user: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '  - name: harness',
    '    cluster:',
    `      server: ${server}`,
    `      certificate-authority: ${caFile}`,
    'users:',
    `  - name: ${user}`,
    '    user:',
    `      token: ${token}`,
    'contexts:',
    '  - name: harness',
    '    context:',
    '      cluster: harness',
    `      user: ${user}`,
    '      namespace: default',
    'current-context: harness',
    '',
  ].join('\n');
}
