/**
 * replica-ratio: the service-selector router on the same Service, which can also split. A split
 * removes the slot label from the selector, so the Service selects both slots and the replica
 * counts set the share (kube-proxy picks an endpoint per connection). The workflow sizes the slots
 * for each step (canaryReplicasFor in src/shared/traffic.ts); verification reads the share from the
 * ready endpoints, within REPLICA_RATIO_TOLERANCE_POINTS. Its adapters are the Service selector's
 * (../service-selector/kubernetes.ts and local.ts): it writes nothing else.
 */
import type { RouteReport, RouteRequest } from '../../activities/contract.js';
import { TrafficRouter } from '../../shared/traffic.js';
import { ServiceSelectorRouter } from '../service-selector/behaviour.js';

export class ReplicaRatioRouter extends ServiceSelectorRouter {
  override readonly kind: TrafficRouter = TrafficRouter.ReplicaRatio;

  /** Any share strictly between 0 and 100: the selector drops the slot label; the replicas do the rest. */
  override async setWeight(request: RouteRequest & { weight: number }): Promise<RouteReport> {
    return await this.select(request.target, null);
  }
}
