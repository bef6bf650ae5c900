/**
 * Where `mcpctl login` keeps the access tokens it got from an mcpd's OAuth issuer: one
 * entry per mcpd URL in `$XDG_CONFIG_HOME/mcpctl/credentials.json` (default
 * `~/.config/mcpctl/`; MCPCTL_CREDENTIALS names another file), mode 0600, written
 * atomically. mcpctl reads it on every command (resolveConnection), so this module loads
 * nothing but node's own.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface StoredLogin {
  /** The authorization server that issued the token. */
  issuer: string;
  /** The resource (RFC 8707) the token is for: mcpd's resource URI. */
  resource: string;
  accessToken: string;
  /** ISO time; the token is not used after it. */
  expiresAt: string;
  /** Who the token names (its sub), for messages. */
  subject?: string;
  scope?: string;
  /** The client registration (dynamic or --client-id), reused by the next login with the same issuer. */
  client?: Record<string, unknown>;
}

interface CredentialsFile {
  version: 1;
  logins: Record<string, StoredLogin>;
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MCPCTL_CREDENTIALS) return path.resolve(env.MCPCTL_CREDENTIALS);
  const configHome = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(configHome, 'mcpctl', 'credentials.json');
}

function readFile(file: string): CredentialsFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, logins: {} };
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<CredentialsFile>;
  if (parsed.version !== 1 || typeof parsed.logins !== 'object' || parsed.logins === null) throw new Error(`${file} is not an mcpctl credentials file`);
  return parsed as CredentialsFile;
}

function writeFile(file: string, content: CredentialsFile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(temporary, file);
}

/** The login stored for this mcpd URL, if any (expired or not). */
export function readLogin(url: string, env: NodeJS.ProcessEnv = process.env): StoredLogin | undefined {
  return readFile(credentialsPath(env)).logins[url];
}

export function saveLogin(url: string, login: StoredLogin, env: NodeJS.ProcessEnv = process.env): string {
  const file = credentialsPath(env);
  const content = readFile(file);
  content.logins[url] = login;
  writeFile(file, content);
  return file;
}

/** Forgets the login for this URL; false when there was none. */
export function removeLogin(url: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const file = credentialsPath(env);
  const content = readFile(file);
  if (!(url in content.logins)) return false;
  delete content.logins[url];
  writeFile(file, content);
  return true;
}
