/**
 * A local Deployment: a desired image and replica count, and the pods that run them. Changing
 * either bumps the generation and reconciles at once: pods of an older image are terminated while
 * pods of the new one start (slots are idle when they change, so nothing waits on the surge), and
 * the count follows `replicas`. Its status reads like a Kubernetes Deployment's.
 */
import { join } from 'node:path';
import type { DeploymentConfig, ImageConfig } from './config.js';
import { Pod, PodPhase } from './pod.js';
import type { PodEvent, PodStatus } from './pod.js';
import { freePort } from '../processes/processes.js';
import { renderTemplate } from '../shared/template.js';
import { repositoryFromImage, versionFromImage } from '../deployment-spec/deployment-spec.js';

/** What the control API reports of a Deployment. */
export interface LocalDeploymentStatus {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  container: string;
  image: string | null;
  replicas: number;
  generation: number;
  observedGeneration: number;
  readyReplicas: number;
  updatedReplicas: number;
  availableReplicas: number;
  terminationGracePeriodSeconds: number;
  pods: PodStatus[];
}

export interface DeploymentUpdate {
  image?: string;
  replicas?: number;
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
  generation = 1;
  private pods: Pod[] = [];
  private podCounter = 0;
  private reconciling: Promise<void> = Promise.resolve();

  constructor(
    readonly config: DeploymentConfig,
    private readonly images: ImageConfig[],
    private readonly options: { stateDir: string; cwd: string; onChange: () => void; record?: (event: ObjectEvent) => void },
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
        `no entry in 'images' runs ${repository}; known repositories: ${this.images.map((i) => i.repository).join(', ')}`,
      );
    }
    return found;
  }

  /** Sets image and replicas in one change; resolves once pods are started or stopping. */
  update(change: DeploymentUpdate): Promise<void> {
    if (change.image !== undefined) this.imageConfig(change.image);
    const image = change.image ?? this.image;
    const replicas = change.replicas ?? this.replicas;
    if (replicas > 0 && image === null) throw new UnknownImageError('a Deployment without an image cannot have replicas');
    if (image !== this.image || replicas !== this.replicas) {
      this.image = image;
      this.replicas = replicas;
      this.generation += 1;
      this.options.record?.({ object: `Deployment/${this.config.name}`, type: 'Normal', reason: 'ScalingReplicaSet', message: `Scaled to ${replicas} with ${image ?? 'no image'}` });
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
    const outdated = live.filter((p) => p.spec.image !== this.image);
    const current = live.filter((p) => p.spec.image === this.image);
    const surplus = current.slice(this.replicas);
    for (const pod of [...outdated, ...surplus]) void this.remove(pod);
    for (let i = current.length; i < this.replicas; i++) this.pods.push(await this.startPod(this.image!));
    this.options.onChange();
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
    const variables: Record<string, string> = {
      node: process.execPath,
      port: String(port),
      tag,
      image,
      pod: name,
      namespace: this.config.namespace,
      dataDir,
      ...Object.fromEntries(Object.entries(this.config.labels).map(([k, v]) => [`label.${k}`, v])),
    };
    const env = { ...imageConfig.env, ...(imageConfig.tags[tag]?.env ?? {}) };
    const pod = new Pod(
      {
        name,
        namespace: this.config.namespace,
        deployment: this.config.name,
        labels: this.config.labels,
        image,
        command: imageConfig.command.map((part) => renderTemplate(part, variables)),
        env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, renderTemplate(v, variables)])),
        cwd: this.options.cwd,
        dataDir,
        port,
        readinessPath: this.config.readinessPath,
        terminationGracePeriodSeconds: this.config.terminationGracePeriodSeconds,
      },
      this.options.onChange,
      (event) => this.options.record?.({ object: `Pod/${name}`, ...event }),
    );
    pod.start();
    return pod;
  }

  /** Pods that serve: running, ready, and of the current image. */
  readyPods(): Pod[] {
    return this.pods.filter((p) => p.phase === PodPhase.Running && p.ready && p.spec.image === this.image);
  }

  allPods(): Pod[] {
    return [...this.pods];
  }

  status(): LocalDeploymentStatus {
    const { name, namespace, labels, container, terminationGracePeriodSeconds } = this.config;
    const updated = this.pods.filter((p) => p.spec.image === this.image && p.phase !== PodPhase.Terminating && p.phase !== PodPhase.Terminated);
    const ready = this.readyPods().length;
    return {
      name,
      namespace,
      labels,
      container,
      image: this.image,
      replicas: this.replicas,
      generation: this.generation,
      observedGeneration: this.generation,
      readyReplicas: ready,
      updatedReplicas: updated.length,
      availableReplicas: ready,
      terminationGracePeriodSeconds,
      pods: this.pods.map((p) => p.status()),
    };
  }

  /** Terminates every pod, as the platform shuts down. */
  async shutdown(): Promise<void> {
    await this.reconciling.catch(() => undefined);
    await Promise.all(this.pods.map((p) => p.terminate()));
  }
}
