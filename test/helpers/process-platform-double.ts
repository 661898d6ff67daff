/**
 * A TEST DOUBLE of the platform that runs each slot as one real detection-API process on a port of
 * its own, so the real gates (the smoke suite, Prometheus) judge real versions. It is not the
 * product's local platform (no router, no replicas: one process stands for a slot's replicas); it
 * exists so a whole deployment can run on the dev server with real gates before that platform
 * lands. The image tag picks the version; a tag ending in `-slow` injects 600 ms of latency.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type {
  DeploySlotRequest,
  LiveState,
  Platform,
  ReadRestartsRequest,
  ScaleSlotRequest,
  SlotState,
  SwitchTrafficRequest,
  Target,
  VerifyTrafficRequest,
  WaitForSlotReadyRequest,
} from '../../src/activities/contract.js';
import { ErrorType } from '../../src/shared/errors.js';
import type { Slot } from '../../src/shared/slots.js';
import { versionFromImage } from '../../src/spec/deployment-spec.js';
import type { DetectionApiProcess } from './detection-api-process.js';
import { startDetectionApi, tempQueuePath } from './detection-api-process.js';

interface SlotProcess {
  image: string | null;
  replicas: number;
  port: number;
  process: Promise<DetectionApiProcess> | null;
}

export class ProcessPlatformDouble implements Platform {
  readonly name = 'process-double';
  selector: Slot = 'blue';
  readonly slots: Record<Slot, SlotProcess>;

  constructor(
    ports: Record<Slot, number>,
    private readonly takAddress: string,
  ) {
    this.slots = {
      blue: { image: null, replicas: 0, port: ports.blue, process: null },
      green: { image: null, replicas: 0, port: ports.green, process: null },
    };
  }

  endpointOf(slot: Slot): string {
    return `http://127.0.0.1:${this.slots[slot].port}`;
  }

  /** Starts `image` on `slot` and makes it the live slot. */
  async init(slot: Slot, image: string): Promise<void> {
    this.selector = slot;
    await this.run(slot, image, 1);
    await this.slots[slot].process;
  }

  async stopAll(): Promise<void> {
    await Promise.all((['blue', 'green'] as const).map((slot) => this.stop(slot)));
  }

  private async run(slot: Slot, image: string, replicas: number): Promise<void> {
    await this.stop(slot);
    const state = this.slots[slot];
    Object.assign(state, { image, replicas });
    const tag = versionFromImage(image);
    state.process = startDetectionApi({
      PORT: String(state.port),
      SLOT: slot,
      APP_VERSION: tag,
      TAK_ADDRESS: this.takAddress,
      QUEUE_PATH: tempQueuePath(),
      SHUTDOWN_DRAIN_MS: '0',
      ...(tag.endsWith('-slow') ? { FAULT_LATENCY_MS: '600' } : {}),
    });
    state.process.catch(() => undefined);
  }

  private async stop(slot: Slot): Promise<void> {
    const running = this.slots[slot].process;
    this.slots[slot].process = null;
    const process = running ? await running.catch(() => null) : null;
    if (process && process.child.exitCode === null) {
      process.kill('SIGTERM');
      await process.exited;
    }
  }

  private async state(target: Target, slot: Slot): Promise<SlotState> {
    const s = this.slots[slot];
    const running = s.process ? await s.process.then((p) => p.child.exitCode === null).catch(() => false) : false;
    const ready = running ? s.replicas : 0;
    return { slot, deployment: target.deployments[slot], image: s.image, replicas: s.replicas, readyReplicas: ready, updatedReplicas: ready, availableReplicas: ready };
  }

  async describe(target: Target): Promise<LiveState> {
    return { activeSlot: this.selector, slots: { blue: await this.state(target, 'blue'), green: await this.state(target, 'green') } };
  }

  async deploySlot(request: DeploySlotRequest): Promise<SlotState> {
    const before = await this.state(request.target, request.slot);
    await this.run(request.slot, request.image, request.replicas);
    return before;
  }

  async waitForSlotReady(request: WaitForSlotReadyRequest) {
    const started = performance.now();
    try {
      await this.slots[request.slot].process;
    } catch (error) {
      throw ApplicationFailure.create({ type: ErrorType.ReadinessTimeout, message: (error as Error).message, nonRetryable: true });
    }
    return { readyReplicas: request.replicas, seconds: (performance.now() - started) / 1000 };
  }

  async switchTraffic(request: SwitchTrafficRequest) {
    const previousSlot = this.selector;
    this.selector = request.slot;
    return { changed: previousSlot !== request.slot, previousSlot };
  }

  async verifyTraffic(request: VerifyTrafficRequest) {
    const state = await this.state(request.target, request.slot);
    if (this.selector !== request.slot || state.readyReplicas === 0) {
      throw ApplicationFailure.create({ type: ErrorType.TrafficNotVerified, message: `${request.slot} serves no traffic`, nonRetryable: true });
    }
    return { endpoints: state.readyReplicas, seconds: 0 };
  }

  async readRestarts(_request: ReadRestartsRequest): Promise<number> {
    return 0;
  }

  async scaleSlot(request: ScaleSlotRequest): Promise<void> {
    const image = request.image === undefined ? this.slots[request.slot].image : request.image;
    if (request.replicas === 0 || image === null) {
      await this.stop(request.slot);
      Object.assign(this.slots[request.slot], { replicas: 0, image });
      return;
    }
    await this.run(request.slot, image, request.replicas);
    await this.slots[request.slot].process;
  }
}
