#!/usr/bin/env node
/**
 * `npm run cluster`: starts the production-shaped stack of src/cluster/cluster.ts on this
 * machine and keeps it running until Ctrl-C, which stops every process it started.
 * State (PostgreSQL and OpenBao data, the engines' images) stays in MCPD_CLUSTER_DIR
 * (default <project>/.cluster), so the next start is warm. MCPD_CLUSTER_PORT_BASE moves
 * every port (default 27000).
 */
import path from 'node:path';
import { prepareCluster, ROOT } from './prepare.mjs';

const P = 'cluster';

async function main() {
  const startedAt = Date.now();
  let cluster = null;
  let interrupted = false;
  let stopping = false;
  const stopAll = async (code) => {
    if (stopping) return;
    stopping = true;
    console.log(`[${P}] stopping everything npm run cluster started…`);
    await cluster?.stop();
    console.log(`[${P}] stopped.`);
    process.exit(code);
  };
  const onSignal = () => {
    if (cluster) void stopAll(0);
    else interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const stateDir = path.resolve(process.env.MCPD_CLUSTER_DIR ?? path.join(ROOT, '.cluster'));
  const portBase = process.env.MCPD_CLUSTER_PORT_BASE ? Number(process.env.MCPD_CLUSTER_PORT_BASE) : undefined;
  const { tools, images, cluster: clusterModule, log } = await prepareCluster(P);
  const warm = (await import('node:fs')).existsSync(path.join(stateDir, 'postgres', 'data', 'PG_VERSION'));
  const clusterStartedAt = Date.now();
  cluster = await clusterModule.startCluster({ root: ROOT, stateDir, portBase, temporalCli: tools.temporal, bao: tools.bao, images, log });
  if (interrupted) return stopAll(130);
  const seconds = (since) => `${((Date.now() - since) / 1000).toFixed(1)}s`;
  const api = cluster.mcpd.filter((m) => m.plan.roles.includes('api'));
  const workers = cluster.mcpd.filter((m) => m.plan.dockerHost);
  console.log(
    [
      '',
      `mcpd cluster is up (${warm ? 'warm' : 'cold'} start: ${seconds(clusterStartedAt)} to ready, ${seconds(startedAt)} with build and images):`,
      ...api.map((m) => `  API/gateway ${m.plan.name}   ${m.url}/api/v1  ${m.url}/mcp`),
      ...workers.map((m) => `  node worker ${m.plan.dockerHost.name}  ${m.url} on ${m.plan.dockerHost.socket}`),
      `  API token          ${path.join(cluster.layout.mcpdDataDir, 'api-token')} (Authorization: Bearer <token>)`,
      `  Temporal           ${cluster.temporalAddress} (in front of ${cluster.temporalNodes.map((n) => `${n.node.name} ${n.address}`).join(', ')})`,
      `  PostgreSQL         ${cluster.postgres.address} (password in ${cluster.layout.postgres.passwordFile})`,
      `  OpenBao (Raft)     ${cluster.openbao.address} (unseal key and root token in ${cluster.layout.openbao.dir})`,
      ...cluster.engines.map((e) => `  Docker engine      unix://${e.socket} (pid ${e.pid})`),
      `  Web UI             ${cluster.uiUrl} (Temporal's, namespace default: every server, instance and probe workflow)`,
      `  logs               ${cluster.layout.logDir}`,
      '',
      'Press Ctrl-C to stop everything npm run cluster started.',
      '',
    ].join('\n'),
  );
}

main().catch((err) => {
  console.error(`[${P}] ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
