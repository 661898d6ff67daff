/**
 * Leader election over a coordination.k8s.io Lease, as client-go's leaderelection does it, so that
 * of several controller replicas exactly one acts. The holder renews the Lease every `retryMs`; a
 * candidate takes it over only after it has seen the same record unchanged for `leaseDurationMs`
 * by its own clock (never by comparing its clock with the holder's). A holder that cannot renew
 * within `renewDeadlineMs` stops leading before its Lease can expire, so two leaders never act at
 * once. Writes carry the record's resourceVersion: of two candidates, the API server lets one win.
 */
import * as k8s from '@kubernetes/client-node';
import { keptAliveConfiguration } from '../platforms/kubernetes-connections.js';
import { httpCodeOf } from '../platforms/kubernetes-errors.js';

export interface LeaderElectionOptions {
  namespace: string;
  /** The Lease's name, shared by every replica. */
  name: string;
  /** This replica's name in the Lease (its pod's name in a cluster). */
  identity: string;
  /** How long a Lease stays held without a renewal (client-go's default: 15 s). */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it stops leading (default 10 s). */
  renewDeadlineMs?: number;
  /** How often the leader renews and a candidate tries (default 2 s). */
  retryMs?: number;
  onStartedLeading: () => Promise<void> | void;
  /** Called once leadership is lost; the controller's process exits there, as client-go's do. */
  onStoppedLeading: () => Promise<void> | void;
  log?: (line: string, fields?: Record<string, unknown>) => void;
}

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly log: NonNullable<LeaderElectionOptions['log']>;
  /** The last record seen, and when (by this replica's clock) it was first seen as it is. */
  private observed: { holder: string; renewTime: string; at: number } | null = null;
  private leading = false;
  private lastRenewal = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly settled: Promise<void>;
  private settle: () => void = () => undefined;

  constructor(
    kubeConfig: k8s.KubeConfig,
    private readonly options: LeaderElectionOptions,
  ) {
    this.api = new k8s.CoordinationV1Api(keptAliveConfiguration(kubeConfig));
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryMs = options.retryMs ?? 2_000;
    if (!(this.retryMs < this.renewDeadlineMs && this.renewDeadlineMs < this.leaseDurationMs)) {
      throw new RangeError(
        `leader election needs retry (${this.retryMs} ms) < renew deadline (${this.renewDeadlineMs} ms) < lease ` +
          `duration (${this.leaseDurationMs} ms)`,
      );
    }
    this.log = options.log ?? (() => undefined);
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning; resolves when the elector is stopped or has lost the lead. */
  run(): Promise<void> {
    void this.tick();
    return this.settled;
  }

  /** Stops campaigning; a leader hands the Lease back so that another replica takes it at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.leading) {
      this.leading = false;
      await this.options.onStoppedLeading();
      await this.release().catch((error: unknown) =>
        this.log('could not hand the lease back', { error: String(error) }),
      );
    }
    this.settle();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.tryAcquireOrRenew();
    } catch (error) {
      this.log(this.leading ? 'lease renewal failed' : 'lease acquisition failed', {
        lease: this.options.name,
        code: httpCodeOf(error),
        error: error instanceof Error ? error.message : String(error),
      });
    }
    if (this.leading && Date.now() - this.lastRenewal > this.renewDeadlineMs) {
      this.log('lost the lease: no renewal within the renew deadline', {
        lease: this.options.name,
        identity: this.options.identity,
      });
      this.leading = false;
      this.stopped = true;
      await this.options.onStoppedLeading();
      this.settle();
      return;
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.retryMs);
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { namespace, name, identity } = this.options;
    const now = new Date();
    const record = (holder: string, previous?: k8s.V1LeaseSpec): k8s.V1LeaseSpec => ({
      holderIdentity: holder,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime:
        previous?.holderIdentity === holder && previous.acquireTime
          ? previous.acquireTime
          : new k8s.V1MicroTime(now.getTime()),
      renewTime: new k8s.V1MicroTime(now.getTime()),
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (previous && previous.holderIdentity !== holder ? 1 : 0),
    });

    let lease: k8s.V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (httpCodeOf(error) !== 404) throw error;
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: record(identity) },
        });
      } catch (createError) {
        if (httpCodeOf(createError) === 409) return; // another replica created it first
        throw createError;
      }
      await this.becomeLeader(now);
      return;
    }

    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewTime = spec.renewTime ? new Date(spec.renewTime as unknown as string).toISOString() : '';
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime)
      this.observed = { holder, renewTime, at: now.getTime() };
    const expired =
      holder === '' ||
      now.getTime() > this.observed.at + (spec.leaseDurationSeconds ?? this.leaseDurationMs / 1000) * 1000;
    if (holder !== identity && !expired) {
      if (this.leading) {
        // Someone else holds it: this replica's lead is over, whatever it believed.
        this.lastRenewal = 0;
      }
      return;
    }
    try {
      await this.api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: record(identity, spec) } });
    } catch (error) {
      if (httpCodeOf(error) === 409) return; // changed since it was read: another replica wrote first
      throw error;
    }
    if (holder !== identity) this.log('took over the lease', { lease: name, from: holder || null });
    await this.becomeLeader(now);
  }

  private async becomeLeader(at: Date): Promise<void> {
    this.lastRenewal = at.getTime();
    if (this.leading) return;
    this.leading = true;
    this.log('leading', { lease: this.options.name, identity: this.options.identity });
    await this.options.onStartedLeading();
  }

  /** Empties the holder, as client-go's ReleaseOnCancel, if this replica still holds the Lease. */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    const lease = await this.api.readNamespacedLease({ name, namespace });
    if (lease.spec?.holderIdentity !== identity) return;
    await this.api.replaceNamespacedLease({
      name,
      namespace,
      body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
    });
  }
}
