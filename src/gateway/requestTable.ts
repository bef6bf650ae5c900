/**
 * JSON-RPC id remapping for one upstream connection shared by many client
 * sessions: every request sent upstream gets a fresh id from this table, and the
 * reply finds its way back by that id, so two sessions that both use id 1 never see
 * each other's replies. Progress tokens are remapped the same way, because clients
 * commonly reuse their request id as their progress token.
 */
export type JsonRpcId = string | number;

export class RequestTable<T> {
  private nextId = 1;
  private readonly pending = new Map<number, T>();

  /** Registers an entry and returns the id to use upstream. */
  add(entry: T): number {
    const id = this.nextId++;
    this.pending.set(id, entry);
    return id;
  }

  get(id: unknown): T | undefined {
    return typeof id === 'number' ? this.pending.get(id) : undefined;
  }

  /** Removes and returns the entry for a reply; undefined for an unknown or repeated id. */
  take(id: unknown): T | undefined {
    if (typeof id !== 'number') return undefined;
    const entry = this.pending.get(id);
    if (entry !== undefined) this.pending.delete(id);
    return entry;
  }

  /** Empties the table, returning what was in flight (to fail it). */
  drain(): T[] {
    const entries = [...this.pending.values()];
    this.pending.clear();
    return entries;
  }

  values(): IterableIterator<T> {
    return this.pending.values();
  }

  get size(): number {
    return this.pending.size;
  }
}

/** A copy of request params whose `_meta.progressToken` is replaced (or absent when token is undefined). */
export function withProgressToken(params: Record<string, unknown> | undefined, token: JsonRpcId | undefined): Record<string, unknown> | undefined {
  const meta = params?._meta as Record<string, unknown> | undefined;
  if (token === undefined) {
    if (!meta || !('progressToken' in meta)) return params;
    const { progressToken: _dropped, ...rest } = meta;
    return { ...params, _meta: rest };
  }
  return { ...(params ?? {}), _meta: { ...(meta ?? {}), progressToken: token } };
}
