/**
 * Names on the aggregate endpoint: `<server>__<tool>` (also used for prompts),
 * never longer than 64 characters, because several clients reject longer tool
 * names. A longer name is cut and ends in a short hash of the full name, so it is
 * stable across restarts and lists; the table built from the last listing maps it back.
 */
import { createHash } from 'node:crypto';

export const MAX_NAME_LENGTH = 64;
export const SEPARATOR = '__';
const HASH_LENGTH = 8;

export interface QualifiedName {
  server: string;
  name: string;
}

export function mangle(server: string, name: string): string {
  const full = `${server}${SEPARATOR}${name}`;
  if (full.length <= MAX_NAME_LENGTH) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, HASH_LENGTH);
  // Keep the server prefix readable: the cut happens inside the tool part.
  return `${full.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1)}_${hash}`;
}

/**
 * Server names cannot contain "_" (spec: lowercase letters, digits, "-"), so the
 * first "__" always ends the server part of a name that was not shortened.
 */
export function splitUnshortened(mangled: string): QualifiedName | null {
  const at = mangled.indexOf(SEPARATOR);
  if (at <= 0) return null;
  return { server: mangled.slice(0, at), name: mangled.slice(at + SEPARATOR.length) };
}

/** The reversible lookup for one kind of name (tools or prompts) across servers. */
export class NameTable {
  private readonly byMangled = new Map<string, QualifiedName>();

  /** Replaces the names of one server. Returns the mangled names in input order. */
  setServer(server: string, names: readonly string[]): string[] {
    this.removeServer(server);
    return names.map((name) => {
      const mangled = mangle(server, name);
      this.byMangled.set(mangled, { server, name });
      return mangled;
    });
  }

  removeServer(server: string): void {
    for (const [mangled, q] of this.byMangled) if (q.server === server) this.byMangled.delete(mangled);
  }

  /** The listed name wins; an unshortened name resolves even before any listing. */
  resolve(mangled: string): QualifiedName | null {
    const known = this.byMangled.get(mangled);
    if (known) return known;
    if (mangled.length >= MAX_NAME_LENGTH) return null; // may be shortened: only the table knows it
    return splitUnshortened(mangled);
  }
}
