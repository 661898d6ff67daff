/**
 * A local Deployment: a desired pod template (an image, and labels over the selector's) and a
 * replica count, and the pods that run them. Changing any bumps the generation and reconciles at
 * once: pods of an older template are terminated while pods of the new one start (slots are idle
 * when they change, so nothing waits on the surge), and the count follows `replicas`. Its status
 * reads like a Kubernetes Deployment's.
 */
import { join } from 'node:path';
import type { DeploymentConfig, ImageConfig } from './config.js';
import { Pod, PodPhase } from './pod.js';
import type { PodEvent, PodStatus } from './pod.js';
import { freePort } from '../processes/processes.js';
import { PLACEHOLDER, renderTemplate } from '../shared/template.js';
import { repositoryFromImage, versionFromImage } from '../deployment-spec/deployment-spec.js';

/** What the control API reports of a Deployment. */
export interface LocalDeploymentStatus {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** The pod template's labels beyond `labels` (the run label a deployment sets). */
  templateLabels: Record<string, string>;
  container: string;
  image: string | null;
  replicas: number;
  generation: number;
  observedGeneration: number;
  readyReplicas: number;
  updatedReplicas: number;
  availableReplicas: number;
  terminationGracePeriodSeconds: number;
  /** Each pod, and whether it is of the current template. */
  pods: (PodStatus & { updated: boolean })[];
}

export interface DeploymentUpdate {
  image?: string;
  replicas?: number;
  /** Merged into the template's labels, as a strategic merge patch merges them. */
  labels?: Record<string, string>;
}

/** An image reference that no `images` entry of the configuration knows how to run. */
export class UnknownImageError extends Error {}

/** An event about an object of the local cluster (`Pod/<name>`, `Deployment/<name>`). */
export interface ObjectEvent extends PodEvent {
  object: string;
}

export class LocalDeployment {
  image: string | null;
  replicas: number;
  templateLabels: Record<string, string> = {};
  generation = 1;
  private pods: Pod[] = [];
  private podCounter = 0;
  private reconciling: Promise<void> = Promise.resolve();

  constructor(
    readonly config: DeploymentConfig,
    private readonly images: ImageConfig[],
    private readonly options: {
      stateDir: string;
      cwd: string;
      onChange: () => void;
      record?: (event: ObjectEvent) => void;
    },
  ) {
    this.image = config.image;
    this.replicas = config.replicas;
  }

  get key(): string {
    return `${this.config.namespace}/${this.config.name}`;
  }

  /** The image configuration that runs `image`; throws UnknownImageError naming the repositories known. */
  imageConfig(image: string): ImageConfig {
    const repository = repositoryFromImage(image);
    const found = this.images.find((i) => i.repository === repository);
    if (!found) {
      throw new UnknownImageError(
        `no entry in 'images' runs ${repository}; known repositories: ` +
          `${this.images.map((i) => i.repository).join(', ')}`,
      );
    }
    return found;
  }

  /** Throws UnknownImageError for a change that cannot be applied; changes nothing. */
  check(change: DeploymentUpdate): void {
    if (change.image !== undefined) this.imageConfig(change.image);
    if ((change.replicas ?? this.replicas) > 0 && (change.image ?? this.image) === null)
      throw new UnknownImageError('a Deployment without an image cannot have replicas');
  }

  /** Sets image, labels and replicas in one change; resolves once pods are started or stopping. */
  update(change: DeploymentUpdate): Promise<void> {
    this.check(change);
    const image = change.image ?? this.image;
    const replicas = change.replicas ?? this.replicas;
    const templateLabels = { ...this.templateLabels, ...change.labels };
    if (image !== this.image || replicas !== this.replicas || !sameLabels(templateLabels, this.templateLabels)) {
      this.image = image;
      this.replicas = replicas;
      this.templateLabels = templateLabels;
      this.generation += 1;
      this.options.record?.({
        object: `Deployment/${this.config.name}`,
        type: 'Normal',
        reason: 'ScalingReplicaSet',
        message: `Scaled to ${replicas} with ${image ?? 'no image'}`,
      });
    }
    return this.reconcile();
  }

