/**
 * Reading spec files for `apply -f` and `edit`: YAML or JSON, one or several
 * documents (YAML `---` separators, or a JSON/YAML list). Pure.
 */
import YAML from 'yaml';

export class DocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DocumentError';
  }
}

function oneLine(text: string): string {
  return text.split('\n')[0].trim();
}

/** Every non-empty document in `text`; a top-level list contributes each element. */
export function parseDocuments(text: string, source: string): unknown[] {
  const docs = YAML.parseAllDocuments(text, { prettyErrors: true });
  if (!Array.isArray(docs)) throw new DocumentError(`${source}: not a YAML document`);
  const values: unknown[] = [];
  docs.forEach((doc, index) => {
    const problem = doc.errors[0];
    if (problem) {
      const where = problem.linePos?.[0] ? ` at line ${problem.linePos[0].line}, column ${problem.linePos[0].col}` : '';
      const label = docs.length > 1 ? ` (document ${index + 1})` : '';
      throw new DocumentError(`${source}${label}: invalid YAML${where}: ${oneLine(problem.message.replace(/ at line \d+, column \d+:?.*$/s, ''))}`);
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) values.push(...value);
    else values.push(value);
  });
  values.forEach((value, index) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DocumentError(`${source}: document ${index + 1} is not a mapping (got ${Array.isArray(value) ? 'a list' : typeof value})`);
    }
  });
  return values;
}

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
