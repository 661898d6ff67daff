/**
 * The `local` platform adapter: the platform port over the local platform's control API
 * (`npm run local-platform`). Target names map one to one: the spec's Service is a local Service,
 * its slot Deployments are local Deployments, and the selector's slot label is switched exactly as
 * on Kubernetes, so the workflow cannot tell the two platforms apart.
 */
import { ApplicationFailure } from '@temporalio/activity';
import axios from 'axios';
import type { AxiosInstance } from 'axios';
import { z } from 'zod';
import type {
  DeploySlotRequest,
  LiveState,
  Platform,
  Progress,
  ReadRestartsRequest,
  ReadyReport,
  ScaleSlotRequest,
  SetWeightRequest,
  SlotState,
  SwitchReport,
  SwitchTrafficRequest,
  Target,
  EndpointsReport,
  VerifyTrafficRequest,
  VerifyWeightRequest,
  WaitForSlotReadyRequest,
  WeightReport,
  WeightVerification,
} from '../activities/contract.js';
import { parseEnv } from '../config/env.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorType } from '../shared/errors.js';
import { isSlot } from '../shared/slots.js';
import type { Slot } from '../shared/slots.js';
import { formatShare, REPLICA_RATIO_TOLERANCE_POINTS, TrafficRouter } from '../shared/traffic.js';
import { versionFromImage } from '../deployment-spec/deployment-spec.js';

const PodSchema = z.object({ name: z.string(), image: z.string(), phase: z.string(), ready: z.boolean(), restarts: z.number() });
const DeploymentSchema = z.object({
  name: z.string(),
  namespace: z.string(),
  container: z.string(),
  image: z.string().nullable(),
  replicas: z.number(),
  generation: z.number(),
  observedGeneration: z.number(),
  readyReplicas: z.number(),
  updatedReplicas: z.number(),
  availableReplicas: z.number(),
  terminationGracePeriodSeconds: z.number(),
  pods: z.array(PodSchema),
});
const ServiceSchema = z.object({
  name: z.string(),
  listen: z.string(),
  selector: z.record(z.string()),
  weights: z.object({ label: z.string(), split: z.record(z.number()) }).nullable().default(null),
  endpoints: z.array(z.object({ pod: z.string(), deployment: z.string(), labels: z.record(z.string()) })),
});
type LocalDeploymentState = z.output<typeof DeploymentSchema>;
type LocalServiceState = z.output<typeof ServiceSchema>;

export const LocalPlatformEnvSchema = z.object({
  /** The local platform's control API. */
  BLUEGREEN_LOCAL_URL: z.string().url('BLUEGREEN_LOCAL_URL must be a URL such as http://127.0.0.1:7070').default('http://127.0.0.1:7070'),
});

/** How often waits poll the control API: it answers from memory on loopback. */
const POLL_MS = 100;

/** `<service>.<namespace>.svc[.cluster.local]`: a cluster DNS name the local platform can resolve. */
const CLUSTER_HOST = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$/;

/**
 * What a router should hold for a canary's weight on the local platform: the Service's selector
 * (the slot label set to one slot, or removed so that it selects both) and its weighted split.
 * Gateway API is played by the Service's own weights, as an HTTPRoute splits between the slots.
 */
function intendedRouting({ router, stable, canary, weight }: SetWeightRequest): { slot: Slot | null; weights: Record<string, number> | null } {
  if (weight <= 0) return { slot: stable, weights: null };
  if (weight >= 100) return { slot: canary, weights: null };
  if (router === TrafficRouter.GatewayApi) return { slot: null, weights: { [stable]: 100 - weight, [canary]: weight } };
  return { slot: null, weights: null };
}

function sameSplit(a: Record<string, number> | null, b: Record<string, number> | null): boolean {
  if (a === null || b === null) return a === b;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((key) => (a[key] ?? 0) === (b[key] ?? 0));
}

/** Whether the Service routes as intended already: the slot label, and the split by it (or none). */
function routesAs(service: LocalServiceState, slotLabelKey: string, intended: ReturnType<typeof intendedRouting>): boolean {
  // A split by some other label is not what any router here writes: never as intended.
  const split = service.weights === null ? null : service.weights.label === slotLabelKey ? service.weights.split : undefined;
  return (service.selector[slotLabelKey] ?? null) === intended.slot && split !== undefined && sameSplit(split, intended.weights);
}

function describeRouting(service: LocalServiceState, slotLabelKey: string): string {
  const slot = service.selector[slotLabelKey];
  if (slot !== undefined) return `selector ${slotLabelKey}=${slot}`;
  return service.weights ? `both slots, weights ${JSON.stringify(service.weights.split)}` : 'both slots, by replicas';
}

export class LocalPlatform implements Platform {
  readonly name = 'local';
  readonly routers = [TrafficRouter.ServiceSelector, TrafficRouter.ReplicaRatio, TrafficRouter.GatewayApi] as const;
  private readonly http: AxiosInstance;

