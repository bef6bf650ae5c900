import assert from 'node:assert/strict';
import { RequestTable, withProgressToken } from '../../src/gateway/requestTable';

describe('gateway JSON-RPC id remapping', () => {
  it('gives each request its own upstream id, even when two sessions reuse an id', () => {
    const table = new RequestTable<{ session: string; id: number }>();
    const a = table.add({ session: 'A', id: 1 });
    const b = table.add({ session: 'B', id: 1 });
    assert.notEqual(a, b);
    assert.deepEqual(table.take(b), { session: 'B', id: 1 });
    assert.deepEqual(table.take(a), { session: 'A', id: 1 });
  });

  it('delivers a reply once: a repeated or unknown id finds nothing', () => {
    const table = new RequestTable<string>();
    const id = table.add('x');
    assert.equal(table.take(id), 'x');
    assert.equal(table.take(id), undefined);
    assert.equal(table.take('1'), undefined, 'a string id is never one of ours');
  });

  it('drains what is in flight so it can be failed', () => {
    const table = new RequestTable<string>();
    table.add('a');
    table.add('b');
    assert.deepEqual(table.drain().sort(), ['a', 'b']);
    assert.equal(table.size, 0);
  });

  it('replaces the progress token without touching the other params', () => {
    const params = { name: 'echo', arguments: { message: 'hi' }, _meta: { progressToken: 1, other: true } };
    const rewritten = withProgressToken(params, 42);
    assert.deepEqual(rewritten, { name: 'echo', arguments: { message: 'hi' }, _meta: { progressToken: 42, other: true } });
    assert.equal(params._meta.progressToken, 1, 'the caller’s params are not mutated');
    assert.deepEqual(withProgressToken(rewritten, undefined), { name: 'echo', arguments: { message: 'hi' }, _meta: { other: true } });
  });
});
