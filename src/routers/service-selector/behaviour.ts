/**
 * service-selector: the Service's selector names the live slot, and blue-green's switch changes
 * that one label. Verified from the Service's ready endpoints: all in the selected slot, none
 * outside both. It cannot split traffic; replica-ratio (../replica-ratio/behaviour.ts) can, on the
 * same Service.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type {
  LiveRoute,
  Progress,
  RouteReport,
  RouteRequest,
  Target,
  TrafficRouterPort,
  WeightVerification,
} from '../../activities/contract.js';
import { ErrorType } from '../../shared/errors.js';
import { isSlot } from '../../shared/slots.js';
import type { Slot } from '../../shared/slots.js';
import { formatShare, REPLICA_RATIO_TOLERANCE_POINTS, smallestStep, TrafficRouter } from '../../shared/traffic.js';
import { pollUntil } from '../common.js';

/** What a selector router reads: the slot its selector names (null: none), and the ready endpoints by slot. */
export interface SelectorView {
  selected: Slot | null;
  endpoints: Record<Slot, number>;
  /** Ready endpoints in neither slot. */
  strays: number;
}

/** The Service's selector as a platform keeps it: the adapters (kubernetes.ts, local.ts) read and write it. */
export interface SelectorAccess {
  /** The value of the slot label in the Service's selector (undefined: not there). */
  readSelected(target: Target): Promise<string | undefined>;
  /** Sets the slot label to `slot`, or removes it (null). */
  writeSelected(target: Target, slot: Slot | null): Promise<void>;
  /** The selector and the Service's ready endpoints by slot. */
  readView(target: Target, stable: Slot, canary: Slot): Promise<SelectorView>;
}

/**
 * Whether a selector router holds `weight`: the selector names the stable slot (0), the canary
 * (100) or neither (a split), the endpoints serve accordingly, and the canary's share of them is
 * within the tolerance. Returns the share in effect.
 */
export function selectorHolds(
  view: SelectorView,
  { stable, canary, weight }: RouteRequest & { weight: number },
): { held: boolean; effective: number; unmet: string } {
  const { endpoints, strays } = view;
  const total = endpoints[stable] + endpoints[canary] + strays;
  const effective = total === 0 ? 0 : (100 * endpoints[canary]) / total;
  const slot = weight <= 0 ? stable : weight >= 100 ? canary : null;
  const serving =
    weight <= 0
      ? endpoints[canary] === 0 && endpoints[stable] > 0
      : weight >= 100
        ? endpoints[stable] === 0 && endpoints[canary] > 0
        : endpoints[stable] > 0 && endpoints[canary] > 0;
  const held =
    view.selected === slot && serving && strays === 0 && Math.abs(effective - weight) <= REPLICA_RATIO_TOLERANCE_POINTS;
  const share = `${formatShare(effective)} %`;
  return {
    held,
    effective,
    unmet:
      `${endpoints[stable]} ready endpoints in ${stable}, ${endpoints[canary]} in ${canary} (${share}), ` +
      `${strays} outside both slots`,
  };
}

export class ServiceSelectorRouter implements TrafficRouterPort {
  readonly kind: TrafficRouter = TrafficRouter.ServiceSelector;

  constructor(protected readonly service: SelectorAccess) {}

  smallestStep(replicas: number): number {
    return smallestStep(this.kind, replicas);
  }

  async readLive(target: Target): Promise<LiveRoute> {
    const selected = await this.service.readSelected(target);
    const where = `service ${target.service} in namespace ${target.namespace}`;
    if (isSlot(selected)) return { slot: selected, routing: `${where} selects ${target.slotLabelKey}=${selected}` };
    if (selected === undefined)
      return { slot: null, routing: `${where} selects both slots (no ${target.slotLabelKey} in its selector)` };
    return {
      slot: null,
      routing: `${where} selects ${target.slotLabelKey}=${selected}, which is neither slot (blue, green)`,
    };
  }

  async setWeight(request: RouteRequest & { weight: number }): Promise<RouteReport> {
    throw ApplicationFailure.create({
      type: ErrorType.InvalidInput,
      message: `traffic.router: service-selector cannot send ${request.weight} % to one slot`,
      nonRetryable: true,
    });
  }

  async reset({ target, stable }: RouteRequest): Promise<RouteReport> {
    return await this.select(target, stable);
  }

  async promote({ target, canary }: RouteRequest): Promise<RouteReport> {
    return await this.select(target, canary);
  }

  async verifyWeight(
    request: RouteRequest & { weight: number; timeoutSeconds: number },
    progress: Progress,
  ): Promise<WeightVerification> {
    const { target, stable, canary, weight, timeoutSeconds } = request;
    return await pollUntil(timeoutSeconds, progress, async () => {
      const view = await this.service.readView(target, stable, canary);
      const { held, effective, unmet } = selectorHolds(view, request);
      return {
        done: held ? { weight: effective, endpoints: view.endpoints, seconds: 0 } : null,
        beat: { endpoints: view.endpoints, strays: view.strays, effective },
        unmet: [
          `service ${target.service} in namespace ${target.namespace} does not hold ${weight} % for ${canary}`,
          unmet,
        ],
      };
    });
  }

  /** The selector to `slot` (null: both slots), written only when it differs. */
  protected async select(target: Target, slot: Slot | null): Promise<RouteReport> {
    const current = await this.service.readSelected(target);
    const previous = current === undefined ? 'both slots, by replicas' : `selector ${target.slotLabelKey}=${current}`;
    const previousSlot = isSlot(current) ? current : null;
    if ((current ?? null) === slot) return { changed: false, previous, previousSlot };
    await this.service.writeSelected(target, slot);
    return { changed: true, previous, previousSlot };
  }
}
