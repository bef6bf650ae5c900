/**
 * Which replica serves a client session: a session sticks to one ready replica per
 * server (upstream state such as subscriptions or a server's memory of the client
 * stays consistent); a new binding goes to the ready replica with the fewest
 * sessions. When the bound replica is no longer ready the session moves.
 */
export class ReplicaRouter {
  /** session -> server -> instance id */
  private readonly bindings = new Map<string, Map<string, string>>();
  private readonly load = new Map<string, number>();

  choose(session: string, server: string, ready: readonly string[]): string | undefined {
    let perServer = this.bindings.get(session);
    const bound = perServer?.get(server);
    if (bound !== undefined && ready.includes(bound)) return bound;
    if (bound !== undefined) this.unbind(session, server, bound);
    if (ready.length === 0) return undefined;
    let best = ready[0];
    for (const candidate of ready) if (this.loadOf(candidate) < this.loadOf(best)) best = candidate;
    if (!perServer) this.bindings.set(session, (perServer = new Map<string, string>()));
    perServer.set(server, best);
    this.load.set(best, this.loadOf(best) + 1);
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
    const perServer = this.bindings.get(session);
    if (!perServer) return;
    for (const [server, id] of perServer) this.unbind(session, server, id);
    this.bindings.delete(session);
  }

  private unbind(session: string, server: string, instanceId: string): void {
    this.bindings.get(session)?.delete(server);
    const n = this.loadOf(instanceId) - 1;
    if (n > 0) this.load.set(instanceId, n);
    else this.load.delete(instanceId);
  }

  private loadOf(instanceId: string): number {
    return this.load.get(instanceId) ?? 0;
  }
}
