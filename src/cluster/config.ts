/**
 * The shape of `npm run cluster` as pure data: where every part listens and keeps its
 * state, and the static configuration the Temporal server nodes read. No I/O here, so
 * the layout and the generated config are unit-tested (tests/unit/clusterConfig.test.ts).
 */
import path from 'node:path';
import YAML from 'yaml';

/** The Temporal server version the cluster builds and runs; docker-compose.yml uses the same. */
export const TEMPORAL_SERVER_VERSION = '1.32.2';
/** The Go toolchain that version needs (newer than Debian's); fetched through the Go module proxy. */
export const TEMPORAL_GO_TOOLCHAIN = 'go1.27.3';
/**
 * The Temporal Web UI server (`github.com/temporalio/ui-server/v2`, the UI's assets embedded),
 * built like the server. 2.53.3 is the newest whose dependencies the Go module proxy here
 * serves: 2.56 and later need go.temporal.io/api v1.64.0 and labstack/echo v4.16.1, refused.
 */
export const TEMPORAL_UI_VERSION = '2.53.3';
export const TEMPORAL_NAMESPACE = 'default';
/** Temporal's persistence plugin for PostgreSQL 12 and newer. */
export const POSTGRES_PLUGIN = 'postgres12';
export const TEMPORAL_DATABASES = { default: 'temporal', visibility: 'temporal_visibility' } as const;
/** Fixed once a cluster has data: Temporal refuses to start with a different shard count. */
export const NUM_HISTORY_SHARDS = 4;
export const CLUSTER_NAME = 'mcpd';
const HOST = '127.0.0.1';
/** The highest port base whose Temporal membership ports (base+1000.. base+1969) stay at most 32767. */
export const MAX_PORT_BASE = 30_000;

export interface TemporalNodePorts {
  frontend: number;
  frontendHttp: number;
  history: number;
  matching: number;
  worker: number;
  frontendMembership: number;
  historyMembership: number;
  matchingMembership: number;
  workerMembership: number;
}

export interface TemporalNode {
  name: string;
  ports: TemporalNodePorts;
  /** The node's config file and log. */
  configFile: string;
  logFile: string;
}

export interface DockerHost {
  name: string;
  /** Holds data/, exec/, docker.pid, docker.sock and dockerd.log. */
  dir: string;
  socket: string;
  /** The node's labels (MCPD_NODE_LABELS), which a spec's placement.nodeSelector selects on. */
  labels: Record<string, string>;
}

export interface McpdProcessPlan {
  name: string;
  roles: string;
  port: number;
  /** The Docker host this process runs containers on (node workers only). */
  dockerHost?: DockerHost;
}

export interface ClusterLayout {
  stateDir: string;
  logDir: string;
  postgres: { port: number; dataDir: string; passwordFile: string };
  /** One address in front of every frontend: clients and workers reconnect through it to whichever node answers. */
  frontendProxyPort: number;
  temporalNodes: TemporalNode[];
  openbao: { port: number; dir: string };
  /** The Temporal Web UI, on the cluster's Temporal address. */
  ui: { port: number; configDir: string };
  dockerHosts: DockerHost[];
  mcpd: McpdProcessPlan[];
  mcpdDataDir: string;
}

/**
 * Every port is `base + offset`; a second cluster (the test's) picks another base.
 * Temporal node n uses base+1000+100n..; nothing here overlaps `npm start` (7233, 8200,
 * 7400) or `npm test` (17233, 18200).
 */
export function clusterLayout(stateDir: string, base = 27000, nodes = 2): ClusterLayout {
  // Temporal keeps membership ports in a PostgreSQL smallint column (cluster_membership.rpc_port):
  // a port above 32767 makes a node fail at start with "out of range for type smallint".
  if (!Number.isInteger(base) || base < 1024 || base > MAX_PORT_BASE) {
    throw new Error(`the cluster's port base must be an integer from 1024 to ${MAX_PORT_BASE} (Temporal stores membership ports as a smallint), got ${base}`);
  }
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) throw new Error(`the cluster needs 1 to 9 Temporal nodes, got ${nodes}`);
  const logDir = path.join(stateDir, 'logs');
  const temporalNodes = Array.from({ length: nodes }, (_, i): TemporalNode => {
    const p = base + 1000 + 100 * i;
    const name = `temporal-${i + 1}`;
    return {
      name,
      ports: {
        frontend: p + 33,
        frontendHttp: p + 43,
        history: p + 34,
        matching: p + 35,
        worker: p + 39,
        frontendMembership: p + 63,
        historyMembership: p + 64,
        matchingMembership: p + 65,
        workerMembership: p + 69,
      },
      configFile: path.join(stateDir, 'temporal', `${name}.yaml`),
      logFile: path.join(logDir, `${name}.log`),
    };
  });
  const dockerHosts = ['a', 'b'].map((zone): DockerHost => {
    const name = `host-${zone}`;
    // A unix socket path must stay under 108 bytes; the state dir may be deep.
    const dir = path.join(stateDir, 'docker', name);
    return { name, dir, socket: path.join(dir, 'docker.sock'), labels: { zone } };
  });
  return {
    stateDir,
    logDir,
    postgres: { port: base + 432, dataDir: path.join(stateDir, 'postgres', 'data'), passwordFile: path.join(stateDir, 'postgres', 'password') },
    frontendProxyPort: base + 233,
    temporalNodes,
    openbao: { port: base + 200, dir: path.join(stateDir, 'openbao') },
    ui: { port: base + 280, configDir: path.join(stateDir, 'ui') },
    dockerHosts,
    mcpd: [
      ...dockerHosts.map((host, i): McpdProcessPlan => ({ name: `worker-${host.name}`, roles: 'worker,gateway', port: base + 410 + i, dockerHost: host })),
      { name: 'api-1', roles: 'api,gateway', port: base + 400 },
      { name: 'api-2', roles: 'api,gateway', port: base + 401 },
    ],
    mcpdDataDir: path.join(stateDir, 'mcpd'),
  };
}

