/**
 * Changes to the workflow's commands, guarded with `patched()` so that running and recorded
 * deployments replay. A name here is never reused or removed while a history that lacks it may
 * still be replayed (the committed ones in test/histories/ are).
 */
export const Patch = {
  /** The outcome is written to the memo when the deployment ends. */
  OutcomeInMemo: 'outcome-in-memo',
  /** People are notified when a gate waits and when the deployment ends. */
  Notifications: 'notifications',
  /** A cancelled write is waited for: a compensation never runs beside its own write. */
  SettledWrites: 'settled-writes',
  /** A restore retries until it succeeds (or is refused for good), reported stuck after a while. */
  PersistentRollback: 'persistent-rollback',
  /** A deployment that did not go live ends as a workflow failure carrying its result. */
  FailedExecution: 'failed-execution',
  /**
   * The monitor reads the scrape interval in preflight, counts missing data only after a warm-up
   * and only in a row, and keeps measuring while paused for missing data.
   */
  ScrapeAwareMonitor: 'scrape-aware-monitor',
  /** Preflight measures the active slot's gated SLOs once and refuses a breaching one. */
  StabilityCheck: 'stability-check',
  /** The window after the deployment (`observe`), warm before the cleanup or cold after it. */
  Observe: 'observe',
  /** A rollback captures the failing slot's evidence before scaling it down. */
  Evidence: 'evidence',
  /**
   * Fewer round trips per deployment: a monitor tick is one activity (SLOs and restarts read side
   * by side), not two; preflight reads the active slot's stability and its scrape interval at once.
   */
  FewerRoundTrips: 'fewer-round-trips',
  /**
   * Blue-green's monitor window, and its pause for missing data, is one activity that measures
   * every interval and heartbeats, not a timer and an activity per tick.
   */
  MonitorLoop: 'monitor-loop',
  /**
   * The window after the deployment (observe) and each canary step's hold are measured by the
   * monitor window's activity too, each with its policy: one measurement loop for all four.
   */
  OneLoop: 'one-loop',
  /**
   * Preflight's reads (the spec validated, the live state, the active slot's SLOs, the scrape
   * interval) are one activity, not four; and with no notifier on the worker, nothing is notified.
   */
  LeanPreflight: 'lean-preflight',
  /**
   * A release train asks whether a cluster's worker polls once its deployment has run for
   * `workerNoticeSeconds`, and notifies people while none does.
   */
  TrainWorkerNotice: 'train-worker-notice',
  /**
   * A train's deployment (and its undo) takes the app's own workflow id on its cluster's queue
   * (`deploymentWorkflowId`), not one of the train's: a direct deployment of the same app on the
   * same cluster and a train's never run at once. Started while one runs, the train's fails.
   */
  TrainChildIsTheAppsDeployment: 'train-child-is-the-apps-deployment',
  /**
   * A train's deployment carries a direct deploy's memo and, where the namespace has them
   * registered (the plan's `indexed`), its search attributes: `bluegreen list --app` finds it.
   */
  TrainChildListed: 'train-child-listed',
} as const;
