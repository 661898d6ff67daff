/**
 * The `local` platform adapter: the platform port over the local platform's control API
 * (`npm run local-platform`). Target names map one to one: the spec's Service is a local Service,
 * its slot Deployments are local Deployments, its HTTPRoute and Ingresses are local ones, and each
 * traffic router writes them as it writes them on Kubernetes (src/routers/), so the workflow
 * cannot tell the two platforms apart.
 */
import { ApplicationFailure } from '@temporalio/activity';
import axios from 'axios';
import type { AxiosInstance } from 'axios';
import { z } from 'zod';
import type {
  CollectEvidenceRequest,
  DeploySlotRequest,
  LiveState,
  Platform,
  Progress,
  ReadRestartsRequest,
  ReadyReport,
  ScaleSlotRequest,
  SlotState,
  Target,
  WaitForSlotReadyRequest,
} from '../activities/contract.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorType } from '../shared/errors.js';
import { RUN_LABEL } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import { PlanVerdict } from '../plan/plan.js';
import type { PlanCheck } from '../plan/plan.js';
import { LocalServiceSchema } from '../routers/local-api.js';
import { localRouters } from '../routers/registry.js';
import type { RouterRegistry } from '../routers/registry.js';
import { versionFromImage } from '../deployment-spec/deployment-spec.js';
import { diffObjects } from '../shared/evidence.js';
import type { SlotEvidence } from '../shared/evidence.js';

const PodSchema = z.object({
  name: z.string(),
  image: z.string(),
  phase: z.string(),
  ready: z.boolean(),
  restarts: z.number(),
  updated: z.boolean(),
});
const DeploymentSchema = z.object({
  name: z.string(),
  namespace: z.string(),
  container: z.string(),
  image: z.string().nullable(),
  templateLabels: z.record(z.string()),
  replicas: z.number(),
  generation: z.number(),
  observedGeneration: z.number(),
  readyReplicas: z.number(),
  updatedReplicas: z.number(),
  availableReplicas: z.number(),
  terminationGracePeriodSeconds: z.number(),
  pods: z.array(PodSchema),
});
type LocalDeploymentState = z.output<typeof DeploymentSchema>;

/** How often waits poll the control API: it answers from memory on loopback. */
const POLL_MS = 100;

/** `<service>.<namespace>.svc[.cluster.local]`: a cluster DNS name the local platform can resolve. */
const CLUSTER_HOST = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$/;

/** What the local cluster's evidence endpoint answers. */
const EvidenceSchema = z.object({
  pods: z.array(
    z.object({
      name: z.string(),
      ready: z.boolean(),
      restarts: z.number(),
      container: z.string(),
      log: z.array(z.string()),
      previous: z.array(z.string()).nullable(),
    }),
  ),
  events: z.array(
    z.object({
      at: z.string(),
      type: z.string(),
      reason: z.string(),
      object: z.string(),
      message: z.string(),
      count: z.number(),
    }),
  ),
});

export class LocalPlatform implements Platform {
  readonly name = 'local';
  private readonly http: AxiosInstance;
  readonly routers: RouterRegistry;

  /** With `dryRun`, every write is sent with `?dryRun=All`: validated and answered, never applied. */
  constructor(
    readonly baseUrl: string,
    private readonly options: { dryRun?: boolean } = {},
  ) {
    this.http = axios.create({
      baseURL: baseUrl.replace(/\/+$/, ''),
      timeout: 10_000,
      ...(options.dryRun ? { params: { dryRun: 'All' } } : {}),
    });
    this.routers = localRouters({ request: (method, path, body) => this.request(method, path, body) });
  }

  dryRun(): LocalPlatform {
    return new LocalPlatform(this.baseUrl, { dryRun: true });
  }

  /** The local platform has no access control: whoever reaches its control API may do anything. */
  async reviewAccess(): Promise<PlanCheck[]> {
    return [
      {
        kind: 'access',
        name: 'access',
        verdict: PlanVerdict.Ok,
        detail: `the local platform at ${this.baseUrl} has no access control`,
      },
    ];
  }

