/**
 * Pure parts of building images from packages: image names, the build key an image
 * is reused by, the lock (and its hash) recorded from what the installer installed,
 * the executables a package offers, and the one-line reason of a failed install.
 */
import { createHash } from 'node:crypto';
import type { PackageRef, PackageRegistry } from '../contracts/packageRef';

/** Bumped when the way images are laid out changes, so older images are not reused. */
export const RECIPE_VERSION = 'pkg-image/v1';

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** "mcpd/pkg-npm-modelcontextprotocol-server-memory": one repository per package and registry. */
export function imageRepository(ref: Pick<PackageRef, 'registry' | 'name'>): string {
  const slug = ref.name
    .toLowerCase()
    .replace(/^@/, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  // Docker repository path components are at most 255 characters in all; keep names readable and bounded.
  return `mcpd/pkg-${ref.registry}-${slug.slice(0, 100)}`;
}

/** "<version>-<12 hex of the build key>": the version readable in `docker images`, the key making it exact. */
export function imageTag(version: string, buildKey: string): string {
  const cleanVersion = version
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/^[.-]+/, '')
    .slice(0, 100);
  return `${cleanVersion || 'v'}-${buildKey.slice(0, 12)}`;
}

/** What decides whether an existing image can be reused: the recipe, the package, its exact version, the base image. */
export function buildKey(input: { registry: PackageRegistry; name: string; version: string; baseImageId: string }): string {
  return sha256([RECIPE_VERSION, input.registry, input.name, input.version, input.baseImageId].join('\n'));
}

export interface PackageLock {
  /** One line per installed package, sorted: "<name>@<version> <integrity>". */
  lines: string[];
  /** sha256 of the lines. */
  hash: string;
}

function lockOf(lines: string[]): PackageLock {
  const sorted = [...lines].sort();
  return { lines: sorted, hash: sha256(sorted.join('\n')) };
}

export interface NpmLockfile {
  packages?: Record<string, { name?: string; version?: string; integrity?: string; resolved?: string; link?: boolean }>;
}

