/**
 * The `kubernetes` platform adapter: what the procedure does with kubectl (PROCEDURE §3, §5, §8), through
 * @kubernetes/client-node. Each slot is a Deployment; the live slot is what the target's traffic
 * router holds (the Service's selector, an HTTPRoute's weights, an Ingress's backend: see
 * src/routers/). Every write checks first and writes only what differs; waits poll with backoff and heartbeat.
 * Permanent API answers (400, 403, 404, 422) become non-retryable failures naming the object and
 * the rule. Transient ones (409, 429, 5xx, a lost connection) are retried here, a few times within
 * about two seconds, honouring Retry-After as client-go does; what outlasts that is a plain error,
 * retried by Temporal. Every request is safe to repeat: reads, and patches that set values.
 * A 403 is permanent, except within 30 s of the API server being unreachable (a connection
 * refused, or 502, 503 or 504 from it or a load balancer in front of it): one that has
 * just started answers before its authorizer has loaded RBAC, and refuses every request for a
 * moment (the drill of an API server restarted during a rollback met it), so then it is retried.
 */
import { ApplicationFailure } from '@temporalio/activity';
import * as k8s from '@kubernetes/client-node';
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
import type { TrafficRouter } from '../shared/traffic.js';
import { accessNeeded, formatQuantity, podRequests, quantity } from './kubernetes-access.js';
import { selectorOf } from '../routers/kubernetes-api.js';
import { keptAliveConfiguration } from './kubernetes-connections.js';
import { kubernetesRouters } from '../routers/registry.js';
import type { RouterRegistry } from '../routers/registry.js';
import { versionFromImage } from '../deployment-spec/deployment-spec.js';
import { diffObjects } from '../shared/evidence.js';
import type { SlotEvidence } from '../shared/evidence.js';

/** The pod label that carries the version, for SLO queries relabelled from pod labels. */
export const VERSION_LABEL = 'version';

const STRATEGIC = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);

/** Polling of waits: from 200 ms up to 2 s, so a slow rollout costs few requests. */
const FIRST_POLL_MS = 200;
const MAX_POLL_MS = 2000;

/** Tries of one request through transient faults, and the waits between them (100 ms doubling). */
const REQUEST_TRIES = 5;
const FIRST_RETRY_MS = 100;
/** The longest Retry-After obeyed; a server asking for more gets Temporal's retry instead. */
const MAX_RETRY_AFTER_MS = 2000;
/**
 * How long after the API server was last unreachable a 403 is taken for one that is starting: a
 * restore retries at least every 10 s, and an authorizer loads RBAC within seconds of the start.
 */
const JUST_STARTED_MS = 30_000;
/** Connection-level failures worth another try. */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

export class KubernetesPlatform implements Platform {
  readonly name = 'kubernetes';
  private readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;
  /** When a request last failed to reach the API server (performance.now()), or never. */
  private unreachableAt = -Infinity;
  readonly routers: RouterRegistry;

  private readonly authorization: k8s.AuthorizationV1Api;

  /** With `dryRun`, every write is sent with dryRun=All: admitted, validated and answered, never applied. */
  constructor(
    private readonly config: k8s.KubeConfig,
    { dryRun = false }: { dryRun?: boolean } = {},
  ) {
    const configuration = keptAliveConfiguration(config);
    const writes = <T extends object>(client: T): T => (dryRun ? dryRunWrites(client) : client);
    this.core = writes(new k8s.CoreV1Api(configuration));
    this.apps = writes(new k8s.AppsV1Api(configuration));
    this.authorization = new k8s.AuthorizationV1Api(configuration);
    this.routers = kubernetesRouters({
      core: this.core,
      apps: this.apps,
      discovery: new k8s.DiscoveryV1Api(configuration),
      networking: writes(new k8s.NetworkingV1Api(configuration)),
      custom: writes(new k8s.CustomObjectsApi(configuration)),
      call: (what, target, request) => this.call(what, target, request),
    });
  }

  dryRun(): KubernetesPlatform {
    return new KubernetesPlatform(this.config, { dryRun: true });
  }

