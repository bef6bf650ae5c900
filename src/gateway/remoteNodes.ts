/**
 * The front half of "one gateway over many hosts". A container's upstream (a STDIO
 * attach stream has exactly one owner) stays with the gateway of the node that runs
 * it; this follows every other Ready node's gateway and attaches each instance it
 * lists to this process's Gateway as a remote upstream, reached over the gateway link
 * (Streamable HTTP to the node's link endpoint of that instance, with the link token).
 * From then on discovery, caching, routing and both endpoints treat it like a local
 * one, so a client never needs to know where an instance runs.
 *
 * Where the node gateways are comes from Temporal (each node registers its gateway
 * URL with its node record); what they run comes from each node's listing, long-polled
 * so attaches, readiness changes and detaches arrive within one round trip.
 */
import type { Logger } from '../logger';
import { silentLogger } from '../logger';
import type { Gateway } from './gateway';
import { linkInstanceUrl, LINK_PREFIX } from './http';
import { planRemote, type LinkedInstance, type NodeListing } from './remotePlan';

/** A Ready node with a gateway, as the node records say. */
export interface NodeGateway {
  name: string;
  gatewayUrl: string;
}

export interface RemoteNodesOptions {
  gateway: Gateway;
  /** The Ready nodes other processes' gateways answer for (from Temporal's node records). */
  listNodes: () => Promise<NodeGateway[]>;
  /** This process's own node when it runs that node's worker: its instances are local already. */
  selfNode?: string;
  /** The link token (a secret: sent as the bearer, never logged). */
  linkToken: string;
  logger?: Logger;
  /** How often the node records are read again (default 3 s): how long a node that joins stays unknown here. */
  refreshMs?: number;
  /** How long one listing poll waits for a change (default 25 s). */
  pollWaitMs?: number;
}

interface Poller {
  gatewayUrl: string;
  listing: NodeListing;
  stop: AbortController;
}

export class RemoteNodes {
  private readonly pollers = new Map<string, Poller>();
  private readonly log: Logger;
  private readonly authorization: string;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly options: RemoteNodesOptions) {
    this.log = options.logger ?? silentLogger;
    this.authorization = `Bearer ${options.linkToken}`;
  }

  start(): void {
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const poller of this.pollers.values()) poller.stop.abort();
    this.pollers.clear();
  }

  /** The node gateways followed now (Ready nodes but this one), those whose listing has `instanceId` first. */
  gateways(instanceId?: string): NodeGateway[] {
    const all = [...this.pollers].map(([name, p]) => ({ name, gatewayUrl: p.gatewayUrl, runs: p.listing.instances.some((i) => i.id === instanceId) }));
    return all.sort((a, b) => Number(b.runs) - Number(a.runs)).map(({ name, gatewayUrl }) => ({ name, gatewayUrl }));
  }

  /** Reads the node records and starts, moves or stops one poller per Ready remote node. */
  private async refresh(): Promise<void> {
    try {
      const nodes = (await this.options.listNodes()).filter((n) => n.name !== this.options.selfNode);
      const wanted = new Map(nodes.map((n) => [n.name, n.gatewayUrl]));
      for (const [name, poller] of this.pollers) {
        if (wanted.get(name) === poller.gatewayUrl) continue;
        poller.stop.abort();
        this.pollers.delete(name);
        this.log.info({ node: name }, wanted.has(name) ? 'gateway link: node gateway moved' : 'gateway link: node gone or NotReady');
      }
      for (const [name, gatewayUrl] of wanted) if (!this.pollers.has(name)) this.follow(name, gatewayUrl);
      this.reconcile();
    } catch (err) {
      // Temporal unreachable: keep what is known; the links themselves still work.
      this.log.warn({ err: (err as Error).message }, 'gateway link: reading the node records failed');
    } finally {
      if (!this.stopped) this.timer = setTimeout(() => void this.refresh(), this.options.refreshMs ?? 3_000).unref();
    }
  }

  private follow(node: string, gatewayUrl: string): void {
    const poller: Poller = { gatewayUrl, listing: { gatewayUrl, reachable: false, instances: [] }, stop: new AbortController() };
    this.pollers.set(node, poller);
    this.log.info({ node, gatewayUrl }, 'gateway link: following node gateway');
    void this.poll(node, poller);
  }

  private async poll(node: string, poller: Poller): Promise<void> {
    let version: number | undefined;
    let failures = 0;
    const signal = poller.stop.signal;
    while (!signal.aborted) {
      const query = version === undefined ? '' : `?after=${version}&wait=${this.options.pollWaitMs ?? 25_000}`;
      try {
        const res = await fetch(`${poller.gatewayUrl.replace(/\/+$/, '')}${LINK_PREFIX}${query}`, { headers: { authorization: this.authorization }, signal });
        if (res.status === 401) throw new Error('it refuses our link token: its MCPD_GATEWAY_SECRET differs from ours');
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = (await res.json()) as { node: string | null; version: number; instances: LinkedInstance[] };
        // A stale node record may point at a port another process now listens on.
        if (body.node !== node) throw new Error(`${poller.gatewayUrl} is the gateway of ${body.node === null ? 'no node' : `node ${body.node}`}`);
        version = body.version;
        failures = 0;
        poller.listing = { gatewayUrl: poller.gatewayUrl, reachable: true, instances: body.instances };
      } catch (err) {
        if (signal.aborted) break;
        version = undefined;
        failures++;
        if (failures === 1) this.log.warn({ node, err: (err as Error).message }, 'gateway link: node gateway does not answer; its instances get no traffic');
        poller.listing = { ...poller.listing, reachable: false };
      }
      if (this.pollers.get(node) === poller) this.reconcile();
      if (failures > 0) await sleep(Math.min(250 * 2 ** failures, 5_000), signal);
    }
    if (this.pollers.get(node) === undefined) this.reconcile();
  }

  private reconcile(): void {
    if (this.stopped) return;
    const gateway = this.options.gateway;
    const listings = new Map([...this.pollers].map(([node, p]) => [node, p.listing]));
    const plan = planRemote(gateway.remoteInstances(), listings, (id) => gateway.isLocal(id));
    for (const { id, reason } of plan.detach) void gateway.detach(id, reason).catch(() => undefined);
    for (const { node, gatewayUrl, instance, ready } of plan.attach) {
      const target = { instanceId: instance.id, server: instance.server, transport: instance.transport, containerId: instance.containerId };
      const link = { node, url: linkInstanceUrl(gatewayUrl, instance.id), authorization: this.authorization };
      gateway.attachRemote(target, link, ready).catch((err: Error) => {
        this.log.warn({ instanceId: instance.id, node, err: err.message }, 'gateway link: attaching a remote instance failed');
      });
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
