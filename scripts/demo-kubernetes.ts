/**
 * `npm run demo -- --platform kubernetes`: the demo's two deployments on a real Kubernetes node on
 * this machine (test/helpers/dataplane.ts: a control plane, containerd and the kubelet, the images
 * built here, Traefik as the Gateway and Ingress controller), with open-loop traffic through the
 * router's real data plane: the Service through kube-proxy (`--router service-selector`, the
 * default), Traefik's Gateway listener (`gateway-api`) or its NGINX Ingress entry (`ingress`).
 * A good version goes live; then a faulty one, whose process exits 30 s after each start, is rolled
 * back on the restarts the kubelet counts. As root only: the node's network and cgroups are the host's.
 */
import { execFileSync } from 'node:child_process';
import { ROOT } from '../src/demo/simulator-process.js';
import { blueGreenSwitch, faultyRollback, FAULTY, startDataPlane } from '../test/helpers/dataplane.js';
import type { Figures, Router } from '../test/helpers/dataplane.js';
import { OpenLoopLoad } from '../test/helpers/open-loop-load.js';

const NAMESPACE = 'demo';
const TASK_QUEUE = 'bluegreen-demo-kubernetes';
const ROUTERS: readonly Router[] = ['service-selector', 'gateway-api', 'ingress'];

const say = (line = '') => process.stdout.write(`${line}\n`);

function setUp(): void {
  // What npm test's setup builds for the real node, and the data plane's tools; quick once cached.
  for (const args of [['--without-temporal-server'], ['--images'], ['--dataplane']]) {
    execFileSync('bash', ['scripts/setup.sh', ...args], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  }
}

function lines(figures: Figures): string[] {
  const { tally } = figures;
  return [
    `   => ${figures.outcome}: ${figures.sent} requests sent, ${tally.ok} answered 2xx`,
    `      failed: ${figures.failed.total} (refused or reset ${tally['refused-or-reset']}, timeouts ${tally.timeout}, 5xx ${tally['other-5xx'] + tally['faulty-5xx']})`,
    ...(figures.propagationMs !== undefined
      ? [
          `      the router's object read back on the new slot → its first answer: ${Math.round(figures.propagationMs)} ms`,
        ]
      : []),
    ...(figures.blastRadius !== undefined
      ? [`      blast radius: ${figures.blastRadius} requests failed while the faulty version was live`]
      : []),
    ...figures.samples.slice(0, 2).map((sample) => `      e.g. ${sample}`),
  ];
}

export async function runKubernetesDemo(options: { router: string; rate: number; keep: boolean }): Promise<number> {
  if (!ROUTERS.includes(options.router as Router)) {
    say(`demo: --router must be one of ${ROUTERS.join(', ')} on the kubernetes platform, not '${options.router}'`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    say('demo: --platform kubernetes runs a real node on this machine, which needs root');
    return 2;
  }
  const router = options.router as Router;
  setUp();
  say('starting a control plane, a real node and Traefik:');
  const dataPlane = await startDataPlane(NAMESPACE, TASK_QUEUE);
  const entry = dataPlane.entryPoints[router];
  let load: OpenLoopLoad | null = null;
  const stop = async () => {
    await load?.stop().catch(() => undefined);
    await dataPlane.stop();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(143)));
  try {
    say(`   detection-api v2.1.0 live on ${await dataPlane.liveSlot()} (3 pods on the real node)`);
    say(`   kubectl: KUBECONFIG=${dataPlane.plane.kubeconfigPath} kubectl -n ${NAMESPACE} get pods`);
    say(`   traffic: ${options.rate} detections/s (vegeta, open-loop) through ${router} at ${entry.url}`);
    say();
    say('━━ deploying the next version, blue-green: it should go live');
    const good = await blueGreenSwitch(dataPlane, entry, options.rate);
    for (const line of lines(good)) say(line);
    say();
    say(`━━ deploying ${FAULTY}: its process exits 30 s after each start; the monitor should roll it back`);
    const faulty = await faultyRollback(dataPlane, entry, options.rate);
    for (const line of lines(faulty)) say(line);
    const ok = good.outcome === 'Succeeded' && good.failed.total === 0 && faulty.outcome === 'RolledBack/pod-restarts';
    say();
    say(
      ok
        ? 'demo passed: the good version went live with no request failed, the faulty one was rolled back'
        : 'demo FAILED: see above',
    );
    if (options.keep) {
      load = OpenLoopLoad.start({ url: entry.url, rate: options.rate, ...(entry.host ? { host: entry.host } : {}) });
      say();
      say(`everything is still running, and the traffic goes on through ${router} until Ctrl+C`);
      await new Promise(() => undefined);
    }
    return ok ? 0 : 1;
  } finally {
    if (!options.keep) await stop();
  }
}