  /** Each verb a deployment through `router` uses, asked of the API server for the worker's own identity. */
  async reviewAccess(target: Target, router: TrafficRouter): Promise<PlanCheck[]> {
    const needed = accessNeeded(router);
    const reviews = await Promise.all(
      needed.map(async (rule) => {
        const [resource, subresource] = rule.resource.split('/');
        const review = await this.call(`review access to ${rule.verb} ${rule.resource}`, target, () =>
          this.authorization.createSelfSubjectAccessReview({
            body: {
              spec: {
                resourceAttributes: {
                  namespace: target.namespace,
                  group: rule.group,
                  resource,
                  subresource,
                  verb: rule.verb,
                },
              },
            },
          }),
        );
        return { rule, allowed: review.status?.allowed === true, reason: review.status?.reason ?? '' };
      }),
    );
    const allowed = reviews.filter((r) => r.allowed).map((r) => `${r.rule.verb} ${r.rule.resource}`);
    return [
      ...(allowed.length
        ? [
            {
              kind: 'access' as const,
              name: 'access',
              verdict: PlanVerdict.Ok,
              detail: `the worker may ${allowed.join(', ')} in ${target.namespace}`,
            },
          ]
        : []),
      ...reviews
        .filter((r) => !r.allowed)
        .map((r) => ({
          kind: 'access' as const,
          name: `${r.rule.verb} ${r.rule.resource}${r.rule.group ? ` (${r.rule.group})` : ''}`,
          verdict: PlanVerdict.Fail,
          detail:
            `denied to the worker in ${target.namespace}${r.reason ? ` (${r.reason})` : ''}: ${r.rule.why} ` +
            `would fail with 403`,
        })),
    ];
  }

  /**
   * Whether the namespace's ResourceQuotas leave room for the slot at `replicas`: pods, and the
   * requests and limits its pod template asks for (LimitRange defaults where it asks none). The
   * slot's own pods are already counted as used.
   */
  async checkCapacity(target: Target, slot: Slot, replicas: number): Promise<PlanCheck[]> {
    let read;
    try {
      read = await Promise.all([
        this.readDeployment(target, slot),
        this.call(`list resourcequotas in ${target.namespace}`, target, () =>
          this.core.listNamespacedResourceQuota({ namespace: target.namespace }),
        ),
        this.call(`list limitranges in ${target.namespace}`, target, () =>
          this.core.listNamespacedLimitRange({ namespace: target.namespace }),
        ),
      ]);
    } catch (error) {
      if (!(error instanceof ApplicationFailure && error.type === ErrorType.Forbidden)) throw error;
      const detail = `not checked: ${error.message} (deploy/worker/plan-role.yaml grants it)`;
      return [{ kind: 'capacity', name: 'quota', verdict: PlanVerdict.Warning, detail }];
    }
    const [deployment, quotas, ranges] = read;
    if (quotas.items.length === 0)
      return [
        { kind: 'capacity', name: 'quota', verdict: PlanVerdict.Ok, detail: `no ResourceQuota in ${target.namespace}` },
      ];
    const more = replicas - (deployment.spec?.replicas ?? 0);
    const perPod = podRequests(deployment.spec?.template?.spec?.containers ?? [], ranges.items);
    return quotas.items.map((quota) => {
      const short = Object.entries(quota.status?.hard ?? quota.spec?.hard ?? {}).flatMap(([resource, hard]) => {
        const each = resource === 'pods' || resource === 'count/pods' ? 1 : perPod[resource];
        if (each === undefined || more <= 0) return [];
        const left = quantity(hard) - quantity(quota.status?.used?.[resource] ?? '0');
        return more * each > left + 1e-9
          ? [
              `${resource}: ${formatQuantity(more * each)} more needed, ` +
                `${formatQuantity(Math.max(0, left))} left of ${hard}`,
            ]
          : [];
      });
      const name = `ResourceQuota ${quota.metadata?.name}`;
      return short.length
        ? {
            kind: 'capacity' as const,
            name,
            verdict: PlanVerdict.Fail,
            detail: `${slot} at ${replicas} replicas does not fit: ${short.join('; ')}`,
          }
        : { kind: 'capacity' as const, name, verdict: PlanVerdict.Ok, detail: `${slot} at ${replicas} replicas fits` };
    });
  }

