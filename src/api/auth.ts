/**
 * One bearer token guards the API and the gateway. It is generated on first
 * start and kept in the data dir with mode 0600, where mcpctl finds it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { readOrCreateSecretFile } from '../secrets/localSecretFile';

export const API_TOKEN_FILE = 'api-token';
const TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]{16,}$/;

export function apiTokenPath(dataDir: string): string {
  return path.join(dataDir, API_TOKEN_FILE);
}

/**
 * Returns the token in `<dataDir>/api-token`, creating it (32 random bytes, hex)
 * when absent. The file is created exclusively, so two processes starting
 * together agree on one token; its mode is tightened to 0600 if it was loosened.
 */
export function ensureApiToken(dataDir: string): string {
  return readOrCreateSecretFile(dataDir, API_TOKEN_FILE, TOKEN_PATTERN, 'API token');
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares digests, so neither the length nor the content of the token leaks through timing. */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

export interface AuthRejection {
  status: 401 | 403;
  wwwAuthenticate: string;
  body: { error: string; details?: unknown };
}

/** The bearer-token check of the API and the gateway: null when allowed, else the rejection to send. */
export function checkBearer(authorization: string | undefined, token: string): AuthRejection | null {
  const match = authorization ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization) : null;
  if (!match) {
    return {
      status: 401,
      wwwAuthenticate: 'Bearer realm="mcpd"',
      body: { error: 'missing bearer token', details: { hint: 'send "Authorization: Bearer <token>"; the token is in <data dir>/api-token' } },
    };
  }
  if (!tokenMatches(match[1], token)) {
    return { status: 403, wwwAuthenticate: 'Bearer realm="mcpd", error="invalid_token"', body: { error: 'invalid bearer token' } };
  }
  return null;
}

/** Sends a rejection on a plain node:http response (the gateway is served without express). */
export function sendRejection(res: ServerResponse, rejection: AuthRejection): void {
  res.writeHead(rejection.status, { 'content-type': 'application/json', 'www-authenticate': rejection.wwwAuthenticate });
  res.end(JSON.stringify(rejection.body));
}

/** 401 without a bearer token (with WWW-Authenticate), 403 with a wrong one. */
export function bearerAuth(token: string): RequestHandler {
  return (req, res, next) => {
    const rejection = checkBearer(req.headers.authorization, token);
    if (rejection) {
      sendRejection(res, rejection);
      return;
    }
    next();
  };
}
