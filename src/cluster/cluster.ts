/**
 * `npm run cluster`: a production-shaped mcpd on one machine. PostgreSQL, two Temporal
 * server nodes forming one cluster on it, OpenBao on Raft, two Docker engines acting as
 * two hosts, one mcpd node worker per engine and two API/gateway processes. stop()
 * ends every process this started, by pid, in reverse order; the state dir keeps the
 * PostgreSQL and OpenBao data, so the next start is warm.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startPersistentOpenBao, type OpenBaoServer } from '../embedded/openbao';
import { isPortOpen, startProcess, waitUntil, type ManagedProcess } from '../embedded/process';
import { clusterLayout, temporalUiConfigYaml, type ClusterLayout, type McpdProcessPlan } from './config';
import { DockerEngine } from './dockerEngine';
import { startFrontendProxy, type FrontendProxy } from './frontendProxy';
import { applyTemporalSchema, clusterMembers, ensurePostgresBinaries, startPostgres, type ClusterMember, type PostgresServer } from './postgres';
import { ensureTemporalBinaries, ensureTemporalUiServer } from './temporalBuild';
import { ensureNamespaceAndSearchAttributes, startTemporalNode, writeNodeConfig, type RunningTemporalNode } from './temporalNodes';

export interface ClusterOptions {
  /** Project root: mcpd runs as <root>/dist/src/main.js. */
  root: string;
  stateDir: string;
  portBase?: number;
  /** The `temporal` CLI and `bao` of the project's toolchain. */
  temporalCli: string;
  bao: string;
  /** Images (name → id on the machine's engine) each engine needs; loaded when missing or different. */
  images: Record<string, string>;
  /** Extra environment for every mcpd process (tests turn off the example seeding). */
  mcpdEnv?: NodeJS.ProcessEnv;
  log?: (msg: string) => void;
}

export interface McpdProcess {
  plan: McpdProcessPlan;
  url: string;
  process: ManagedProcess;
}

export interface Cluster {
  layout: ClusterLayout;
  /** The address clients use: the proxy in front of every frontend. */
  temporalAddress: string;
  temporalNodes: RunningTemporalNode[];
  postgres: PostgresServer;
  /** The live members of each Temporal service ring, from PostgreSQL. */
  members(): Promise<ClusterMember[]>;
  openbao: OpenBaoServer;
  /** http://127.0.0.1:<port>: the Temporal Web UI on this cluster. */
  uiUrl: string;
  engines: DockerEngine[];
  mcpd: McpdProcess[];
  /** <mcpd data dir>/api-token: the bearer token every API process accepts. */
  apiToken: string;
  /** Stops node i and starts it again on the same ports and config; the other nodes keep serving. */
  restartTemporalNode(index: number): Promise<void>;
  /** Docker host `name` fails as a machine does: its mcpd node worker is killed (SIGKILL), then its engine stops with its containers. */
  failHost(name: string): Promise<void>;
  /** Docker host `name` comes back: its engine starts on the same data (old containers included), then its node worker. */
  restoreHost(name: string): Promise<void>;
  stop(): Promise<void>;
}

