import assert from 'node:assert/strict';
import { LineDecoder, LineRing } from '../../src/gateway/lineDecoder';

describe('gateway STDIO framing', () => {
  it('reassembles messages split across chunks and several per chunk', () => {
    const messages: unknown[] = [];
    const decoder = new LineDecoder(
      (m) => messages.push(m),
      () => assert.fail('no garbage expected'),
    );
    decoder.push('{"jsonrpc":"2.0","id":1,"res');
    decoder.push('ult":{}}\n{"jsonrpc":"2.0","method":"a"}\n{"jsonrpc"');
    decoder.push(Buffer.from(':"2.0","id":2,"result":{"x":"é"}}\n'));
    assert.deepEqual(messages, [
      { jsonrpc: '2.0', id: 1, result: {} },
      { jsonrpc: '2.0', method: 'a' },
      { jsonrpc: '2.0', id: 2, result: { x: 'é' } },
    ]);
  });

  it('reports a non-JSON line and goes on', () => {
    const messages: unknown[] = [];
    const garbage: string[] = [];
    const decoder = new LineDecoder(
      (m) => messages.push(m),
      (line) => garbage.push(line),
    );
    decoder.push('hello from a print statement\n{"id":3}\n');
    assert.deepEqual(garbage, ['hello from a print statement']);
    assert.deepEqual(messages, [{ id: 3 }]);
  });

  it('keeps only the last stderr lines', () => {
    const ring = new LineRing(2);
    ring.push('one\ntwo\nthree\nfour');
    assert.deepEqual(ring.snapshot(), ['two', 'three', 'four']);
  });
});
