/**
 * Figures read from a deployment's workflow history, on the Temporal server's clock: what the
 * orchestration itself cost, and how fast a breach was answered.
 */
import type { WorkflowHandle } from '@temporalio/client';

export type Event = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

const ms = (event: Event | undefined): number => {
  const time = event?.eventTime;
  return time ? Number(time.seconds ?? 0) * 1000 + Math.floor((time.nanos ?? 0) / 1e6) : NaN;
};

function payload(event: Event): unknown {
  const data = event.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
  return data ? JSON.parse(Buffer.from(data).toString('utf8')) : null;
}

/** Activity type of each scheduled event id. */
function activityTypes(events: Event[]): Map<string, string> {
  const types = new Map<string, string>();
  for (const event of events) {
    const name = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) types.set(String(event.eventId), name);
  }
  return types;
}

/**
 * Orchestration overhead: wall time minus the waits the deployment was configured or forced to
 * make (waiting for readiness, and every timer: monitor intervals, scale-down delay). A monitor
 * window measured by one activity waits an interval for each of its samples (a window's ticks
 * each end an interval; a hold's last tick ends it early, so this counts one interval more than
 * it waited, at most its whole run): what its run took beyond that is overhead, as a tick's
 * activity was when each tick was one.
 */
export function overhead(events: Event[]): { wall: number; waits: number; overhead: number } {
  const byId = new Map(events.map((e) => [String(e.eventId), e]));
  const types = activityTypes(events);
  const wall = ms(events.at(-1)) - ms(events[0]);
  let waits = 0;
  for (const event of events) {
    const completed = event.activityTaskCompletedEventAttributes;
    const type = completed ? types.get(String(completed.scheduledEventId)) : undefined;
    if (completed && type === 'waitForSlotReady') {
      waits += ms(event) - ms(byId.get(String(completed.scheduledEventId)));
    }
    if (completed && type === 'monitorWindow') {
      const window = payload(event) as { samples: unknown[]; progress: { intervalSeconds: number } };
      const ran = ms(event) - ms(byId.get(String(completed.startedEventId)));
      waits += Math.min(ran, window.samples.length * window.progress.intervalSeconds * 1000);
    }
    const fired = event.timerFiredEventAttributes;
    if (fired) waits += ms(event) - ms(byId.get(String(fired.startedEventId)));
  }
  return { wall, waits, overhead: wall - waits };
}

/** From the completion of the monitor tick that saw a breach to the rollback's verifyTraffic. */
export function breachToRestored(events: Event[]): number {
  const types = activityTypes(events);
  const completedOf = (name: string) =>
    events.filter(
      (e) =>
        e.activityTaskCompletedEventAttributes &&
        types.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId)) === name,
    );
  // A tick is one measureSlot (its SLOs beside the restarts); recorded before, an evaluateSlos.
  const slosOf = (e: Event) => {
    const result = payload(e) as { slos: unknown[] } | unknown[] | null;
    return ((Array.isArray(result) ? result : result?.slos) ?? []) as { result: string; gate: boolean }[];
  };
  const breach = [...completedOf('measureSlot'), ...completedOf('evaluateSlos')]
    .sort((a, b) => ms(a) - ms(b))
    .find((e) => slosOf(e).some((m) => m.gate && m.result === 'Failed'));
  if (!breach) throw new Error('no monitor tick saw a breach');
  const restored = completedOf('verifyTraffic').find((e) => ms(e) > ms(breach));
  if (!restored) throw new Error('no verifyTraffic after the breach');
  return ms(restored) - ms(breach);
}

/**
 * Where a deployment's time went, in ms: each activity type's run time (started to closed), the
 * time activities and workflow tasks waited in the task queue for a worker (scheduled to
 * started), and the time the worker spent on workflow tasks (started to completed).
 */
export function breakdown(events: Event[]): Record<string, number> {
  const byId = new Map(events.map((e) => [String(e.eventId), e]));
  const types = activityTypes(events);
  const spent: Record<string, number> = { 'queue: activities': 0, 'queue: workflow tasks': 0, 'workflow tasks': 0 };
  const add = (key: string, value: number) => (spent[key] = (spent[key] ?? 0) + value);
  for (const event of events) {
    const started = event.activityTaskStartedEventAttributes;
    if (started) add('queue: activities', ms(event) - ms(byId.get(String(started.scheduledEventId))));
    const closed = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes;
    if (closed)
      add(
        `activity ${types.get(String(closed.scheduledEventId))}`,
        ms(event) - ms(byId.get(String(closed.startedEventId))),
      );
    if (event.workflowTaskStartedEventAttributes)
      add('queue: workflow tasks', ms(event) - ms(byId.get(String(Number(event.eventId) - 1))));
    const completed = event.workflowTaskCompletedEventAttributes;
    if (completed) add('workflow tasks', ms(event) - ms(byId.get(String(completed.startedEventId))));
    if (completed) add('workflow task count', 1);
  }
  return spent;
}

