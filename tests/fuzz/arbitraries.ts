/**
 * What the fuzz tests generate. The seed is fixed so `npm test` is repeatable; a failure
 * prints fast-check's seed and path. MCPD_FUZZ_SEED picks another seed, MCPD_FUZZ_SCALE
 * multiplies every run count (e.g. 10 for a long local session).
 */
import fc from 'fast-check';

export const FUZZ_SEED = Number(process.env.MCPD_FUZZ_SEED ?? 0x14_0f_f2);

export function fuzzRuns(runs: number): number {
  const scale = Number(process.env.MCPD_FUZZ_SCALE ?? 1);
  return Math.max(1, Math.round(runs * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

/** Any JSON-like value, including prototype-looking keys and null-prototype objects. */
export const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({
    maxDepth: 3,
    maxKeys: 5,
    withNullPrototype: true,
    withBigInt: false,
    key: fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'toString')),
  }),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Mostly the right kind of value, sometimes anything at all. */
function maybe<T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: junk });
}

const serverName = fc.oneof(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/), fc.string({ maxLength: 50 }));
const secretName = fc.oneof(fc.stringMatching(/^[a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?$/), fc.string({ maxLength: 70 }));
const envName = fc.oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/), fc.string({ maxLength: 12 }));
const smallNumber = fc.oneof(fc.integer({ min: -5, max: 200 }), fc.double({ noNaN: false }), fc.constantFrom(0, 1, 65_535, 65_536, 86_400, 86_401));

const envEntry = fc.record(
  {
    name: maybe(envName),
    value: maybe(fc.string({ maxLength: 20 })),
    secretRef: maybe(fc.record({ name: maybe(secretName), key: maybe(fc.string({ maxLength: 10 })) }, { requiredKeys: [] })),
  },
  { requiredKeys: [] },
);

/**
 * A spec-shaped object: each field present or not, mostly of the right type and often
 * in range, so generated specs reach every refinement (sources, port, duplicate env).
 * `overrides` pins fields (the API fuzz keeps replicas at 0: a valid apply starts nothing).
 */
export function specLike(overrides: Record<string, fc.Arbitrary<unknown>> = {}): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      name: maybe(serverName),
      image: maybe(fc.constantFrom('mcpd/gitea-like:dev', 'busybox', '')),
      packageName: maybe(fc.constantFrom('@modelcontextprotocol/server-everything', '')),
      command: maybe(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 })),
      args: maybe(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 })),
      transport: maybe(fc.constantFrom('stdio', 'http', 'sse', 'websocket')),
      port: maybe(smallNumber),
      path: maybe(fc.oneof(fc.constant('/mcp'), fc.string({ maxLength: 10 }))),
      replicas: maybe(smallNumber),
      env: maybe(fc.array(envEntry, { maxLength: 4 })),
      healthCheck: maybe(
        fc.record(
          {
            tool: maybe(fc.string({ maxLength: 10 })),
            arguments: maybe(fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 })),
            intervalSeconds: maybe(smallNumber),
            timeoutSeconds: maybe(smallNumber),
            failureThreshold: maybe(smallNumber),
          },
          { requiredKeys: [] },
        ),
      ),
      retry: maybe(
        fc.record(
          { fastDelaySeconds: maybe(smallNumber), fastAttempts: maybe(smallNumber), slowDelaySeconds: maybe(smallNumber), stableSeconds: maybe(smallNumber) },
          { requiredKeys: [] },
        ),
      ),
      resources: maybe(
        fc.record(
          { memory: maybe(fc.oneof(smallNumber, fc.constantFrom('512Mi', '1Gi', '12', 'lots'))), cpus: maybe(smallNumber), pids: maybe(smallNumber) },
          { requiredKeys: [] },
        ),
      ),
      ...overrides,
    },
    { requiredKeys: Object.keys(overrides) as never[] },
  );
}

/** Path segments a client might send: names, traversal, encodings, long and odd strings. */
export const pathSegment: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom('..', '.', '../../etc/passwd', 'a/b', '%2e%2e', '%2F', ' ', '\u0000', 'x'.repeat(300), 'gitea:0', 'gitea:-1', 'gitea:abc', ':0', 'a:b:c'),
);
