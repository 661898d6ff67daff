/**
 * The local platform's HTTPRoutes and Ingresses: listeners that stand for a Gateway or an NGINX
 * Ingress controller in front of the Services, so the embedded stack runs a canary through each
 * router kind as a cluster would. Each request picks a backend Service by smooth weighted round
 * robin (deterministic: 5/95 sends exactly 5 of every 100 to the first) among the backends with a
 * positive weight and a ready endpoint, then that Service's own router picks the pod. Every answer
 * is counted per backend Service, so the share each backend actually served can be read back.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { HttpRouteConfig, IngressConfig } from './config.js';
import type { LocalService } from './service-router.js';
import { closeServer, listenOn, readBody } from './service-router.js';
import { SmoothWeightedPick } from './weighted-pick.js';
import { NGINX_CANARY, NGINX_CANARY_WEIGHT } from '../shared/traffic.js';

/** A listener that sends each request to one of its weighted backend Services. */
abstract class WeightedListener {
  private server: Server | null = null;
  private readonly picks = new SmoothWeightedPick();
  private lastWeights = '';
  protected readonly served = new Map<string, number>();

  constructor(
    protected readonly services: (namespace: string, name: string) => LocalService | undefined,
    private readonly address: string | undefined,
    readonly namespace: string,
    readonly name: string,
  ) {}

  get key(): string {
    return `${this.namespace}/${this.name}`;
  }

  /** The backend Services and their weights now. */
  protected abstract weights(): Record<string, number>;

  async listen(): Promise<void> {
    if (this.address) this.server = await listenOn(this.address, async (req, res) => await this.route(req, res));
  }

  async close(): Promise<void> {
    await closeServer(this.server);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const weights = this.weights();
    // A backend without a ready endpoint gets nothing; the others share its part, as Envoy does.
    const usable = Object.fromEntries(
      Object.entries(weights).filter(([name]) => (this.services(this.namespace, name)?.endpoints().length ?? 0) > 0),
    );
    const signature = JSON.stringify(weights);
    if (signature !== this.lastWeights) {
      this.lastWeights = signature;
      this.picks.reset();
    }
    const chosen = this.picks.pick(usable);
    const service = chosen === null ? undefined : this.services(this.namespace, chosen);
    if (!service) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `${this.key} has no backend with weight and a ready endpoint (${signature})` }));
      return;
    }
    await service.handle(req, res, body);
    this.served.set(service.config.name, (this.served.get(service.config.name) ?? 0) + 1);
  }
}

/** A Gateway API HTTPRoute with one rule: backendRefs to Services, by weight. */
export class LocalHttpRoute extends WeightedListener {
  backendRefs: { name: string; weight: number }[];

  constructor(
    readonly config: HttpRouteConfig,
    services: (namespace: string, name: string) => LocalService | undefined,
  ) {
    super(services, config.listen, config.namespace, config.name);
    this.backendRefs = config.backendRefs.map((ref) => ({ ...ref }));
  }

  protected weights(): Record<string, number> {
    const weights: Record<string, number> = {};
    for (const ref of this.backendRefs) weights[ref.name] = (weights[ref.name] ?? 0) + ref.weight;
    return weights;
  }

  status() {
    return {
      name: this.name,
      namespace: this.namespace,
      listen: this.config.listen,
      backendRefs: this.backendRefs.map((r) => ({ ...r })),
      served: Object.fromEntries(this.served),
    };
  }
}

/**
 * An Ingress. One with a listener is an entry point: its backend takes the traffic, except the
 * `canary-weight` percent a canary Ingress for the same host takes (NGINX's canary annotations).
 */
export class LocalIngress extends WeightedListener {
  backend: string;
  annotations: Record<string, string>;

  constructor(
    readonly config: IngressConfig,
    services: (namespace: string, name: string) => LocalService | undefined,
    private readonly ingresses: () => LocalIngress[],
  ) {
    super(services, config.listen, config.namespace, config.name);
    this.backend = config.backend;
    this.annotations = { ...config.annotations };
  }

  get isCanary(): boolean {
    return this.annotations[NGINX_CANARY] === 'true';
  }

  protected weights(): Record<string, number> {
    const canary = this.ingresses().find(
      (i) => i !== this && i.isCanary && i.namespace === this.namespace && i.config.host === this.config.host,
    );
    const weight = canary ? Math.min(100, Math.max(0, Number(canary.annotations[NGINX_CANARY_WEIGHT] ?? 0) || 0)) : 0;
    if (!canary || canary.backend === this.backend) return { [this.backend]: 100 };
    return { [this.backend]: 100 - weight, [canary.backend]: weight };
  }

  status() {
    return {
      name: this.name,
      namespace: this.namespace,
      listen: this.config.listen ?? null,
      host: this.config.host,
      backend: this.backend,
      annotations: { ...this.annotations },
      served: Object.fromEntries(this.served),
    };
  }
}