/**
 * For a version whose fault begins `faultAfterMs` after its pods start: from the fault's onset as
 * traffic met it (the later of the switch and the pods' start plus the delay; the pods start with
 * deploySlot) to traffic restored (the rollback's switchTraffic completed).
 */
export function faultOnsetToRestored(events: Event[], faultAfterMs: number): number {
  const types = activityTypes(events);
  const completed = (name: string) =>
    events.filter(
      (e) =>
        e.activityTaskCompletedEventAttributes &&
        types.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId)) === name,
    );
  const [deployed] = completed('deploySlot');
  const [switched, switchedBack] = completed('switchTraffic');
  if (!deployed || !switched || !switchedBack) throw new Error('the history holds no deploy, switch and switch-back');
  return ms(switchedBack) - Math.max(ms(switched), ms(deployed) + faultAfterMs);
}

/**
 * From an operator's abort (the Update accepted, or the signal recorded) to the first read-back of
 * all traffic on the old slot: a canary's verification of weight 0, or blue-green's verification
 * of its switch back. How long the new version kept any traffic after the abort.
 */
export function abortToRestored(events: Event[]): number {
  const types = activityTypes(events);
  const abort = abortEvent(events);
  const verified = events.find((e) => {
    const completed = e.activityTaskCompletedEventAttributes;
    if (!completed || ms(e) < ms(abort)) return false;
    const type = types.get(String(completed.scheduledEventId));
    return (
      type === 'verifyTraffic' ||
      (type === 'verifyTrafficWeight' && (payload(e) as { weight?: number } | null)?.weight === 0)
    );
  });
  if (!verified) throw new Error('no read-back of the old slot after the abort');
  return ms(verified) - ms(abort);
}

/** What a history asked of the Temporal server: its events, workflow tasks, activities (remote and local) and timers. */
export interface RoundTrips {
  events: number;
  workflowTasks: number;
  activities: number;
  localActivities: number;
  timers: number;
}

export function roundTrips(events: Event[]): RoundTrips {
  const count = (has: (event: Event) => unknown) => events.filter(has).length;
  return {
    events: events.length,
    workflowTasks: count((e) => e.workflowTaskCompletedEventAttributes),
    activities: count((e) => e.activityTaskScheduledEventAttributes),
    localActivities: count((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity'),
    timers: count((e) => e.timerStartedEventAttributes),
  };
}

/** A child workflow's run in its parent's history: from its start to its end. */
function childRuns(events: Event[]): [number, number][] {
  const started = new Map<string, number>();
  const runs: [number, number][] = [];
  for (const event of events) {
    const start = event.childWorkflowExecutionStartedEventAttributes;
    if (start) started.set(String(start.workflowExecution?.workflowId), ms(event));
    const end =
      event.childWorkflowExecutionCompletedEventAttributes ?? event.childWorkflowExecutionFailedEventAttributes;
    if (end) runs.push([started.get(String(end.workflowExecution?.workflowId)) ?? ms(event), ms(event)]);
  }
  return runs;
}

/**
 * A release train's own cost: its wall time minus the time any of its deployments was running (a
 * wave's side by side counted once). The soaks and monitor windows are inside the deployments; what
 * is left is the train's: starting, deciding between stages, starting each child, ending.
 */
export function trainOverhead(events: Event[]): { wall: number; deploying: number; overhead: number } {
  const wall = ms(events.at(-1)) - ms(events[0]);
  let deploying = 0;
  let reached = -Infinity;
  for (const [from, to] of childRuns(events).sort((a, b) => a[0] - b[0])) {
    deploying += Math.max(0, to - Math.max(from, reached));
    reached = Math.max(reached, to);
  }
  return { wall, deploying, overhead: wall - deploying };
}

/**
 * From a train's abort (its Update accepted) to the moment every deployment it was running had
 * read back its traffic on the old slot (each child's verifyTraffic after the abort): the last one.
 */
export function trainAbortToRestored(train: Event[], children: Event[][]): number {
  const restored = children.map((events) => ms(abortEvent(events)) + abortToRestored(events));
  return Math.max(...restored) - ms(abortEvent(train));
}

/** A deployment's operator abort: the Update accepted, or the signal recorded (as a train sends it). */
function abortEvent(events: Event[]): Event {
  const abort = events.find(
    (e) =>
      (e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name ??
        e.workflowExecutionSignaledEventAttributes?.signalName) === 'abort',
  );
  if (!abort) throw new Error('the history holds no abort');
  return abort;
}
