import assert from 'node:assert/strict';
import YAML from 'yaml';
import { MAX_PORT_BASE, NUM_HISTORY_SHARDS, clusterLayout, postgresArgs, temporalServerConfig, temporalServerConfigYaml } from '../../src/cluster/config';

function allPorts(layout: ReturnType<typeof clusterLayout>): number[] {
  return [
    layout.postgres.port,
    layout.frontendProxyPort,
    layout.openbao.port,
    layout.openbao.port + 1, // OpenBao's cluster port
    ...layout.temporalNodes.flatMap((n) => Object.values(n.ports)),
    ...layout.mcpd.map((m) => m.port),
  ];
}

describe('cluster layout and Temporal config', () => {
  it('gives every part of the cluster its own loopback port', () => {
    const ports = allPorts(clusterLayout('/state'));
    assert.equal(new Set(ports).size, ports.length, `duplicate port in ${ports.join(', ')}`);
    assert.ok(ports.every((p) => p > 1024 && p < 65536));
  });

  it('keeps Temporal membership ports within a smallint, as its cluster_membership table stores them', () => {
    for (const base of [27000, 24000, MAX_PORT_BASE]) {
      for (const node of clusterLayout('/s', base, 9).temporalNodes) {
        const p = node.ports;
        for (const port of [p.frontendMembership, p.historyMembership, p.matchingMembership, p.workerMembership]) assert.ok(port <= 32767, `${port}`);
      }
    }
  });

  it('keeps clear of the ports npm start and npm test use', () => {
    const ports = allPorts(clusterLayout('/state'));
    for (const taken of [7233, 8233, 8200, 8201, 7400, 17233, 18233, 18200]) assert.ok(!ports.includes(taken), `uses ${taken}`);
  });

  it('moves every port with the base, so a test cluster can run next to npm run cluster', () => {
    const a = allPorts(clusterLayout('/a'));
    const b = allPorts(clusterLayout('/b', 24000));
    assert.deepEqual(
      b,
      a.map((p) => p - 3000),
    );
    assert.ok(!b.some((p) => a.includes(p)));
  });

  it('plans one node worker per Docker host and two API/gateway processes', () => {
    const layout = clusterLayout('/state');
    assert.deepEqual(
      layout.mcpd.map((m) => [m.name, m.roles, m.dockerHost?.socket]),
      [
        ['worker-host-a', 'worker,gateway', '/state/docker/host-a/docker.sock'],
        ['worker-host-b', 'worker,gateway', '/state/docker/host-b/docker.sock'],
        ['api-1', 'api,gateway', undefined],
        ['api-2', 'api,gateway', undefined],
      ],
    );
    assert.notEqual(layout.dockerHosts[0].dir, layout.dockerHosts[1].dir);
  });

  it('rejects a port base or node count it cannot lay out, naming the value', () => {
    assert.throws(() => clusterLayout('/s', 80), /port base.*80/);
    assert.throws(() => clusterLayout('/s', 37000), /smallint\), got 37000/);
    assert.throws(() => clusterLayout('/s', 27000, 0), /1 to 9 Temporal nodes, got 0/);
  });

  it('writes a node config for PostgreSQL with all four services on the node ports, bound to loopback', () => {
    const layout = clusterLayout('/state');
    const node = layout.temporalNodes[1];
    const config = YAML.parse(
      temporalServerConfigYaml({ node, postgresPort: 27432, postgresPassword: 'pw', frontendAddress: '127.0.0.1:27233', dynamicConfigFile: '/state/dc.yaml' }),
    ) as ReturnType<typeof temporalServerConfig> & Record<string, any>;
    assert.equal(config.persistence.numHistoryShards, NUM_HISTORY_SHARDS);
    for (const store of ['postgres-default', 'postgres-visibility']) {
      assert.equal(config.persistence.datastores[store].sql.pluginName, 'postgres12');
      assert.equal(config.persistence.datastores[store].sql.connectAddr, '127.0.0.1:27432');
    }
    assert.equal(config.persistence.datastores[config.persistence.visibilityStore].sql.databaseName, 'temporal_visibility');
    assert.equal(config.services.frontend.rpc.grpcPort, node.ports.frontend);
    assert.equal(config.services.frontend.rpc.httpPort, node.ports.frontendHttp);
    assert.equal(config.services.history.rpc.membershipPort, node.ports.historyMembership);
    for (const service of ['frontend', 'history', 'matching', 'worker']) assert.equal(config.services[service].rpc.bindOnIP, '127.0.0.1');
    assert.equal(config.global.membership.broadcastAddress, '127.0.0.1');
    assert.equal(config.clusterMetadata.currentClusterName, config.clusterMetadata.masterClusterName);
    assert.equal(config.clusterMetadata.clusterInformation[config.clusterMetadata.currentClusterName].rpcAddress, '127.0.0.1:27233');
  });

  it('gives both nodes the same cluster and persistence but different ports', () => {
    const layout = clusterLayout('/state');
    const [a, b] = layout.temporalNodes.map((node) =>
      temporalServerConfig({ node, postgresPort: 1, postgresPassword: 'pw', frontendAddress: 'x:1', dynamicConfigFile: '/d' }),
    );
    assert.deepEqual(a.persistence, b.persistence);
    assert.deepEqual(a.clusterMetadata, b.clusterMetadata);
    assert.notDeepEqual(a.services, b.services);
  });

  it('runs PostgreSQL on loopback TCP only, without a unix socket', () => {
    const args = postgresArgs('/data', 27432);
    assert.ok(args.includes('listen_addresses=127.0.0.1'));
    assert.ok(args.includes('port=27432'));
    assert.ok(args.includes('unix_socket_directories='));
  });
});
