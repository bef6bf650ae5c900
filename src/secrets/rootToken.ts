/**
 * Where the embedded OpenBao keeps its root token, and how mcpd finds the token it
 * uses: the embedded stack writes the file, mcpd reads it. Both sides import this
 * module, so the process never has to import the embedded stack to find it.
 */
import fs from 'node:fs';
import path from 'node:path';

/** <dir>/root-token, where dir is the embedded OpenBao's folder (<dataDir>/openbao). */
export function rootTokenFile(dir: string): string {
  return path.join(dir, 'root-token');
}

/** BAO_TOKEN when set, else the embedded OpenBao's root token under the data dir. */
export function resolveBaoToken(settings: { baoToken: string | undefined; dataDir: string }): string {
  if (settings.baoToken) return settings.baoToken;
  const file = rootTokenFile(path.join(settings.dataDir, 'openbao'));
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  throw new Error(`no OpenBao token: set BAO_TOKEN, or run the embedded stack (npm start) which keeps one in ${file}`);
}
