import assert from 'node:assert/strict';
import { planRemote, type AttachedRemote, type LinkedInstance, type NodeListing } from '../../src/gateway/remotePlan';

const inst = (id: string, ready = true): LinkedInstance => ({ id, server: 'gitea', transport: 'stdio', containerId: `c-${id}`, ready });
const listing = (gatewayUrl: string, instances: LinkedInstance[], reachable = true): NodeListing => ({ gatewayUrl, reachable, instances });
const notLocal = () => false;

describe('front gateway: what to do with the node gateways’ listings', () => {
  it('attaches every listed instance with its node, ready as its node says', () => {
    const plan = planRemote(new Map(), new Map([['b', listing('http://b', [inst('i0'), inst('i1', false)])]]), notLocal);
    assert.deepEqual(
      plan.attach.map((a) => [a.instance.id, a.node, a.gatewayUrl, a.ready]),
      [
        ['i0', 'b', 'http://b', true],
        ['i1', 'b', 'http://b', false],
      ],
    );
    assert.deepEqual(plan.detach, []);
  });

  it('a node that does not answer keeps its instances attached but out of traffic', () => {
    const plan = planRemote(new Map(), new Map([['b', listing('http://b', [inst('i0')], false)]]), notLocal);
    assert.deepEqual(
      plan.attach.map((a) => a.ready),
      [false],
    );
  });

  it('lets go of instances their node no longer lists, and of every instance of a node gone NotReady', () => {
    const attached = new Map<string, AttachedRemote>([
      ['i0', { node: 'b', url: 'http://b/i0', containerId: 'c-i0' }],
      ['i1', { node: 'c', url: 'http://c/i1', containerId: 'c-i1' }],
    ]);
    const plan = planRemote(attached, new Map([['b', listing('http://b', [])]]), notLocal);
    assert.deepEqual(plan.detach, [
      { id: 'i0', reason: 'node b no longer runs it' },
      { id: 'i1', reason: 'node c is not Ready' },
    ]);
  });

  it('never takes over an instance this process’s own node runs', () => {
    const plan = planRemote(new Map(), new Map([['b', listing('http://b', [inst('i0'), inst('i1')])]]), (id) => id === 'i0');
    assert.deepEqual(
      plan.attach.map((a) => a.instance.id),
      ['i1'],
    );
  });

  it('an instance two nodes list while it moves goes to the node where it is ready, the same on every front', () => {
    const moving = (aReady: boolean, bReady: boolean) =>
      planRemote(
        new Map(),
        new Map([
          ['b', listing('http://b', [inst('i0', bReady)])],
          ['a', listing('http://a', [inst('i0', aReady)])],
        ]),
        notLocal,
      ).attach.map((x) => x.node);
    assert.deepEqual(moving(false, true), ['b']);
    assert.deepEqual(moving(true, false), ['a']);
    assert.deepEqual(moving(true, true), ['a'], 'a tie goes to the first node by name');
  });
});