  async describe(target: Target): Promise<LiveState> {
    const { slot: activeSlot, routing } = await this.routers.liveSlot(target);
    const [blue, green] = await Promise.all([
      this.readDeployment(target, 'blue'),
      this.readDeployment(target, 'green'),
    ]);
    return {
      activeSlot,
      routing,
      slots: { blue: toSlotState(target, 'blue', blue), green: toSlotState(target, 'green', green) },
    };
  }

  /** A new run labels the pod template anew, so its pods (and their series) are new even with the same image. */
  async deploySlot({ target, slot, image, version, run, replicas }: DeploySlotRequest): Promise<SlotState> {
    const before = await this.readDeployment(target, slot);
    containerOf(target, before);
    const state = toSlotState(target, slot, before);
    const labels = before.spec?.template?.metadata?.labels ?? {};
    const labelled = labels[VERSION_LABEL] === version && (run === undefined || labels[RUN_LABEL] === run);
    if (state.image !== image || state.replicas !== replicas || !labelled) {
      await this.patchDeployment(target, slot, { image, version, run, replicas });
    }
    return state;
  }

  async waitForSlotReady(
    { target, slot, replicas, timeoutSeconds }: WaitForSlotReadyRequest,
    progress: Progress,
  ): Promise<ReadyReport> {
    const started = performance.now();
    for (let poll = FIRST_POLL_MS; ; poll = Math.min(MAX_POLL_MS, poll * 1.5)) {
      const deployment = await this.readDeployment(target, slot);
      const status = deployment.status ?? {};
      const caughtUp = (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0);
      const counts = [status.updatedReplicas ?? 0, status.readyReplicas ?? 0, status.availableReplicas ?? 0];
      // Pods of an older template are looked for (two lists) only once the Deployment's own counts
      // are complete: before that it is not ready anyway, and a poll is one read, not three (a
      // hundred rollouts at once polled the API server about 200 times a second).
      const complete = caughtUp && counts.every((n) => n === replicas);
      const old = complete ? await this.podsOfOlderTemplates(target, deployment) : null;
      progress.heartbeat({ ready: status.readyReplicas ?? 0, of: replicas, ...(old ? { oldPods: old.length } : {}) });
      if (old?.length === 0) {
        return { readyReplicas: replicas, seconds: (performance.now() - started) / 1000 };
      }
      if (performance.now() - started > timeoutSeconds * 1000) {
        const older = old ?? (await this.podsOfOlderTemplates(target, deployment));
        const pods = await this.podsOf(target, deployment);
        const restarts = pods.reduce((sum, pod) => sum + restartsOf(pod), 0);
        const waiting = [
          ...new Set(
            pods.flatMap((p) =>
              (p.status?.containerStatuses ?? []).map((c) => c.state?.waiting?.reason).filter(Boolean),
            ),
          ),
        ];
        throw ApplicationFailure.create({
          type: ErrorType.ReadinessTimeout,
          message:
            `deployment ${target.deployments[slot]} in namespace ${target.namespace}: ` +
            `${status.readyReplicas ?? 0} of ${replicas} replicas ready ` +
            `after ${timeoutSeconds} s (updated ${status.updatedReplicas ?? 0}, available ` +
            `${status.availableReplicas ?? 0}, ${older.length} pods of an older template, ` +
            `${restarts} restarts${waiting.length ? `, waiting: ${waiting.join(', ')}` : ''})`,
          nonRetryable: true,
        });
      }
      await sleep(poll, undefined, { signal: progress.signal });
    }
  }

  async readRestarts({ target, slot }: ReadRestartsRequest): Promise<number> {
    const deployment = await this.readDeployment(target, slot);
    const pods = await this.podsOf(target, deployment);
    return pods.reduce((sum, pod) => sum + restartsOf(pod), 0);
  }

  async scaleSlot({ target, slot, replicas, image }: ScaleSlotRequest, progress: Progress): Promise<void> {
    const before = await this.readDeployment(target, slot);
    const state = toSlotState(target, slot, before);
    const restore = image && state.image !== image ? { image, version: versionFromImage(image) } : {};
    if (state.replicas !== replicas || 'image' in restore)
      await this.patchDeployment(target, slot, { replicas, ...restore });
    // Done when the surplus pods are gone: within their grace period, plus time to notice.
    const grace = before.spec?.template?.spec?.terminationGracePeriodSeconds ?? 30;
    const deadline = performance.now() + (grace + 30) * 1000;
    for (let poll = FIRST_POLL_MS; ; poll = Math.min(MAX_POLL_MS, poll * 1.5)) {
      const pods = await this.podsOf(target, before);
      progress.heartbeat({ pods: pods.length, of: replicas });
      if (pods.length <= replicas) return;
      if (performance.now() > deadline) {
        throw new Error(
          `deployment ${target.deployments[slot]} in namespace ${target.namespace}: ${pods.length} pods left ` +
            `after ${grace + 30} s (want ${replicas})`,
        );
      }
      await sleep(poll, undefined, { signal: progress.signal });
    }
  }

