/**
 * The activities the workflow calls, built from the platform and gates the worker was configured
 * with. Each is short and delegates to its port; waiting calls are wired to the heartbeat, so a
 * cancelled activity (an abort) stops waiting and a dead worker is noticed within the heartbeat
 * timeout.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ErrorType } from '../shared/errors.js';
import type { DeploymentEvent, Notifier } from '../notifications/webhook-notifier.js';
import { parseDeploymentSpec, SpecValidationError } from '../spec/deployment-spec.js';
import type {
  DeploySlotRequest,
  EvaluateSlosRequest,
  Platform,
  Progress,
  ReadRestartsRequest,
  ScrapeIntervalRequest,
  ScaleSlotRequest,
  SloSource,
  SmokeRequest,
  SmokeRunner,
  SwitchTrafficRequest,
  Target,
  VerifyTrafficRequest,
  WaitForSlotReadyRequest,
} from './contract.js';

export interface ActivityDependencies {
  platform: Platform;
  smoke: SmokeRunner;
  slo: SloSource;
  /** Where notifications go; without one, `notify` records that none is configured. */
  notifier?: Notifier | null;
}

/** The heartbeat and cancellation of the running activity, as the ports see them. */
function currentProgress(): Progress {
  const context = Context.current();
  return {
    heartbeat: (details?: unknown) => context.heartbeat(details),
    signal: context.cancellationSignal,
  };
}

export function createActivities({ platform, smoke, slo, notifier = null }: ActivityDependencies) {
  return {
    /**
     * Validates a spec again inside the worker, so a deployment started without our client (say,
     * with `temporal workflow start`) is rejected with field paths before anything changes.
     */
    async validateSpec(spec: unknown) {
      try {
        return parseDeploymentSpec(spec);
      } catch (error) {
        if (error instanceof SpecValidationError) {
          throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: error.message, nonRetryable: true });
        }
        throw error;
      }
    },
    async describe(target: Target) {
      return await platform.describe(target);
    },
    async deploySlot(request: DeploySlotRequest) {
      return await platform.deploySlot(request);
    },
    async waitForSlotReady(request: WaitForSlotReadyRequest) {
      return await platform.waitForSlotReady(request, currentProgress());
    },
    async switchTraffic(request: SwitchTrafficRequest) {
      return await platform.switchTraffic(request);
    },
    async verifyTraffic(request: VerifyTrafficRequest) {
      return await platform.verifyTraffic(request, currentProgress());
    },
    async readRestarts(request: ReadRestartsRequest) {
      return await platform.readRestarts(request);
    },
    async scaleSlot(request: ScaleSlotRequest) {
      return await platform.scaleSlot(request, currentProgress());
    },
    async runSmokeSuite(request: SmokeRequest) {
      return await smoke.runSmokeSuite(request, currentProgress());
    },
    async readScrapeInterval(request: ScrapeIntervalRequest) {
      return await slo.readScrapeInterval(request);
    },
    async evaluateSlos(request: EvaluateSlosRequest) {
      return await slo.evaluateSlos(request);
    },
    /** Never throws: a notification that cannot be delivered must not change a deployment. */
    async notify(event: DeploymentEvent): Promise<string> {
      return notifier ? await notifier.notify(event) : 'no webhook configured';
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
