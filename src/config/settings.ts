/**
 * Where mcpd finds its parts. Every address can come from the environment, so an
 * existing Temporal cluster, OpenBao or Docker engine wins over the embedded ones.
 */
import os from 'node:os';
import path from 'node:path';

export interface Settings {
  dataDir: string;
  temporalAddress: string;
  temporalNamespace: string;
  baoAddress: string;
  /** Token for OpenBao; when unset, read from <dataDir>/openbao/root-token. */
  baoToken: string | undefined;
  /** KV v2 mount and the path prefix under which mcpd keeps its secrets. */
  secretsMount: string;
  secretsPrefix: string;
  /** Unset means dockerode's default (DOCKER_HOST or the local socket). */
  dockerSocket: string | undefined;
  apiHost: string;
  apiPort: number;
  /** The name of this Docker node; its activities poll mcpd-node-<node>. */
  node: string;
  roles: { api: boolean; gateway: boolean; worker: boolean };
  logLevel: string;
  /** Bases of the images built from npm / PyPI packages (default mcpd/node-base:20, mcpd/python-base:3). */
  packageBaseImages: { node: string | undefined; python: string | undefined };
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const dataDir = path.resolve(env.MCPD_DATA_DIR ?? '.data');
  const roles = (env.MCPD_ROLES ?? 'api,gateway,worker').split(',').map((r) => r.trim());
  return {
    dataDir,
    temporalAddress: env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    temporalNamespace: env.TEMPORAL_NAMESPACE ?? 'default',
    baoAddress: env.BAO_ADDR ?? env.VAULT_ADDR ?? 'http://127.0.0.1:8200',
    baoToken: env.BAO_TOKEN ?? env.VAULT_TOKEN,
    secretsMount: env.MCPD_SECRETS_MOUNT ?? 'secret',
    secretsPrefix: env.MCPD_SECRETS_PREFIX ?? 'mcpd',
    dockerSocket: env.MCPD_DOCKER_SOCKET,
    apiHost: env.MCPD_HOST ?? '127.0.0.1',
    apiPort: Number(env.MCPD_PORT ?? 7400),
    node: env.MCPD_NODE ?? os.hostname(),
    roles: { api: roles.includes('api'), gateway: roles.includes('gateway'), worker: roles.includes('worker') },
    logLevel: env.MCPD_LOG_LEVEL ?? 'info',
    packageBaseImages: { node: env.MCPD_PACKAGE_NODE_BASE, python: env.MCPD_PACKAGE_PYTHON_BASE },
  };
}
