import assert from 'node:assert/strict';
import { MAX_EVENTS } from '../../src/contracts/instance';
import type { HealthTransition } from '../../src/contracts/messages';
import { validateSpec, type McpServerSpec } from '../../src/contracts/spec';
import {
  INITIAL_INSTANCE_STATE,
  afterRetryWait,
  attemptFailed,
  backoffReset,
  beginAttempt,
  containerStarted,
  currentExit,
  detailsLine,
  emptyInbox,
  envWithoutSecrets,
  failing,
  forceRetryWhileRunning,
  healthChanged,
  instanceView,
  msUntilStable,
  nowRunning,
  startSettled,
  probedAtStart,
  readinessChanges,
  replacementReason,
  replacing,
  resumePhase,
  retryWaitEnds,
  runningHasWork,
  searchAttributesKey,
  searchHealth,
  stopped,
  stopping,
  waitingForNode,
  withEvent,
  withRetryRequest,
  type Inbox,
  type InstanceState,
} from '../../workflows/instanceMachine';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (seconds = 0) => new Date(T0 + seconds * 1000).toISOString();

function spec(extra: Record<string, unknown> = {}): McpServerSpec {
  const result = validateSpec({ name: 'gitea', image: 'gitea-mcp:dev', ...extra });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.spec;
}

/** An instance that started attempt 1 and is RUNNING in container c1. */
function runningState(): InstanceState {
  const started = containerStarted(beginAttempt(INITIAL_INSTANCE_STATE, at()), { containerId: 'c1-0123456789abcdef', reused: false }, at());
  return nowRunning(started, at());
}

const inbox = (extra: Partial<Inbox> = {}): Inbox => ({ ...emptyInbox(), ...extra });
const transition = (extra: Partial<HealthTransition>): HealthTransition => ({
  health: 'healthy',
  reason: null,
  liveness: false,
  consecutiveFailures: 0,
  ...extra,
});
const types = (s: InstanceState) => s.events.map((e) => e.type);

