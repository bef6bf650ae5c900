/**
 * The package form of a spec's `packageName`: which registry, which package, which
 * version. Pure: the spec schema validates with it, the node's builder installs with it.
 *
 *   "@modelcontextprotocol/server-memory"            npm, latest
 *   "@modelcontextprotocol/server-memory@2026.8.31"  npm, that version (or a range / dist-tag)
 *   "npm:some-server@^1.2"                           npm, explicitly
 *   "pypi:mcp-server-time"                           PyPI, the newest release
 *   "pypi:mcp-server-time@2025.9.25"                 PyPI, exactly that version
 *   "pypi:mcp-server-time@>=2025,<2027"              PyPI, a PEP 440 specifier
 */

export type PackageRegistry = 'npm' | 'pypi';

export interface PackageRef {
  registry: PackageRegistry;
  /** The name as the registry knows it (npm names keep their scope). */
  name: string;
  /** What the spec asked for: a version, range, tag or specifier; null for the newest. */
  version: string | null;
}

export type PackageRefParse = { ok: true; ref: PackageRef } | { ok: false; error: string };

// npm's rules for new package names: lowercase, URL-safe, an optional @scope/.
const NPM_NAME = /^(@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;
// PEP 508 names.
const PYPI_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;
// Versions, ranges, dist-tags and PEP 440 specifiers; never starts with "-", so no installer reads it as an option.
const VERSION = /^[A-Za-z0-9.*+~^<>=!,|_ ][A-Za-z0-9.*+~^<>=!,|_ -]*$/;

export function parsePackageRef(packageName: string): PackageRefParse {
  const prefixed = /^(npm|pypi):(.*)$/.exec(packageName);
  const registry: PackageRegistry = prefixed ? (prefixed[1] as PackageRegistry) : 'npm';
  const rest = prefixed ? prefixed[2] : packageName;
  // The version follows the last "@" that is not the scope's leading one.
  const at = rest.lastIndexOf('@');
  const name = at > 0 ? rest.slice(0, at) : rest;
  const version = at > 0 ? rest.slice(at + 1).trim() : null;
  if (at > 0 && !version) return { ok: false, error: `"${packageName}" has an empty version after "@"` };
  if (registry === 'npm' && !NPM_NAME.test(name)) {
    return {
      ok: false,
      error: `"${name}" is not an npm package name (lowercase letters, digits, "-", ".", "_", "~", an optional @scope/); PyPI packages are written "pypi:<name>"`,
    };
  }
  if (registry === 'pypi' && !PYPI_NAME.test(name)) {
    return { ok: false, error: `"${name}" is not a PyPI package name (letters, digits, ".", "_" or "-")` };
  }
  if (version !== null && !VERSION.test(version)) {
    return { ok: false, error: `"${version}" is not a version, range or specifier` };
  }
  return { ok: true, ref: { registry, name, version } };
}

/** "npm:@scope/name@1.2.3" / "pypi:name@2025.1" — how events and labels name a package (and its exact version). */
export function formatPackageRef(ref: Pick<PackageRef, 'registry' | 'name'>, version?: string | null): string {
  return `${ref.registry}:${ref.name}${version ? `@${version}` : ''}`;
}
