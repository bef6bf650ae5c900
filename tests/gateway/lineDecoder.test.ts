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

  it('decodes a multi-byte character split across chunks', () => {
    const messages: unknown[] = [];
    const decoder = new LineDecoder(
      (m) => messages.push(m),
      () => assert.fail('no garbage expected'),
    );
    const bytes = Buffer.from('{"x":"é€"}\n');
    for (let i = 0; i < bytes.length; i++) decoder.push(bytes.subarray(i, i + 1));
    assert.deepEqual(messages, [{ x: 'é€' }]);
  });

  /** A decoder with a line cap that records what it decodes and each overflow it reports. */
  function cappedDecoder(maxLineBytes: number) {
    const messages: unknown[] = [];
    const overflows: number[] = [];
    const decoder = new LineDecoder(
      (m) => messages.push(m),
      () => assert.fail('an overflowed line is not reported as garbage'),
      maxLineBytes,
      (max) => overflows.push(max),
    );
    return { decoder, messages, overflows };
  }

  it('drops a line longer than the cap up to its newline, says so once, and decodes the next lines', () => {
    const { decoder, messages, overflows } = cappedDecoder(64);
    decoder.push('{"id":1}\n' + 'x'.repeat(40));
    for (let i = 0; i < 100; i++) decoder.push('y'.repeat(1000));
    decoder.push('z\n{"id":2}\n' + 'w'.repeat(63));
    decoder.push('w'.repeat(10) + '\n{"id":3}\n');
    assert.deepEqual(messages, [{ id: 1 }, { id: 2 }, { id: 3 }]);
    assert.deepEqual(overflows, [64, 64], 'once per overflowing line');
  });

  it('a line that reaches the cap only with its last chunk is dropped, and the line after it is not', () => {
    const { decoder, messages, overflows } = cappedDecoder(16);
    decoder.push('{"long":"');
    decoder.push('aaaaaaaaaaaaaaaaaaa"}\n{"id":4}\n');
    assert.deepEqual(messages, [{ id: 4 }]);
    assert.equal(overflows.length, 1);
  });

  it('reports only the start of a long garbage line', () => {
    const garbage: string[] = [];
    const decoder = new LineDecoder(
      () => assert.fail('no message expected'),
      (line) => garbage.push(line),
    );
    decoder.push('#'.repeat(100_000) + '\n{not json either\n');
    assert.deepEqual(
      garbage.map((g) => g.length),
      [500, 16],
    );
  });

  it('keeps only the last stderr lines', () => {
    const ring = new LineRing(2);
    ring.push('one\ntwo\nthree\nfour');
    assert.deepEqual(ring.snapshot(), ['two', 'three', 'four']);
  });
});
