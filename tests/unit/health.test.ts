import assert from 'node:assert/strict';
import { INITIAL_HEALTH, PROBE_HEARTBEAT_SHARE, nextHealth, probeHeartbeatTimeoutSeconds, type HealthState } from '../../workflows/health';

const ok = { ok: true, reason: null };
const fail = (reason = 'token is required') => ({ ok: false, reason });

/** Feeds outcomes through the state machine and returns every step. */
function run(outcomes: { ok: boolean; reason: string | null }[], threshold: number, start: HealthState = INITIAL_HEALTH) {
  const steps = [];
  let state = start;
  for (const outcome of outcomes) {
    const step = nextHealth(state, outcome, threshold);
    steps.push(step);
    state = step;
  }
  return steps;
}

describe('nextHealth', () => {
  it('turns healthy after the first success and reports that as a transition from unknown', () => {
    const [step] = run([ok], 3);
    assert.deepEqual(step, { health: 'healthy', consecutiveFailures: 0, transition: { from: 'unknown', to: 'healthy' } });
  });

  it('is degraded below the threshold and unhealthy exactly at it', () => {
    const steps = run([ok, fail(), fail(), fail(), fail()], 3);
    assert.deepEqual(
      steps.map((s) => [s.health, s.consecutiveFailures]),
      [
        ['healthy', 0],
        ['degraded', 1],
        ['degraded', 2],
        ['unhealthy', 3],
        ['unhealthy', 4],
      ],
    );
  });

  it('marks only health changes as transitions', () => {
    const steps = run([ok, ok, fail(), fail(), fail(), fail(), ok, ok], 3);
    assert.deepEqual(
      steps.map((s) => s.transition?.to ?? null),
      ['healthy', null, 'degraded', null, 'unhealthy', null, 'healthy', null],
    );
  });

  it('one success resets the failure count', () => {
    const steps = run([fail(), fail(), ok, fail(), fail()], 3);
    assert.deepEqual(
      steps.map((s) => s.health),
      ['degraded', 'degraded', 'healthy', 'degraded', 'degraded'],
    );
    assert.equal(steps[4].consecutiveFailures, 2);
  });

  it('with threshold 1 the first failure is unhealthy, even from unknown', () => {
    const [step] = run([fail()], 1);
    assert.deepEqual(step, { health: 'unhealthy', consecutiveFailures: 1, transition: { from: 'unknown', to: 'unhealthy' } });
  });

  it('continues from carried state without a spurious transition', () => {
    const steps = run([fail(), ok], 3, { health: 'unhealthy', consecutiveFailures: 5 });
    assert.equal(steps[0].transition, undefined);
    assert.equal(steps[0].consecutiveFailures, 6);
    assert.deepEqual(steps[1].transition, { from: 'unhealthy', to: 'healthy' });
  });
});

describe('probeHeartbeatTimeoutSeconds', () => {
  it('is eight intervals, from one to five minutes: a probe loop heartbeats a few times an hour, not every interval', () => {
    assert.equal(probeHeartbeatTimeoutSeconds(2), 60);
    assert.equal(probeHeartbeatTimeoutSeconds(10), 80);
    assert.equal(probeHeartbeatTimeoutSeconds(30), 240);
    assert.equal(probeHeartbeatTimeoutSeconds(3_600), 300);
    // At 30 s probes: a heartbeat every 168 s, where it used to be every 48 s.
    assert.equal(probeHeartbeatTimeoutSeconds(30) * PROBE_HEARTBEAT_SHARE, 168);
  });
});
