/**
 * `npm run k8s-harness`: the test control plane in the foreground, for people: a development
 * cluster without Docker. Prints the kubeconfig path; Ctrl+C stops every part.
 *
 *   npm run k8s-harness                 # state in .state/k8s-harness
 *   npm run k8s-harness -- --dir /tmp/k8s --nodes 3
 *   npm run k8s-harness -- --real-node  # a real node instead of simulated ones (root; setup.sh --real-node)
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { KUBERNETES_VERSION, startControlPlane } from './control-plane.js';

const options = new Command('k8s-harness')
  .option('--dir <dir>', 'state directory (wiped at start)', '.state/k8s-harness')
  .option('--nodes <n>', 'simulated nodes', '2')
  .option('--real-node', 'one real node instead (kubelet, kube-proxy, containerd; as root)')
  .parse()
  .opts<{ dir: string; nodes: string; realNode?: boolean }>();

const dir = resolve(options.dir);
rmSync(dir, { recursive: true, force: true });
const plane = await startControlPlane({ dir, nodes: Number(options.nodes), realNode: options.realNode ?? false, log: (line) => process.stdout.write(`${line}\n`) });
process.stdout.write(
  [
    `Kubernetes ${KUBERNETES_VERSION} control plane up in ${plane.startSeconds.toFixed(1)} s at ${plane.server}`,
    `  export KUBECONFIG=${plane.kubeconfigPath}`,
    `  kubectl get nodes`,
    `logs in ${dir}/logs; Ctrl+C stops it`,
    '',
  ].join('\n'),
);
const stop = () => void plane.stop().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
