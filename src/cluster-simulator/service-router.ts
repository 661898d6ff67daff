/**
 * A local Service: a label selector, and an HTTP router on its own port that forwards each request
 * to a ready pod the selector matches, round robin. The selector is read per request, so a switch
 * is atomic for new requests while requests in flight finish where they started. The local
 * HTTPRoutes and Ingresses (traffic-routes.ts) hand their requests to a Service the same way.
 * Every answer is counted per Deployment, so the share each backend actually served can be read
 * back. A request that
 * never reached a pod (connection refused, or a kept-alive connection the pod had just closed) is
 * sent to the next endpoint, as a kube-proxy'd client would reconnect; nothing is retried once a
 * pod may have seen it.
 */
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ServiceConfig } from './config.js';
import { logger } from './logger.js';
import type { Pod } from './pod.js';

export interface ServiceStatus {
  name: string;
  namespace: string;
  listen: string;
  selector: Record<string, string>;
  endpoints: { pod: string; deployment: string; labels: Record<string, string>; port: number }[];
  /** Requests answered, per Deployment, since the platform started. */
  served: Record<string, number>;
}

/** Whether every label of the selector is on the pod's Deployment. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** A pod still silent this long after a request was sent to it is logged (a client times out at 10 s). */
const SLOW_ANSWER_MS = 5_000;

const NEVER_REACHED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'];

export class LocalService {
  selector: Record<string, string>;
  private server: Server | null = null;
  private next = 0;
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
      endpoints: this.endpoints().map((p) => ({
        pod: p.spec.name,
        deployment: p.spec.deployment,
        labels: p.spec.labels,
        port: p.spec.port,
      })),
      served: Object.fromEntries(this.served),
    };
  }

  async listen(): Promise<void> {
    this.server = await listenOn(
      this.config.listen,
      async (req, res) => await this.handle(req, res, await readBody(req)),
    );
  }

  async close(): Promise<void> {
    this.agent.destroy();
    await closeServer(this.server);
  }

  /** Sends a request (its body already read) to a ready endpoint, round robin; 503 when there is none. */
  async handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const tried = new Set<Pod>();
    for (;;) {
      const endpoints = this.endpoints().filter((p) => !tried.has(p));
      if (endpoints.length === 0) {
        if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: `service ${this.key} has no ready endpoint for selector ${JSON.stringify(this.selector)}`,
          }),
        );
        return;
      }
      const pod = endpoints[(this.next = (this.next + 1) % endpoints.length)]!;
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
      const sentAt = new Date().toISOString();
      const slow = setTimeout(
        () =>
          logger.warn(
            { service: this.key, pod: pod.spec.name, method: req.method, path: req.url, sentAt },
            `a pod has not answered for ${SLOW_ANSWER_MS / 1000} s`,
          ),
        SLOW_ANSWER_MS,
      );
      slow.unref();
      const upstream = httpRequest(
        { host: '127.0.0.1', port: pod.spec.port, method: req.method, path: req.url, headers, agent: this.agent },
        (answer) => {
          const answerHeaders = { ...answer.headers };
          for (const name of HOP_BY_HOP) delete answerHeaders[name];
          clearTimeout(slow);
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
        clearTimeout(slow);
        const neverReached =
          error.code === 'ECONNREFUSED' || (upstream.reusedSocket && NEVER_REACHED.has(error.code ?? ''));
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

/** A request's whole body: a router reads it once, so it can send it again to another endpoint. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An HTTP server on `address` (host:port) with kept-alive connections, as a cluster's proxies keep them. */
export async function listenOn(
  address: string,
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): Promise<Server> {
  const [host, port] = splitAddress(address);
  const server = createServer((req, res) => void handler(req, res));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export async function closeServer(server: Server | null): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

export function splitAddress(address: string): [string, number] {
  const index = address.lastIndexOf(':');
  return [address.slice(0, index), Number(address.slice(index + 1))];
}
