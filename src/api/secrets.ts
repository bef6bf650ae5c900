/**
 * Secret requests: validated here, stored through the SecretStore. Values are
 * write-only: no response and no error message ever contains one.
 */
import { SECRET_NAME_PATTERN } from '../contracts/spec';
import { badRequest } from './errors';

const SECRET_KEY_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

export function checkSecretName(name: string): void {
  if (!SECRET_NAME_PATTERN.test(name)) {
    throw badRequest(`invalid secret name "${name}"`, [
      { field: 'name', message: 'must be 1-64 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit' },
    ]);
  }
}

/** `{ "data": { "key": "value" } }` -> the data; 400 naming the bad field (never echoing a value). */
export function parseSecretBody(body: unknown): Record<string, string> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('invalid secret: the body must be a JSON object {"data": {"key": "value"}}', [{ field: '(root)', message: 'must be an object' }]);
  }
  const extra = Object.keys(body).filter((k) => k !== 'data');
  if (extra.length) {
    throw badRequest(`invalid secret: unknown field ${extra.map((k) => `"${k}"`).join(', ')}`, extra.map((k) => ({ field: k, message: 'is not a known field' })));
  }
  const data = (body as { data?: unknown }).data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw badRequest('invalid secret: "data" must be an object of string values', [{ field: 'data', message: 'must be an object of string values' }]);
  }
  const entries = Object.entries(data);
  if (entries.length === 0) throw badRequest('invalid secret: "data" must have at least one key', [{ field: 'data', message: 'must not be empty' }]);
  const errors = entries.flatMap(([key, value]) => {
    if (!SECRET_KEY_PATTERN.test(key)) return [{ field: `data.${key}`, message: 'key must be 1-128 letters, digits, ".", "_" or "-"' }];
    if (typeof value !== 'string') return [{ field: `data.${key}`, message: 'must be a string' }];
    return [];
  });
  if (errors.length) throw badRequest(`invalid secret: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`, errors);
  return data as Record<string, string>;
}