  private async readDeployment(target: Target, slot: Slot): Promise<k8s.V1Deployment> {
    const name = target.deployments[slot];
    return await this.call(`read deployment ${name}`, target, () =>
      this.apps.readNamespacedDeployment({ name, namespace: target.namespace }),
    );
  }

  /**
   * Log tails (and the previous container's after a restart), restarts, the events of the
   * Deployment, its ReplicaSets and pods, and the pod template's differences from the other
   * slot's. Needs `pods/log` get and `events` list (deploy/rbac.yaml); a 403 throws Forbidden, and
   * any other failure to read a log is kept in `logError` (a kubelet that does not answer).
   */
  async collectEvidence({ target, slot, peer, tailLines }: CollectEvidenceRequest): Promise<SlotEvidence> {
    const [deployment, other] = await Promise.all([
      this.readDeployment(target, slot),
      this.readDeployment(target, peer),
    ]);
    const name = deployment.metadata!.name!;
    const pods = await this.podsOf(target, deployment);
    const readLog = async (
      pod: string,
      container: string,
      previous: boolean,
    ): Promise<{ lines: string[]; error: string | null }> => {
      try {
        const text = await this.call(`read the log of ${pod}/${container}`, target, () =>
          this.core.readNamespacedPodLog({
            name: pod,
            namespace: target.namespace,
            container,
            tailLines,
            limitBytes: 64 * 1024,
            previous,
          }),
        );
        return {
          lines: String(text)
            .split('\n')
            .filter((line, index, all) => line !== '' || index < all.length - 1),
          error: null,
        };
      } catch (error) {
        if (error instanceof ApplicationFailure && error.type === ErrorType.Forbidden) throw error;
        return { lines: [], error: (error as Error).message };
      }
    };
    // Every log at once: a kubelet that does not answer costs its retries once, not once per container.
    const containers = await Promise.all(
      pods.flatMap((pod) =>
        (pod.status?.containerStatuses ?? []).map(async (status) => {
          const podName = pod.metadata!.name!;
          const [current, previous] = await Promise.all([
            readLog(podName, status.name, false),
            status.restartCount > 0 ? readLog(podName, status.name, true) : null,
          ]);
          return {
            pod: podName,
            container: status.name,
            ready: status.ready,
            restarts: status.restartCount,
            log: current.lines,
            previousLog: previous ? previous.lines : null,
            logError: current.error,
          };
        }),
      ),
    );
    const problems = containers.filter((c) => c.logError).map((c) => `log of ${c.pod}/${c.container}: ${c.logError}`);
    const sets = await this.call(`list replicasets of ${name}`, target, () =>
      this.apps.listNamespacedReplicaSet({ namespace: target.namespace, labelSelector: selectorOf(deployment) }),
    );
    const objects = new Set([
      `Deployment/${name}`,
      ...sets.items.map((rs) => `ReplicaSet/${rs.metadata?.name}`),
      ...pods.map((p) => `Pod/${p.metadata?.name}`),
    ]);
    const listed = await this.call(`list events in ${target.namespace}`, target, () =>
      this.core.listNamespacedEvent({ namespace: target.namespace }),
    );
    const events = listed.items
      .filter((e) => objects.has(`${e.involvedObject.kind}/${e.involvedObject.name}`))
      .map((e) => ({
        at: (e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp)?.toISOString?.() ?? null,
        type: e.type ?? 'Normal',
        reason: e.reason ?? '',
        object: `${e.involvedObject.kind}/${e.involvedObject.name}`,
        message: e.message ?? '',
        count: e.count ?? 1,
      }))
      .sort((a, b) => (a.at ?? '').localeCompare(b.at ?? ''))
      .slice(-500);
    return {
      deployment: name,
      containers,
      events,
      templateDiff: diffObjects(other.spec?.template, deployment.spec?.template),
      problems,
    };
  }

