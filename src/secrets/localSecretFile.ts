/**
 * A secret mcpd generates for itself and keeps in its data dir (the API token, the gateway
 * link secret): created exclusively, so processes starting together agree on one value, and
 * kept at mode 0600 even if it was loosened.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The value in `<dataDir>/<fileName>`, generated when absent; `what` names it in the error for a file that does not match `pattern`. */
export function readOrCreateSecretFile(dataDir: string, fileName: string, pattern: RegExp, what: string): string {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, fileName);
  const generated = randomBytes(32).toString('hex');
  try {
    fs.writeFileSync(file, `${generated}\n`, { mode: 0o600, flag: 'wx' });
    return generated;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  const existing = fs.readFileSync(file, 'utf8').trim();
  if (!pattern.test(existing)) throw new Error(`${file} does not hold a valid ${what}; delete it to generate a new one`);
  return existing;
}
