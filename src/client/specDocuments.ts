/**
 * Reading spec files: YAML or JSON, one or several documents (YAML `---`
 * separators, or a JSON/YAML list). Pure; used by mcpctl (`apply -f`, `edit`)
 * and by mcpd's first-start seeding of the examples.
 */
import YAML from 'yaml';
import { DocumentError } from './documentError';

export { DocumentError };

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
    if (Array.isArray(value)) values.push(...(value as unknown[]));
    else values.push(value);
  });
  values.forEach((value, index) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DocumentError(`${source}: document ${index + 1} is not a mapping (got ${Array.isArray(value) ? 'a list' : typeof value})`);
    }
  });
  return values;
}

/**
 * Where line 1 of the `policy` text of the document-th mapping of a file is, so an error
 * Cedar reports at a line of the policy can name the line of the file. Known for a block
 * scalar (`policy: |`, the usual form) and a one-line value; undefined otherwise (a
 * document inside a top-level list, a multi-line quoted string).
 */
export function policyFirstLine(text: string, documentIndex: number): number | undefined {
  const lineCounter = new YAML.LineCounter();
  const docs = YAML.parseAllDocuments(text, { lineCounter });
  if (!Array.isArray(docs)) return undefined;
  const mappings = docs.filter((d) => d.contents !== null && !YAML.isSeq(d.contents));
  if (mappings.length !== docs.filter((d) => d.contents !== null).length) return undefined;
  const node = mappings[documentIndex]?.get('policy', true);
  if (!YAML.isScalar(node) || !node.range) return undefined;
  const start = lineCounter.linePos(node.range[0]).line;
  if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') return start + 1;
  const end = lineCounter.linePos(node.range[1]).line;
  return start === end ? start : undefined;
}