  /** One strategic merge patch: the container's image (merged by name), the version and run labels, the replicas. */
  private async patchDeployment(
    target: Target,
    slot: Slot,
    change: { image?: string; version?: string; run?: string | undefined; replicas: number },
  ): Promise<void> {
    const name = target.deployments[slot];
    const template: Record<string, unknown> = {};
    const labels = {
      ...(change.version ? { [VERSION_LABEL]: change.version } : {}),
      ...(change.run ? { [RUN_LABEL]: change.run } : {}),
    };
    if (Object.keys(labels).length) template['metadata'] = { labels };
    if (change.image) template['spec'] = { containers: [{ name: target.container, image: change.image }] };
    const body = { spec: { replicas: change.replicas, ...(Object.keys(template).length ? { template } : {}) } };
    await this.call(`patch deployment ${name}`, target, () =>
      this.apps.patchNamespacedDeployment({ name, namespace: target.namespace, body }, STRATEGIC),
    );
  }

  /** Pods the Deployment's selector matches, terminating ones included. */
  private async podsOf(target: Target, deployment: k8s.V1Deployment): Promise<k8s.V1Pod[]> {
    const labelSelector = selectorOf(deployment);
    const pods = await this.call(`list pods of ${deployment.metadata?.name}`, target, () =>
      this.core.listNamespacedPod({ namespace: target.namespace, labelSelector }),
    );
    return pods.items;
  }

  /** Pods whose pod-template-hash is not the newest ReplicaSet's: the rollout has not finished. */
  private async podsOfOlderTemplates(target: Target, deployment: k8s.V1Deployment): Promise<k8s.V1Pod[]> {
    const revision = deployment.metadata?.annotations?.['deployment.kubernetes.io/revision'];
    const labelSelector = selectorOf(deployment);
    const sets = await this.call(`list replicasets of ${deployment.metadata?.name}`, target, () =>
      this.apps.listNamespacedReplicaSet({ namespace: target.namespace, labelSelector }),
    );
    const newest = sets.items.find(
      (rs) =>
        rs.metadata?.annotations?.['deployment.kubernetes.io/revision'] === revision &&
        rs.metadata?.ownerReferences?.some((o) => o.uid === deployment.metadata?.uid),
    );
    const hash = newest?.metadata?.labels?.['pod-template-hash'];
    const pods = await this.podsOf(target, deployment);
    return pods.filter((p) => hash === undefined || p.metadata?.labels?.['pod-template-hash'] !== hash);
  }

  /** Runs one API call, through transient faults; maps its failure to the error vocabulary (see the module comment). */
  private async call<T>(what: string, target: Target, request: () => Promise<T>): Promise<T> {
    for (let attempt = 1, wait = FIRST_RETRY_MS; ; attempt += 1, wait *= 2) {
      try {
        return await request();
      } catch (error) {
        if (isUnreachable(error)) this.unreachableAt = performance.now();
        const starting = isForbidden(error) && performance.now() - this.unreachableAt < JUST_STARTED_MS;
        const retryAfter = starting ? wait : transientDelay(error, wait);
        if (retryAfter !== null && attempt < REQUEST_TRIES) {
          await new Promise((resolve) => setTimeout(resolve, retryAfter));
          continue;
        }
        if (starting) {
          const reason =
            'from an API server that was unreachable moments ago (its authorizer may not have loaded RBAC yet)';
          throw new Error(
            `kubernetes: ${what} in namespace ${target.namespace}: HTTP 403 ${reason}: ` +
              `${apiMessage((error as k8s.ApiException<unknown>).body)}`,
            { cause: error },
          );
        }
        throw toFailure(error, what, target.namespace);
      }
    }
  }
}

/**
 * The client with every write (create, patch, replace, delete) sent as a dry run: the API server
 * runs admission, validation and conflicts, and answers as it would, without persisting.
 */
function dryRunWrites<T extends object>(client: T): T {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const method = value as (param: Record<string, unknown>, ...rest: unknown[]) => unknown;
      if (typeof property === 'string' && /^(create|patch|replace|delete)/.test(property)) {
        return (param: Record<string, unknown>, ...rest: unknown[]) =>
          method.call(target, { ...param, dryRun: 'All' }, ...rest);
      }
      return method.bind(target);
    },
  });
}

