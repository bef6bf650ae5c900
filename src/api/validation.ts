/**
 * Request validation for the routes: every path parameter, query string and
 * body is parsed with its schema from contracts/api.ts (the same schemas the
 * OpenAPI document is generated from). A failure is a 400 `{ error, details }`
 * whose details name every bad field.
 */
import type { Request } from 'express';
import type { z } from 'zod';
import { describeFieldErrors, fieldErrorsOf } from '../contracts/spec';
import { instancePathSchema, nodePathSchema, secretPathSchema, serverPathSchema, tokenPathSchema } from '../contracts/api';
import { badRequest } from './errors';

/** The parsed value, or a 400 `invalid <what>: <field>: <message>; ...`. */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors = fieldErrorsOf(result.error);
  throw badRequest(`invalid ${what}: ${describeFieldErrors(errors)}`, errors);
}

/** Express 5 hands a param as string; an array only for wildcard routes, which we do not use. */
function rawParam(req: Request, name: string): string {
  const value = req.params[name];
  return Array.isArray(value) ? value.join('/') : String(value);
}

export function serverNameParam(req: Request): string {
  const name = rawParam(req, 'name');
  return parseWith(serverPathSchema, { name }, `server name "${name}"`).name;
}

export function nodeNameParam(req: Request): string {
  const name = rawParam(req, 'name');
  return parseWith(nodePathSchema, { name }, `node name "${name}"`).name;
}

export function tokenNameParam(req: Request): string {
  const name = rawParam(req, 'name');
  return parseWith(tokenPathSchema, { name }, `token name "${name}"`).name;
}

export function secretNameParam(req: Request): string {
  const name = rawParam(req, 'name');
  return parseWith(secretPathSchema, { name }, `secret name "${name}"`).name;
}

/** The full instance id (`mcp-instance:<server>:<ordinal>`), from the full or the short form. */
export function instanceIdParam(req: Request): string {
  return normalizeInstanceId(rawParam(req, 'id'));
}

/** The full id of an instance given as `mcp-instance:gitea:0` or `gitea:0`; 400 for anything else. */
export function normalizeInstanceId(raw: string): string {
  return parseWith(instancePathSchema, { id: raw }, `instance id "${raw}"`).id;
}

export function queryOf<S extends z.ZodType>(req: Request, schema: S, what: string): z.output<S> {
  return parseWith(schema, req.query, what);
}

/** The parsed JSON body, not yet validated; 400 when the request has none. */
export function jsonBody(req: Request): unknown {
  if (req.body === undefined) throw badRequest('send a JSON body with "Content-Type: application/json"');
  return req.body;
}

export function bodyOf<S extends z.ZodType>(req: Request, schema: S, what: string): z.output<S> {
  return parseWith(schema, jsonBody(req), what);
}
