/**
 * Prometheus's discovery of a namespace's pods on the real node, for Debian's Prometheus, which is
 * built without Kubernetes discovery.
 */
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as k8s from '@kubernetes/client-node';

/**
 * Prometheus's discovery of the pods that ask to be scraped (`prometheus.io/scrape` and `/port`, as
 * deploy/ annotates them), read from the API server at each of Prometheus's refreshes and served as
 * http_sd targets with the labels Kubernetes discovery's usual relabelling gives: namespace, pod
 * and the pod's own labels (app, slot, version). Debian's Prometheus is built without Kubernetes
 * discovery; the pods are real, and so are the scrapes.
 */
export async function podDiscovery(
  core: k8s.CoreV1Api,
  namespace: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createHttpServer((_request, response) => {
    core
      .listNamespacedPod({ namespace })
      .then(({ items }) => {
        const groups = items
          .filter(
            (pod) =>
              pod.metadata?.annotations?.['prometheus.io/scrape'] === 'true' &&
              pod.status?.phase === 'Running' &&
              pod.status.podIP,
          )
          .map((pod) => ({
            targets: [`${pod.status!.podIP}:${pod.metadata!.annotations!['prometheus.io/port'] ?? '80'}`],
            labels: {
              ...Object.fromEntries(
                Object.entries(pod.metadata!.labels ?? {}).map(([key, value]) => [key.replace(/\W/g, '_'), value]),
              ),
              namespace,
              pod: pod.metadata!.name!,
            },
          }));
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(groups));
      })
      .catch((error: unknown) => response.writeHead(500).end(String(error)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/targets`,
    close: async () => await new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
