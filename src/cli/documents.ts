/**
 * The text mcpctl's `edit` and `create secret` work with. Pure. (Spec files are
 * read by client/specDocuments.ts.)
 */
import { DocumentError } from '../client/documentError';

/** `k=v` (from --from-literal / --from-file) -> [k, v]; the key must be non-empty. */
export function splitKeyValue(pair: string, flag: string): [string, string] {
  const eq = pair.indexOf('=');
  // The argument is not echoed: it may be a secret value typed without its key.
  if (eq <= 0) throw new DocumentError(`${flag} expects KEY=VALUE with a non-empty KEY`);
  return [pair.slice(0, eq), pair.slice(eq + 1)];
}

export const EDIT_HEADER = [
  '# Please edit the server spec below. Lines beginning with "#" are ignored,',
  '# and an empty file aborts the edit. If an error occurs while saving, this',
  '# file is reopened with the error at the top.',
];

/** The text mcpctl edit opens: a header, the error of the last try if any, then the YAML. */
export function editBuffer(yamlText: string, error?: string): string {
  const header = [...EDIT_HEADER];
  if (error) header.push('#', ...error.split('\n').map((l) => `# error: ${l}`));
  return `${header.join('\n')}\n#\n${yamlText}`;
}

/** The content that matters in an edited buffer: comment lines and surrounding blank lines removed. */
export function stripComments(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .trim();
}
