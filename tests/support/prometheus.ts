/**
 * The Prometheus side of the tests of /metrics: Debian's promtool and prometheus (npm test
 * installs the package and names them in MCPD_PROMTOOL and MCPD_PROMETHEUS), a reader of
 * the text exposition for assertions, and a real Prometheus server on a free loopback port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCommand, type CommandRun } from './clients';
import { REPO_ROOT, freePort, waitFor } from './stack';

export interface PrometheusTools {
  promtool: string;
  prometheus: string;
}

/** The binaries npm test found or installed; throws a clear error without them. */
export function prometheusTools(env: NodeJS.ProcessEnv = process.env): PrometheusTools {
  const promtool = env.MCPD_PROMTOOL;
  const prometheus = env.MCPD_PROMETHEUS;
  if (!promtool || !prometheus) {
    throw new Error(
      "MCPD_PROMTOOL or MCPD_PROMETHEUS is unset: run these tests with `npm test`, which installs Debian's prometheus package (promtool, prometheus) when it is missing",
    );
  }
  return { promtool, prometheus };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (format 0.0.4); comments and blank lines skipped. */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample line of the text format: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of the samples named `name` whose labels include `labels` (undefined when there is none). */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return matching.length === 0 ? undefined : matching.reduce((sum, s) => sum + s.value, 0);
}

/** Runs promtool with `args`, feeding `stdin` when given. */
export function runPromtool(args: string[], stdin?: string): Promise<CommandRun> {
  return runCommand(prometheusTools().promtool, args, { stdin });
}

export interface PrometheusServer {
  /** http://127.0.0.1:<port> */
  url: string;
  pid: number;
  /** Its log so far (for failure messages). */
  output(): string;
  /** Instant query through the HTTP API; the result vector. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** SIGTERM by pid, wait for the exit, remove its storage and config. */
  stop(): Promise<void>;
}

/**
 * Starts Debian's prometheus with `config` (YAML text) on a free loopback port, its own
 * TSDB in a temporary directory, and waits for /-/ready.
 */
export async function startPrometheus(config: string): Promise<PrometheusServer> {
  const { prometheus } = prometheusTools();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-prometheus-'));
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(configFile, config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    prometheus,
    [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (alive()) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (!alive()) throw new Error(`prometheus exited (${child.exitCode ?? child.signalCode})`);
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        return res.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `prometheus ${url}/-/ready` },
    );
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- prometheus output ---\n${output.trim().split('\n').slice(-20).join('\n')}`, { cause: err });
  }
  return {
    url,
    pid: child.pid!,
    output: () => output,
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql }).toString()}`);
      const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: never[] } };
      if (body.status !== 'success') throw new Error(`prometheus query ${promql} failed: ${body.error}`);
      return body.data!.result;
    },
    stop,
  };
}

/** Every PromQL expression of the panels of ops/grafana/mcpd-dashboard.json. */
export function dashboardQueries(): { panel: string; expr: string }[] {
  const file = path.join(REPO_ROOT, 'ops', 'grafana', 'mcpd-dashboard.json');
  const dashboard = JSON.parse(fs.readFileSync(file, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
}
