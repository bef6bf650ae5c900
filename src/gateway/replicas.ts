/**
 * Which replica serves a client session: a session sticks to one ready replica per
 * server (upstream state such as subscriptions or a server's memory of the client
 * stays consistent). A new binding is chosen by rendezvous (highest random weight)
 * hashing of the session and the ready replicas, a pure function of both: every
 * front gateway that serves the session makes the same choice without asking any
 * other, and sessions spread evenly. Once bound, a session stays on its replica in
 * this process even when others become ready; when the bound replica is no longer
 * ready the session moves (and only the sessions of that replica move).
 */
export class ReplicaRouter {
  /** session -> server -> instance id */
  private readonly bindings = new Map<string, Map<string, string>>();

  choose(session: string, server: string, ready: readonly string[]): string | undefined {
    let perServer = this.bindings.get(session);
    const bound = perServer?.get(server);
    if (bound !== undefined && ready.includes(bound)) return bound;
    if (bound !== undefined) perServer!.delete(server);
    const best = rendezvous(session, ready);
    if (best === undefined) return undefined;
    if (!perServer) this.bindings.set(session, (perServer = new Map<string, string>()));
    perServer.set(server, best);
    return best;
  }

  /** The instance a session is bound to for a server, if any. */
  boundTo(session: string, server: string): string | undefined {
    return this.bindings.get(session)?.get(server);
  }

  /** Sessions currently bound to an instance. */
  sessionsOf(instanceId: string): string[] {
    const sessions: string[] = [];
    for (const [session, perServer] of this.bindings) {
      for (const id of perServer.values()) if (id === instanceId) sessions.push(session);
    }
    return sessions;
  }

  forgetSession(session: string): void {
    this.bindings.delete(session);
  }
}

/** The candidate with the highest hash of (key, candidate); ties (practically never) go to the smaller id, so the result never depends on order. */
export function rendezvous(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const candidate of candidates) {
    const weight = hash32(`${key}\n${candidate}`);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && candidate < best)) {
      best = candidate;
      bestWeight = weight;
    }
  }
  return best;
}

/** FNV-1a over UTF-16 code units with murmur3's finalizer: cheap, stable across processes, well spread. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
