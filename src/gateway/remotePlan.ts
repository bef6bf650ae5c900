/**
 * What a front gateway does with what the node gateways report: which remote
 * instances to attach (or re-mark ready), and which to let go. Pure, so the rules are
 * unit-tested: the node gateways' listings are the truth about remote instances; an
 * instance this process's own node runs is never taken over by a listing; a node that
 * does not answer keeps its instances, out of routing, until it answers again or the
 * control plane declares it NotReady (then it drops out of `listings` altogether).
 */

/** One instance as a node's gateway lists it. */
export interface LinkedInstance {
  id: string;
  server: string;
  transport: 'stdio' | 'http' | 'sse';
  containerId: string;
  /** Ready for client traffic on its node (healthy and connected there). */
  ready: boolean;
}

/** The last word of one Ready node's gateway. */
export interface NodeListing {
  gatewayUrl: string;
  /** False when the last poll failed: its instances stay attached but receive no traffic. */
  reachable: boolean;
  instances: LinkedInstance[];
}

/** A remote instance this front has attached now. */
export interface AttachedRemote {
  node: string;
  url: string;
  containerId: string;
}

export interface RemotePlan {
  attach: { node: string; gatewayUrl: string; instance: LinkedInstance; ready: boolean }[];
  detach: { id: string; reason: string }[];
}

/**
 * `attached` are this front's remote instances, `listings` the Ready nodes' (own node
 * excluded), `isLocal` says whether this process's node runs an instance itself.
 * An instance listed by two nodes (it is moving) goes to the one where it is ready,
 * else to the first node by name, so every front decides the same.
 */
export function planRemote(
  attached: ReadonlyMap<string, AttachedRemote>,
  listings: ReadonlyMap<string, NodeListing>,
  isLocal: (instanceId: string) => boolean,
): RemotePlan {
  const chosen = new Map<string, { node: string; listing: NodeListing; instance: LinkedInstance }>();
  for (const node of [...listings.keys()].sort()) {
    const listing = listings.get(node)!;
    for (const instance of listing.instances) {
      if (isLocal(instance.id)) continue;
      const ready = listing.reachable && instance.ready;
      const previous = chosen.get(instance.id);
      if (previous && (previous.listing.reachable && previous.instance.ready) >= ready) continue;
      chosen.set(instance.id, { node, listing, instance });
    }
  }
  const plan: RemotePlan = { attach: [], detach: [] };
  for (const [id, current] of attached) {
    if (chosen.has(id)) continue; // attaching it again is a no-op, or replaces it when it moved to another node
    plan.detach.push({ id, reason: listings.has(current.node) ? `node ${current.node} no longer runs it` : `node ${current.node} is not Ready` });
  }
  for (const [, { node, listing, instance }] of chosen) {
    plan.attach.push({ node, gatewayUrl: listing.gatewayUrl, instance, ready: listing.reachable && instance.ready });
  }
  return plan;
}
