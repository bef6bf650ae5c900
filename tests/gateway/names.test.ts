import assert from 'node:assert/strict';
import { MAX_NAME_LENGTH, NameTable, mangle } from '../../src/gateway/names';

describe('gateway tool names', () => {
  it('prefixes a tool with its server', () => {
    assert.equal(mangle('gitea', 'get_me'), 'gitea__get_me');
  });

  it('keeps long names within 64 characters with a stable hash suffix', () => {
    const tool = 'a_very_long_tool_name_that_goes_on_and_on_and_on_for_quite_a_while';
    const name = mangle('server-everything', tool);
    assert.equal(name.length, MAX_NAME_LENGTH);
    assert.ok(name.startsWith('server-everything__a_very_long'));
    assert.match(name, /_[0-9a-f]{8}$/);
    assert.equal(mangle('server-everything', tool), name, 'same input, same name');
    assert.notEqual(mangle('server-everything', tool + 'x'), name, 'different tools do not collide');
  });

  it('resolves listed names back, including shortened ones', () => {
    const table = new NameTable();
    const long = 'x'.repeat(80);
    const [short, shortened] = table.setServer('gitea', ['echo', long]);
    assert.deepEqual(table.resolve(short), { server: 'gitea', name: 'echo' });
    assert.deepEqual(table.resolve(shortened), { server: 'gitea', name: long });
  });

  it('resolves an unshortened name before any listing, and not a shortened one', () => {
    const table = new NameTable();
    assert.deepEqual(table.resolve('gitea__get_me'), { server: 'gitea', name: 'get_me' });
    assert.deepEqual(table.resolve('gitea__a__b'), { server: 'gitea', name: 'a__b' }, 'tools may contain "__"');
    assert.equal(table.resolve(mangle('gitea', 'y'.repeat(80))), null);
    assert.equal(table.resolve('no-separator'), null);
  });

  it('forgets a server that is removed', () => {
    const table = new NameTable();
    const [name] = table.setServer('gitea', ['z'.repeat(90)]);
    table.removeServer('gitea');
    assert.equal(table.resolve(name), null);
  });
});