function isForbidden(error: unknown): boolean {
  return error instanceof k8s.ApiException && error.code === 403;
}

/**
 * Nothing serving the API: a connection refused, or a gateway's or starting server's answer that
 * the server is not there (502, 503, 504). Not a reset or a 500, which a serving server gives too.
 */
function isUnreachable(error: unknown): boolean {
  if (error instanceof k8s.ApiException) return [502, 503, 504].includes(error.code as number);
  return (error as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED';
}

/** How long to wait before repeating a request that failed with `error`, or null when it is permanent. */
export function transientDelay(error: unknown, backoffMs: number): number | null {
  if (error instanceof k8s.ApiException) {
    const code = error.code as number;
    if (code !== 409 && code !== 429 && code < 500) return null;
    // client-node passes on the response's headers with lower-case names.
    const seconds = Number((error.headers as Record<string, string | undefined> | undefined)?.['retry-after']);
    if (Number.isFinite(seconds) && seconds > 0) return seconds * 1000 <= MAX_RETRY_AFTER_MS ? seconds * 1000 : null;
    return backoffMs;
  }
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code) ? backoffMs : null;
}

/** ApiException to ApplicationFailure (permanent) or Error (retried), with the API's own words. */
export function toFailure(error: unknown, what: string, namespace: string): Error {
  if (!(error instanceof k8s.ApiException)) {
    return new Error(`kubernetes: ${what} in namespace ${namespace}: ${(error as Error).message}`, { cause: error });
  }
  const code = error.code as number;
  const message = apiMessage(error.body) ?? `HTTP ${code}`;
  const type = {
    400: ErrorType.InvalidInput,
    403: ErrorType.Forbidden,
    404: ErrorType.NotFound,
    422: ErrorType.InvalidInput,
  }[code];
  if (type === ErrorType.NotFound) {
    return ApplicationFailure.create({
      type,
      message: `${what}: not found in namespace ${namespace} (${message})`,
      nonRetryable: true,
    });
  }
  if (type) return ApplicationFailure.create({ type, message: `${what}: ${message}`, nonRetryable: true });
  return new Error(`kubernetes: ${what} in namespace ${namespace}: HTTP ${code}: ${message}`, { cause: error });
}

function apiMessage(body: unknown): string | null {
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: string } | null;
    return parsed?.message ?? null;
  } catch {
    return typeof body === 'string' && body ? body.slice(0, 300) : null;
  }
}

function containerOf(target: Target, deployment: k8s.V1Deployment): k8s.V1Container {
  const containers = deployment.spec?.template?.spec?.containers ?? [];
  const container = containers.find((c) => c.name === target.container);
  if (!container) {
    throw ApplicationFailure.create({
      type: ErrorType.InvalidInput,
      message:
        `deployment ${deployment.metadata?.name} in namespace ${target.namespace} has no container named ` +
        `${target.container} (it has ${containers.map((c) => c.name).join(', ') || 'none'}); set the spec's container`,
      nonRetryable: true,
    });
  }
  return container;
}

function toSlotState(target: Target, slot: Slot, deployment: k8s.V1Deployment): SlotState {
  const container = (deployment.spec?.template?.spec?.containers ?? []).find((c) => c.name === target.container);
  const status = deployment.status ?? {};
  return {
    slot,
    deployment: deployment.metadata?.name ?? target.deployments[slot],
    image: container?.image ?? null,
    version:
      deployment.spec?.template?.metadata?.labels?.[VERSION_LABEL] ??
      (container?.image ? versionFromImage(container.image) : null),
    run: deployment.spec?.template?.metadata?.labels?.[RUN_LABEL] ?? null,
    replicas: deployment.spec?.replicas ?? 0,
    readyReplicas: status.readyReplicas ?? 0,
    updatedReplicas: status.updatedReplicas ?? 0,
    availableReplicas: status.availableReplicas ?? 0,
  };
}

function restartsOf(pod: k8s.V1Pod): number {
  return (pod.status?.containerStatuses ?? []).reduce((sum, c) => sum + c.restartCount, 0);
}
