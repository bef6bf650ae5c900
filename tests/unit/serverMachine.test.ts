import assert from 'node:assert/strict';
import type { InstanceView } from '../../src/contracts/instance';
import { validateSpec, type McpServerSpec } from '../../src/contracts/spec';
import {
  READY_TIMEOUT_SECONDS,
  carriedState,
  containerBefore,
  currentOrdinals,
  hasPendingChange,
  initialServerState,
  needsRoll,
  nextPollDelaySeconds,
  nextReconcileStep,
  ordinalsToStart,
  ordinalsToStop,
  rollStopsHere,
  rolledOnto,
  rolloutHaltedError,
  rolloutPending,
  sameSpecIgnoringReplicas,
  serverView,
  startedRecord,
  wantedOrdinals,
  withDesiredChange,
  type ServerState,
} from '../../workflows/serverMachine';

function spec(extra: Record<string, unknown> = {}): McpServerSpec {
  const result = validateSpec({ name: 'gitea', image: 'gitea-mcp:dev', ...extra });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.spec;
}

const idOf = (ordinal: number) => `mcp-instance:gitea:${ordinal}`;

/** A running server whose instances 0..n-1 run spec version `version`, converged. */
function converged(replicas: number, version = 1): ServerState {
  const s = initialServerState({ spec: spec({ replicas }), node: 'n1', running: true });
  for (let o = 0; o < replicas; o++) s.instances.set(o, startedRecord(o, version));
  return { ...s, specVersion: version, converged: s.requested };
}

function view(extra: Partial<InstanceView>): InstanceView {
  return {
    id: idOf(0),
    server: 'gitea',
    ordinal: 0,
    status: 'RUNNING',
    health: 'healthy',
    containerId: 'c2',
    attemptCount: 1,
    lastAttemptAt: null,
    nextRetryAt: null,
    error: null,
    healthReason: null,
    runningSince: null,
    events: [],
    ...extra,
  };
}

