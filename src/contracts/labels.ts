/**
 * Docker labels of the containers mcpd makes. The node activities write them;
 * the reaper, the exit watcher and the re-attach after a restart read them.
 */
export const LABELS = {
  managed: 'io.mcpd.managed',
  server: 'io.mcpd.server',
  instance: 'io.mcpd.instance',
  /** Which start of the instance made this container; a retried activity reuses its own, never an older one. */
  generation: 'io.mcpd.generation',
  /** The Docker node whose worker made the container. */
  node: 'io.mcpd.node',
  /** The Temporal address and namespace whose workflows own the container; the reaper and exit watcher only touch their own. */
  owner: 'io.mcpd.owner',
  /** JSON UpstreamEndpoint (transport, loopback port, path), so a restarted mcpd can re-attach. */
  endpoint: 'io.mcpd.endpoint',
} as const;
