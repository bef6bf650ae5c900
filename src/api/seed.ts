/**
 * First-start examples: the specs in examples/ are applied and started through
 * the REST API (the same path a user takes), so a new user sees running,
 * healthy instances and one honestly unhealthy one. A marker file in the data
 * dir makes it happen once per data dir.
 */
import fs from 'node:fs';
import path from 'node:path';
import { validateSpec, describeFieldErrors } from '../contracts/spec';
import { McpdClient } from '../client/mcpdClient';
import { parseDocuments } from '../client/specDocuments';

export const SEED_MARKER = 'examples-seeded';
/** Written for a secret an example needs when it does not exist: a visible placeholder, never a usable credential. */
export const PLACEHOLDER_SECRET_VALUE = 'placeholder-set-a-real-value-with-mcpctl-create-secret';

interface SeedLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface SeedOptions {
  /** The API this process serves, e.g. http://127.0.0.1:7400. */
  url: string;
  token: string;
  dataDir: string;
  /** Default: the repository's examples/ folder. */
  examplesDir?: string;
  logger?: SeedLogger;
  /** MCPD_SEED_EXAMPLES=false (or 0/no) skips seeding. */
  env?: NodeJS.ProcessEnv;
}

export interface SeedResult {
  seeded: boolean;
  servers: string[];
  reason?: string;
}

/** The package root (where package.json is), from src/api or dist/src/api alike. */
export function defaultExamplesDir(from = __dirname): string {
  let dir = from;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(from, '..', '..', 'examples');
    dir = parent;
  }
  return path.join(dir, 'examples');
}

/** Reads every *.yaml / *.yml / *.json spec in the folder, validated; throws naming the bad file. */
export function readExampleSpecs(dir: string) {
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort();
  return files.flatMap((file) =>
    parseDocuments(fs.readFileSync(path.join(dir, file), 'utf8'), file).map((doc) => {
      const validation = validateSpec(doc);
      if (!validation.ok) throw new Error(`${file}: invalid spec: ${describeFieldErrors(validation.errors)}`);
      return validation.spec;
    }),
  );
}

/**
 * Applies and starts the examples once per data dir. Never throws: a failure is
 * logged and returned, and the marker is not written, so the next start tries again.
 */
export async function seedExamples(options: SeedOptions): Promise<SeedResult> {
  const env = options.env ?? process.env;
  const marker = path.join(options.dataDir, SEED_MARKER);
  if (/^(0|false|no|off)$/i.test(env.MCPD_SEED_EXAMPLES ?? '')) return { seeded: false, servers: [], reason: 'disabled by MCPD_SEED_EXAMPLES' };
  if (fs.existsSync(marker)) return { seeded: false, servers: [], reason: 'already seeded' };
  const client = new McpdClient({ url: options.url.replace(/\/+$/, ''), token: options.token, tokenSource: 'mcpd' });
  const servers: string[] = [];
  try {
    const specs = readExampleSpecs(options.examplesDir ?? defaultExamplesDir());
    await ensureReferencedSecrets(client, specs, options.logger);
    for (const spec of specs) {
      const applied = await client.applyServer(spec);
      if (!applied.running) await client.startServer(spec.name);
      servers.push(spec.name);
      options.logger?.info({ server: spec.name, outcome: applied.outcome }, 'example server applied and started');
    }
    fs.writeFileSync(marker, `${JSON.stringify({ seededAt: new Date().toISOString(), servers })}\n`, { mode: 0o600 });
    return { seeded: true, servers };
  } catch (err) {
    const reason = (err as Error).message;
    options.logger?.warn({ err: reason, servers }, 'seeding the examples failed; will try again on the next start');
    return { seeded: false, servers, reason };
  }
}

/** A secret an example refers to but nobody created gets placeholder values, so the example runs and shows why it is unhealthy. */
async function ensureReferencedSecrets(client: McpdClient, specs: ReturnType<typeof readExampleSpecs>, logger?: SeedLogger): Promise<void> {
  const wanted = new Map<string, Set<string>>();
  for (const spec of specs) {
    for (const entry of spec.env) {
      if (entry.secretRef) wanted.set(entry.secretRef.name, (wanted.get(entry.secretRef.name) ?? new Set()).add(entry.secretRef.key));
    }
  }
  const existing = new Set((await client.listSecrets()).map((s) => s.name));
  for (const [name, keys] of wanted) {
    if (existing.has(name)) continue;
    await client.putSecret(name, Object.fromEntries([...keys].map((k) => [k, PLACEHOLDER_SECRET_VALUE])));
    logger?.info({ secret: name, keys: [...keys] }, 'placeholder secret created for an example');
  }
}
