import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ReplicaRouter } from '../../src/gateway/replicas';

describe('gateway replica choice', () => {
  it('sticks a session to one replica per server', () => {
    const router = new ReplicaRouter();
    const first = router.choose('s1', 'gitea', ['r0', 'r1']);
    for (let i = 0; i < 5; i++) assert.equal(router.choose('s1', 'gitea', ['r0', 'r1']), first);
  });

  it('spreads new sessions evenly over the ready replicas', () => {
    const router = new ReplicaRouter();
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const id = router.choose(randomUUID(), 'gitea', ['r0', 'r1', 'r2'])!;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    for (const replica of ['r0', 'r1', 'r2']) {
      const share = (counts.get(replica) ?? 0) / 3000;
      assert.ok(share > 0.28 && share < 0.39, `${replica} got ${(share * 100).toFixed(1)} % of the sessions`);
    }
  });

  it('two front gateways choose the same replica for a session without sharing anything', () => {
    const [x, y] = [new ReplicaRouter(), new ReplicaRouter()];
    for (let i = 0; i < 200; i++) {
      const session = randomUUID();
      // The order replicas are listed in differs between processes; the choice must not.
      assert.equal(x.choose(session, 'gitea', ['r0', 'r1', 'r2', 'r3']), y.choose(session, 'gitea', ['r3', 'r1', 'r0', 'r2']));
    }
  });

  it('a replica that leaves moves only its own sessions; one that joins takes none already bound', () => {
    const router = new ReplicaRouter();
    const sessions = Array.from({ length: 300 }, () => randomUUID());
    const before = new Map(sessions.map((s) => [s, router.choose(s, 'gitea', ['r0', 'r1', 'r2'])]));
    for (const s of sessions) {
      const now = router.choose(s, 'gitea', ['r0', 'r2', 'r3']);
      if (before.get(s) !== 'r1') assert.equal(now, before.get(s), 'a session of a replica still ready moved');
      else assert.notEqual(now, 'r1');
    }
  });

  it('a fresh front gateway, after a replica joined, keeps all sessions but the ones the new replica outranks', () => {
    const sessions = Array.from({ length: 1000 }, () => randomUUID());
    const x = new ReplicaRouter();
    const y = new ReplicaRouter();
    const moved = sessions.filter((s) => x.choose(s, 'gitea', ['r0', 'r1']) !== y.choose(s, 'gitea', ['r0', 'r1', 'r2'])).length;
    // Rendezvous hashing moves about 1/3 to the third replica, never between the old two.
    assert.ok(moved > 250 && moved < 420, `${moved} of 1000 moved`);
    for (const s of sessions) if (y.boundTo(s, 'gitea') !== 'r2') assert.equal(y.boundTo(s, 'gitea'), x.boundTo(s, 'gitea'));
  });

  it('moves a session when its replica is no longer ready, and answers nothing when none is', () => {
    const router = new ReplicaRouter();
    assert.equal(router.choose('s1', 'gitea', ['r0']), 'r0');
    assert.equal(router.choose('s1', 'gitea', ['r1']), 'r1');
    assert.equal(router.boundTo('s1', 'gitea'), 'r1');
    assert.equal(router.choose('s1', 'gitea', []), undefined);
  });

  it('binds per server independently and forgets a closed session', () => {
    const router = new ReplicaRouter();
    router.choose('s1', 'gitea', ['g0']);
    router.choose('s1', 'everything', ['e0']);
    assert.deepEqual(router.sessionsOf('g0'), ['s1']);
    router.forgetSession('s1');
    assert.deepEqual(router.sessionsOf('g0'), []);
    assert.equal(router.boundTo('s1', 'everything'), undefined);
  });
});
