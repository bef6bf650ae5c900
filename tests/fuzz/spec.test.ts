/**
 * Spec validation under fuzzed input (fast-check, fixed seed): whatever arrives (any
 * JSON-like value, or a spec with some fields right and some wrong), validateSpec never
 * throws, answers ok or field errors, and every field it names is a field of the spec
 * (or "(root)") or an unknown key, named as such in its message; an accepted spec is accepted
 * again unchanged.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { validateSpec } from '../../src/contracts/spec';
import { FUZZ_SEED, fuzzRuns, junk, specLike } from './arbitraries';

/** Every path the spec schema has, as a pattern over the dotted field name. */
const SPEC_FIELDS = [
  /^\(root\)$/,
  /^(name|image|packageName|transport|port|path|replicas)$/,
  /^(command|args)(\.\d+)?$/,
  /^env(\.\d+(\.(name|value|secretRef(\.(name|key))?))?)?$/,
  /^healthCheck(\.(tool|intervalSeconds|timeoutSeconds|failureThreshold|arguments(\..+)?))?$/,
  /^retry(\.(fastDelaySeconds|fastAttempts|slowDelaySeconds|stableSeconds))?$/,
  /^resources(\.(memory|cpus|pids))?$/,
];

function checkAnswer(input: unknown): void {
  const result = validateSpec(input);
  if (result.ok) {
    // What validation accepts, it accepts again as is (defaults applied once).
    const again = validateSpec(JSON.parse(JSON.stringify(result.spec)));
    assert.ok(again.ok, `an accepted spec is rejected when validated again: ${JSON.stringify(again)}`);
    assert.deepEqual(again.spec, result.spec);
    return;
  }
  assert.ok(Array.isArray(result.errors) && result.errors.length > 0, 'a rejection names at least one field');
  for (const error of result.errors) {
    assert.equal(typeof error.field, 'string');
    // An unknown key is named as itself, and its message says it is unknown.
    const unknownKey = error.message.startsWith('unknown field ');
    assert.ok(unknownKey || SPEC_FIELDS.some((p) => p.test(error.field)), `"${error.field}" is not a field of the spec (message: ${error.message})`);
    assert.equal(typeof error.message, 'string');
    assert.ok(error.message.trim().length >= 5, `the message for ${error.field} says what is wrong: "${error.message}"`);
  }
}

describe('fuzz: spec validation', function () {
  this.timeout(60_000);

  it('never throws on any value and names only spec fields', () => {
    fc.assert(
      fc.property(junk, (input) => checkAnswer(input)),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(3000) },
    );
  });

  it('never throws on specs with some fields right and some wrong, and names only spec fields', () => {
    fc.assert(
      fc.property(specLike(), (input) => checkAnswer(input)),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(5000) },
    );
  });

  it('names every unknown key it rejects', () => {
    const unknownKey = fc
      .stringMatching(/^[a-zA-Z][a-zA-Z0-9]{0,11}$/)
      .filter((k) => !/^(name|image|packageName|command|args|transport|port|path|replicas|env|healthCheck|retry|resources)$/.test(k));
    fc.assert(
      fc.property(specLike(), unknownKey, fc.jsonValue(), (spec, key, value) => {
        const input = { ...(spec as object), [key]: value };
        const result = validateSpec(input);
        assert.equal(result.ok, false, `unknown key "${key}" was accepted`);
        if (!result.ok) {
          assert.ok(
            result.errors.some((e) => e.message.includes(key)),
            `no error names the unknown key "${key}": ${JSON.stringify(result.errors)}`,
          );
        }
      }),
      { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) },
    );
  });
});
