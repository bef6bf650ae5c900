import Docker from 'dockerode';
import type { DockerEngine } from '../../src/cluster/dockerEngine';

const clients = new WeakMap<DockerEngine, Docker>();

/** A dockerode client on a DockerEngine's socket, for tests that look at that engine's containers. */
export function engineDocker(engine: DockerEngine): Docker {
  let client = clients.get(engine);
  if (!client) {
    client = new Docker({ socketPath: engine.socket });
    clients.set(engine, client);
  }
  return client;
}
