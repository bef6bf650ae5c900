/**
 * Where the start time of an instance goes, read from its workflow history: every
 * gap between two milestones (workflow started, workflow task started / completed,
 * activity scheduled / started / completed, local activity recorded, RUNNING
 * published) becomes one labelled step.
 * Temporal stamps the events with its own clock, which on this single machine is
 * the bench's clock too, so the steps add up to the measured start time.
 */
import { temporal } from '@temporalio/proto';
import { defaultPayloadConverter } from '@temporalio/common';
import { mcpInstanceStatusKey } from '../src/contracts/searchAttributes';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface Step {
  label: string;
  ms: number;
}

function eventMs(event: HistoryEvent): number {
  const t = event.eventTime;
  if (!t) return 0;
  return Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6;
}

function typeName(event: HistoryEvent): string {
  // The proto enum arrives as a number; its name is what the labels need.
  return temporal.api.enums.v1.EventType[Number(event.eventType ?? 0)] ?? '';
}

/** The activity type of a local activity marker, from its `data` header (the SDK's own encoding). */
function localActivityType(event: HistoryEvent): string | null {
  const marker = event.markerRecordedEventAttributes;
  if (!marker || marker.markerName !== 'core_local_activity') return null;
  const data = marker.details?.data?.payloads?.[0];
  if (!data) return 'local activity';
  try {
    // Core writes the marker's data with snake_case field names.
    const decoded = defaultPayloadConverter.fromPayload<{ activity_type?: string; activityType?: string }>(data);
    return decoded.activity_type ?? decoded.activityType ?? 'local activity';
  } catch {
    return 'local activity';
  }
}

function publishesRunning(event: HistoryEvent): boolean {
  const fields = event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
  const status = fields?.[mcpInstanceStatusKey.name];
  if (!status) return false;
  try {
    return defaultPayloadConverter.fromPayload<string>(status) === 'RUNNING';
  } catch {
    return false;
  }
}

/** Steps from `startedAtMs` (the start call) to `seenAtMs` (the caller saw RUNNING), both epoch ms. */
export function startSteps(events: HistoryEvent[], startedAtMs: number, seenAtMs: number): Step[] {
  const steps = milestoneSteps(events, startedAtMs, (event) => typeName(event) === 'EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES' && publishesRunning(event));
  steps.push({ label: 'RUNNING recorded -> seen by the caller', ms: seenAtMs - lastMs(startedAtMs, steps) });
  return steps;
}

/**
 * Steps from `deletedAtMs` (the delete call) to the instance workflow's end: the stop
 * signal's arrival, the workflow tasks and the activities in between.
 */
export function stopSteps(events: HistoryEvent[], deletedAtMs: number): Step[] {
  const after = events.filter((event) => eventMs(event) >= deletedAtMs);
  return milestoneSteps(
    after,
    deletedAtMs,
    (event) => typeName(event).startsWith('EVENT_TYPE_WORKFLOW_EXECUTION_') && typeName(event) !== 'EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED',
  );
}

function lastMs(fromMs: number, steps: Step[]): number {
  return steps.reduce((ms, step) => ms + step.ms, fromMs);
}

/** One labelled step per milestone event, from `fromMs` until the event `last` accepts (included). */
function milestoneSteps(events: HistoryEvent[], fromMs: number, last: (event: HistoryEvent) => boolean): Step[] {
  const steps: Step[] = [];
  let previous = fromMs;
  const activityTypes = new Map<string, string>();
  let workflowTasks = 0;
  const at = (label: string, ms: number) => {
    steps.push({ label, ms: ms - previous });
    previous = ms;
  };
  for (const event of events) {
    const type = typeName(event);
    const ms = eventMs(event);
    if (type === 'EVENT_TYPE_WORKFLOW_EXECUTION_STARTED') at('API + server workflow -> instance workflow started', ms);
    else if (type === 'EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED') at(`signal ${event.workflowExecutionSignaledEventAttributes?.signalName ?? ''} received`, ms);
    else if (type === 'EVENT_TYPE_WORKFLOW_TASK_STARTED') at(`workflow task ${++workflowTasks}: waiting for a worker`, ms);
    else if (type === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED') at(`workflow task ${workflowTasks}: running`, ms);
    else if (type === 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED') {
      const name = event.activityTaskScheduledEventAttributes?.activityType?.name ?? 'activity';
      activityTypes.set(String(event.eventId), name);
      at(`workflow task -> ${name} scheduled`, ms);
    } else if (type === 'EVENT_TYPE_ACTIVITY_TASK_STARTED') {
      const name = activityTypes.get(String(event.activityTaskStartedEventAttributes?.scheduledEventId)) ?? 'activity';
      at(`${name}: waiting for a worker`, ms);
    } else if (type === 'EVENT_TYPE_ACTIVITY_TASK_COMPLETED') {
      const name = activityTypes.get(String(event.activityTaskCompletedEventAttributes?.scheduledEventId)) ?? 'activity';
      at(`${name}: running`, ms);
    } else if (type === 'EVENT_TYPE_MARKER_RECORDED') {
      const name = localActivityType(event);
      // A local activity's marker is written when the workflow task that ran it completes.
      if (name) at(`workflow task with local ${name}`, ms);
    } else if (last(event)) {
      at(
        type === 'EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES'
          ? 'workflow task -> RUNNING recorded'
          : `workflow task -> ${type.replace('EVENT_TYPE_WORKFLOW_EXECUTION_', '').toLowerCase()}`,
        ms,
      );
    }
    if (last(event)) break;
  }
  return steps;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function percentile90(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.9) - 1)];
}

/** Median per step label over the runs, in the order the steps first appear. */
export function medianSteps(runs: Step[][]): Step[] {
  return stepPercentiles(runs).map(({ label, median }) => ({ label, ms: median }));
}

/** Median and 90th percentile per step label over the runs, in the order the steps first appear. */
export function stepPercentiles(runs: Step[][]): { label: string; median: number; p90: number }[] {
  const labels: string[] = [];
  const values = new Map<string, number[]>();
  for (const run of runs) {
    for (const step of run) {
      if (!values.has(step.label)) {
        labels.push(step.label);
        values.set(step.label, []);
      }
      values.get(step.label)!.push(step.ms);
    }
  }
  return labels.map((label) => ({ label, median: median(values.get(label)!), p90: percentile90(values.get(label)!) }));
}
