/**
 * The gateway's side of virtual servers: a short cache of their stored specs (the
 * gateway reads them on every list and call, Temporal holds them), and the clash
 * check the API runs at apply time against the tools the servers serve now.
 */
import type { VirtualServerSpec } from '../contracts/virtualServer';
import { DiscoveryCache } from './discoveryCache';
import type { Gateway } from './gateway';
import { clashMessage, exposePrompts, exposeTools, type ServerItems } from './virtualCatalog';

export class VirtualServerCache {
  private readonly cache: DiscoveryCache<VirtualServerSpec | undefined>;

  constructor(
    private readonly load: (name: string) => Promise<VirtualServerSpec | undefined>,
    options: { ttlMs: number },
  ) {
    // A failed read (Temporal away) is retried after a second, not cached for the full TTL.
    this.cache = new DiscoveryCache({ positiveTtlMs: options.ttlMs, negativeTtlMs: 1_000 });
  }

  get(name: string): Promise<VirtualServerSpec | undefined> {
    return this.cache.get(name, () => this.load(name));
  }

  invalidate(name: string): void {
    this.cache.invalidate(name);
  }
}

/**
 * The clashes a spec would have with the tools and prompts its servers serve now
 * (servers not running are not known yet: the gateway withholds their clashes when
 * they come up). Empty when every exposed name is unique.
 */
export async function virtualServerClashes(gateway: Gateway, spec: VirtualServerSpec): Promise<string[]> {
  const ready = new Set(gateway.readyServers());
  const servers = spec.servers.map((s) => s.name).filter((s) => ready.has(s));
  const lists = async (kind: 'tools' | 'prompts'): Promise<ServerItems[]> => {
    const settled = await Promise.allSettled(servers.map((s) => gateway.list(s, kind)));
    return settled.flatMap((r, i) => (r.status === 'fulfilled' ? [{ server: servers[i], items: r.value as Record<string, unknown>[] }] : []));
  };
  const [tools, prompts] = await Promise.all([lists('tools'), lists('prompts')]);
  return [
    ...exposeTools(spec, tools).clashes.map((c) => clashMessage(spec.name, 'tool', c)),
    ...exposePrompts(spec, prompts).clashes.map((c) => clashMessage(spec.name, 'prompt', c)),
  ];
}
