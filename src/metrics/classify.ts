/**
 * The few words metric labels may carry, decided from what mcpd already knows (an
 * error's message, a JSON-RPC code, an exit code). Pure, so every label value is
 * unit-tested, and every function maps unbounded input (messages, methods a client
 * sends) onto a short fixed list: Prometheus keeps one series per label combination,
 * and no label here ever carries a message, a secret or an instance id.
 */

/** Why a start failed, as the operator acts on it. */
export const START_FAILURE_REASONS = ['secret', 'image', 'exit', 'engine', 'handshake', 'spec', 'other'] as const;
export type StartFailureReason = (typeof START_FAILURE_REASONS)[number];

/**
 * The reason class of a failed start, from the message the start activities throw
 * (activities/control.ts secretFailure, src/docker/containers.ts ContainerStartError,
 * the gateway's attach error). Checked in order: a secret failure mentions no image.
 */
export function startFailureReason(message: string): StartFailureReason {
  if (/^secret resolution failed\b/.test(message)) return 'secret';
  if (/\bimage \S+ not found\b|has no image yet|building the image of/.test(message)) return 'image';
  if (/\bcontainer exited\b/.test(message)) return 'exit';
  if (/^cannot attach to instance\b|MCP handshake failed/.test(message)) return 'handshake';
  if (/^docker error\b|^cannot (create|start) container\b|is taken by another container|disappeared right after start/.test(message)) return 'engine';
  if (/exceeds 65535|is not a size|in use by a container this mcpd does not own/.test(message)) return 'spec';
  return 'other';
}

export const SECRET_FAILURE_REASONS = ['not_found', 'unreachable', 'denied', 'sealed', 'invalid', 'other'] as const;
export type SecretFailureReason = (typeof SECRET_FAILURE_REASONS)[number];

/** The class of a "secret resolution failed: ..." message of src/secrets/openbao.ts (it names secret and key, never a value). */
export function secretFailureReason(message: string): SecretFailureReason {
  if (/\bsealed\b/.test(message)) return 'sealed';
  if (/\bunreachable\b|\bHTTP 5\d\d\b|request failed at/.test(message)) return 'unreachable';
  if (/permission denied|HTTP 403\b/.test(message)) return 'denied';
  if (/\bnot found\b|\bhas no key\b/.test(message)) return 'not_found';
  if (/is not a valid secret name|is not a string/.test(message)) return 'invalid';
  return 'other';
}

/**
 * The JSON-RPC codes the gateway answers with for failures that are not the upstream's
 * own (src/gateway/upstream.ts GatewayErrorCode; tests/unit/metrics.test.ts checks they agree).
 */
export const GATEWAY_CODES = { connectionClosed: -32000, requestTimeout: -32001, unavailable: -32003, cancelled: -32800 } as const;

export const CALL_OUTCOMES = ['ok', 'tool_error', 'upstream_error', 'timeout', 'cancelled', 'unavailable', 'connection_closed', 'error'] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

/** How an upstream call ended: a result (isError counts as a tool error), or the error it rejected with. */
export function callOutcome(ended: { result: Record<string, unknown> } | { error: unknown }): CallOutcome {
  if ('result' in ended) return ended.result?.isError === true ? 'tool_error' : 'ok';
  const error = ended.error as { code?: unknown; fromUpstream?: unknown } | null | undefined;
  if (error?.fromUpstream === true) return 'upstream_error';
  switch (error?.code) {
    case GATEWAY_CODES.requestTimeout:
      return 'timeout';
    case GATEWAY_CODES.cancelled:
      return 'cancelled';
    case GATEWAY_CODES.unavailable:
      return 'unavailable';
    case GATEWAY_CODES.connectionClosed:
      return 'connection_closed';
    default:
      return 'error';
  }
}

/** The MCP requests a client (or mcpd itself) sends an upstream; any other method is counted as "other". */
const KNOWN_METHODS = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
]);

/** A method label: passthrough sessions forward any method a client names, so unknown ones collapse to "other". */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'other';
}

export const EXIT_CLASSES = ['clean', 'error', 'killed', 'terminated', 'oom', 'unknown'] as const;
export type ExitClass = (typeof EXIT_CLASSES)[number];

/** A container's exit as a class: 0 clean, 137 killed (oom when the kernel's OOM killer did it), 143 terminated (SIGTERM, e.g. a stop). */
export function exitClass(exitCode: number | null, oomKilled = false): ExitClass {
  if (oomKilled) return 'oom';
  if (exitCode === null || !Number.isFinite(exitCode)) return 'unknown';
  if (exitCode === 0) return 'clean';
  if (exitCode === 137) return 'killed';
  if (exitCode === 143) return 'terminated';
  return 'error';
}
