import assert from 'node:assert/strict';
import { ReplicaRouter } from '../../src/gateway/replicas';

describe('gateway replica choice', () => {
  it('sticks a session to one replica per server', () => {
    const router = new ReplicaRouter();
    const first = router.choose('s1', 'gitea', ['r0', 'r1']);
    for (let i = 0; i < 5; i++) assert.equal(router.choose('s1', 'gitea', ['r0', 'r1']), first);
  });

  it('spreads new sessions over the ready replicas', () => {
    const router = new ReplicaRouter();
    const a = router.choose('s1', 'gitea', ['r0', 'r1']);
    const b = router.choose('s2', 'gitea', ['r0', 'r1']);
    assert.notEqual(a, b);
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