describe('serverMachine', () => {
  describe('the desired state', () => {
    it('a fresh server has its first reconciliation pending; a continued one has not', () => {
      assert.equal(hasPendingChange(initialServerState({ spec: spec(), node: 'n1', running: false })), true);
      const carried = carriedState(converged(2, 3));
      const resumed = initialServerState({ spec: spec({ replicas: 2 }), node: 'n1', running: true, carried });
      assert.equal(hasPendingChange(resumed), false);
      assert.equal(resumed.specVersion, 3);
      assert.deepEqual([...resumed.instances.keys()], [0, 1]);
    });

    it('a spec change bumps the version and clears a halted rollout; replicas alone do not', () => {
      const halted = { ...converged(2), haltedVersion: 1, rolloutError: 'stuck' };
      const changed = withDesiredChange(halted, { kind: 'apply', spec: spec({ replicas: 2, args: ['v2'] }) });
      assert.deepEqual([changed.specVersion, changed.haltedVersion, changed.rolloutError], [2, null, null]);
      const scaled = withDesiredChange(halted, { kind: 'apply', spec: spec({ replicas: 5 }) });
      assert.deepEqual([scaled.specVersion, scaled.haltedVersion, scaled.spec.replicas], [1, 1, 5]);
      assert.equal(withDesiredChange(halted, { kind: 'scale', replicas: 0 }).spec.replicas, 0);
    });

    it('start asks for a repair; stop and delete want no instances', () => {
      const s = converged(2);
      assert.equal(withDesiredChange({ ...s, running: false }, { kind: 'start' }).repairRequested, true);
      assert.deepEqual(wantedOrdinals(withDesiredChange(s, { kind: 'stop' })), []);
      assert.deepEqual(wantedOrdinals(withDesiredChange(s, { kind: 'delete' })), []);
      assert.deepEqual(wantedOrdinals(s), [0, 1]);
    });
  });

  describe('reconciling', () => {
    it('scales down from the highest ordinal and starts only the missing ones', () => {
      const s = converged(3);
      assert.deepEqual(ordinalsToStop(s, [0]), [2, 1]);
      assert.deepEqual(ordinalsToStart(s, [0, 1, 2, 3, 4], false), [3, 4]);
      assert.deepEqual(ordinalsToStart(s, [0, 1], true), [0, 1], 'a repair starts (or adopts) every wanted instance');
    });

    it('names the instances running or about to run', () => {
      const s = withDesiredChange(converged(2), { kind: 'scale', replicas: 4 });
      assert.deepEqual(currentOrdinals(s), [0, 1, 2, 3]);
      assert.deepEqual(currentOrdinals(withDesiredChange(converged(2), { kind: 'stop' })), [0, 1]);
    });

    it('converges on a change before rolling, rolls before handing over to a new run, else waits', () => {
      const s = converged(2);
      assert.equal(nextReconcileStep(s, false), 'wait');
      assert.equal(nextReconcileStep(s, true), 'continueAsNew');
      const outdated = withDesiredChange(s, { kind: 'apply', spec: spec({ replicas: 2, args: ['v2'] }) });
      assert.equal(nextReconcileStep({ ...outdated, requested: outdated.requested + 1 }, true), 'scale');
      assert.equal(nextReconcileStep(outdated, true), 'roll');
    });
  });

  describe('rolling out a new spec', () => {
    const v2 = () => withDesiredChange(converged(3), { kind: 'apply', spec: spec({ replicas: 3, args: ['v2'] }) });

    it('rolls the outdated instances until the rollout halts or a newer change waits', () => {
      const s = v2();
      assert.equal(rolloutPending(s), true);
      assert.ok(needsRoll(s, 0));
      s.instances.get(0)!.readyVersion = 2;
      assert.equal(needsRoll(s, 0), null);
      assert.equal(rollStopsHere(s), false);
      assert.equal(rollStopsHere({ ...s, requested: s.requested + 1 }), true);
      const halted = { ...s, haltedVersion: 2 };
      assert.equal(rollStopsHere(halted), true);
      assert.equal(rolloutPending(halted), false);
    });

    it('counts an instance as rolled once it runs healthy in a new container', () => {
      assert.equal(containerBefore(view({ containerId: 'c1' })), 'c1');
      assert.equal(containerBefore(view({ status: 'ERROR', containerId: 'c1' })), null);
      assert.equal(containerBefore(undefined), null);
      assert.equal(rolledOnto(view({ containerId: 'c1' }), 'c1'), false, 'still the old container');
      assert.equal(rolledOnto(view({ health: 'degraded' }), 'c1'), false);
      assert.equal(rolledOnto(view({ status: 'STARTING' }), 'c1'), false);
      assert.equal(rolledOnto(null, 'c1'), false);
      assert.equal(rolledOnto(view({}), 'c1'), true);
    });

    it('shows progress, and a halted rollout with its reason until a fixed spec arrives', () => {
      const s = v2();
      s.instances.get(0)!.readyVersion = 2;
      assert.deepEqual(serverView(s, idOf).rollout, { inProgress: true, updated: 1, total: 3, error: null });
      const error = rolloutHaltedError(idOf(1), 2);
      assert.equal(
        error,
        `mcp-instance:gitea:1 was not running healthy on spec version 2 within ${READY_TIMEOUT_SECONDS} s; rollout halted (apply a fixed spec to resume)`,
      );
      assert.deepEqual(serverView({ ...s, haltedVersion: 2, rolloutError: error }, idOf).rollout, { inProgress: false, updated: 1, total: 3, error });
      assert.equal(serverView(converged(3), idOf).rollout, null);
      assert.deepEqual(serverView(converged(2), idOf).instances, [idOf(0), idOf(1)]);
    });
  });

  it('polls back off from 1 s up to 10 s', () => {
    const delays = [1];
    while (delays.length < 6) delays.push(nextPollDelaySeconds(delays.at(-1)!));
    assert.deepEqual(delays, [1, 2, 4, 8, 10, 10]);
  });

  it('compares specs ignoring replicas, key order and absent fields', () => {
    assert.equal(sameSpecIgnoringReplicas(spec({ replicas: 1 }), spec({ replicas: 4 })), true);
    assert.equal(sameSpecIgnoringReplicas(spec(), { ...spec(), path: undefined }), true);
    assert.equal(sameSpecIgnoringReplicas(spec(), spec({ args: ['x'] })), false);
  });
});
