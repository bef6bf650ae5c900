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
  /**
   * Comma-separated names (never values) of the env variables filled from secrets, so a
   * restarted mcpd's gateway can read those values back from the container and go on
   * redacting them from what the instance sends.
   */
  secretEnv: 'io.mcpd.secret-env',
} as const;

/** Labels of the images mcpd builds from npm and PyPI packages (src/docker/packageImages.ts). */
export const PACKAGE_IMAGE_LABELS = {
  /** "npm:@scope/name" or "pypi:name". */
  package: 'io.mcpd.package',
  /** The exact version installed. */
  version: 'io.mcpd.package.version',
  /** sha256 of the lock: every installed package with its version and integrity hash. */
  lockHash: 'io.mcpd.package.lock-hash',
  /** What the image was built from (builder recipe, package, version, base image); an image is reused while it matches. */
  buildKey: 'io.mcpd.package.build-key',
  /** JSON {name: command[]} of the executables the package installs (npm bins, console scripts). */
  executables: 'io.mcpd.package.executables',
  /** Comma-separated: the package's own executables (npm "bin", console scripts); the default is chosen among them. */
  ownExecutables: 'io.mcpd.package.own-executables',
} as const;
