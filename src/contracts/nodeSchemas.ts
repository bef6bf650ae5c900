/**
 * The zod schemas of node names and labels, and MCPD_NODE_LABELS parsed with them
 * (the patterns and types are in node.ts, which workflow code imports without zod).
 */
import { z } from 'zod';
import { LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN, NODE_NAME_PATTERN, type NodeLabels } from './node';

export const nodeNameSchema = z.string().regex(NODE_NAME_PATTERN, 'must be 1-128 letters, digits, ".", "_" or "-", starting and ending with a letter or digit');

/** Label keys and values as Kubernetes allows them (keys may carry a "prefix/"). */
export const labelKeySchema = z
  .string()
  .regex(LABEL_KEY_PATTERN, 'label keys must be 1-63 letters, digits, ".", "_", "/" or "-", starting and ending with a letter or digit');
export const labelValueSchema = z
  .string()
  .regex(LABEL_VALUE_PATTERN, 'label values must be at most 63 letters, digits, ".", "_" or "-", starting and ending with a letter or digit');
export const nodeLabelsSchema = z.record(labelKeySchema, labelValueSchema);

/**
 * MCPD_NODE_LABELS as labels: "k=v,k=v" (spaces around entries ignored, empty means none).
 * Returns one message naming the bad entry instead of throwing, so settings can report it with the variable.
 */
export function parseNodeLabels(raw: string): { ok: true; labels: NodeLabels } | { ok: false; error: string } {
  const labels: NodeLabels = {};
  for (const entry of raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const eq = entry.indexOf('=');
    if (eq < 0) return { ok: false, error: `"${entry}" is not key=value` };
    const key = entry.slice(0, eq).trim();
    const value = entry.slice(eq + 1).trim();
    const keyCheck = labelKeySchema.safeParse(key);
    if (!keyCheck.success) return { ok: false, error: `"${key}": ${keyCheck.error.issues[0].message}` };
    const valueCheck = labelValueSchema.safeParse(value);
    if (!valueCheck.success) return { ok: false, error: `"${key}=${value}": ${valueCheck.error.issues[0].message}` };
    if (key in labels) return { ok: false, error: `"${key}" is given twice` };
    labels[key] = value;
  }
  return { ok: true, labels };
}
