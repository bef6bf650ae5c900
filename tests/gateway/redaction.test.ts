import assert from 'node:assert/strict';
import { MIN_REDACTED_LENGTH, REDACTION_MARKER, SecretRedactor } from '../../src/gateway/redaction';

describe('gateway: redaction of injected secret values', () => {
  const tricky = 'p@ss"wo\\rd\nline2 é';
  const redactor = new SecretRedactor(['0123456789abcdef', tricky]);

  it('replaces a value in every string of a message and counts each replacement', () => {
    const message = {
      jsonrpc: '2.0',
      id: 7,
      result: { content: [{ type: 'text', text: 'token=0123456789abcdef and again 0123456789abcdef' }], structuredContent: { t: '0123456789abcdef' } },
    };
    const { message: out, count } = redactor.redact(message);
    assert.equal(count, 3);
    assert.deepEqual(out.result.content[0].text, `token=${REDACTION_MARKER} and again ${REDACTION_MARKER}`);
    assert.equal(out.result.structuredContent.t, REDACTION_MARKER);
    assert.equal(message.result.structuredContent.t, '0123456789abcdef', 'the input is not modified');
  });

  it('finds a value with quotes, backslashes, newlines and non-ASCII however it was escaped', () => {
    const spellings = {
      raw: `A=${tricky}`,
      json: JSON.stringify({ A: tricky }),
      twiceJson: JSON.stringify(JSON.stringify({ A: tricky })),
      pythonAscii: JSON.stringify({ A: tricky }).replace(/é/g, '\\u00e9'),
      inspect: `{ A: 'p@ss"wo\\\\rd\\nline2 é' }`,
    };
    for (const [how, text] of Object.entries(spellings)) {
      const { message, count } = redactor.redact({ text });
      assert.equal(count, 1, `${how}: ${text}`);
      assert.ok(message.text.includes(REDACTION_MARKER), how);
      for (const piece of ['p@ss', 'line2']) assert.ok(!message.text.includes(piece), `${how} leaks ${piece}: ${message.text}`);
    }
  });

  it('redacts keys, errors and notifications alike, longest value first', () => {
    const r = new SecretRedactor(['secret-value', 'secret-value-longer']);
    const { message, count } = r.redact({ error: { code: -32603, message: 'failed: secret-value-longer', data: { 'secret-value': 1 } } });
    assert.equal(count, 2);
    assert.equal(message.error.message, `failed: ${REDACTION_MARKER}`);
    assert.deepEqual(Object.keys(message.error.data), [REDACTION_MARKER]);
  });

  it('leaves messages without a value untouched (the same object), and values too short to be secret alone', () => {
    const message = { result: { content: [{ type: 'text', text: 'nothing to see' }] } };
    assert.equal(redactor.redact(message).message, message);
    const short = new SecretRedactor(['abc', '']);
    assert.equal(short.active, false);
    assert.equal(MIN_REDACTED_LENGTH, 4);
    assert.equal(short.redact({ text: 'abc' }).count, 0);
  });
});
