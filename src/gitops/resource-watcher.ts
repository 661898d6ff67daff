/**
 * What the GitOps controllers share: an informer over one custom resource's watch (in one
 * namespace, or all), a resync that reconciles every object again, a failed list or watch retried,
 * one reconcile at a time per object, and status patches written as the replica's field manager.
 * Each controller (`Release`, `ReleaseTrain`) says what reconciling one object means.
 */
import * as k8s from '@kubernetes/client-node';
import { keptAliveConfiguration } from '../platforms/kubernetes-connections.js';
import { httpCodeOf } from '../platforms/kubernetes-errors.js';

export interface ResourceWatcherOptions {
  /** The namespace to watch; all namespaces when absent. */
  namespace?: string | undefined;
  /** How often every object is reconciled again, so that running workflows are mirrored. */
  resyncMs?: number;
  /** How long to wait before a failed list or watch is tried again. */
  retryMs?: number;
  /** Who writes: the field manager of the patches (the replica's name), and the operator in `by`. */
  identity?: string;
  log?: (line: string, fields?: Record<string, unknown>) => void;
}

/** A custom resource's address on the API server, and what its log lines call it. */
export interface CustomResource {
  group: string;
  version: string;
  plural: string;
  /** In log lines: "release", "release train". */
  noun: string;
}

export const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** JSON with sorted keys, to compare a status written with one read back. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : inner,
  );
}

export abstract class ResourceWatcher<T extends k8s.KubernetesObject & { status?: object }> {
  protected readonly api: k8s.CustomObjectsApi;
  protected readonly informer: k8s.Informer<T> & k8s.ObjectCache<T>;
  protected running = false;
  protected readonly log: NonNullable<ResourceWatcherOptions['log']>;
  protected readonly identity: string;
  private timer: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  /** Objects being reconciled now, by namespace/name: one reconcile at a time each. */
  private readonly busy = new Set<string>();
  /** Runs whose end this controller waits for, to mirror it at once. */
  private readonly awaitingEnd = new Set<string>();

  constructor(
    kubeConfig: k8s.KubeConfig,
    protected readonly resource: CustomResource,
    protected readonly options: ResourceWatcherOptions,
    defaultIdentity: string,
  ) {
    this.api = new k8s.CustomObjectsApi(keptAliveConfiguration(kubeConfig));
    this.log = options.log ?? (() => undefined);
    this.identity = options.identity ?? defaultIdentity;
    const { namespace } = options;
    const { group, version, plural } = resource;
    const path = namespace
      ? `/apis/${group}/${version}/namespaces/${namespace}/${plural}`
      : `/apis/${group}/${version}/${plural}`;
    const list = () =>
      (namespace
        ? this.api.listNamespacedCustomObject({ group, version, namespace, plural })
        : this.api.listClusterCustomObject({ group, version, plural })) as Promise<k8s.KubernetesListObject<T>>;
    this.informer = k8s.makeInformer<T>(kubeConfig, path, list);
    const kick = (object: T) => void this.reconcile(object);
    this.informer.on('add', kick);
    this.informer.on('update', kick);
    this.informer.on('error', (error) => this.watchFailed(error));
  }

  /**
   * Starts watching and resyncing; resolves once the first watch is open. A failed list or watch
   * (the API server down, a permission missing) is logged with its HTTP code and tried again every
   * `retryMs` until `stop`.
   */
  async start(): Promise<void> {
    this.running = true;
    await this.watch();
    this.timer ??= setInterval(() => {
      for (const object of this.informer.list()) void this.reconcile(object);
    }, this.options.resyncMs ?? 2000);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.retry) clearTimeout(this.retry);
    await this.informer.stop();
  }

  /** Brings one object to its newest generation; never throws. */
  async reconcile(object: T): Promise<void> {
    const { namespace = 'default', name = '' } = object.metadata ?? {};
    const key = `${namespace}/${name}`;
    if (this.busy.has(key)) return;
    this.busy.add(key);
    try {
      await this.reconcileOne(object);
    } catch (error) {
      this.log(`${this.resource.noun} reconcile failed; tried again at the next resync`, {
        object: key,
        code: httpCodeOf(error),
        error: error instanceof Error ? error.message : String(error),
      });
    } finally {
      this.busy.delete(key);
    }
  }

  /** What reconciling one object means; a throw is logged and the object tried again at the next resync. */
  protected abstract reconcileOne(object: T): Promise<void>;

  /** An object's address for a patch, written by this replica. */
  protected ref(namespace: string, name: string) {
    const { group, version, plural } = this.resource;
    return { group, version, namespace, plural, name, fieldManager: this.identity };
  }

  /** Reconciles the object as soon as its workflow run ends (a long poll), not at the next resync. */
  protected reconcileWhenEnded(
    namespace: string,
    name: string,
    runId: string,
    handle: { result(): Promise<unknown> },
  ): void {
    if (this.awaitingEnd.has(runId)) return;
    this.awaitingEnd.add(runId);
    void handle
      .result()
      .catch(() => undefined)
      .finally(() => {
        this.awaitingEnd.delete(runId);
        const object = this.running ? this.informer.get(name, namespace) : undefined;
        if (object) void this.reconcile(object);
      });
  }

  /**
   * Writes `status` through the status subresource unless it is what the object holds. A merge
   * patch keeps what it does not name: the `mirrored` fields `status` lacks (an older generation's)
   * are cleared by name.
   */
  protected async writeStatus(object: T, status: object, mirrored: readonly string[]): Promise<void> {
    const { namespace = 'default', name = '' } = object.metadata ?? {};
    if (canonical(object.status ?? {}) === canonical(status)) return;
    const cleared = Object.fromEntries(mirrored.filter((field) => !(field in status)).map((field) => [field, null]));
    const updated = (await this.api.patchNamespacedCustomObjectStatus(
      { ...this.ref(namespace, name), body: { status: { ...cleared, ...status } } },
      MERGE_PATCH,
    )) as T;
    // The cache may lag the write: reconciles in between read what was written.
    object.status = updated.status ?? status;
  }

  private async watch(): Promise<void> {
    if (!this.running) return;
    try {
      await this.informer.start();
    } catch (error) {
      this.watchFailed(error);
    }
  }

  private watchFailed(error: unknown): void {
    this.log(`${this.resource.noun} watch failed; restarting it`, {
      code: httpCodeOf(error),
      error: error instanceof Error ? error.message : String(error),
    });
    if (this.running && !this.retry) {
      this.retry = setTimeout(() => {
        this.retry = null;
        void this.watch();
      }, this.options.retryMs ?? 1000);
    }
  }
}