  /** The local platform has no quota: its pods are processes on this machine. */
  async checkCapacity(target: Target, slot: Slot, replicas: number): Promise<PlanCheck[]> {
    return [
      {
        kind: 'capacity',
        name: 'quota',
        verdict: PlanVerdict.Ok,
        detail: `no quota on the local platform (${replicas} processes of ${target.deployments[slot]})`,
      },
    ];
  }

  async describe(target: Target): Promise<LiveState> {
    const { slot: activeSlot, routing } = await this.routers.liveSlot(target);
    const [blue, green] = await Promise.all([this.slotState(target, 'blue'), this.slotState(target, 'green')]);
    return { activeSlot, routing, slots: { blue, green } };
  }

  /** A new run labels the pod template anew, so its pods (and their series) are new even with the same image. */
  async deploySlot({ target, slot, image, run, replicas }: DeploySlotRequest): Promise<SlotState> {
    const before = await this.deployment(target, slot);
    const labelled = run === undefined || before.templateLabels[RUN_LABEL] === run;
    if (before.image !== image || before.replicas !== replicas || !labelled) {
      await this.patchDeployment(target, before, {
        image,
        replicas,
        ...(run === undefined ? {} : { labels: { [RUN_LABEL]: run } }),
      });
    }
    return toSlotState(target, slot, before);
  }

  async waitForSlotReady(
    { target, slot, replicas, timeoutSeconds }: WaitForSlotReadyRequest,
    progress: Progress,
  ): Promise<ReadyReport> {
    const started = performance.now();
    for (;;) {
      const d = await this.deployment(target, slot);
      const outdated = d.pods.filter((p) => !p.updated).length;
      progress.heartbeat({ ready: d.readyReplicas, of: replicas });
      if (
        d.observedGeneration >= d.generation &&
        d.readyReplicas === replicas &&
        d.updatedReplicas === replicas &&
        d.availableReplicas === replicas &&
        outdated === 0
      ) {
        return { readyReplicas: d.readyReplicas, seconds: (performance.now() - started) / 1000 };
      }
      if (performance.now() - started > timeoutSeconds * 1000) {
        const restarts = d.pods.reduce((sum, p) => sum + p.restarts, 0);
        throw ApplicationFailure.create({
          type: ErrorType.ReadinessTimeout,
          message:
            `deployment ${d.name}: ${d.readyReplicas} of ${replicas} replicas ready after ${timeoutSeconds} s ` +
            `(${restarts} restarts, ${outdated} old pods left)`,
          nonRetryable: true,
        });
      }
      await sleep(POLL_MS, undefined, { signal: progress.signal });
    }
  }

  async readRestarts({ target, slot }: ReadRestartsRequest): Promise<number> {
    const d = await this.deployment(target, slot);
    return d.pods.filter((p) => p.updated).reduce((sum, p) => sum + p.restarts, 0);
  }

  async scaleSlot({ target, slot, replicas, image }: ScaleSlotRequest, progress: Progress): Promise<void> {
    const before = await this.deployment(target, slot);
    const patch = { replicas, ...(image ? { image } : {}) };
    if (before.replicas !== replicas || (image && before.image !== image))
      await this.patchDeployment(target, before, patch);
    // Scaling down completes when the surplus pods are gone, within their grace period.
    const deadline = performance.now() + (before.terminationGracePeriodSeconds + 10) * 1000;
    for (;;) {
      const d = await this.deployment(target, slot);
      progress.heartbeat({ pods: d.pods.length, of: replicas });
      if (d.pods.length <= replicas) return;
      if (performance.now() > deadline) {
        throw new Error(
          `deployment ${d.name}: ${d.pods.length} pods still running after the grace period (want ${replicas})`,
        );
      }
      await sleep(POLL_MS, undefined, { signal: progress.signal });
    }
  }

