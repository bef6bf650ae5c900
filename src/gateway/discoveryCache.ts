/**
 * Discovery answers (tools/list and the other lists) per key, with a positive TTL
 * for answers and a negative TTL for failures, so a dead or slow upstream costs its
 * timeout once rather than on every list. Concurrent callers share one load
 * (single-flight). An invalidation during a load makes that load's answer stale:
 * it is handed to the callers already waiting but not kept.
 */
export interface DiscoveryCacheOptions {
  positiveTtlMs: number;
  negativeTtlMs: number;
  now?: () => number;
}

type Entry<V> =
  { state: 'loading'; promise: Promise<V> } | { state: 'ok'; value: V; expiresAt: number } | { state: 'failed'; error: unknown; expiresAt: number };

export class DiscoveryCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly now: () => number;

  constructor(private readonly options: DiscoveryCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  get(key: string, load: () => Promise<V>): Promise<V> {
    const entry = this.entries.get(key);
    if (entry) {
      if (entry.state === 'loading') return entry.promise;
      if (entry.expiresAt > this.now()) {
        return entry.state === 'ok' ? Promise.resolve(entry.value) : Promise.reject(entry.error);
      }
    }
    const promise = Promise.resolve()
      .then(load)
      .then(
        (value) => {
          if (this.entries.get(key) === loading) {
            this.entries.set(key, { state: 'ok', value, expiresAt: this.now() + this.options.positiveTtlMs });
          }
          return value;
        },
        (error: unknown) => {
          if (this.entries.get(key) === loading) {
            this.entries.set(key, { state: 'failed', error, expiresAt: this.now() + this.options.negativeTtlMs });
          }
          throw error;
        },
      );
    const loading: Entry<V> = { state: 'loading', promise };
    this.entries.set(key, loading);
    return promise;
  }

  /** The current answer without loading: a value, a cached failure, or nothing. */
  peek(key: string): { value: V } | { error: unknown } | undefined {
    const entry = this.entries.get(key);
    if (!entry || entry.state === 'loading' || entry.expiresAt <= this.now()) return undefined;
    return entry.state === 'ok' ? { value: entry.value } : { error: entry.error };
  }

  invalidate(key: string): void {
    this.entries.delete(key);
  }

  invalidateWhere(matches: (key: string) => boolean): void {
    for (const key of [...this.entries.keys()]) if (matches(key)) this.entries.delete(key);
  }
}