interface Stoppable {
  name: string;
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const log = options.log ?? (() => undefined);
  const layout = clusterLayout(options.stateDir, options.portBase);
  fs.mkdirSync(layout.logDir, { recursive: true });
  const started: Stoppable[] = [];
  const stop = async () => {
    for (const part of started.splice(0).reverse()) {
      log(`stopping ${part.name}`);
      await part.stop().catch((err: Error) => log(`stopping ${part.name} failed: ${err.message}`));
    }
  };
  try {
    const pgBin = ensurePostgresBinaries(log);
    const temporalBin = ensureTemporalBinaries(log);
    const uiServer = ensureTemporalUiServer(log);

    const postgres = await startPostgres({ binDir: pgBin, ...layout.postgres, logFile: path.join(layout.logDir, 'postgresql.log') });
    started.push({ name: `PostgreSQL (pid ${postgres.process.pid})`, stop: () => postgres.stop() });
    log(`PostgreSQL ${postgres.initialized ? 'initialised and ' : ''}up at ${postgres.address} (pid ${postgres.process.pid})`);
    applyTemporalSchema({ sqlTool: temporalBin.sqlTool, port: layout.postgres.port, password: postgres.password, log });

    const temporalAddress = `127.0.0.1:${layout.frontendProxyPort}`;
    const dynamicConfigFile = path.join(layout.stateDir, 'temporal', 'dynamic-config.yaml');
    for (const node of layout.temporalNodes) {
      writeNodeConfig({ node, postgresPort: layout.postgres.port, postgresPassword: postgres.password, frontendAddress: temporalAddress, dynamicConfigFile });
    }
    const temporalNodes: RunningTemporalNode[] = [];
    for (const node of layout.temporalNodes) {
      const running = await startTemporalNode({ serverBin: temporalBin.server, temporalCli: options.temporalCli, node });
      temporalNodes.push(running);
      // Looked up at stop time: a restarted node has a new process.
      started.push({ name: node.name, stop: () => temporalNodes[layout.temporalNodes.indexOf(node)].stop() });
      log(`${node.name} serving at ${running.address} (pid ${running.process.pid})`);
    }
    const proxy: FrontendProxy = await startFrontendProxy(
      layout.frontendProxyPort,
      layout.temporalNodes.map((n) => ({ host: '127.0.0.1', port: n.ports.frontend })),
    );
    started.push({ name: 'the frontend proxy', stop: () => proxy.close() });
    await ensureNamespaceAndSearchAttributes(options.temporalCli, temporalAddress, log);
    const uiUrl = await startTemporalUi(uiServer, layout, temporalAddress, started);
    log(`Temporal Web UI at ${uiUrl}`);

    const openbao = await startPersistentOpenBao({
      baoBin: options.bao,
      port: layout.openbao.port,
      dir: layout.openbao.dir,
      logFile: path.join(layout.logDir, 'openbao.log'),
    });
    started.push({ name: `OpenBao (pid ${openbao.process.pid})`, stop: () => openbao.stop() });
    log(`OpenBao (Raft) active at ${openbao.address}`);

    const engines = layout.dockerHosts.map((host) => new DockerEngine(host.dir, host.socket));
    for (const engine of engines) started.push({ name: `dockerd ${engine.socket}`, stop: () => engine.stop() });
    await Promise.all(engines.map((engine) => startEngine(engine, options.images, log)));

    fs.mkdirSync(layout.mcpdDataDir, { recursive: true, mode: 0o700 });
    const launchMcpd = async (plan: McpdProcessPlan): Promise<McpdProcess> => {
      if (await isPortOpen('127.0.0.1', plan.port)) throw new Error(`port 127.0.0.1:${plan.port} (mcpd ${plan.name}) is already in use`);
      const proc = startProcess({
        name: `mcpd ${plan.name}`,
        command: process.execPath,
        args: [path.join(options.root, 'dist', 'src', 'main.js')],
        cwd: options.root,
        logFile: path.join(layout.logDir, `mcpd-${plan.name}.log`),
        env: { ...process.env, ...options.mcpdEnv, ...mcpdEnv(plan, layout, temporalAddress, openbao) },
      });
      return { plan, url: `http://127.0.0.1:${plan.port}`, process: proc };
    };
    const mcpd: McpdProcess[] = [];
    for (const [index, plan] of layout.mcpd.entries()) {
      mcpd.push(await launchMcpd(plan));
      // Looked up at stop time: a host that failed and came back has a new worker process.
      started.push({ name: `mcpd ${plan.name}`, stop: () => mcpd[index].process.stop(15_000) });
      // Workers first and one by one: the first creates the API token the others read.
      if (plan.dockerHost || mcpd.length === layout.mcpd.length) await waitForMcpd(mcpd[index]);
    }
    await Promise.all(mcpd.map(waitForMcpd));
    const apiToken = fs.readFileSync(path.join(layout.mcpdDataDir, 'api-token'), 'utf8').trim();

    const hostParts = (name: string) => {
      const index = layout.dockerHosts.findIndex((h) => h.name === name);
      if (index < 0) throw new Error(`no Docker host named ${name} (hosts: ${layout.dockerHosts.map((h) => h.name).join(', ')})`);
      return { engine: engines[index], worker: layout.mcpd.findIndex((p) => p.dockerHost?.name === name) };
    };
    const failHost = async (name: string) => {
      const { engine, worker } = hostParts(name);
      await mcpd[worker].process.kill();
      await engine.stop();
    };
    const restoreHost = async (name: string) => {
      const { engine, worker } = hostParts(name);
      await startEngine(engine, options.images, log);
      mcpd[worker] = await launchMcpd(layout.mcpd[worker]);
      await waitForMcpd(mcpd[worker]);
    };
    const restartTemporalNode = async (index: number) => {
      const node = layout.temporalNodes[index];
      await temporalNodes[index].stop();
      temporalNodes[index] = await startTemporalNode({ serverBin: temporalBin.server, temporalCli: options.temporalCli, node });
    };
    const members = () => clusterMembers({ binDir: pgBin, port: layout.postgres.port, password: postgres.password });
    return {
      layout,
      temporalAddress,
      temporalNodes,
      postgres,
      members,
      openbao,
      uiUrl,
      engines,
      mcpd,
      apiToken,
      restartTemporalNode,
      failHost,
      restoreHost,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * One mcpd process's environment. A node worker runs containers on its own host, with
 * that host's labels. An API/gateway process runs no containers: it reads instance logs
 * from the node gateways, so its engine settings only name the first host.
 */
function mcpdEnv(plan: McpdProcessPlan, layout: ClusterLayout, temporalAddress: string, openbao: OpenBaoServer): NodeJS.ProcessEnv {
  const host = plan.dockerHost ?? layout.dockerHosts[0];
  return {
    TEMPORAL_ADDRESS: temporalAddress,
    BAO_ADDR: openbao.address,
    BAO_TOKEN: openbao.token,
    MCPD_DATA_DIR: layout.mcpdDataDir,
    MCPD_HOST: '127.0.0.1',
    MCPD_PORT: String(plan.port),
    MCPD_ROLES: plan.roles,
    MCPD_NODE: host.name,
    MCPD_DOCKER_SOCKET: host.socket,
    DOCKER_HOST: `unix://${host.socket}`,
    ...(plan.dockerHost
      ? {
          MCPD_NODE_LABELS: Object.entries(host.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
        }
      : {}),
  };
}

async function startEngine(engine: DockerEngine, images: Record<string, string>, log: (msg: string) => void): Promise<void> {
  await engine.start();
  log(`dockerd (pid ${engine.pid}) answers at ${engine.socket}`);
  for (const [image, id] of Object.entries(images)) {
    if ((await engine.runtime.inspectImage(image))?.id === id) continue;
    const started = Date.now();
    await engine.loadImage(image);
    log(`loaded ${image} into ${engine.socket} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
}

/** The Web UI server on the cluster's Temporal address; ready when it listens. */
async function startTemporalUi(uiServer: string, layout: ClusterLayout, temporalAddress: string, started: Stoppable[]): Promise<string> {
  fs.mkdirSync(layout.ui.configDir, { recursive: true });
  fs.writeFileSync(path.join(layout.ui.configDir, 'development.yaml'), temporalUiConfigYaml({ port: layout.ui.port, temporalAddress }));
  if (await isPortOpen('127.0.0.1', layout.ui.port)) throw new Error(`port 127.0.0.1:${layout.ui.port} (the Temporal Web UI) is already in use`);
  const ui = startProcess({
    name: 'temporal-ui',
    command: uiServer,
    args: ['--root', path.dirname(layout.ui.configDir), '--config', path.basename(layout.ui.configDir), '--env', 'development', 'start'],
    logFile: path.join(layout.logDir, 'temporal-ui.log'),
  });
  started.push({ name: `the Temporal Web UI (pid ${ui.pid})`, stop: () => ui.stop() });
  await waitUntil(`the Temporal Web UI on 127.0.0.1:${layout.ui.port}`, () => isPortOpen('127.0.0.1', layout.ui.port), {
    timeoutMs: 30_000,
    intervalMs: 200,
    proc: ui,
  });
  return `http://127.0.0.1:${layout.ui.port}`;
}

/** An API process is ready when /readyz answers 200; a node worker (no API role) when it listens. */
async function waitForMcpd(mcpd: McpdProcess): Promise<void> {
  const hasApi = mcpd.plan.roles.split(',').includes('api');
  await waitUntil(
    `mcpd ${mcpd.plan.name} at ${mcpd.url}`,
    async () => {
      if (!hasApi) return isPortOpen('127.0.0.1', mcpd.plan.port);
      const response = await fetch(`${mcpd.url}/readyz`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      return response.status === 200;
    },
    { timeoutMs: 120_000, intervalMs: 300, proc: mcpd.process },
  );
}