  constructor(readonly baseUrl: string) {
    this.http = axios.create({ baseURL: baseUrl.replace(/\/+$/, ''), timeout: 10_000 });
  }

  static fromEnv(env: NodeJS.ProcessEnv): LocalPlatform {
    return new LocalPlatform(parseEnv(LocalPlatformEnvSchema, env).BLUEGREEN_LOCAL_URL);
  }

  async describe(target: Target): Promise<LiveState> {
    const service = await this.service(target);
    const activeSlot = service.selector[target.slotLabelKey];
    if (!isSlot(activeSlot)) {
      throw ApplicationFailure.create({
        type: ErrorType.PreconditionFailed,
        message: `service ${target.service} in namespace ${target.namespace} selects ${target.slotLabelKey}=${activeSlot ?? '(none)'}, which is neither slot (blue, green)`,
        nonRetryable: true,
      });
    }
    const [blue, green] = await Promise.all([this.slotState(target, 'blue'), this.slotState(target, 'green')]);
    return { activeSlot, slots: { blue, green } };
  }

  async deploySlot({ target, slot, image, replicas }: DeploySlotRequest): Promise<SlotState> {
    const before = await this.deployment(target, slot);
    if (before.image !== image || before.replicas !== replicas) await this.patchDeployment(target, before, { image, replicas });
    return toSlotState(target, slot, before);
  }

