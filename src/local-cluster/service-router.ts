/**
 * A local Service: a label selector, and an HTTP router on its own port that forwards each request
 * to a ready pod the selector matches, round robin. The selector is read per request, so a switch
 * is atomic for new requests while requests in flight finish where they started.
 *
 * With `weights` the router splits traffic between groups of endpoints, as a Gateway API
 * HTTPRoute's weighted backendRefs do: the endpoints are grouped by one label's value (the slot),
 * a group is picked by smooth weighted round robin (deterministic: 5/95 sends exactly 5 of every
 * 100 requests to the first group), and a pod within the group round robin. A group with no ready
 * endpoint gets nothing and the others share its part. Every answer is counted per Deployment, so
 * the share each backend actually served can be read back. A request that
 * never reached a pod (connection refused, or a kept-alive connection the pod had just closed) is
 * sent to the next endpoint, as a kube-proxy'd client would reconnect; nothing is retried once a
 * pod may have seen it.
 */
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ServiceConfig } from './config.js';
import type { Pod } from './pod.js';

/** A weighted split between groups of endpoints: by the value of `label`, in relative weights. */
export interface ServiceWeights {
  label: string;
  split: Record<string, number>;
}

export interface ServiceStatus {
  name: string;
  namespace: string;
  listen: string;
  selector: Record<string, string>;
  weights: ServiceWeights | null;
  endpoints: { pod: string; deployment: string; labels: Record<string, string>; port: number }[];
  /** Requests answered, per Deployment, since the platform started. */
  served: Record<string, number>;
}

/** Whether every label of the selector is on the pod's Deployment. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

const NEVER_REACHED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'];

export class LocalService {
  selector: Record<string, string>;
  weights: ServiceWeights | null = null;
  private server: Server | null = null;
  private next = 0;
  /** Smooth weighted round robin: each group's running credit. */
  private credit = new Map<string, number>();
  private readonly nextInGroup = new Map<string, number>();
  private readonly served = new Map<string, number>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256 });

  constructor(
    readonly config: ServiceConfig,
    private readonly readyPods: () => Pod[],
  ) {
    this.selector = { ...config.selector };
  }

  get key(): string {
    return `${this.config.namespace}/${this.config.name}`;
  }

  endpoints(): Pod[] {
    return this.readyPods().filter((pod) => selects(this.selector, pod.spec.labels));
  }

  status(): ServiceStatus {
    const { name, namespace, listen } = this.config;
    return {
      name,
      namespace,
      listen,
      selector: { ...this.selector },
      weights: this.weights ? { label: this.weights.label, split: { ...this.weights.split } } : null,
      endpoints: this.endpoints().map((p) => ({ pod: p.spec.name, deployment: p.spec.deployment, labels: p.spec.labels, port: p.spec.port })),
      served: Object.fromEntries(this.served),
    };
  }

  /** Sets (or, with null, clears) the weighted split; the picks start afresh. */
  setWeights(weights: ServiceWeights | null): void {
    this.weights = weights;
    this.credit = new Map();
  }

  /**
   * The next pod among `endpoints`: round robin, or with weights, the group the smooth weighted
   * round robin picks (nginx's algorithm: every group gains its weight, the richest is picked and
   * pays the total) and then round robin within it.
   */
  private pick(endpoints: Pod[]): Pod {
    const weights = this.weights;
    if (!weights) return endpoints[(this.next = (this.next + 1) % endpoints.length)]!;
    const groups = new Map<string, Pod[]>();
    for (const pod of endpoints) {
      const value = pod.spec.labels[weights.label] ?? '';
      if ((weights.split[value] ?? 0) <= 0) continue;
      groups.set(value, [...(groups.get(value) ?? []), pod]);
    }
    if (groups.size === 0) return endpoints[(this.next = (this.next + 1) % endpoints.length)]!;
    let total = 0;
    let chosen: string | null = null;
    for (const value of [...groups.keys()].sort()) {
      const weight = weights.split[value]!;
      total += weight;
      const credit = (this.credit.get(value) ?? 0) + weight;
      this.credit.set(value, credit);
      if (chosen === null || credit > this.credit.get(chosen)!) chosen = value;
    }
    this.credit.set(chosen!, this.credit.get(chosen!)! - total);
    const members = groups.get(chosen!)!;
    const index = ((this.nextInGroup.get(chosen!) ?? -1) + 1) % members.length;
    this.nextInGroup.set(chosen!, index);
    return members[index]!;
  }

  async listen(): Promise<void> {
    const [host, port] = splitAddress(this.config.listen);
    const server = createServer((req, res) => void this.forward(req, res));
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
  }

  async close(): Promise<void> {
    this.agent.destroy();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  private async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const tried = new Set<Pod>();
    for (;;) {
      const endpoints = this.endpoints().filter((p) => !tried.has(p));
      if (endpoints.length === 0) {
        if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `service ${this.key} has no ready endpoint for selector ${JSON.stringify(this.selector)}` }));
        return;
      }
      const pod = this.pick(endpoints);
      tried.add(pod);
      const outcome = await this.send(pod, req, body, res);
      if (outcome === 'done') return;
    }
  }

  /** 'retry' only when the pod cannot have seen the request. */
  private send(pod: Pod, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<'done' | 'retry'> {
    return new Promise((resolve) => {
      const headers = { ...req.headers };
      for (const name of HOP_BY_HOP) delete headers[name];
      headers['content-length'] = String(body.length);
      const upstream = httpRequest(
        { host: '127.0.0.1', port: pod.spec.port, method: req.method, path: req.url, headers, agent: this.agent },
        (answer) => {
          const answerHeaders = { ...answer.headers };
          for (const name of HOP_BY_HOP) delete answerHeaders[name];
          res.writeHead(answer.statusCode ?? 502, { ...answerHeaders, 'x-served-by': pod.spec.name });
          answer.pipe(res);
          answer.once('end', () => {
            this.served.set(pod.spec.deployment, (this.served.get(pod.spec.deployment) ?? 0) + 1);
            resolve('done');
          });
          answer.once('error', () => {
            res.destroy();
            resolve('done');
          });
        },
      );
      upstream.once('error', (error: NodeJS.ErrnoException) => {
        const neverReached = error.code === 'ECONNREFUSED' || (upstream.reusedSocket && NEVER_REACHED.has(error.code ?? ''));
        if (neverReached && !res.headersSent) return resolve('retry');
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: `pod ${pod.spec.name}: ${error.message}` }));
        } else {
          res.destroy();
        }
        resolve('done');
      });
      upstream.end(body);
    });
  }
}

export function splitAddress(address: string): [string, number] {
  const index = address.lastIndexOf(':');
  return [address.slice(0, index), Number(address.slice(index + 1))];
}
