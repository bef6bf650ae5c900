import assert from 'node:assert/strict';
import { DiscoveryCache } from '../../src/gateway/discoveryCache';

function fakeClock() {
  let now = 1_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('gateway discovery cache', () => {
  it('answers from cache within the positive TTL and reloads after it', async () => {
    const clock = fakeClock();
    const cache = new DiscoveryCache<string[]>({ positiveTtlMs: 100, negativeTtlMs: 10, now: clock.now });
    let loads = 0;
    const load = async () => [`v${++loads}`];
    assert.deepEqual(await cache.get('k', load), ['v1']);
    clock.advance(99);
    assert.deepEqual(await cache.get('k', load), ['v1']);
    clock.advance(2);
    assert.deepEqual(await cache.get('k', load), ['v2']);
  });

  it('remembers a failure for the negative TTL, so a dead upstream costs its timeout once', async () => {
    const clock = fakeClock();
    const cache = new DiscoveryCache<string[]>({ positiveTtlMs: 100, negativeTtlMs: 50, now: clock.now });
    let loads = 0;
    const failing = async () => {
      loads++;
      throw new Error('timeout after 5 s');
    };
    await assert.rejects(cache.get('k', failing), /timeout after 5 s/);
    await assert.rejects(cache.get('k', failing), /timeout after 5 s/);
    assert.equal(loads, 1);
    clock.advance(51);
    await assert.rejects(cache.get('k', failing));
    assert.equal(loads, 2);
  });

  it('shares one load among concurrent callers', async () => {
    const cache = new DiscoveryCache<number>({ positiveTtlMs: 100, negativeTtlMs: 10 });
    let loads = 0;
    let release!: (v: number) => void;
    const load = () => {
      loads++;
      return new Promise<number>((resolve) => (release = resolve));
    };
    const a = cache.get('k', load);
    const b = cache.get('k', load);
    await new Promise((r) => setImmediate(r));
    release(7);
    assert.deepEqual(await Promise.all([a, b]), [7, 7]);
    assert.equal(loads, 1);
  });

  it('does not keep an answer that was loading when the key was invalidated', async () => {
    const cache = new DiscoveryCache<string>({ positiveTtlMs: 1000, negativeTtlMs: 10 });
    let release!: (v: string) => void;
    const first = cache.get('k', () => new Promise<string>((resolve) => (release = resolve)));
    await new Promise((r) => setImmediate(r));
    cache.invalidate('k');
    release('stale');
    assert.equal(await first, 'stale');
    assert.equal(await cache.get('k', async () => 'fresh'), 'fresh');
  });

  it('invalidates by predicate (one server, every list)', async () => {
    const cache = new DiscoveryCache<string>({ positiveTtlMs: 1000, negativeTtlMs: 10 });
    await cache.get('a\ntools', async () => 'a-tools');
    await cache.get('b\ntools', async () => 'b-tools');
    cache.invalidateWhere((key) => key.startsWith('a\n'));
    assert.equal(cache.peek('a\ntools'), undefined);
    assert.deepEqual(cache.peek('b\ntools'), { value: 'b-tools' });
  });
});
