/**
 * The local platform's long-running process: the Deployments and Services of its configuration,
 * a router per Service, a control API on loopback that the worker's `local` adapter drives, and a
 * Prometheus file_sd targets file listing every running pod. It outlives any worker, so a worker
 * that crashes and restarts finds its slots as it left them.
 */
import { mkdirSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { LocalPlatformConfig } from './config.js';
import { LocalDeployment, UnknownImageError } from './deployment.js';
import { logger } from './logger.js';
import type { ObjectEvent } from './deployment.js';
import { PodPhase } from './pod.js';
import { repositoryFromImage, versionFromImage } from '../deployment-spec/deployment-spec.js';
import { LocalService, splitAddress } from './service-router.js';
import { LocalHttpRoute, LocalIngress } from './traffic-routes.js';

const ObjectParams = z.object({ namespace: z.string(), name: z.string() });
/** A Service patch, as a JSON merge patch: a selector key set to null is removed (a Service over both slots). */
const ServicePatch = z
  .object({
    selector: z.record(z.string().min(1), z.string().nullable()).optional(),
  })
  .strict();
/** An HTTPRoute patch: its backendRefs, replaced as a merge patch replaces a list. */
const RoutePatch = z
  .object({
    backendRefs: z
      .array(
        z
          .object({
            name: z.string().min(1),
            weight: z.number().int('weights must be whole numbers').min(0, 'weights must be 0 or more'),
          })
          .strict(),
      )
      .min(1, 'must name at least one Service'),
  })
  .strict();
/** An Ingress patch: its backend Service, and annotations merged (null removes one). */
const IngressPatch = z
  .object({
    backend: z.string().min(1).optional(),
    annotations: z.record(z.string().min(1), z.string().nullable()).optional(),
  })
  .strict();
/** A new Ingress (a canary's): no listener of its own, it shares its host's entry point. */
const IngressCreate = z
  .object({
    name: z.string().min(1),
    host: z.string().min(1),
    backend: z.string().min(1),
    annotations: z.record(z.string()).default({}),
  })
  .strict();
/**
 * A build pushed under a tag: from now on the tag's pods run with this environment (over the
 * repository's), as a registry's tag moved to another build. Pods already running keep theirs.
 */
const ImagePush = z.object({ image: z.string().min(1), env: z.record(z.string()).default({}) }).strict();
const DeploymentPatch = z
  .object({
    image: z.string().min(1).optional(),
    replicas: z
      .number()
      .int('replicas must be a whole number')
      .min(0, 'replicas must be 0 or more')
      .max(50, 'replicas must be at most 50')
      .optional(),
    /** The pod template's labels, merged; a selector's label cannot be changed. */
    labels: z.record(z.string().max(63, 'a label value must be at most 63 characters')).optional(),
  })
  .strict();

/** Events kept, as a cluster keeps an hour of them. */
const MAX_EVENTS = 5000;

export interface ClusterEvent extends ObjectEvent {
  at: string;
  count: number;
}

/** `?dryRun=All`: the write is validated and answered as it would be, and not applied (as Kubernetes does). */
const dryRun = (request: { query: unknown }): boolean =>
  (request.query as { dryRun?: string } | null)?.dryRun === 'All';

const EvidenceQuery = z.object({ tailLines: z.coerce.number().int().min(1).max(5000).default(200) });

export class LocalCluster {
  readonly deployments: LocalDeployment[];
  readonly services: LocalService[];
  readonly routes: LocalHttpRoute[];
  readonly ingresses: LocalIngress[];
  readonly targetsFile: string;
  private control: FastifyInstance | null = null;
  private targetsPending = false;
  private targetsWritten: Promise<unknown> = Promise.resolve();
  /** The cluster's events, newest last; a repeat of the last one for an object is counted, not added. */
  private readonly events: ClusterEvent[] = [];

  constructor(
    readonly config: LocalPlatformConfig,
    { cwd = process.cwd() }: { cwd?: string } = {},
  ) {
    mkdirSync(config.stateDir, { recursive: true });
    this.targetsFile = join(config.stateDir, 'prometheus-targets.json');
    const onChange = () => this.scheduleTargets();
    const record = (event: ObjectEvent) => this.record(event);
    this.deployments = config.deployments.map(
      (d) => new LocalDeployment(d, config.images, { stateDir: config.stateDir, cwd, onChange, record }),
    );
    this.services = config.services.map(
      (s) =>
        new LocalService(s, () =>
          this.deployments.filter((d) => d.config.namespace === s.namespace).flatMap((d) => d.readyPods()),
        ),
    );
    const service = (namespace: string, name: string) => this.find(this.services, namespace, name);
    this.routes = config.routes.map((r) => new LocalHttpRoute(r, service));
    this.ingresses = config.ingresses.map((i) => new LocalIngress(i, service, () => this.ingresses));
  }

  /** The control API's base URL. */
  get controlUrl(): string {
    return `http://${this.config.control}`;
  }

  async start(): Promise<void> {
    await this.writeTargets();
    for (const listener of [...this.services, ...this.routes, ...this.ingresses]) await listener.listen();
    await Promise.all(this.deployments.map((d) => d.reconcile()));
    this.control = this.controlApi();
    const [host, port] = splitAddress(this.config.control);
    await this.control.listen({ host, port });
  }

  async stop(): Promise<void> {
    await this.control?.close();
    await Promise.all([...this.services, ...this.routes, ...this.ingresses].map((s) => s.close()));
    await Promise.all(this.deployments.map((d) => d.shutdown()));
    await this.targetsWritten;
  }

  private record(event: ObjectEvent): void {
    const at = new Date().toISOString();
    let last: ClusterEvent | undefined;
    for (let i = this.events.length - 1; i >= 0 && !last; i--)
      if (this.events[i]!.object === event.object) last = this.events[i];
    if (last && last.reason === event.reason && last.message === event.message) {
      last.count += 1;
      last.at = at;
      return;
    }
    this.events.push({ ...event, at, count: 1 });
    if (event.type === 'Warning') logger.warn({ object: event.object, reason: event.reason }, event.message);
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }

  private find<T extends { key: string }>(items: T[], namespace: string, name: string): T | undefined {
    return items.find((item) => item.key === `${namespace}/${name}`);
  }

  private controlApi(): FastifyInstance {
    const app = Fastify({ logger: false });
    const notFound = (kind: string, { namespace, name }: z.output<typeof ObjectParams>) => ({
      message: `${kind} "${name}" not found in namespace "${namespace}"`,
    });
    const invalid = (error: z.ZodError) => ({
      message: error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '),
    });

    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/api/v1/services', async () => ({ items: this.services.map((s) => s.status()) }));
    app.get('/api/v1/deployments', async () => ({ items: this.deployments.map((d) => d.status()) }));

    app.get('/api/v1/namespaces/:namespace/services/:name', async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const service = this.find(this.services, params.namespace, params.name);
      return service ? service.status() : reply.code(404).send(notFound('service', params));
    });
    app.patch('/api/v1/namespaces/:namespace/services/:name', async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const service = this.find(this.services, params.namespace, params.name);
      if (!service) return reply.code(404).send(notFound('service', params));
      const patch = ServicePatch.safeParse(request.body);
      if (!patch.success) return reply.code(422).send(invalid(patch.error));
      const selector = { ...service.selector };
      for (const [key, value] of Object.entries(patch.data.selector ?? {})) {
        if (value === null) delete selector[key];
        else selector[key] = value;
      }
      if (Object.keys(selector).length === 0)
        return reply.code(422).send({ message: 'selector: must select at least one label' });
      if (dryRun(request)) return { ...service.status(), selector };
      service.selector = selector;
      return service.status();
    });

    const routes = '/apis/gateway.networking.k8s.io/v1/namespaces/:namespace/httproutes/:name';
    app.get(routes, async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const route = this.find(this.routes, params.namespace, params.name);
      return route ? route.status() : reply.code(404).send(notFound('httproute', params));
    });
    app.patch(routes, async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const route = this.find(this.routes, params.namespace, params.name);
      if (!route) return reply.code(404).send(notFound('httproute', params));
      const patch = RoutePatch.safeParse(request.body);
      if (!patch.success) return reply.code(422).send(invalid(patch.error));
      if (dryRun(request)) return { ...route.status(), backendRefs: patch.data.backendRefs };
      route.backendRefs = patch.data.backendRefs;
      return route.status();
    });

    const ingresses = '/apis/networking.k8s.io/v1/namespaces/:namespace/ingresses';
    app.get(`${ingresses}/:name`, async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const ingress = this.find(this.ingresses, params.namespace, params.name);
      return ingress ? ingress.status() : reply.code(404).send(notFound('ingress', params));
    });
    app.patch(`${ingresses}/:name`, async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const ingress = this.find(this.ingresses, params.namespace, params.name);
      if (!ingress) return reply.code(404).send(notFound('ingress', params));
      const patch = IngressPatch.safeParse(request.body);
      if (!patch.success) return reply.code(422).send(invalid(patch.error));
      if (dryRun(request)) return ingress.status();
      if (patch.data.backend !== undefined) ingress.backend = patch.data.backend;
      for (const [key, value] of Object.entries(patch.data.annotations ?? {})) {
        if (value === null) delete ingress.annotations[key];
        else ingress.annotations[key] = value;
      }
      return ingress.status();
    });
    app.post(ingresses, async (request, reply) => {
      const { namespace } = z.object({ namespace: z.string() }).parse(request.params);
      const body = IngressCreate.safeParse(request.body);
      if (!body.success) return reply.code(422).send(invalid(body.error));
      if (this.find(this.ingresses, namespace, body.data.name))
        return reply
          .code(409)
          .send({ message: `ingress "${body.data.name}" already exists in namespace "${namespace}"` });
      const service = (ns: string, name: string) => this.find(this.services, ns, name);
      const ingress = new LocalIngress({ ...body.data, namespace }, service, () => this.ingresses);
      if (dryRun(request)) return reply.code(201).send(ingress.status());
      this.ingresses.push(ingress);
      return reply.code(201).send(ingress.status());
    });

    app.get('/api/v1/namespaces/:namespace/deployments/:name', async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const deployment = this.find(this.deployments, params.namespace, params.name);
      return deployment ? deployment.status() : reply.code(404).send(notFound('deployment', params));
    });
    // What a rollback keeps before the pods go: each pod's log tail (and its previous container's),
    // its restarts, and the events of the Deployment and its pods.
    app.get('/api/v1/namespaces/:namespace/deployments/:name/evidence', async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const deployment = this.find(this.deployments, params.namespace, params.name);
      if (!deployment) return reply.code(404).send(notFound('deployment', params));
      const { tailLines } = EvidenceQuery.parse(request.query);
      const pods = deployment.allPods().map((pod) => {
        const { log, previous } = pod.logs(tailLines);
        const status = pod.status();
        return {
          name: status.name,
          phase: status.phase,
          ready: status.ready,
          restarts: status.restarts,
          container: deployment.config.container,
          log,
          previous,
        };
      });
      const objects = new Set([`Deployment/${params.name}`, ...deployment.allPods().map((p) => `Pod/${p.spec.name}`)]);
      const podPrefix = `Pod/${params.name}-`;
      return { pods, events: this.events.filter((e) => objects.has(e.object) || e.object.startsWith(podPrefix)) };
    });
    app.patch('/api/v1/namespaces/:namespace/deployments/:name', async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const deployment = this.find(this.deployments, params.namespace, params.name);
      if (!deployment) return reply.code(404).send(notFound('deployment', params));
      const patch = DeploymentPatch.safeParse(request.body);
      if (!patch.success) return reply.code(422).send(invalid(patch.error));
      const selectorLabel = Object.keys(patch.data.labels ?? {}).find((key) => key in deployment.config.labels);
      if (selectorLabel)
        return reply
          .code(422)
          .send({ message: `labels.${selectorLabel}: the Deployment's selector label cannot be changed` });
      try {
        if (dryRun(request)) {
          deployment.check(patch.data);
          return deployment.status();
        }
        await deployment.update(patch.data);
      } catch (error) {
        if (error instanceof UnknownImageError) return reply.code(422).send({ message: `image: ${error.message}` });
        throw error;
      }
      return deployment.status();
    });
    app.post('/api/v1/images', async (request, reply) => {
      const push = ImagePush.safeParse(request.body);
      if (!push.success) return reply.code(422).send(invalid(push.error));
      const repository = repositoryFromImage(push.data.image);
      const image = this.config.images.find((i) => i.repository === repository);
      if (!image) return reply.code(422).send({ message: `image: no entry in 'images' runs ${repository}` });
      image.tags[versionFromImage(push.data.image)] = { env: push.data.env };
      return reply.code(201).send({ image: push.data.image, env: push.data.env });
    });
    return app;
  }

  /**
   * Coalesces bursts of pod changes into one write of the targets file, one write at a time, each
   * of the pods as they are when it starts. Off the event loop: the routers serve from this process,
   * and a synchronous write on a disk busy with others' writes held every request for seconds.
   */
  private scheduleTargets(): void {
    if (this.targetsPending) return;
    this.targetsPending = true;
    this.targetsWritten = this.targetsWritten
      .then(() => new Promise((resolve) => setImmediate(resolve)))
      .then(() => {
        this.targetsPending = false;
        return this.writeTargets();
      })
      .catch((error: unknown) => process.stderr.write(`prometheus targets not written: ${String(error)}\n`));
  }

  /** Prometheus file_sd: one group per running pod, written atomically. */
  private async writeTargets(): Promise<void> {
    const groups = this.deployments.flatMap((d) =>
      d
        .allPods()
        .filter((p) => p.phase === PodPhase.Running || p.phase === PodPhase.Terminating)
        .map((p) => ({
          targets: [`127.0.0.1:${p.spec.port}`],
          labels: { namespace: p.spec.namespace, deployment: p.spec.deployment, pod: p.spec.name },
        })),
    );
    const temporary = `${this.targetsFile}.tmp`;
    await writeFile(temporary, JSON.stringify(groups, null, 2));
    await rename(temporary, this.targetsFile);
  }
}