/** The lock of an npm install, from its package-lock.json (v2/v3): every installed package with version and integrity. */
export function npmLock(lockfile: NpmLockfile): PackageLock {
  const lines: string[] = [];
  for (const [location, entry] of Object.entries(lockfile.packages ?? {})) {
    if (location === '') continue; // the throwaway root project
    const name = location.replace(/^.*node_modules\//, '');
    lines.push(`${location} ${name}@${entry.version ?? '?'} ${entry.integrity ?? entry.resolved ?? (entry.link ? 'link' : 'no-integrity')}`);
  }
  return lockOf(lines);
}

export interface PipReport {
  install?: {
    metadata?: { name?: string; version?: string };
    download_info?: { url?: string; archive_info?: { hash?: string; hashes?: Record<string, string> } };
  }[];
}

/** The lock of a pip install, from its `--report`: every installed distribution with version and sha256. */
export function pipLock(report: PipReport): PackageLock {
  const lines = (report.install ?? []).map((item) => {
    const name = (item.metadata?.name ?? '?').toLowerCase().replace(/[-_.]+/g, '-');
    const hashes = item.download_info?.archive_info?.hashes;
    const hash = hashes?.sha256 ? `sha256:${hashes.sha256}` : (item.download_info?.archive_info?.hash?.replace('=', ':') ?? 'no-hash');
    return `${name}==${item.metadata?.version ?? '?'} --hash=${hash}`;
  });
  return lockOf(lines);
}

/** The installed version of the requested distribution in a pip report (names compare normalized, per PEP 503). */
export function pipInstalledVersion(report: PipReport, name: string): string | null {
  const normalize = (n: string) => n.toLowerCase().replace(/[-_.]+/g, '-');
  const item = (report.install ?? []).find((i) => normalize(i.metadata?.name ?? '') === normalize(name));
  return item?.metadata?.version ?? null;
}

/** An npm package.json's `bin`: a string (named after the package) or a map of name to path. */
export function npmBins(packageJson: { name?: string; bin?: string | Record<string, string> }): Record<string, string> {
  const { bin } = packageJson;
  if (!bin) return {};
  if (typeof bin === 'string') {
    const name = (packageJson.name ?? '').replace(/^@[^/]+\//, '');
    return name ? { [name]: bin } : {};
  }
  return { ...bin };
}

/**
 * The executable to run by default: the spec's entrypoint if the package has it, else the only one,
 * else the one named after the package (as npx and uvx pick). Null with a reason otherwise.
 */
export function chooseExecutable(
  packageName: string,
  own: string[],
  all: string[],
  requested: string | undefined,
): { ok: true; name: string } | { ok: false; error: string } {
  const listed = (names: string[]) => (names.length ? names.map((n) => `"${n}"`).join(', ') : 'none');
  if (requested !== undefined) {
    if (all.includes(requested)) return { ok: true, name: requested };
    return { ok: false, error: `has no executable "${requested}" (it installs ${listed(all)})` };
  }
  if (own.length === 1) return { ok: true, name: own[0] };
  const bare = packageName.replace(/^@[^/]+\//, '');
  const named = own.find((n) => n === bare || n.toLowerCase() === bare.toLowerCase().replace(/_/g, '-'));
  if (named) return { ok: true, name: named };
  if (own.length === 0) return { ok: false, error: 'installs no executable of its own (no npm "bin" / console script); name one with "entrypoint"' };
  return { ok: false, error: `installs several executables (${listed(own)}); choose one with "entrypoint"` };
}

/** npm versions that name exactly one release (no range, no dist-tag). */
export function isExactNpmVersion(version: string | null): version is string {
  return version !== null && /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(version);
}

/** PyPI versions that name exactly one release: a bare version or "==version" (no wildcard). */
export function exactPypiVersion(version: string | null): string | null {
  if (version === null) return null;
  const bare = version.replace(/^===?/, '').trim();
  return /^[0-9][0-9A-Za-z.!+-]*$/.test(bare) ? bare : null;
}

/** The requirement pip is given: a bare version means exactly that version. */
export function pipRequirement(name: string, version: string | null): string {
  if (version === null) return name;
  const exact = exactPypiVersion(version);
  return exact ? `${name}==${exact}` : `${name}${version}`;
}

/**
 * `npm view <pkg>@<range> version --json` prints one string, or an array when a range
 * matches several (ascending); empty output means nothing matched.
 */
export function pickNpmViewVersion(stdout: string): string | null {
  const text = stdout.trim();
  if (!text) return null;
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed === 'string') return parsed;
  if (Array.isArray(parsed) && parsed.length > 0) return String(parsed[parsed.length - 1]);
  return null;
}

/** The installer's own one-line reason, from npm's or pip's error output (log-file hints and blank lines dropped). */
export function installerReason(registry: PackageRegistry, output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (registry === 'npm') {
    try {
      // `--json` errors: {"error": {"code", "summary", "detail"}}
      const json = JSON.parse(output) as { error?: { summary?: string; detail?: string } };
      if (json.error?.summary) return oneLine(json.error.summary);
    } catch {
      // not JSON: plain npm error lines
    }
    const useful = lines
      .filter((l) => /^npm (error|ERR!)/.test(l))
      // npm tags continuation lines with a lowercase code ("notarget", "404"): the text after it is the reason.
      .map((l) => l.replace(/^npm (error|ERR!)\s*/, '').replace(/^(notarget|404|code [A-Z0-9_]+)(\s+|$)/, ''))
      .filter((l) => l && !/^code /.test(l) && !/complete log of this run|^A complete log|^\d{3}$/.test(l));
    return oneLine(useful[0] ?? lines[lines.length - 1] ?? 'npm failed without a message');
  }
  const errors = lines.filter((l) => /^ERROR: /.test(l)).map((l) => l.replace(/^ERROR: /, ''));
  // pip prints "Could not find a version ..." and then "No matching distribution found for ..."; the last says it best.
  return oneLine(errors[errors.length - 1] ?? lines[lines.length - 1] ?? 'pip failed without a message');
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}

export type BuildPhase = 'resolving the version' | 'installing' | 'docker build' | 'waiting for the same build';

/** "building image for npm:@x/y@1.2.3 12 s: installing", the progress line heartbeats carry. */
export function progressLine(display: string, phase: BuildPhase, elapsedMs: number): string {
  return `building image for ${display} ${Math.round(elapsedMs / 1000)} s: ${phase}`;
}