  /**
   * Maps a cluster DNS URL (`http://svc.ns.svc:8000/path`) to the local Service's router, as the
   * cluster's DNS would; other URLs are returned as they are.
   */
  async resolveServiceUrl(url: string): Promise<string> {
    const parsed = new URL(url);
    const match = CLUSTER_HOST.exec(parsed.hostname);
    if (!match) return url;
    const service = LocalServiceSchema.parse(
      await this.request('get', `/api/v1/namespaces/${match[3]}/services/${match[1]}`),
    );
    return `${parsed.protocol}//${service.listen}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  }

  private async slotState(target: Target, slot: Slot): Promise<SlotState> {
    return toSlotState(target, slot, await this.deployment(target, slot));
  }

  async collectEvidence({ target, slot, peer, tailLines }: CollectEvidenceRequest): Promise<SlotEvidence> {
    const name = target.deployments[slot];
    const [gathered, failing, other] = await Promise.all([
      this.request('get', `/api/v1/namespaces/${target.namespace}/deployments/${name}/evidence?tailLines=${tailLines}`),
      this.deployment(target, slot),
      this.deployment(target, peer),
    ]);
    const { pods, events } = EvidenceSchema.parse(gathered);
    const template = (d: LocalDeploymentState) => ({
      image: d.image,
      container: d.container,
      terminationGracePeriodSeconds: d.terminationGracePeriodSeconds,
    });
    return {
      deployment: name,
      containers: pods.map((p) => ({
        pod: p.name,
        container: p.container,
        ready: p.ready,
        restarts: p.restarts,
        log: p.log,
        previousLog: p.previous,
        logError: null,
      })),
      events: events.map((e) => ({
        at: e.at,
        type: e.type,
        reason: e.reason,
        object: e.object,
        message: e.message,
        count: e.count,
      })),
      templateDiff: diffObjects(template(other), template(failing)),
      problems: [],
    };
  }

  private async deployment(target: Target, slot: Slot): Promise<LocalDeploymentState> {
    return DeploymentSchema.parse(
      await this.request('get', `/api/v1/namespaces/${target.namespace}/deployments/${target.deployments[slot]}`),
    );
  }

  /** Patches the Deployment `d` was read from, once its container is the target's. */
  private async patchDeployment(
    target: Target,
    d: LocalDeploymentState,
    patch: { image?: string; replicas: number; labels?: Record<string, string> },
  ): Promise<void> {
    if (d.container !== target.container) {
      throw ApplicationFailure.create({
        type: ErrorType.InvalidInput,
        message:
          `deployment ${d.name} in namespace ${target.namespace} has no container named ${target.container} (it ` +
          `runs ${d.container})`,
        nonRetryable: true,
      });
    }
    await this.request('patch', `/api/v1/namespaces/${target.namespace}/deployments/${d.name}`, patch);
  }

  /** One control API call; 404 and 422 are permanent, anything else (refused, 5xx) is retried. */
  private async request(method: 'get' | 'patch' | 'post', path: string, body?: unknown): Promise<unknown> {
    try {
      const response = await this.http.request({ method, url: path, data: body });
      return response.data;
    } catch (error) {
      if (!axios.isAxiosError(error) || !error.response)
        throw new Error(`local platform at ${this.baseUrl}: ${(error as Error).message}`, { cause: error });
      const message =
        (error.response.data as { message?: string } | undefined)?.message ?? `HTTP ${error.response.status}`;
      const type = { 404: ErrorType.NotFound, 422: ErrorType.InvalidInput, 400: ErrorType.InvalidInput }[
        error.response.status
      ];
      if (type) throw ApplicationFailure.create({ type, message: `local platform: ${message}`, nonRetryable: true });
      throw new Error(`local platform ${method.toUpperCase()} ${path}: ${message}`, { cause: error });
    }
  }
}

function toSlotState(target: Target, slot: Slot, d: LocalDeploymentState): SlotState {
  return {
    slot,
    deployment: d.name,
    image: d.container === target.container ? d.image : null,
    version: d.container === target.container && d.image ? versionFromImage(d.image) : null,
    run: d.templateLabels[RUN_LABEL] ?? null,
    replicas: d.replicas,
    readyReplicas: d.readyReplicas,
    updatedReplicas: d.updatedReplicas,
    availableReplicas: d.availableReplicas,
  };
}
