import assert from 'node:assert/strict';
import type { NodeView } from '../../src/contracts/node';
import { validateSpec } from '../../src/contracts/spec';
import { chooseNode, noNodeReason, placeAll, placeInstance } from '../../workflows/placement';

function node(name: string, extra: { status?: NodeView['status']; instances?: number; capacity?: number; labels?: Record<string, string> } = {}): NodeView {
  return {
    name,
    status: extra.status ?? 'Ready',
    reason: extra.status === 'NotReady' ? 'no heartbeat from its worker for 20 s' : null,
    since: '2026-11-26T00:00:00.000Z',
    registration: { engineHost: '/var/run/docker.sock', engineVersion: '26.1.5', labels: extra.labels ?? {}, capacity: extra.capacity ?? 10, worker: 'host/1' },
    instances: extra.instances ?? 0,
  };
}

describe('placement: which node an instance runs on', () => {
  describe('chooseNode', () => {
    it('takes the Ready node with the fewest instances', () => {
      assert.equal(chooseNode([node('a', { instances: 3 }), node('b', { instances: 1 }), node('c', { instances: 2 })], undefined)?.name, 'b');
    });

    it('breaks ties by name, whatever order the nodes come in', () => {
      assert.equal(chooseNode([node('b'), node('a'), node('c')], undefined)?.name, 'a');
      assert.equal(chooseNode([node('c'), node('b'), node('a')], undefined)?.name, 'a');
    });

    it('skips NotReady nodes and full ones', () => {
      const nodes = [node('a', { status: 'NotReady' }), node('b', { instances: 2, capacity: 2 }), node('c', { instances: 5 })];
      assert.equal(chooseNode(nodes, undefined)?.name, 'c');
      assert.equal(chooseNode(nodes.slice(0, 2), undefined), null);
    });

    it('a node that never registered has no capacity', () => {
      assert.equal(chooseNode([{ ...node('a'), registration: null }], undefined), null);
    });

    it('placement.node pins to that node, even when another has fewer instances', () => {
      assert.equal(chooseNode([node('a'), node('b', { instances: 4 })], { node: 'b' })?.name, 'b');
      assert.equal(chooseNode([node('a'), node('b', { status: 'NotReady' })], { node: 'b' }), null);
    });

    it('placement.nodeSelector needs every label to match', () => {
      const nodes = [
        node('a', { labels: { disk: 'ssd' } }),
        node('b', { labels: { disk: 'ssd', zone: 'west' }, instances: 3 }),
        node('c', { labels: { zone: 'west' } }),
      ];
      assert.equal(chooseNode(nodes, { nodeSelector: { disk: 'ssd' } })?.name, 'a');
      assert.equal(chooseNode(nodes, { nodeSelector: { disk: 'ssd', zone: 'west' } })?.name, 'b');
      assert.equal(chooseNode(nodes, { nodeSelector: { disk: 'hdd' } }), null);
    });
  });

  describe('placeAll: a batch of new replicas', () => {
    it('spreads them: each choice counts against the node it took', () => {
      const placed = placeAll([node('a'), node('b')], undefined, [0, 1, 2, 3]);
      assert.deepEqual(
        [...placed.entries()],
        [
          [0, 'a'],
          [1, 'b'],
          [2, 'a'],
          [3, 'b'],
        ],
      );
    });

    it('fills the emptier node first, and respects capacity', () => {
      const placed = placeAll([node('a', { instances: 2, capacity: 3 }), node('b', { capacity: 2 })], undefined, [0, 1, 2, 3, 4]);
      assert.deepEqual([...placed.values()], ['b', 'b', 'a', null, null]);
    });

    it('does not change the nodes it was given', () => {
      const nodes = [node('a')];
      placeAll(nodes, undefined, [0, 1]);
      assert.equal(nodes[0].instances, 0);
    });
  });

  describe('placeInstance: an instance before a later attempt', () => {
    it('keeps a Ready node that still matches its placement', () => {
      assert.deepEqual(placeInstance([node('a', { instances: 9 }), node('b')], undefined, 'a'), { kind: 'keep', node: 'a' });
    });

    it('moves off a NotReady node to the best Ready one, saying why', () => {
      const decision = placeInstance([node('a', { status: 'NotReady' }), node('b', { instances: 1 }), node('c')], undefined, 'a');
      assert.equal(decision.kind, 'place');
      assert.equal(decision.kind === 'place' && decision.node, 'c');
      assert.equal(decision.kind === 'place' && decision.from, 'a');
      assert.match(decision.kind === 'place' ? decision.why : '', /node a is NotReady \(no heartbeat from its worker for 20 s\)/);
    });

    it('moves when a new placement no longer admits its node', () => {
      const decision = placeInstance([node('a'), node('b', { labels: { disk: 'ssd' } })], { nodeSelector: { disk: 'ssd' } }, 'a');
      assert.deepEqual(decision, { kind: 'place', node: 'b', from: 'a', why: 'node a does not match placement nodeSelector disk=ssd' });
    });

    it('stays on a NotReady node that matches when no other fits: its worker may come back', () => {
      assert.deepEqual(placeInstance([node('a', { status: 'NotReady' })], undefined, 'a'), { kind: 'keep', node: 'a' });
    });

    it('places an instance that has no node yet', () => {
      const decision = placeInstance([node('a', { instances: 1 }), node('b')], undefined, null);
      assert.deepEqual(decision, { kind: 'place', node: 'b', from: null, why: 'fewest instances among the Ready nodes matching placement any node' });
    });

    it('has nowhere to go when nothing fits, and says why for each node', () => {
      const nodes = [
        node('a', { labels: { disk: 'hdd' } }),
        node('b', { status: 'NotReady', labels: { disk: 'ssd' } }),
        node('c', { labels: { disk: 'ssd' }, instances: 2, capacity: 2 }),
      ];
      const decision = placeInstance(nodes, { nodeSelector: { disk: 'ssd' } }, null);
      assert.deepEqual(decision, {
        kind: 'none',
        reason: 'no Ready node matches placement nodeSelector disk=ssd (a: labels do not match; c: full (2 of 2 instances); b: NotReady)',
      });
    });

    it('names the Ready nodes first, so nodes long gone (NotReady) do not hide them', () => {
      const gone = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'].map((name) => node(name, { status: 'NotReady' }));
      const reason = noNodeReason([...gone, node('x', { labels: { disk: 'hdd' } }), node('y', { labels: { disk: 'ssd' } })], {
        nodeSelector: { disk: 'nvme' },
      });
      assert.equal(
        reason,
        'no Ready node matches placement nodeSelector disk=nvme (x: labels do not match; y: labels do not match; a1: labels do not match; a2: labels do not match; a3: labels do not match; 3 more, 3 of them NotReady)',
      );
    });

    it('a pinned node that is not registered is named as missing', () => {
      assert.equal(noNodeReason([node('a')], { node: 'gpu-1' }), 'no Ready node matches placement node=gpu-1 (a: not the pinned node)');
      assert.equal(noNodeReason([], undefined), 'no Ready node matches placement any node: no node has registered');
    });
  });

  describe('the spec field', () => {
    it('takes a node, a nodeSelector, or both', () => {
      const ok = validateSpec({ name: 'x', image: 'i', placement: { node: 'host-b.example', nodeSelector: { 'example.com/disk': 'ssd' } } });
      assert.ok(ok.ok);
      assert.deepEqual(ok.ok && ok.spec.placement, { node: 'host-b.example', nodeSelector: { 'example.com/disk': 'ssd' } });
    });

    it('names the bad field', () => {
      const bad = validateSpec({ name: 'x', image: 'i', placement: { node: 'no spaces', nodeSelector: { disk: 'a b' }, zone: 'x' } });
      assert.ok(!bad.ok);
      const fields = !bad.ok ? bad.errors.map((e) => e.field).sort() : [];
      assert.deepEqual(fields, ['placement.node', 'placement.nodeSelector.disk', 'placement.zone']);
    });
  });
});