  /** Starts missing pods and terminates surplus and outdated ones; serialized. */
  reconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(() => this.reconcileOnce());
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const live = this.pods.filter((p) => p.phase !== PodPhase.Terminating && p.phase !== PodPhase.Terminated);
    const outdated = live.filter((p) => !this.isCurrent(p));
    const current = live.filter((p) => this.isCurrent(p));
    const surplus = current.slice(this.replicas);
    for (const pod of [...outdated, ...surplus]) void this.remove(pod);
    for (let i = current.length; i < this.replicas; i++) this.pods.push(await this.startPod(this.image!));
    this.options.onChange();
  }

  /** Of the current template: its image and its labels. */
  private isCurrent(pod: Pod): boolean {
    return pod.spec.image === this.image && sameLabels(pod.spec.labels, this.podLabels());
  }

  private podLabels(): Record<string, string> {
    return { ...this.templateLabels, ...this.config.labels };
  }

  private async remove(pod: Pod): Promise<void> {
    await pod.terminate();
    this.pods = this.pods.filter((p) => p !== pod);
    this.options.onChange();
  }

  private async startPod(image: string): Promise<Pod> {
    const imageConfig = this.imageConfig(image);
    const tag = versionFromImage(image);
    const name = `${this.config.name}-${(this.podCounter += 1)}`;
    const port = await freePort();
    const dataDir = join(this.options.stateDir, this.config.namespace, name);
    const labels = this.podLabels();
    const variables: Record<string, string> = {
      node: process.execPath,
      port: String(port),
      tag,
      image,
      pod: name,
      namespace: this.config.namespace,
      dataDir,
      ...Object.fromEntries(Object.entries(labels).map(([k, v]) => [`label.${k}`, v])),
    };
    // A label the pod lacks reads as '', as the downward API gives it.
    const render = (text: string) =>
      renderTemplate(text, variables).replace(PLACEHOLDER, (whole, key: string) =>
        key.startsWith('label.') ? '' : whole,
      );
    const env = { ...imageConfig.env, ...(imageConfig.tags[tag]?.env ?? {}) };
    const pod = new Pod(
      {
        name,
        namespace: this.config.namespace,
        deployment: this.config.name,
        labels,
        image,
        command: imageConfig.command.map(render),
        env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, render(v)])),
        cwd: this.options.cwd,
        dataDir,
        port,
        readinessPath: this.config.readinessPath,
        readinessPeriodSeconds: this.config.readinessPeriodSeconds,
        terminationGracePeriodSeconds: this.config.terminationGracePeriodSeconds,
      },
      this.options.onChange,
      (event) => this.options.record?.({ object: `Pod/${name}`, ...event }),
    );
    pod.start();
    return pod;
  }

  /** Pods that serve: running, ready, and of the current template. */
  readyPods(): Pod[] {
    return this.pods.filter((p) => p.phase === PodPhase.Running && p.ready && this.isCurrent(p));
  }

  allPods(): Pod[] {
    return [...this.pods];
  }

  status(): LocalDeploymentStatus {
    const { name, namespace, labels, container, terminationGracePeriodSeconds } = this.config;
    const updated = this.pods.filter(
      (p) => this.isCurrent(p) && p.phase !== PodPhase.Terminating && p.phase !== PodPhase.Terminated,
    );
    const ready = this.readyPods().length;
    return {
      name,
      namespace,
      labels,
      templateLabels: this.templateLabels,
      container,
      image: this.image,
      replicas: this.replicas,
      generation: this.generation,
      observedGeneration: this.generation,
      readyReplicas: ready,
      updatedReplicas: updated.length,
      availableReplicas: ready,
      terminationGracePeriodSeconds,
      pods: this.pods.map((p) => ({ ...p.status(), updated: this.isCurrent(p) })),
    };
  }

  /** Terminates every pod, as the platform shuts down. */
  async shutdown(): Promise<void> {
    await this.reconciling.catch(() => undefined);
    await Promise.all(this.pods.map((p) => p.terminate()));
  }
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
