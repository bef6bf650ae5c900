/**
 * One audit record per client request of a gateway session (/mcp or
 * /mcp/servers/<name>): the session's transport is watched in both directions, a
 * request starts a draft, its reply (or its cancellation, or the session's end) closes
 * it. Whoever handles the request fills in what only it knows (which server and
 * replica, the upstream's name of the tool, a policy's decision, redactions) through
 * note(id). Notifications are not recorded.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { AuditDecision, AuditRecord } from '../contracts/audit';
import type { Principal } from '../contracts/api';
import type { AuditSink } from '../audit/log';
import { mcpTarget, replyOutcome, roundedMs } from '../audit/record';
import type { JsonRpcId } from './requestTable';

/** What the handler of a request knows and the transport does not. */
export interface AuditNote {
  server?: string;
  instance?: string;
  target?: string | null;
  redactions?: number;
  decision?: AuditDecision;
  decidedBy?: string;
}

interface Draft {
  time: string;
  startedAt: number;
  method: string;
  note: AuditNote;
}

type Message = { id?: JsonRpcId | null; method?: string; params?: Record<string, unknown>; result?: unknown; error?: unknown };

export class SessionAudit {
  private readonly open = new Map<JsonRpcId, Draft>();
  private readonly principal: AuditRecord['principal'];
  private readonly decidedBy: string;

  constructor(
    private readonly sink: AuditSink,
    principal: Principal | undefined,
    /** The server of a /mcp/servers/<name> session; undefined for /mcp. */
    private readonly server: string | undefined,
  ) {
    this.principal = principal ? { name: principal.name, source: principal.source } : null;
    // The token's role let the session in; a policy, when one decides, says so in the note.
    this.decidedBy = principal ? `role ${principal.role}` : 'gateway link';
  }

  /** The note of a request in flight, for its handler to fill in. */
  note(id: JsonRpcId): AuditNote | undefined {
    return this.open.get(id)?.note;
  }

  received(message: Message): void {
    if (message.method === undefined) return;
    if (message.id === undefined || message.id === null) {
      if (message.method === 'notifications/cancelled') {
        const requestId = message.params?.requestId as JsonRpcId | undefined;
        if (requestId !== undefined) this.finish(requestId, { outcome: 'cancelled' });
      }
      return;
    }
    // initialize is the session's handshake, not a request about anything; ping neither.
    if (message.method === 'initialize' || message.method === 'ping') return;
    this.open.set(message.id, {
      time: new Date().toISOString(),
      startedAt: performance.now(),
      method: message.method,
      note: { target: mcpTarget(message.method, message.params) },
    });
  }

  sent(message: Message): void {
    if (message.method !== undefined || message.id === undefined || message.id === null) return;
    if (!this.open.has(message.id)) return;
    this.finish(message.id, replyOutcome(message));
  }

  /** The session ended: requests still open were cut off. */
  closed(): void {
    for (const id of [...this.open.keys()]) this.finish(id, { outcome: 'cancelled' });
  }

  private finish(id: JsonRpcId, end: Pick<AuditRecord, 'outcome' | 'code' | 'error'>): void {
    const draft = this.open.get(id);
    if (!draft) return;
    this.open.delete(id);
    const { note } = draft;
    this.sink.write({
      time: draft.time,
      kind: 'mcp',
      principal: this.principal,
      server: note.server ?? this.server ?? null,
      instance: note.instance ?? null,
      method: draft.method,
      target: note.target ?? null,
      decision: note.decision ?? 'allowed',
      decidedBy: note.decidedBy ?? this.decidedBy,
      outcome: end.outcome,
      ...(end.code !== undefined ? { code: end.code } : {}),
      ...(end.error !== undefined ? { error: end.error } : {}),
      latencyMs: roundedMs(performance.now() - draft.startedAt),
      redactions: note.redactions ?? 0,
    });
  }
}

/**
 * Watches a session transport for the audit: every message the client sends (before
 * any check, so refused requests are recorded too) and every reply it gets.
 */
export function auditTransport(transport: Transport, audit: SessionAudit): void {
  const deliver = transport.onmessage;
  transport.onmessage = (message, extra) => {
    audit.received(message);
    deliver?.(message, extra);
  };
  const send = transport.send.bind(transport);
  transport.send = (message: JSONRPCMessage, options) => {
    audit.sent(message);
    return send(message, options);
  };
}
