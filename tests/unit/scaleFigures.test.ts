import assert from 'node:assert/strict';
import {
  GOALS,
  checkGoals,
  cpuPercentOfCore,
  cpuTicksFromProcStat,
  eventsPerInstanceHour,
  extrapolate,
  machineBusyPercent,
  machineTicksFromProcStat,
  type ScaleMeasurement,
} from '../../bench/scaleFigures';

const measured: ScaleMeasurement = {
  instances: 200,
  secondsToHealthy: 40,
  secondsToDeleted: 20,
  cpuIdle: { mcpd: 1, temporal: 0.5 },
  cpuSteady: { mcpd: 3, temporal: 2.5 },
  mcpdRssIdleBytes: 100 * 1024 * 1024,
  mcpdRssSteadyBytes: 300 * 1024 * 1024,
  historyEventsPerInstanceHour: 6,
};

describe('scale benchmark figures', () => {
  it('reads user + system ticks from /proc/<pid>/stat, also when the command name has spaces and parentheses', () => {
    const stat = '4242 (node (mcpd) x) S 1 4242 4242 0 -1 4194560 123 0 0 0 1500 250 0 0 20 0 11 0 100 0 0';
    assert.equal(cpuTicksFromProcStat(stat), 1750);
    assert.throws(() => cpuTicksFromProcStat('garbage'), /not a \/proc\/<pid>\/stat line/);
  });

  it('reads the machine busy and total ticks from /proc/stat and the share of its cores busy between two readings', () => {
    const before = machineTicksFromProcStat('cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 1 2');
    assert.deepEqual(before, { busy: 150, total: 1000 });
    const after = machineTicksFromProcStat('cpu  250 10 130 810 50 5 5 0 0 0\n');
    // 250 of the 260 ticks that passed were busy: the machine's cores were 96 % busy.
    assert.equal(machineBusyPercent(before, after).toFixed(1), '96.2');
    assert.throws(() => machineTicksFromProcStat('intr 1 2'), /no aggregate "cpu" line/);
    assert.throws(() => machineBusyPercent(after, after), RangeError);
  });

  it('turns ticks into percent of one core and events into events per instance-hour', () => {
    assert.equal(cpuPercentOfCore(1000, 1600, 100, 60), 10);
    assert.equal(eventsPerInstanceHour(20, 10, 60), 120);
    assert.throws(() => cpuPercentOfCore(0, 1, 100, 0), RangeError);
  });

  it('extrapolates linearly from N to 1,000: times scale with the count, CPU and memory by what the instances added', () => {
    const at1000 = extrapolate(measured, 1000);
    assert.equal(at1000.secondsToHealthy, 200);
    assert.equal(at1000.instancesStartedPerSecond, 5);
    assert.equal(at1000.secondsToDeleted, 100);
    // (3 - 1 + 2.5 - 0.5) x 1000 / 200: idle CPU is not per instance.
    assert.equal(at1000.controlPlaneCpuPercent, 20);
    assert.equal(at1000.mcpdCpuPercent, 10);
    assert.equal(at1000.temporalCpuPercent, 10);
    assert.equal(at1000.mcpdRssPerInstanceBytes, 1024 * 1024);
    assert.equal(at1000.mcpdRssBytes, 1100 * 1024 * 1024);
    assert.equal(at1000.historyEventsPerDay, 6 * 1000 * 24);
  });

  it('checks each goal of issue 9 against the figures scaled to its size', () => {
    const checks = checkGoals(measured);
    assert.deepEqual(
      checks.map((c) => c.met),
      // 100 s to 500 healthy, 20 % per 1,000, 1 MiB per instance, 50 s to delete 500, 6 events per instance-hour.
      [false, false, true, true, true],
    );
    assert.match(checks[0].measured, /^100\.0 s \(x 500\/200\)$/);
    const atGoal = checkGoals({ ...measured, instances: 500, secondsToHealthy: GOALS.healthySecondsFor500 });
    assert.equal(atGoal[0].met, true);
    assert.equal(atGoal[0].measured, '60.0 s');
  });
});