describe('instanceMachine', () => {
  describe('the env of an attempt', () => {
    it('needs no resolveEnv when no entry refers to a secret: the values as resolveEnv gives them', () => {
      assert.deepEqual(
        envWithoutSecrets([
          { name: 'MODE', value: 'fast' },
          { name: 'EMPTY', value: '' },
        ]),
        [
          { name: 'MODE', value: 'fast' },
          { name: 'EMPTY', value: '' },
        ],
      );
      assert.deepEqual(envWithoutSecrets([]), []);
    });

    it('has one to pin when any entry refers to a secret', () => {
      assert.equal(
        envWithoutSecrets([
          { name: 'MODE', value: 'fast' },
          { name: 'TOKEN', secretRef: { name: 'gitea', key: 'token' } },
        ]),
        null,
      );
    });
  });

  describe('an attempt', () => {
    it('counts the attempt, bumps the container generation and forgets the previous container and health', () => {
      const before: InstanceState = { ...runningState(), health: 'degraded', healthReason: 'slow', retryRequested: true, nextRetryAt: at(30) };
      const s = beginAttempt(before, at(60));
      assert.equal(s.status, 'STARTING');
      assert.equal(s.attemptCount, 2);
      assert.equal(s.generation, 2);
      assert.equal(s.lastAttemptAt, at(60));
      assert.deepEqual([s.containerId, s.runningSince, s.nextRetryAt, s.healthReason, s.retryRequested], [null, null, null, null, false]);
      assert.equal(s.health, 'unknown');
      assert.deepEqual(s.events.at(-1), { at: at(60), type: 'AttemptStarted', message: 'attempt 2 (generation 2)' });
    });

    it('is RUNNING with no error once the container is started and attached', () => {
      const s = nowRunning(
        containerStarted(failing(beginAttempt(INITIAL_INSTANCE_STATE, at()), 'old'), { containerId: 'abcdef0123456789', reused: true, port: 8080 }, at(1)),
        at(2),
      );
      assert.equal(s.status, 'RUNNING');
      assert.equal(s.error, null);
      assert.equal(s.runningSince, at(2));
      assert.deepEqual(
        s.events.slice(-2).map((e) => e.message),
        ['container abcdef012345 found running from a retried start on port 8080', 'container abcdef012345 is running'],
      );
    });
  });

  describe('a failed attempt', () => {
    it('shows the error at once and waits the fast delay for the first attempts, then the slow one', () => {
      const retry = spec().retry;
      let s = failing(beginAttempt(INITIAL_INSTANCE_STATE, at()), 'secret resolution failed: secret "gitea" has no key "token"');
      assert.equal(s.error, 'secret resolution failed: secret "gitea" has no key "token"');
      s = attemptFailed(s, s.error, T0, retry);
      assert.equal(s.status, 'ERROR');
      assert.equal(s.nextRetryAt, at(30));
      assert.equal(s.events.at(-1)?.message, 'attempt 1 failed: secret resolution failed: secret "gitea" has no key "token"; next attempt in 30s');
      const sixth = attemptFailed({ ...s, attemptCount: 6 }, 'boom', T0, retry);
      assert.equal(sixth.nextRetryAt, at(300));
    });

    it('retries at once when something outside the server took its container down, and says so', () => {
      const s = failing(beginAttempt(INITIAL_INSTANCE_STATE, at()), 'container abc is gone (removed while mcpd was down)');
      const failed = attemptFailed({ ...s, attemptCount: 6 }, s.error!, T0, spec().retry, true);
      assert.equal(failed.status, 'ERROR');
      assert.equal(failed.nextRetryAt, at(0), 'no backoff: the next attempt is due now');
      assert.match(failed.events.at(-1)!.message, /is gone \(removed while mcpd was down\); not the server's fault: next attempt now$/);
    });

    it('reads health unknown whenever the instance is not RUNNING', () => {
      const healthy: InstanceState = { ...runningState(), health: 'healthy', healthReason: null };
      assert.equal(instanceView('i', 'gitea', 0, healthy).health, 'healthy');
      const failed = attemptFailed(failing(healthy, 'container exited with code 137 (killed)'), 'container exited with code 137 (killed)', T0, spec().retry);
      assert.equal(failed.health, 'healthy', 'the last verdict is kept in the state');
      const view = instanceView('i', 'gitea', 0, failed, 'node-a');
      assert.equal(view.status, 'ERROR');
      assert.equal(view.health, 'unknown');
      assert.equal(view.healthReason, null);
      assert.equal(view.node, 'node-a');
    });
  });

  describe('while RUNNING', () => {
    it('wakes for each signal that needs acting on, and for a due continue-as-new', () => {
      const s = runningState();
      assert.equal(runningHasWork(s, inbox(), false), false);
      assert.equal(runningHasWork(s, inbox(), true), true);
      assert.equal(runningHasWork(s, inbox({ stopRequested: true }), false), true);
      assert.equal(runningHasWork(s, inbox({ restartRequested: true }), false), true);
      assert.equal(runningHasWork(s, inbox({ pendingSpec: spec() }), false), true);
      assert.equal(runningHasWork(s, inbox({ healthChanges: [transition({})] }), false), true);
      assert.equal(runningHasWork({ ...s, retryRequested: true }, inbox(), false), true);
    });

    it('acts on the exit of the current container only, never on a late exit of an older one', () => {
      const s = runningState();
      const old = { containerId: 'c0-old', exitCode: 1, reason: 'container exited with code 1' };
      assert.equal(currentExit(s, inbox({ lastExit: old })), null);
      assert.equal(runningHasWork(s, inbox({ lastExit: old }), false), false);
      const mine = { ...old, containerId: s.containerId! };
      assert.deepEqual(currentExit(s, inbox({ lastExit: mine })), mine);
    });

    it('resets the backoff after running stably for stableSeconds, and only when there is a count to reset', () => {
      const s = { ...runningState(), attemptCount: 7 };
      assert.equal(msUntilStable(s, 600, T0 + 100_000), 500_000);
      assert.equal(msUntilStable(s, 600, T0 + 700_000), 1, 'overdue: at once');
      assert.equal(msUntilStable({ ...s, attemptCount: 0 }, 600, T0), undefined);
      const reset = backoffReset(s, 600, at(600));
      assert.equal(reset.attemptCount, 0);
      assert.equal(reset.events.at(-1)?.message, 'running for 600s without a failure: attempt count 7 reset to 0');
    });

    it('records readiness changes and sets readiness; a liveness failure fails the attempt', () => {
      const s = runningState();
      const degraded = healthChanged(s, transition({ health: 'degraded', reason: 'token is required' }), at(5));
      assert.deepEqual(degraded.command, { kind: 'setReady', ready: true });
      assert.equal(degraded.state.health, 'degraded');
      assert.equal(degraded.state.healthReason, 'token is required');
      assert.equal(degraded.state.events.at(-1)?.message, 'readiness degraded: token is required');
      assert.deepEqual(healthChanged(s, transition({ health: 'unhealthy', reason: 'r' }), at()).command, { kind: 'setReady', ready: false });
      const dead = healthChanged(s, transition({ health: 'unhealthy', reason: 'timeout after 10 s', liveness: true }), at());
      assert.deepEqual(dead.command, { kind: 'fail', reason: 'liveness probe failed: timeout after 10 s' });
    });

    it('changes the gateway readiness only when health moves into or out of unhealthy', () => {
      // The gateway attaches an instance ready: its first healthy or degraded report needs no readiness call.
      assert.equal(readinessChanges('unknown', true), false);
      assert.equal(readinessChanges('healthy', true), false);
      assert.equal(readinessChanges('degraded', true), false);
      assert.equal(readinessChanges('healthy', false), true);
      assert.equal(readinessChanges('unknown', false), true);
      assert.equal(readinessChanges('unhealthy', true), true);
      assert.equal(readinessChanges('unhealthy', false), false);
    });

    it('tells a caller waiting for a start when it has an outcome', () => {
      assert.equal(startSettled(INITIAL_INSTANCE_STATE), false, 'not begun');
      assert.equal(startSettled({ ...runningState(), status: 'STARTING' }), false);
      assert.equal(startSettled(runningState()), true);
      assert.equal(startSettled({ ...runningState(), status: 'ERROR' }), true);
      assert.equal(startSettled({ ...INITIAL_INSTANCE_STATE, status: 'PENDING', error: 'no Ready node fits' }), true, 'waiting for a node');
      assert.equal(startSettled({ ...runningState(), status: 'STOPPED' }), true);
    });

    it('is healthy at once when the start probe passed, and unchanged when it failed', () => {
      const s = runningState();
      const passed = probedAtStart(s, { ok: true }, false, at(1));
      assert.equal(passed.health, 'healthy');
      assert.equal(passed.events.at(-1)?.message, 'readiness healthy (probed at start)');
      assert.equal(probedAtStart(s, { ok: true }, true, at(1)).events.at(-1)?.message, 'liveness healthy (probed at start)');
      // A failed start probe is not counted here: the probe loop probes again at once and applies the threshold.
      assert.equal(probedAtStart(s, { ok: false }, false, at(1)), s);
    });

    it('ignores forceRetry of a healthy instance and replaces an unhealthy one', () => {
      const healthy = forceRetryWhileRunning({ ...runningState(), health: 'healthy', retryRequested: true }, at());
      assert.equal(healthy.restart, false);
      assert.equal(healthy.state.retryRequested, false);
      assert.equal(healthy.state.events.at(-1)?.type, 'ForceRetry');
      const unhealthy = forceRetryWhileRunning({ ...runningState(), health: 'unhealthy', retryRequested: true }, at());
      assert.equal(unhealthy.restart, true);
      assert.equal(replacementReason(unhealthy.state, inbox(), unhealthy.restart), 'forceRetry of a unhealthy instance');
    });

    it('replaces the container for a new spec (fresh schedule) before a restart', () => {
      const s = { ...runningState(), attemptCount: 4 };
      assert.equal(replacementReason(s, inbox(), false), null);
      assert.equal(replacementReason(s, inbox({ restartRequested: true }), true), 'restart requested');
      assert.equal(replacementReason(s, inbox({ restartRequested: true, pendingSpec: spec() }), true), 'spec changed');
      const rolled = replacing(s, 'spec changed', true, at());
      assert.equal(rolled.attemptCount, 0);
      assert.deepEqual(rolled.events.at(-1), { at: at(), type: 'SpecChanged', message: 'spec changed: replacing container c1-012345678' });
      assert.equal(replacing(s, 'restart requested', false, at()).attemptCount, 4);
    });
  });

  describe('the retry wait', () => {
    const error: InstanceState = { ...runningState(), status: 'ERROR', attemptCount: 2 };

    it('ends early on forceRetry, stop, restart, a new spec or a due continue-as-new', () => {
      assert.equal(retryWaitEnds(error, inbox(), false), false);
      assert.equal(retryWaitEnds({ ...error, retryRequested: true }, inbox(), false), true);
      for (const extra of [{ stopRequested: true }, { restartRequested: true }, { pendingSpec: spec() }])
        assert.equal(retryWaitEnds(error, inbox(extra), false), true);
      assert.equal(retryWaitEnds(error, inbox(), true), true);
    });

    it('retries when the timer fires, and says why when cut short', () => {
      assert.deepEqual(afterRetryWait(error, inbox(), false, at()), { state: error, next: 'attempt', adoptSpec: false });
      const forced = afterRetryWait({ ...error, retryRequested: true }, inbox(), true, at());
      assert.equal(forced.next, 'attempt');
      assert.equal(forced.state.events.at(-1)?.message, 'forceRetry received: retrying now');
      assert.equal(afterRetryWait(error, inbox({ restartRequested: true }), true, at()).state.events.at(-1)?.type, 'Restart');
    });

    it('names the reason a forceRetry came with (the engine restarted), and forgets it with the next attempt', () => {
      const requested = withRetryRequest(error, 'the Docker engine restarted');
      assert.equal(retryWaitEnds(requested, inbox(), false), true);
      const woke = afterRetryWait(requested, inbox(), true, at());
      assert.equal(woke.next, 'attempt');
      assert.equal(woke.state.events.at(-1)?.message, 'the Docker engine restarted: retrying now');
      assert.equal(beginAttempt(woke.state, at()).retryReason, null);
      assert.equal(withRetryRequest(error, undefined).retryReason, null, "an operator's forceRetry has no reason");
    });

    it('stops on stop, continues as new when woken by nothing else, and adopts a new spec with a fresh schedule', () => {
      assert.equal(afterRetryWait(error, inbox({ stopRequested: true }), true, at()).next, 'stop');
      assert.equal(afterRetryWait(error, inbox(), true, at()).next, 'continueAsNew');
      const adopted = afterRetryWait(error, inbox({ pendingSpec: spec() }), true, at());
      assert.equal(adopted.next, 'attempt');
      assert.equal(adopted.adoptSpec, true);
      assert.equal(adopted.state.attemptCount, 0);
      assert.equal(adopted.state.events.at(-1)?.type, 'SpecChanged');
    });
  });

  describe('waiting for a node', () => {
    it('is PENDING with the reason and the next check, counts no attempt, and records the reason once', () => {
      const reason = 'no Ready node matches placement node=b (b: NotReady)';
      const requested = withRetryRequest(INITIAL_INSTANCE_STATE, undefined);
      const first = waitingForNode(requested, reason, at(2), at());
      assert.equal(first.status, 'PENDING');
      assert.equal(first.error, reason);
      assert.equal(first.nextRetryAt, at(2));
      assert.equal(first.attemptCount, 0);
      assert.equal(first.retryRequested, false, 'the forceRetry that led here is served by this check');
      assert.deepEqual(
        first.events.map((e) => [e.type, e.message]),
        [['NoNode', reason]],
      );
      const again = waitingForNode(first, reason, at(6), at(2));
      assert.equal(again.events.length, 1, 'the same reason is not recorded at every check');
      assert.equal(again.nextRetryAt, at(6));
      assert.equal(waitingForNode(again, 'another reason', at(9), at(6)).events.length, 2);
      assert.equal(resumePhase(again), 'attempt', 'a run continued while waiting checks again at once');
    });
  });

  describe('resume and stop', () => {
    it('resumes a continued run where the last one was', () => {
      assert.equal(resumePhase(runningState()), 'running');
      assert.equal(resumePhase({ ...runningState(), containerId: null }), 'attempt');
      assert.equal(resumePhase({ ...runningState(), status: 'ERROR' }), 'waitRetry');
      assert.equal(resumePhase(beginAttempt(INITIAL_INSTANCE_STATE, at())), 'attempt');
    });

    it('ends STOPPED with no retry due and health unknown', () => {
      const s = stopped(stopping({ ...runningState(), nextRetryAt: at(30), health: 'healthy' }, at()), at(1));
      assert.equal(s.status, 'STOPPED');
      assert.equal(s.nextRetryAt, null);
      assert.equal(s.health, 'unknown');
      assert.deepEqual(types(s).slice(-2), ['Stopping', 'Stopped']);
    });
  });

  describe('the McpHealth search attribute', () => {
    it('carries the verdict while RUNNING and unknown once the instance leaves RUNNING, as the view does', () => {
      const healthy = healthChanged(runningState(), transition({ health: 'healthy' }), at(1)).state;
      assert.equal(searchHealth(healthy), 'healthy');
      assert.equal(searchAttributesKey(healthy), 'RUNNING|healthy');
      const failed = attemptFailed(failing(healthy, 'container exited with code 137'), 'container exited with code 137', T0 + 2000, spec().retry);
      assert.equal(failed.status, 'ERROR');
      assert.equal(failed.health, 'healthy', 'the state keeps the last verdict (the next probe starts from it)');
      assert.equal(searchHealth(failed), 'unknown');
      assert.equal(instanceView('i', 'gitea', 0, failed).health, 'unknown');
      assert.equal(searchAttributesKey(failed), 'ERROR|unknown');
      assert.equal(searchHealth(stopping(healthy, at(3))), 'unknown');
      const unhealthy = healthChanged(runningState(), transition({ health: 'unhealthy', reason: 'timeout' }), at(1)).state;
      assert.equal(searchHealth(unhealthy), 'unhealthy');
    });

    it('keeps the old values for histories recorded before the rule (legacy)', () => {
      const healthy = healthChanged(runningState(), transition({ health: 'healthy' }), at(1)).state;
      const failed = attemptFailed(failing(healthy, 'boom'), 'boom', T0 + 2000, spec().retry);
      assert.equal(searchHealth(failed, true), 'healthy');
      assert.equal(searchAttributesKey(failed, true), 'ERROR|healthy');
    });
  });

  it('keeps the last MAX_EVENTS events', () => {
    let s = INITIAL_INSTANCE_STATE;
    for (let i = 0; i < MAX_EVENTS + 5; i++) s = withEvent(s, at(i), 'E', `e${i}`);
    assert.equal(s.events.length, MAX_EVENTS);
    assert.equal(s.events[0].message, 'e5');
    assert.equal(INITIAL_INSTANCE_STATE.events.length, 0, 'the initial state is not changed');
  });

  it('describes an ERROR instance on one line with its next retry and error', () => {
    const s = attemptFailed(failing(beginAttempt(INITIAL_INSTANCE_STATE, at()), 'boom'), 'boom', T0, spec().retry);
    assert.equal(detailsLine('gitea', 0, s), `gitea#0: ERROR · health unknown · attempt 1 · next retry ${at(30)} · boom`);
  });
});
