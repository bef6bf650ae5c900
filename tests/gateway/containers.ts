/**
 * Test containers made exactly as the lifecycle makes them (labels, name, Init,
 * network mode, attachable stdin), so the gateway is tested against the real thing.
 */
import Dockerode from 'dockerode';
import { containerName, instanceId } from '../../src/contracts/instance';
import { LABELS } from '../../src/contracts/labels';
import type { UpstreamTarget } from '../../src/contracts/routing';
import { DockerRuntime } from '../../src/docker/runtime';

/** What the gateway under test attaches through. */
export const runtime = new DockerRuntime();
/** For what a test does to a container behind the gateway's back (pause, kill). */
export const docker = new Dockerode();

export interface TestContainerSpec {
  server: string;
  ordinal?: number;
  image: 'mcpd/gitea-like:dev' | 'mcpd/server-everything:dev';
  transport?: 'stdio' | 'http' | 'sse';
  cmd?: string[];
  env?: Record<string, string>;
  port?: number;
  path?: string;
}

export async function startContainer(spec: TestContainerSpec): Promise<UpstreamTarget> {
  const id = instanceId(spec.server, spec.ordinal ?? 0);
  const transport = spec.transport ?? 'stdio';
  const name = containerName(id);
  await runtime.remove(name);
  const containerId = await runtime.create({
    name,
    image: spec.image,
    cmd: spec.cmd,
    env: spec.env,
    labels: { [LABELS.managed]: 'true', [LABELS.server]: spec.server, [LABELS.instance]: id, [LABELS.generation]: '1' },
    interactive: true,
    network: transport === 'stdio' ? 'none' : 'host',
    init: true,
  });
  await runtime.start(containerId);
  return { instanceId: id, server: spec.server, transport, containerId, port: spec.port, path: spec.path };
}

/** Removes the containers of the given server-name prefix (ours only). */
export async function removeContainers(serverPrefix: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`] } });
  await Promise.all(
    list
      .filter((c) => (c.Labels[LABELS.server] ?? '').startsWith(serverPrefix))
      .map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
  );
}
