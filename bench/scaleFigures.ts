/**
 * The arithmetic of the scale benchmark (bench/scale.bench.ts), kept pure so it is unit
 * tested: CPU share from /proc/<pid>/stat and of the machine from /proc/stat, the
 * extrapolation to 1,000 instances, and the goals of issue 9 checked against the measured values.
 */

/** CPU time a process has used, in clock ticks (user + system), from the text of /proc/<pid>/stat. */
export function cpuTicksFromProcStat(stat: string): number {
  // The command name (field 2) is in parentheses and may contain spaces or ")": fields start after the last ")".
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/<pid>/stat line: ${stat.slice(0, 80)}`);
  const fields = stat
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // After the name: state(3) ppid(4) ... utime(14) stime(15); so utime is the 12th field here.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`no utime/stime in /proc/<pid>/stat: ${stat.slice(0, 80)}`);
  return utime + stime;
}

/** The whole machine's CPU time in clock ticks: busy, and in all. */
export interface MachineTicks {
  busy: number;
  total: number;
}

/** The machine's ticks from the text of /proc/stat (its aggregate "cpu" line). */
export function machineTicksFromProcStat(stat: string): MachineTicks {
  const line = stat.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) throw new Error(`no aggregate "cpu" line in /proc/stat: ${stat.slice(0, 80)}`);
  // user nice system idle iowait irq softirq steal (guest time is already inside user and nice).
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const busy = user + nice + system + irq + softirq + (steal || 0);
  if (![busy, idle, iowait].every(Number.isFinite)) throw new Error(`unreadable "cpu" line in /proc/stat: ${line.slice(0, 80)}`);
  return { busy, total: busy + idle + iowait };
}

/** Percent of the machine's cores busy between two readings of /proc/stat. */
export function machineBusyPercent(before: MachineTicks, after: MachineTicks): number {
  const total = after.total - before.total;
  if (total <= 0) throw new RangeError('the second reading must come after the first');
  return ((after.busy - before.busy) / total) * 100;
}

/** Percent of one core a process used between two readings of its CPU ticks. */
export function cpuPercentOfCore(ticksBefore: number, ticksAfter: number, ticksPerSecond: number, seconds: number): number {
  if (seconds <= 0) throw new RangeError(`seconds must be positive, got ${seconds}`);
  return ((ticksAfter - ticksBefore) / ticksPerSecond / seconds) * 100;
}

/** Events over a window, scaled to one instance and one hour. */
export function eventsPerInstanceHour(events: number, instances: number, seconds: number): number {
  if (instances <= 0 || seconds <= 0) throw new RangeError('instances and seconds must be positive');
  return (events / instances / seconds) * 3600;
}

/** What one run of the scale benchmark measured, with N instances. */
export interface ScaleMeasurement {
  instances: number;
  /** From the apply call to every instance RUNNING and healthy. */
  secondsToHealthy: number;
  /** From the delete call to no container and no workflow left. */
  secondsToDeleted: number;
  /** Percent of one core before the apply (nothing running) and in steady state with N instances. */
  cpuIdle: { mcpd: number; temporal: number };
  cpuSteady: { mcpd: number; temporal: number };
  mcpdRssIdleBytes: number;
  mcpdRssSteadyBytes: number;
  /** Instance and probe workflows together. */
  historyEventsPerInstanceHour: number;
}

export interface Extrapolation {
  instances: number;
  secondsToHealthy: number;
  instancesStartedPerSecond: number;
  secondsToDeleted: number;
  /** Percent of one core that the instances add, per `instances` (idle excluded). */
  controlPlaneCpuPercent: number;
  mcpdCpuPercent: number;
  temporalCpuPercent: number;
  mcpdRssBytes: number;
  mcpdRssPerInstanceBytes: number;
  historyEventsPerDay: number;
}

/**
 * The same figures for `target` instances, assuming what grows with instances grows
 * linearly: starts and deletes proceed at the rate the bounded start concurrency allows,
 * each instance adds the same CPU and memory, and history per instance does not depend
 * on how many there are. FORMULAS prints these lines.
 */
export function extrapolate(m: ScaleMeasurement, target: number): Extrapolation {
  if (m.instances <= 0) throw new RangeError('the measurement has no instances');
  const k = target / m.instances;
  const mcpdAdded = Math.max(0, m.cpuSteady.mcpd - m.cpuIdle.mcpd);
  const temporalAdded = Math.max(0, m.cpuSteady.temporal - m.cpuIdle.temporal);
  const rssPerInstance = Math.max(0, m.mcpdRssSteadyBytes - m.mcpdRssIdleBytes) / m.instances;
  return {
    instances: target,
    secondsToHealthy: m.secondsToHealthy * k,
    instancesStartedPerSecond: m.instances / m.secondsToHealthy,
    secondsToDeleted: m.secondsToDeleted * k,
    controlPlaneCpuPercent: (mcpdAdded + temporalAdded) * k,
    mcpdCpuPercent: mcpdAdded * k,
    temporalCpuPercent: temporalAdded * k,
    mcpdRssBytes: m.mcpdRssIdleBytes + rssPerInstance * target,
    mcpdRssPerInstanceBytes: rssPerInstance,
    historyEventsPerDay: m.historyEventsPerInstanceHour * target * 24,
  };
}

export const FORMULAS = [
  'k = 1000 / N (N = instances measured)',
  'time to healthy(1000) = time to healthy(N) x k        (starts run at the rate MCPD_START_CONCURRENCY allows)',
  'time to delete(1000)  = time to delete(N) x k',
  'CPU(1000)             = (CPU steady(N) - CPU idle) x k  (% of one core the instances add, mcpd + Temporal)',
  'mcpd RSS per instance = (RSS steady(N) - RSS idle) / N;  RSS(1000) = RSS idle + RSS per instance x 1000',
  'history events/day    = events per instance-hour x 1000 x 24',
];

/** The goals of issue 9 on this machine, each with the measured value it is compared to. */
export interface GoalCheck {
  goal: string;
  measured: string;
  met: boolean;
}

export const GOALS = {
  /** 500 instances healthy within 60 s of the apply. */
  healthySecondsFor500: 60,
  /** mcpd + Temporal at most 10 % of one core per 1,000 instances at 30 s probes. */
  cpuPercentPer1000: 10,
  /** mcpd at most 2 MB of RSS per instance. */
  mcpdRssBytesPerInstance: 2 * 1024 * 1024,
  /** Deleting 500 leaves nothing behind within 60 s. */
  deleteSecondsFor500: 60,
  /** At most 10 history events per instance-hour (instance and probe workflows together). */
  historyEventsPerInstanceHour: 10,
} as const;

export function checkGoals(m: ScaleMeasurement): GoalCheck[] {
  const at500 = extrapolate(m, 500);
  const at1000 = extrapolate(m, 1000);
  const scaledNote = m.instances === 500 ? '' : ` (x 500/${m.instances})`;
  return [
    {
      goal: `500 healthy within ${GOALS.healthySecondsFor500} s of apply`,
      measured: `${at500.secondsToHealthy.toFixed(1)} s${scaledNote}`,
      met: at500.secondsToHealthy <= GOALS.healthySecondsFor500,
    },
    {
      goal: `mcpd + Temporal <= ${GOALS.cpuPercentPer1000} % of a core per 1,000`,
      measured: `${at1000.controlPlaneCpuPercent.toFixed(1)} % per 1,000`,
      met: at1000.controlPlaneCpuPercent <= GOALS.cpuPercentPer1000,
    },
    {
      goal: `mcpd RSS <= ${GOALS.mcpdRssBytesPerInstance / 1024 / 1024} MB per instance`,
      measured: `${(at1000.mcpdRssPerInstanceBytes / 1024 / 1024).toFixed(2)} MB per instance`,
      met: at1000.mcpdRssPerInstanceBytes <= GOALS.mcpdRssBytesPerInstance,
    },
    {
      goal: `delete 500, nothing left, within ${GOALS.deleteSecondsFor500} s`,
      measured: `${at500.secondsToDeleted.toFixed(1)} s${scaledNote}`,
      met: at500.secondsToDeleted <= GOALS.deleteSecondsFor500,
    },
    {
      goal: `<= ${GOALS.historyEventsPerInstanceHour} history events per instance-hour`,
      measured: `${m.historyEventsPerInstanceHour.toFixed(0)} per instance-hour`,
      met: m.historyEventsPerInstanceHour <= GOALS.historyEventsPerInstanceHour,
    },
  ];
}
