/**
 * What the multi-node tests share: a Docker engine of the test's own that stands in for a
 * second host, and forgetting the test's nodes afterwards (their node workflows would stay
 * listed, NotReady, in the shared test namespace).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { nodeWorkflowId } from '../../src/contracts/node';
import { DockerEngine } from '../../src/cluster/dockerEngine';
import { engineDocker } from './engineDocker';
import { testEnv } from './stack';

export interface SecondHost {
  engine: DockerEngine;
  /** Removes every container the engine holds, stops it and deletes its directory. */
  remove(): Promise<void>;
}

/** Starts an engine in a new temp dir (`mcpd-<prefix>-…`) and loads `images` into it from the machine's engine. */
export async function startSecondHost(prefix: string, images: string[]): Promise<SecondHost> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mcpd-${prefix}-`));
  const engine = new DockerEngine(dir);
  const remove = async () => {
    const docker = engineDocker(engine);
    const left = await docker.listContainers({ all: true }).catch(() => []);
    await Promise.all(
      left.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
    await engine.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await engine.start();
    for (const image of images) await engine.loadImage(image);
  } catch (err) {
    await remove().catch(() => undefined);
    throw err;
  }
  return { engine, remove };
}

/** Terminates the node workflows of these nodes, so they leave the node list. */
export async function forgetNodes(nodes: string[]): Promise<void> {
  const connection = await Connection.connect({ address: testEnv().temporalAddress });
  try {
    const client = new Client({ connection });
    for (const node of nodes)
      await client.workflow
        .getHandle(nodeWorkflowId(node))
        .terminate('test over')
        .catch(() => undefined);
  } finally {
    await connection.close();
  }
}
