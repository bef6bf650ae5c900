/**
 * Every API error is JSON `{ error, details? }` with a status that means
 * something. Temporal and Docker errors are translated here, in one place, so
 * route handlers only throw.
 */
import type { ErrorRequestHandler } from 'express';
import { ServiceError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (message: string, details?: unknown) => new ApiError(400, message, details);
export const notFound = (message: string) => new ApiError(404, message);
export const conflict = (message: string, details?: unknown) => new ApiError(409, message, details);

/** gRPC status codes we care about (see @grpc/grpc-js `status`). */
const GRPC = { DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, FAILED_PRECONDITION: 9, UNAVAILABLE: 14 } as const;

function grpcCode(err: unknown): number | undefined {
  const cause = (err as { cause?: { code?: unknown } })?.cause;
  const code = (err as { code?: unknown })?.code ?? cause?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Translates whatever a handler threw into an ApiError. `subject` names the thing
 * the request was about (e.g. `server "gitea"`) so a 404 reads well.
 */
export function toApiError(err: unknown, subject?: string): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof WorkflowNotFoundError) return notFound(`${subject ?? 'workflow'} not found`);
  if (err instanceof WorkflowUpdateFailedError) {
    // The workflow refused the request (its validator or handler threw): the input or the state is wrong.
    const reason = err.cause?.message ?? err.message;
    return new ApiError(409, `${subject ?? 'workflow'} rejected the request: ${reason}`);
  }
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    return new ApiError(504, `${subject ?? 'workflow'} did not answer in time (is an mcpd worker running?)`);
  }
  const code = grpcCode(err);
  if (code === GRPC.NOT_FOUND) return notFound(`${subject ?? 'workflow'} not found`);
  if (code === GRPC.UNAVAILABLE) return new ApiError(503, 'temporal is unavailable', { reason: (err as Error).message });
  if (code === GRPC.DEADLINE_EXCEEDED) return new ApiError(504, `${subject ?? 'request'} timed out (is an mcpd worker running?)`);
  if (err instanceof ServiceError) return new ApiError(502, `temporal error: ${err.message}`);
  // The secret store builds its messages without values (see secrets/openbao.ts).
  if ((err as Error)?.name === 'SecretStoreError') return new ApiError(502, `secret store: ${(err as Error).message}`);
  const statusCode = (err as { statusCode?: unknown })?.statusCode;
  if (statusCode === 404) return notFound(`${subject ?? 'resource'} not found`);
  return new ApiError(500, err instanceof Error ? err.message : String(err));
}

/** body-parser's errors carry a `type`; they become 400/413 instead of HTML. */
function fromBodyParser(err: unknown): ApiError | undefined {
  const type = (err as { type?: unknown })?.type;
  if (type === 'entity.parse.failed') return badRequest('request body is not valid JSON', { reason: (err as Error).message });
  if (type === 'entity.too.large') return new ApiError(413, 'request body is too large', { limit: (err as { limit?: number }).limit });
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return new ApiError(415, (err as Error).message);
  return undefined;
}

export function errorHandler(log?: { error(obj: object, msg: string): void }): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const apiError = fromBodyParser(err) ?? toApiError(err);
    if (apiError.status >= 500) log?.error({ err: apiError.message, method: req.method, path: req.path }, 'api request failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    const body: { error: string; details?: unknown } = { error: apiError.message };
    if (apiError.details !== undefined) body.details = apiError.details;
    res.status(apiError.status).json(body);
  };
}
