/**
 * What the node did while a data-plane case ran, for the message of a case that failed requests:
 * - the Service's ready endpoints, as its EndpointSlices' watch reports them (a refused connection through kube-proxy
 *   means it had none to send it to, or its rules said so);
 * - the connections to the Service's NodePort that conntrack saw leave un-NATed (no endpoint's
 *   rule matched; the SYN met the REJECT or a closed port), from `conntrack -E`: each such entry
 *   stays SYN_SENT for nf_conntrack_tcp_timeout_syn_sent (120 s), and a client that reuses its
 *   source port before then is refused again, whatever the rules say by then
 *   (kubernetes/kubernetes#48719, #101607).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as k8s from '@kubernetes/client-node';

const STALE_ENTRY_MS = 120_000;

export class DataPlaneEvidence {
  private readonly endpoints: { at: number; ready: string }[] = [];
  private readonly unNated: { at: number; sport: number }[] = [];
  private readonly slices: k8s.Informer<k8s.V1EndpointSlice> & k8s.ObjectCache<k8s.V1EndpointSlice>;
  private readonly conntrack: ChildProcess | null;
  private retry: NodeJS.Timeout | null = null;

  private constructor(config: k8s.KubeConfig, namespace: string, service: string, nodePort: number) {
    // Watched, not polled: each change of the Service's EndpointSlices as it comes, and no load on
    // the API server the cases measure through.
    const discovery = config.makeApiClient(k8s.DiscoveryV1Api);
    const labelSelector = `kubernetes.io/service-name=${service}`;
    this.slices = k8s.makeInformer(
      config,
      `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
      () => discovery.listNamespacedEndpointSlice({ namespace, labelSelector }),
      labelSelector,
    );
    const record = () => {
      const ready = this.slices
        .list()
        .flatMap((slice) => slice.endpoints ?? [])
        .filter((e) => e.conditions?.ready)
        .map((e) => e.targetRef?.name ?? e.addresses[0])
        .sort()
        .join(' ');
      if (this.endpoints.at(-1)?.ready !== ready) this.endpoints.push({ at: Date.now(), ready });
    };
    for (const event of ['add', 'update', 'delete'] as const) this.slices.on(event, record);
    // A watch the API server ended is opened again.
    this.slices.on(
      'error',
      () => (this.retry = setTimeout(() => void this.slices.start().catch(() => undefined), 1000)),
    );
    this.conntrack = startConntrack(nodePort, (at, sport) => this.unNated.push({ at, sport }));
  }

  /** Starts recording; resolves once the EndpointSlices' watch is open. */
  static async start(config: k8s.KubeConfig, namespace: string, service: string, nodePort: number) {
    const evidence = new DataPlaneEvidence(config, namespace, service, nodePort);
    await evidence.slices.start();
    return evidence;
  }

  /**
   * The evidence for requests sent in [from, to]: the ready endpoints over that time, and the
   * un-NATed connections to the NodePort from STALE_ENTRY_MS before `from` on.
   */
  explain(from: number, to: number): string[] {
    const iso = (at: number) => new Date(at).toISOString();
    const before = this.endpoints.filter((e) => e.at < from).at(-1);
    const during = this.endpoints.filter((e) => e.at >= from && e.at <= to);
    const unNated = this.unNated.filter((e) => e.at >= from - STALE_ENTRY_MS && e.at <= to);
    return [
      `ready endpoints: ${[...(before ? [before] : []), ...during].map((e) => `${iso(e.at)} [${e.ready}]`).join(', ')}`,
      this.conntrack === null
        ? 'un-NATed connections to the NodePort: not recorded (no conntrack)'
        : `un-NATed connections to the NodePort since ${iso(from - STALE_ENTRY_MS)}: ${unNated.length}${
            unNated.length > 0
              ? ` (${unNated
                  .slice(0, 10)
                  .map((e) => `${iso(e.at)} :${e.sport}`)
                  .join(', ')}${unNated.length > 10 ? ', …' : ''})`
              : ''
          }`,
    ];
  }

  async stop(): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
    this.conntrack?.kill();
    await this.slices.stop();
  }
}

/** `conntrack -E` for new TCP connections to `port`, calling back for each left un-NATed; null without conntrack. */
function startConntrack(port: number, onUnNated: (at: number, sport: number) => void): ChildProcess | null {
  if (spawnSync('conntrack', ['--version']).status !== 0) return null;
  const child = spawn(
    'conntrack',
    ['-E', '-e', 'NEW', '-p', 'tcp', '--orig-port-dst', String(port), '-o', 'timestamp'],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  // [1796674082.151537]  [NEW] tcp 6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=56698 dport=32222 [UNREPLIED] src=10.244.0.3 ...
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const at = /^\[(\d+\.\d+)\]/.exec(line)?.[1];
    const tuples = [...line.matchAll(/src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/g)];
    if (!at || tuples.length < 2) return;
    const [original, reply] = tuples as [RegExpMatchArray, RegExpMatchArray];
    if (reply[1] === original[2]) onUnNated(Math.round(Number(at) * 1000), Number(original[3]));
  });
  return child;
}