export interface TemporalConfigInput {
  node: TemporalNode;
  postgresPort: number;
  postgresPassword: string;
  /** Where the cluster's clients reach a frontend (the proxy in front of all nodes). */
  frontendAddress: string;
  dynamicConfigFile: string;
}

function sqlStore(database: string, input: TemporalConfigInput, maxConns: number) {
  return {
    sql: {
      pluginName: POSTGRES_PLUGIN,
      databaseName: database,
      connectAddr: `${HOST}:${input.postgresPort}`,
      connectProtocol: 'tcp',
      user: 'temporal',
      password: input.postgresPassword,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  };
}

/**
 * The static config of one Temporal node running all four services. Nodes find each
 * other through ringpop: each writes its membership address into the cluster_membership
 * table of the shared database, so the nodes need no seed list, only distinct ports.
 */
export function temporalServerConfig(input: TemporalConfigInput): Record<string, unknown> {
  const { ports } = input.node;
  const rpc = (grpcPort: number, membershipPort: number, extra: Record<string, unknown> = {}) => ({
    rpc: { grpcPort, membershipPort, bindOnIP: HOST, ...extra },
  });
  return {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: NUM_HISTORY_SHARDS,
      datastores: {
        'postgres-default': sqlStore(TEMPORAL_DATABASES.default, input, 10),
        'postgres-visibility': sqlStore(TEMPORAL_DATABASES.visibility, input, 5),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: HOST },
    },
    services: {
      frontend: rpc(ports.frontend, ports.frontendMembership, { httpPort: ports.frontendHttp }),
      history: rpc(ports.history, ports.historyMembership),
      matching: rpc(ports.matching, ports.matchingMembership),
      worker: rpc(ports.worker, ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: CLUSTER_NAME,
      currentClusterName: CLUSTER_NAME,
      clusterInformation: {
        [CLUSTER_NAME]: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: input.frontendAddress },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: input.dynamicConfigFile, pollInterval: '10s' },
  };
}

export function temporalServerConfigYaml(input: TemporalConfigInput): string {
  return `# Written by npm run cluster (src/cluster/config.ts) on every start; edits are lost.\n${YAML.stringify(temporalServerConfig(input))}`;
}

/** The UI server's config (its `development` environment): loopback only, no telemetry or news fetch. */
export function temporalUiConfigYaml(input: { port: number; temporalAddress: string }): string {
  return `# Written by npm run cluster (src/cluster/config.ts) on every start; edits are lost.\n${YAML.stringify({
    temporalGrpcAddress: input.temporalAddress,
    host: HOST,
    port: input.port,
    enableUi: true,
    defaultNamespace: TEMPORAL_NAMESPACE,
    disableNewsFetch: true,
    cors: { allowOrigins: [`http://${HOST}:${input.port}`], cookieInsecure: true },
    auth: { enabled: false },
  })}`;
}

/** Dynamic config shared by the nodes: search attributes visible as soon as they are created. */
export function temporalDynamicConfigYaml(): string {
  return YAML.stringify({
    'system.forceSearchAttributesCacheRefreshOnRead': [{ value: true, constraints: {} }],
  });
}

/** Settings passed to `postgres` on its command line: loopback TCP only, no unix socket. */
export function postgresArgs(dataDir: string, port: number): string[] {
  return ['-D', dataDir, '-c', `listen_addresses=${HOST}`, '-c', `port=${port}`, '-c', 'unix_socket_directories=', '-c', 'max_connections=200'];
}
