/**
 * Scoped tokens: named, with a role and an optional expiry, created by an admin,
 * listed without values, revocable. Only the SHA-256 of a token is stored (tokens are
 * 256 random bits, so a fast hash is enough), in `<dataDir>/tokens.json` (mode 0600),
 * written atomically. Processes that share the data dir (npm run cluster) see each
 * other's changes: the file is re-read when it changes (inode, mtime, size), checked at
 * most every RELOAD_CHECK_MS, so a revocation takes effect everywhere within that.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Principal, TokenRole, TokenView } from '../contracts/api';
import { conflict, notFound } from './errors';

export const TOKENS_FILE = 'tokens.json';
/** Scoped tokens start with this, so a leaked one is recognizable (secret scanners, logs). */
export const TOKEN_PREFIX = 'mcpd_';
const RELOAD_CHECK_MS = 500;

interface StoredToken extends TokenView {
  /** sha256 of the token, hex. */
  hash: string;
}

interface TokensFile {
  version: 1;
  tokens: StoredToken[];
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export type TokenLookup = { ok: true; principal: Principal } | { ok: false; reason: 'unknown' | 'expired' };

export class TokenStore {
  private readonly file: string;
  private byHash = new Map<string, StoredToken>();
  /** Which version of the file is loaded: inode and mtime (each write renames a new file into place, so the inode changes even within one mtime tick). */
  private loadedVersion = '';
  private checkedAt = 0;

  constructor(
    dataDir: string,
    private readonly now: () => number = Date.now,
  ) {
    this.file = path.join(dataDir, TOKENS_FILE);
  }

  /** The principal of a presented token, or why there is none. */
  lookup(token: string): TokenLookup {
    if (!token.startsWith(TOKEN_PREFIX)) return { ok: false, reason: 'unknown' };
    this.refresh();
    const stored = this.byHash.get(hashToken(token));
    if (!stored) return { ok: false, reason: 'unknown' };
    if (stored.expiresAt !== null && Date.parse(stored.expiresAt) <= this.now()) return { ok: false, reason: 'expired' };
    return {
      ok: true,
      principal: { name: stored.name, role: stored.role, servers: stored.servers ?? null, source: 'scoped-token', groups: stored.groups ?? [] },
    };
  }

  list(): TokenView[] {
    this.refresh(true);
    return [...this.byHash.values()].map(view).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** A new token; its value is returned here once and never again. 409 when the name is taken. */
  create(name: string, role: TokenRole, expiresInSeconds?: number, servers?: string[], groups?: string[]): { view: TokenView; token: string } {
    const current = this.read();
    if (current.tokens.some((t) => t.name === name)) throw conflict(`token "${name}" already exists (delete it first to replace it)`);
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const createdAt = new Date(this.now());
    const stored: StoredToken = {
      name,
      role,
      createdAt: createdAt.toISOString(),
      expiresAt: expiresInSeconds === undefined ? null : new Date(createdAt.getTime() + expiresInSeconds * 1000).toISOString(),
      servers: servers ?? null,
      ...(groups && groups.length > 0 ? { groups } : {}),
      hash: hashToken(token),
    };
    this.write({ version: 1, tokens: [...current.tokens, stored] });
    return { view: view(stored), token };
  }

  /** Revokes a token at once (in this process; in others sharing the data dir within RELOAD_CHECK_MS). 404 when there is none. */
  revoke(name: string): void {
    const current = this.read();
    if (!current.tokens.some((t) => t.name === name)) throw notFound(`token "${name}" not found`);
    this.write({ version: 1, tokens: current.tokens.filter((t) => t.name !== name) });
  }

  private refresh(force = false): void {
    const now = this.now();
    if (!force && now - this.checkedAt < RELOAD_CHECK_MS) return;
    this.checkedAt = now;
    const version = this.fileVersion();
    if (version !== this.loadedVersion) this.apply(this.read(), version);
  }

  private fileVersion(): string {
    try {
      const stat = fs.statSync(this.file);
      return `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
    } catch {
      return 'absent';
    }
  }

  private apply(contents: TokensFile, version: string): void {
    this.byHash = new Map(contents.tokens.map((t) => [t.hash, t]));
    this.loadedVersion = version;
  }

  private read(): TokensFile {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, tokens: [] };
      throw err;
    }
    const parsed = JSON.parse(text) as TokensFile;
    if (parsed.version !== 1 || !Array.isArray(parsed.tokens)) throw new Error(`${this.file} is not a tokens file of this mcpd version`);
    return parsed;
  }

  /** Atomic: a reader sees the old file or the new one, never half of one. */
  private write(contents: TokensFile): void {
    const temp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(temp, JSON.stringify(contents, null, 2), { mode: 0o600 });
    fs.renameSync(temp, this.file);
    this.apply(contents, this.fileVersion());
    this.checkedAt = this.now();
  }
}

function view(t: StoredToken): TokenView {
  return { name: t.name, role: t.role, createdAt: t.createdAt, expiresAt: t.expiresAt, servers: t.servers ?? null, ...(t.groups ? { groups: t.groups } : {}) };
}
