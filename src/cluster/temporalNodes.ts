/**
 * Temporal server nodes of one cluster, each a `temporal-server start` with all four
 * services on its own loopback ports, and the namespace and search attributes mcpd needs.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SEARCH_ATTRIBUTES } from '../contracts/searchAttributes';
import { isPortOpen, startProcess, waitUntil, type ManagedProcess } from '../embedded/process';
import { TEMPORAL_NAMESPACE, temporalDynamicConfigYaml, temporalServerConfigYaml, type TemporalConfigInput, type TemporalNode } from './config';

const HOST = '127.0.0.1';

/**
 * Runs the temporal CLI without blocking the event loop: the frontend proxy lives in this
 * process, and the CLI's calls to the cluster go through it.
 */
function runCli(temporalCli: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(temporalCli, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ ok: !error, output: `${stdout}${stderr}` || (error?.message ?? '') }),
    );
  });
}

export interface RunningTemporalNode {
  node: TemporalNode;
  address: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export function writeNodeConfig(input: TemporalConfigInput): void {
  fs.mkdirSync(path.dirname(input.node.configFile), { recursive: true });
  fs.writeFileSync(input.dynamicConfigFile, temporalDynamicConfigYaml());
  // Holds the database password.
  fs.writeFileSync(input.node.configFile, temporalServerConfigYaml(input), { mode: 0o600 });
}

/** Healthy means the frontend answers the cluster health check (`temporal operator cluster health`). */
export async function frontendHealthy(temporalCli: string, address: string): Promise<boolean> {
  return (await runCli(temporalCli, ['operator', 'cluster', 'health', '--address', address])).ok;
}

export async function startTemporalNode(options: {
  serverBin: string;
  temporalCli: string;
  node: TemporalNode;
  timeoutMs?: number;
}): Promise<RunningTemporalNode> {
  const { node } = options;
  for (const port of Object.values(node.ports) as number[]) {
    if (await isPortOpen(HOST, port)) throw new Error(`port ${HOST}:${port} (${node.name}) is already in use`);
  }
  const address = `${HOST}:${node.ports.frontend}`;
  const proc = startProcess({
    name: node.name,
    command: options.serverBin,
    args: ['--config-file', node.configFile, '--allow-no-auth', 'start'],
    logFile: node.logFile,
  });
  try {
    await waitUntil(`${node.name} at ${address} to report SERVING`, async () => frontendHealthy(options.temporalCli, address), {
      timeoutMs: options.timeoutMs ?? 120_000,
      intervalMs: 500,
      proc,
    });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { node, address, process: proc, stop: () => proc.stop(20_000) };
}

/** Creates the namespace and mcpd's search attributes unless they exist (idempotent). */
export async function ensureNamespaceAndSearchAttributes(temporalCli: string, address: string, log: (msg: string) => void): Promise<void> {
  const base = ['--address', address, '--namespace', TEMPORAL_NAMESPACE];
  if (!(await runCli(temporalCli, ['operator', 'namespace', 'describe', ...base])).ok) {
    const created = await runCli(temporalCli, ['operator', 'namespace', 'create', ...base, '--retention', '72h']);
    if (!created.ok && !/already/i.test(created.output)) throw new Error(`creating namespace ${TEMPORAL_NAMESPACE} failed: ${created.output}`);
    log(`created namespace ${TEMPORAL_NAMESPACE}`);
  }
  // A new namespace reaches every frontend's cache within seconds; until then creates fail with NotFound.
  for (const name of Object.values(SEARCH_ATTRIBUTES)) {
    await waitUntil(
      `search attribute ${name} registered`,
      async () => {
        const result = await runCli(temporalCli, ['operator', 'search-attribute', 'create', ...base, '--name', name, '--type', 'Keyword']);
        if (result.ok || /already exists/i.test(result.output)) return true;
        throw new Error(result.output.trim().split('\n').pop());
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
  }
}