  async waitForSlotReady({ target, slot, replicas, timeoutSeconds }: WaitForSlotReadyRequest, progress: Progress): Promise<ReadyReport> {
    const started = performance.now();
    for (;;) {
      const d = await this.deployment(target, slot);
      const outdated = d.pods.filter((p) => p.image !== d.image).length;
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
          message: `deployment ${d.name}: ${d.readyReplicas} of ${replicas} replicas ready after ${timeoutSeconds} s (${restarts} restarts, ${outdated} old pods left)`,
          nonRetryable: true,
        });
      }
      await sleep(POLL_MS, undefined, { signal: progress.signal });
    }
  }

  async switchTraffic({ target, slot }: SwitchTrafficRequest): Promise<SwitchReport> {
    const service = await this.service(target);
    const current = service.selector[target.slotLabelKey];
    const previousSlot = isSlot(current) ? current : null;
    if (current === slot) return { changed: false, previousSlot };
    await this.request('patch', `/api/v1/namespaces/${target.namespace}/services/${target.service}`, { selector: { [target.slotLabelKey]: slot } });
    return { changed: true, previousSlot };
  }

  async verifyTraffic({ target, slot, timeoutSeconds }: VerifyTrafficRequest, progress: Progress): Promise<EndpointsReport> {
    const started = performance.now();
    for (;;) {
      const service = await this.service(target);
      const endpoints = service.endpoints;
      const strays = endpoints.filter((e) => e.labels[target.slotLabelKey] !== slot);
      progress.heartbeat({ endpoints: endpoints.length, strays: strays.length });
      if (service.selector[target.slotLabelKey] === slot && endpoints.length > 0 && strays.length === 0) {
        return { endpoints: endpoints.length, seconds: (performance.now() - started) / 1000 };
      }
      if (performance.now() - started > timeoutSeconds * 1000) {
        throw ApplicationFailure.create({
          type: ErrorType.TrafficNotVerified,
          message: `service ${target.service} has ${endpoints.length} endpoints, ${strays.length} of them outside slot ${slot}, after ${timeoutSeconds} s`,
          nonRetryable: true,
        });
      }
      await sleep(POLL_MS, undefined, { signal: progress.signal });
    }
  }

  async setTrafficWeight(request: SetWeightRequest): Promise<WeightReport> {
    const { target } = request;
    const service = await this.service(target);
    const intended = intendedRouting(request);
    const previous = describeRouting(service, target.slotLabelKey);
    if (routesAs(service, target.slotLabelKey, intended)) return { changed: false, previous };
    await this.request('patch', `/api/v1/namespaces/${target.namespace}/services/${target.service}`, {
      selector: { [target.slotLabelKey]: intended.slot },
      weights: intended.weights ? { label: target.slotLabelKey, split: intended.weights } : null,
    });
    return { changed: true, previous };
  }

  async verifyTrafficWeight(request: VerifyWeightRequest, progress: Progress): Promise<WeightVerification> {
    const { target, stable, canary, weight, timeoutSeconds } = request;
    const intended = intendedRouting(request);
    const started = performance.now();
    for (;;) {
      const service = await this.service(target);
      const count = (slot: Slot) => service.endpoints.filter((e) => e.labels[target.slotLabelKey] === slot).length;
      const endpoints = { [stable]: count(stable), [canary]: count(canary) } as Record<Slot, number>;
      const total = endpoints[stable] + endpoints[canary];
      const effective = service.weights
        ? (100 * (service.weights.split[canary] ?? 0)) / Math.max(1, (service.weights.split[canary] ?? 0) + (service.weights.split[stable] ?? 0))
        : total === 0
          ? 0
          : (100 * endpoints[canary]) / total;
      progress.heartbeat({ endpoints, effective });
      const routed = routesAs(service, target.slotLabelKey, intended);
      const served =
        weight <= 0 ? endpoints[stable] > 0 && endpoints[canary] === 0 : weight >= 100 ? endpoints[canary] > 0 && endpoints[stable] === 0 : endpoints[stable] > 0 && endpoints[canary] > 0;
      if (routed && served && Math.abs(effective - weight) <= REPLICA_RATIO_TOLERANCE_POINTS) {
        return { weight: effective, endpoints, seconds: (performance.now() - started) / 1000 };
      }
      if (performance.now() - started > timeoutSeconds * 1000) {
        throw ApplicationFailure.create({
          type: ErrorType.TrafficNotVerified,
          message:
            `service ${target.service} does not hold ${weight} % for ${canary} after ${timeoutSeconds} s: ${describeRouting(service, target.slotLabelKey)}, ` +
            `${endpoints[stable]} endpoints in ${stable} and ${endpoints[canary]} in ${canary} (${formatShare(effective)} %)`,
          nonRetryable: true,
        });
      }
      await sleep(POLL_MS, undefined, { signal: progress.signal });
    }
  }

  async readRestarts({ target, slot }: ReadRestartsRequest): Promise<number> {
    const d = await this.deployment(target, slot);
    return d.pods.filter((p) => p.image === d.image).reduce((sum, p) => sum + p.restarts, 0);
  }

  async scaleSlot({ target, slot, replicas, image }: ScaleSlotRequest, progress: Progress): Promise<void> {
    const before = await this.deployment(target, slot);
    const patch = { replicas, ...(image ? { image } : {}) };
    if (before.replicas !== replicas || (image && before.image !== image)) await this.patchDeployment(target, before, patch);
    // Scaling down completes when the surplus pods are gone, within their grace period.
    const deadline = performance.now() + (before.terminationGracePeriodSeconds + 10) * 1000;
    for (;;) {
      const d = await this.deployment(target, slot);
      progress.heartbeat({ pods: d.pods.length, of: replicas });
      if (d.pods.length <= replicas) return;
      if (performance.now() > deadline) {
        throw new Error(`deployment ${d.name}: ${d.pods.length} pods still running after the grace period (want ${replicas})`);
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
    const service = ServiceSchema.parse(await this.request('get', `/api/v1/namespaces/${match[3]}/services/${match[1]}`));
    return `${parsed.protocol}//${service.listen}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  }

  private async slotState(target: Target, slot: Slot): Promise<SlotState> {
    return toSlotState(target, slot, await this.deployment(target, slot));
  }

  private async service(target: Target): Promise<LocalServiceState> {
    return ServiceSchema.parse(await this.request('get', `/api/v1/namespaces/${target.namespace}/services/${target.service}`));
  }

  private async deployment(target: Target, slot: Slot): Promise<LocalDeploymentState> {
    return DeploymentSchema.parse(await this.request('get', `/api/v1/namespaces/${target.namespace}/deployments/${target.deployments[slot]}`));
  }

  /** Patches the Deployment `d` was read from, once its container is the target's. */
  private async patchDeployment(target: Target, d: LocalDeploymentState, patch: { image?: string; replicas: number }): Promise<void> {
    if (d.container !== target.container) {
      throw ApplicationFailure.create({
        type: ErrorType.InvalidInput,
        message: `deployment ${d.name} in namespace ${target.namespace} has no container named ${target.container} (it runs ${d.container})`,
        nonRetryable: true,
      });
    }
    await this.request('patch', `/api/v1/namespaces/${target.namespace}/deployments/${d.name}`, patch);
  }

  /** One control API call; 404 and 422 are permanent, anything else (refused, 5xx) is retried. */
  private async request(method: 'get' | 'patch', path: string, body?: unknown): Promise<unknown> {
    try {
      const response = await this.http.request({ method, url: path, data: body });
      return response.data;
    } catch (error) {
      if (!axios.isAxiosError(error) || !error.response) throw new Error(`local platform at ${this.baseUrl}: ${(error as Error).message}`, { cause: error });
      const message = (error.response.data as { message?: string } | undefined)?.message ?? `HTTP ${error.response.status}`;
      const type = { 404: ErrorType.NotFound, 422: ErrorType.InvalidInput, 400: ErrorType.InvalidInput }[error.response.status];
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
    replicas: d.replicas,
    readyReplicas: d.readyReplicas,
    updatedReplicas: d.updatedReplicas,
    availableReplicas: d.availableReplicas,
  };
}
