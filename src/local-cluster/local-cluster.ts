/**
 * The local platform's long-running process: the Deployments and Services of its configuration,
 * a router per Service, a control API on loopback that the worker's `local` adapter drives, and a
 * Prometheus file_sd targets file listing every running pod. It outlives any worker, so a worker
 * that crashes and restarts finds its slots as it left them.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { LocalPlatformConfig } from './config.js';
import { LocalDeployment, UnknownImageError } from './deployment.js';
import { PodPhase } from './pod.js';
import { LocalService, splitAddress } from './service-router.js';

const ObjectParams = z.object({ namespace: z.string(), name: z.string() });
/**
 * A Service patch, as a JSON merge patch: a selector key set to null is removed (a Service over
 * both slots); `weights` replaces the split, and null clears it.
 */
const ServicePatch = z
  .object({
    selector: z.record(z.string().min(1), z.string().nullable()).optional(),
    weights: z
      .object({
        label: z.string().min(1),
        split: z.record(z.string().min(1), z.number().int('weights must be whole numbers').min(0, 'weights must be 0 or more')),
      })
      .strict()
      .nullable()
      .optional(),
  })
  .strict();
const DeploymentPatch = z
  .object({
    image: z.string().min(1).optional(),
    replicas: z.number().int('replicas must be a whole number').min(0, 'replicas must be 0 or more').max(50, 'replicas must be at most 50').optional(),
  })
  .strict();

export class LocalCluster {
  readonly deployments: LocalDeployment[];
  readonly services: LocalService[];
  readonly targetsFile: string;
  private control: FastifyInstance | null = null;
  private targetsPending = false;

  constructor(
    readonly config: LocalPlatformConfig,
    { cwd = process.cwd() }: { cwd?: string } = {},
  ) {
    mkdirSync(config.stateDir, { recursive: true });
    this.targetsFile = join(config.stateDir, 'prometheus-targets.json');
    const onChange = () => this.scheduleTargets();
    this.deployments = config.deployments.map((d) => new LocalDeployment(d, config.images, { stateDir: config.stateDir, cwd, onChange }));
    this.services = config.services.map(
      (s) => new LocalService(s, () => this.deployments.filter((d) => d.config.namespace === s.namespace).flatMap((d) => d.readyPods())),
    );
  }

  /** The control API's base URL. */
  get controlUrl(): string {
    return `http://${this.config.control}`;
  }

  async start(): Promise<void> {
    this.writeTargets();
    for (const service of this.services) await service.listen();
    await Promise.all(this.deployments.map((d) => d.reconcile()));
    this.control = this.controlApi();
    const [host, port] = splitAddress(this.config.control);
    await this.control.listen({ host, port });
  }

  async stop(): Promise<void> {
    await this.control?.close();
    await Promise.all(this.services.map((s) => s.close()));
    await Promise.all(this.deployments.map((d) => d.shutdown()));
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
      if (Object.keys(selector).length === 0) return reply.code(422).send({ message: 'selector: must select at least one label' });
      service.selector = selector;
      if (patch.data.weights !== undefined) service.setWeights(patch.data.weights);
      return service.status();
    });

    app.get('/api/v1/namespaces/:namespace/deployments/:name', async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const deployment = this.find(this.deployments, params.namespace, params.name);
      return deployment ? deployment.status() : reply.code(404).send(notFound('deployment', params));
    });
    app.patch('/api/v1/namespaces/:namespace/deployments/:name', async (request, reply) => {
      const params = ObjectParams.parse(request.params);
      const deployment = this.find(this.deployments, params.namespace, params.name);
      if (!deployment) return reply.code(404).send(notFound('deployment', params));
      const patch = DeploymentPatch.safeParse(request.body);
      if (!patch.success) return reply.code(422).send(invalid(patch.error));
      try {
        await deployment.update(patch.data);
      } catch (error) {
        if (error instanceof UnknownImageError) return reply.code(422).send({ message: `image: ${error.message}` });
        throw error;
      }
      return deployment.status();
    });
    return app;
  }

  /** Coalesces bursts of pod changes into one write of the targets file. */
  private scheduleTargets(): void {
    if (this.targetsPending) return;
    this.targetsPending = true;
    setImmediate(() => {
      this.targetsPending = false;
      this.writeTargets();
    });
  }

  /** Prometheus file_sd: one group per running pod, written atomically. */
  private writeTargets(): void {
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
    writeFileSync(temporary, JSON.stringify(groups, null, 2));
    renameSync(temporary, this.targetsFile);
  }
}
