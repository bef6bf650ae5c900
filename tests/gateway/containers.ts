/**
 * Test containers made exactly as the lifecycle makes them (labels, name, Init,
 * network mode, attachable stdin), so the gateway is tested against the real thing.
 */
import Dockerode from 'dockerode';
import { containerName, instanceId } from '../../src/contracts/instance';
import { LABELS } from '../../src/contracts/labels';
import type { UpstreamTarget } from '../../src/contracts/routing';

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
  await docker.getContainer(name).remove({ force: true }).catch(() => undefined);
  const container = await docker.createContainer({
    name,
    Image: spec.image,
    Cmd: spec.cmd,
    Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: { [LABELS.managed]: 'true', [LABELS.server]: spec.server, [LABELS.instance]: id, [LABELS.generation]: '1' },
    OpenStdin: true,
    StdinOnce: false,
    Tty: false,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: { Init: true, NetworkMode: transport === 'stdio' ? 'none' : 'host' },
  });
  await container.start();
  return { instanceId: id, server: spec.server, transport, containerId: container.id, port: spec.port, path: spec.path };
}

/** Removes the containers of the given server-name prefix (ours only). */
export async function removeContainers(serverPrefix: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`] } });
  await Promise.all(
    list
      .filter((c) => (c.Labels[LABELS.server] ?? '').startsWith(serverPrefix))
      .map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)),
  );
}
