/**
 * What tests import to use `npm test`'s stack: its addresses and tool paths, a real
 * mcpd process per suite, a polling helper and container cleanup by label.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { freePort } from '../../src/embedded/process';

export { freePort };

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const MAIN_JS = path.join(REPO_ROOT, 'dist', 'src', 'main.js');

export interface TestEnv {
  temporalAddress: string;
  baoAddress: string;
  baoToken: string;
  /** temporal-test-server binary (time-skipping), for TestWorkflowEnvironment.createTimeSkipping. */
  temporalTestServer: string;
  /** The `temporal` CLI. */
  temporalCli: string;
  /** The `bao` CLI. */
  baoCli: string;
}

/** The stack `npm test` started; throws a clear error when tests run without it. */
export function testEnv(env: NodeJS.ProcessEnv = process.env): TestEnv {
  const wanted = {
    temporalAddress: 'TEMPORAL_ADDRESS',
    baoAddress: 'BAO_ADDR',
    baoToken: 'BAO_TOKEN',
    temporalTestServer: 'MCPD_TEMPORAL_TEST_SERVER',
    temporalCli: 'MCPD_TEMPORAL_CLI',
    baoCli: 'MCPD_BAO_CLI',
  } as const;
  const missing = Object.values(wanted).filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(
      `the test stack is not running (${missing.join(', ')} unset): run the tests with \`npm test\` ` +
        '(e.g. `npm test -- dist/tests/embedded/*.test.js`), which starts Temporal and OpenBao and sets these',
    );
  }
  const result = {} as TestEnv;
  for (const [key, name] of Object.entries(wanted)) result[key as keyof TestEnv] = env[name]!;
  return result;
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What we wait for, for the timeout message. */
  what?: string;
}

/**
 * Calls `fn` until it returns something other than undefined, null or false, and
 * returns that. Errors thrown by `fn` count as "not yet"; the last one is reported
 * on timeout.
 */
export async function waitFor<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, options: WaitOptions = {}): Promise<T> {
  const { timeoutMs = 30_000, intervalMs = 250, what = 'a condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export interface WaitForValueOptions<T> extends WaitOptions {
  /** How the last value appears in the timeout message (default: JSON). */
  describe?: (value: T) => string;
}

/**
 * Reads a value until `ok` holds for it, and returns it. Errors thrown by `read`
 * count as "not yet"; a timeout reports the last value read, so a failing test
 * shows what it saw instead.
 */
export async function waitForValue<T>(read: () => Promise<T>, ok: (value: T) => boolean, options: WaitForValueOptions<T> = {}): Promise<T> {
  let last: { value: T } | undefined;
  try {
    // Boxed, so a value that is falsy (0, '', false) can still be the answer.
    const found = await waitFor(async () => {
      last = { value: await read() };
      return ok(last.value) ? last : undefined;
    }, options);
    return found.value;
  } catch (err) {
    const seen = last ? (options.describe ?? ((v: T) => JSON.stringify(v)))(last.value) : 'nothing read';
    throw new Error(`${(err as Error).message}; last value: ${seen}`, { cause: err });
  }
}

export interface ContainerFilter {
  /** Docker label filters, "key=value" or "key". */
  label?: string | string[];
  name?: string | string[];
}

/** Force-removes every container (running or not) matching the filter; returns how many. */
export async function removeContainers(filter: ContainerFilter, docker: Docker = new Docker()): Promise<number> {
  const filters: Record<string, string[]> = {};
  if (filter.label) filters.label = ([] as string[]).concat(filter.label);
  if (filter.name) filters.name = ([] as string[]).concat(filter.name);
  if (Object.keys(filters).length === 0) throw new Error('removeContainers needs a label or name filter');
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(
    containers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404 && err.statusCode !== 409) throw err;
        }),
    ),
  );
  return containers.length;
}

export interface McpdProcess {
  /** http://127.0.0.1:<port> */
  url: string;
  /** The API/gateway bearer token mcpd wrote to <dataDir>/api-token. */
  token: string;
  pid: number;
  dataDir: string;
  node: string;
  /** Everything mcpd wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, await exit, remove the data dir. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), await exit; the data dir stays for restart(). */
  kill(): Promise<void>;
  /** A new mcpd with the same data dir, port, node name and env. */
  restart(): Promise<McpdProcess>;
}

export interface StartMcpdOptions {
  /** Extra or overriding environment for mcpd. */
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

interface LaunchPlan {
  dataDir: string;
  port: number;
  node: string;
  env: NodeJS.ProcessEnv;
  readyTimeoutMs: number;
}

/**
 * Spawns `node dist/src/main.js` against npm test's stack with a fresh data dir, a
 * free port and a node name unique to this call, and waits for GET /readyz = 200.
 */
export async function startMcpd(options: StartMcpdOptions = {}): Promise<McpdProcess> {
  const stack = testEnv();
  if (!fs.existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} does not exist: src/main.ts is missing or did not compile`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-t-'));
  const port = await freePort();
  const node = `t-${process.pid}-${randomBytes(3).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: stack.temporalAddress,
    BAO_ADDR: stack.baoAddress,
    BAO_TOKEN: stack.baoToken,
    MCPD_DATA_DIR: dataDir,
    MCPD_HOST: '127.0.0.1',
    MCPD_PORT: String(port),
    MCPD_NODE: node,
    // Tests create their own servers; the examples' fixed names would collide across suites on the shared engine.
    MCPD_SEED_EXAMPLES: 'false',
    ...options.env,
  };
  return launch({ dataDir, port, node, env, readyTimeoutMs: options.readyTimeoutMs ?? 90_000 });
}

async function launch(plan: LaunchPlan): Promise<McpdProcess> {
  const url = `http://127.0.0.1:${plan.port}`;
  const child: ChildProcess = spawn(process.execPath, [MAIN_JS], { cwd: REPO_ROOT, env: plan.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const end = async (signal: NodeJS.Signals) => {
    if (alive()) {
      child.kill(signal);
      const timer = signal === 'SIGKILL' ? undefined : setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      if (timer) clearTimeout(timer);
    }
  };
  // An mcpd that exits before it is ready has said why in its output: no point waiting out the timeout.
  const exitedEarly = exited.then((): never => {
    throw new Error(`mcpd exited (${child.exitCode ?? child.signalCode}) before ${url}/readyz answered 200`);
  });
  exitedEarly.catch(() => undefined);
  try {
    await Promise.race([
      waitFor(
        async () => {
          const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
          await res.arrayBuffer();
          return res.status === 200;
        },
        { timeoutMs: plan.readyTimeoutMs, intervalMs: 200, what: `mcpd ${url}/readyz` },
      ),
      exitedEarly,
    ]);
  } catch (err) {
    await end('SIGKILL');
    fs.rmSync(plan.dataDir, { recursive: true, force: true });
    const tail = output.trim().split('\n').slice(-20).join('\n');
    throw new Error(`${(err as Error).message}\n--- mcpd output ---\n${tail}`, { cause: err });
  }
  const tokenFile = path.join(plan.dataDir, 'api-token');
  const token = fs.existsSync(tokenFile) ? fs.readFileSync(tokenFile, 'utf8').trim() : '';
  return {
    url,
    token,
    pid: child.pid!,
    dataDir: plan.dataDir,
    node: plan.node,
    output: () => output,
    async stop() {
      await end('SIGTERM');
      fs.rmSync(plan.dataDir, { recursive: true, force: true });
    },
    async kill() {
      await end('SIGKILL');
    },
    async restart() {
      await end('SIGTERM');
      return launch(plan);
    },
  };
}
