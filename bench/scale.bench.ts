/**
 * `npm run bench -- scale [--replicas N] [--window-seconds S]`: N replicas (default 200)
 * of mcpd/tiny:dev (images/tiny, a static Go MCP server) on a real mcpd process
 * (`node dist/src/main.js`, as `npm start` runs it), readiness probe `tools/call echo`
 * every 30 s. It reports the time from apply to all RUNNING and healthy, instances
 * started per second, how busy the machine's cores were during the start (the baseline's
 * and mcpd's: near 100 % the start waits for CPU), when the start's burst has drained,
 * the CPU of mcpd and of the Temporal dev server over a steady window after that
 * (default 60 s, read from /proc/<pid>/stat), mcpd's RSS, history events per
 * instance-hour (a sample of instance and probe workflows, counted with the Temporal
 * client over the window), the time to delete all with the check that no container
 * and no workflow is left, the same figures extrapolated to 1,000 instances with the
 * formulas, and the goals of issue 9 beside the measured values. The baseline, from
 * the same run: the same N containers started with plain `docker run -d` (same
 * concurrency, no MCP handshake), time and memory. Needs the stack `npm run bench`
 * starts (its own Temporal dev server, SQLite in a temporary data dir as `npm start` keeps
 * it, so every workflow in it is this bench's).
 * Environment: MCPD_START_CONCURRENCY is passed on to mcpd and bounds the baseline too.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify, parseArgs } from 'node:util';
import Docker from 'dockerode';
import { Client, Connection } from '@temporalio/client';
import { mapLimit } from '../src/concurrency';
import { DEFAULT_START_CONCURRENCY, loadSettings } from '../src/config/settings';
import { instanceId, nodeTaskQueue, TASK_QUEUE } from '../src/contracts/instance';
import { LABELS } from '../src/contracts/labels';
import { SEARCH_ATTRIBUTES } from '../src/contracts/searchAttributes';
import { quoteLiteral } from '../src/contracts/visibility';
import { removeContainers, startMcpd, testEnv, type McpdProcess } from '../tests/support/stack';
import { callApi } from '../tests/support/clients';
import { parseExposition, valueOf } from '../tests/support/prometheus';
import type { temporal } from '@temporalio/proto';
import { startSteps, stepPercentiles, stopSteps, type Step } from './startBreakdown';
import {
  FORMULAS,
  checkGoals,
  cpuPercentOfCore,
  cpuTicksFromProcStat,
  eventsPerInstanceHour,
  extrapolate,
  machineBusyPercent,
  machineTicksFromProcStat,
  type MachineTicks,
  type ScaleMeasurement,
} from './scaleFigures';

const IMAGE = 'mcpd/tiny:dev';
const PROBE_INTERVAL_SECONDS = 30;
const HISTORY_SAMPLE = 10;
const MEMORY_SAMPLE = 20;
const READY_TIMEOUT_MS = 15 * 60_000;
const DELETE_TIMEOUT_MS = 10 * 60_000;

const { values: args } = parseArgs({
  options: { replicas: { type: 'string', default: '200' }, 'window-seconds': { type: 'string', default: '60' } },
  allowPositionals: true,
});
const REPLICAS = Number(args.replicas);
const WINDOW_SECONDS = Number(args['window-seconds']);
if (!Number.isInteger(REPLICAS) || REPLICAS < 1) throw new Error(`--replicas must be a positive integer, got "${args.replicas}"`);
if (!Number.isInteger(WINDOW_SECONDS) || WINDOW_SECONDS < 1) throw new Error(`--window-seconds must be a positive integer, got "${args['window-seconds']}"`);
// Validated the way mcpd validates it, so a bad value fails here with mcpd's message.
const START_CONCURRENCY = loadSettings({ MCPD_START_CONCURRENCY: process.env.MCPD_START_CONCURRENCY }).startConcurrency;

const run = promisify(execFile);
const docker = new Docker();
/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat; 100 on every common Linux build. */
let ticksPerSecond = 100;

const cpuTicks = (pid: number) => cpuTicksFromProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
const machineTicks = () => machineTicksFromProcStat(fs.readFileSync('/proc/stat', 'utf8'));
/** The whole machine over a stretch of time: how busy its cores were, and its busy CPU seconds. */
interface MachineCpu {
  busyPercent: number;
  busySeconds: number;
}

/** The machine's CPU since a reading of machineTicks(). */
function machineSince(before: MachineTicks): MachineCpu {
  const after = machineTicks();
  return { busyPercent: machineBusyPercent(before, after), busySeconds: (after.busy - before.busy) / ticksPerSecond };
}

/** VmRSS of a process in bytes; 0 when it is gone. */
function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function memAvailableBytes(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function parentPid(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The Temporal dev server `npm run bench` started: the process whose command line is `... start-dev ... --port <port>`. */
function temporalPid(address: string): number {
  const port = address.split(':').pop();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const at = argv.indexOf('--port');
    if (argv.includes('start-dev') && at >= 0 && argv[at + 1] === port) return Number(entry);
  }
  throw new Error(`no Temporal dev server process listening on port ${port} found in /proc`);
}

/** The Docker engine's processes (dockerd and its containerd), from dockerd's pid file; empty when unreadable. */
function enginePids(): number[] {
  try {
    const dockerd = Number(fs.readFileSync(process.env.DOCKER_PIDFILE ?? '/var/run/docker.pid', 'utf8').trim());
    return dockerd > 0 ? [dockerd, ...childPids(dockerd)] : [];
  } catch {
    return [];
  }
}

/** CPU seconds a set of processes has used so far (the ones that are gone count 0). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      ticks += cpuTicks(pid);
    } catch {
      // gone
    }
  }
  return ticks / ticksPerSecond;
}

interface ContainerMemory {
  /** The container's own processes (docker-init and the server). */
  processes: number;
  /** Its containerd shim, a host process per container. */
  shim: number;
}

/** RSS of a sample of the containers carrying `label`, averaged per container. */
async function containerMemory(label: string): Promise<ContainerMemory> {
  const listed = await docker.listContainers({ filters: { label: [label] } });
  const sample = listed.slice(0, MEMORY_SAMPLE);
  let processes = 0;
  let shim = 0;
  for (const c of sample) {
    const pid = (await docker.getContainer(c.Id).inspect()).State.Pid;
    if (!pid) continue;
    processes += rssBytes(pid) + childPids(pid).reduce((sum, child) => sum + rssBytes(child), 0);
    shim += rssBytes(parentPid(pid));
  }
  return { processes: processes / Math.max(1, sample.length), shim: shim / Math.max(1, sample.length) };
}

interface Baseline {
  seconds: number;
  /** The whole machine while the containers started. */
  machine: MachineCpu;
  /** The same containers stopped and removed (`docker rm -f`, same bound on parallel calls). */
  secondsToRemove: number;
  memory: ContainerMemory;
  memAvailableDropPerContainer: number;
}

/** N × `docker run -d -i --init --network none` with the same bound on parallel starts, then removed. */
async function plainDockerRuns(label: string, suffix: string): Promise<Baseline> {
  const before = memAvailableBytes();
  const started = process.hrtime.bigint();
  const machineBefore = machineTicks();
  await mapLimit(
    Array.from({ length: REPLICAS }, (_, i) => i),
    START_CONCURRENCY,
    (i) => run('docker', ['run', '-d', '-i', '--init', '--network', 'none', '--label', label, '--name', `t-bench-scale-plain-${suffix}-${i}`, IMAGE]),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const machine = machineSince(machineBefore);
  await sleep(2000);
  const memory = await containerMemory(label);
  const drop = (before - memAvailableBytes()) / REPLICAS;
  const removing = process.hrtime.bigint();
  await mapLimit(
    Array.from({ length: REPLICAS }, (_, i) => i),
    START_CONCURRENCY,
    (i) => run('docker', ['rm', '-f', `t-bench-scale-plain-${suffix}-${i}`]),
  );
  const secondsToRemove = Number(process.hrtime.bigint() - removing) / 1e9;
  await removeContainers({ label });
  return { seconds, machine, secondsToRemove, memory, memAvailableDropPerContainer: drop };
}

/** "97 % (72 s)": how busy the machine's cores were and its busy CPU seconds. */
function startMachineLine(machine: MachineCpu): string {
  return `${machine.busyPercent.toFixed(0)} % (${machine.busySeconds.toFixed(0)} s)`;
}

/** Counts workflows matching a visibility query (the bench's Temporal is its own, so nothing else is counted). */
async function countWorkflows(client: Client, query: string): Promise<number> {
  return (await client.workflow.count(query)).count;
}

interface RunLength {
  runId: string;
  length: number;
}

/** The latest run of a workflow and its history length (events so far). */
async function runLength(client: Client, workflowId: string, runId?: string): Promise<RunLength> {
  const d = await client.workflow.getHandle(workflowId, runId).describe();
  return { runId: d.runId, length: d.historyLength };
}

/** The run a run continued from (continue-as-new), from its first event. */
async function previousRunId(client: Client, workflowId: string, runId: string): Promise<string | undefined> {
  const page = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  return page.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
}

/** Events a workflow added since `before` (its runs chained by continue-as-new included); a workflow new since then counts whole. */
async function eventsSince(client: Client, workflowId: string, before: RunLength | undefined): Promise<number> {
  let current: RunLength = await runLength(client, workflowId);
  let events = 0;
  for (let hops = 0; hops < 20; hops++) {
    if (before && current.runId === before.runId) return events + current.length - before.length;
    events += current.length;
    const previous = await previousRunId(client, workflowId, current.runId);
    if (!previous) return events;
    current = await runLength(client, workflowId, previous);
  }
  return events;
}

/** The instance workflow and its child (probe) workflows of one instance, with their history lengths now. */
async function familyLengths(client: Client, id: string): Promise<Map<string, RunLength>> {
  const lengths = new Map<string, RunLength>();
  const d = await client.workflow.getHandle(id).describe();
  lengths.set(id, { runId: d.runId, length: d.historyLength });
  for (const child of d.raw.pendingChildren ?? []) {
    if (child.workflowId) lengths.set(child.workflowId, await runLength(client, child.workflowId));
  }
  return lengths;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function table(title: string, rows: [string, string, string?][]): void {
  const widths = [Math.max(...rows.map((r) => r[0].length), 6), Math.max(...rows.map((r) => r[1].length), 8)];
  const withThird = rows.some((r) => r[2] !== undefined);
  console.log(`\n${title}`);
  const line = (a: string, b: string, c?: string) => `| ${a.padEnd(widths[0])} | ${b.padStart(widths[1])} |${withThird ? ` ${c ?? ''} |` : ''}`;
  console.log(line('figure', 'value', withThird ? 'goal / note' : undefined));
  console.log(`|${'-'.repeat(widths[0] + 2)}|${'-'.repeat(widths[1] + 2)}|${withThird ? '---|' : ''}`);
  for (const [a, b, c] of rows) console.log(line(a, b, c));
}

/**
 * Where each instance's start went, from apply to its RUNNING upsert, read from every
 * instance's history (bench/startBreakdown.ts): queue waits against work, median and p90.
 */
async function printStartBreakdown(client: Client, server: string, appliedAtMs: number): Promise<void> {
  const runs = await instanceHistories(client, server, (events) => startSteps(events, appliedAtMs, 0).slice(0, -1));
  printSteps('Where a start goes (every instance, from apply to RUNNING recorded; ms)', runs);
}

/** Where each instance's stop went, from the delete call to its workflow's end, read from its history. */
async function printStopBreakdown(client: Client, server: string, deletedAtMs: number): Promise<void> {
  const runs = await instanceHistories(client, server, (events) => stopSteps(events, deletedAtMs));
  printSteps('Where a delete goes (every instance, from the delete call to its workflow ended; ms)', runs);
}

function instanceHistories(client: Client, server: string, steps: (events: temporal.api.history.v1.IHistoryEvent[]) => Step[]): Promise<Step[][]> {
  return mapLimit(
    Array.from({ length: REPLICAS }, (_, ordinal) => instanceId(server, ordinal)),
    16,
    async (id) => steps((await client.workflow.getHandle(id).fetchHistory()).events ?? []),
  );
}

function printSteps(title: string, runs: Step[][]): void {
  console.log(`\n${title}`);
  console.log(`| ${'step'.padEnd(56)} | ${'median'.padStart(8)} | ${'p90'.padStart(8)} |`);
  console.log(`|${'-'.repeat(58)}|${'-'.repeat(10)}|${'-'.repeat(10)}|`);
  for (const step of stepPercentiles(runs)) {
    console.log(`| ${step.label.padEnd(56)} | ${step.median.toFixed(0).padStart(8)} | ${step.p90.toFixed(0).padStart(8)} |`);
  }
}

/** How long the control worker runs no workflow task before the start counts as drained. */
const DRAINED_QUIET_SECONDS = 5;
const DRAIN_TIMEOUT_MS = 10 * 60_000;

/**
 * Waits until the start's burst has drained and returns the seconds since apply: the node runs a
 * probe loop per instance (one activity slot each) and the control worker has run no workflow
 * task for DRAINED_QUIET_SECONDS, read from the Temporal SDK's slot gauges on mcpd's /metrics.
 * "All healthy" comes before the burst's last workflow tasks (each instance's probe child
 * starting its loop), which a steady window must not count.
 */
async function untilStartDrained(mcpd: McpdProcess, elapsed: () => number): Promise<number> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  let quietSeconds = 0;
  for (;;) {
    const res = await fetch(`${mcpd.url}/metrics`, { headers: { authorization: `Bearer ${mcpd.token}` } });
    const samples = parseExposition(await res.text());
    const slotsUsed = (taskQueue: string, workerType: string) =>
      valueOf(samples, 'temporal_worker_task_slots_used', { task_queue: taskQueue, worker_type: workerType }) ?? 0;
    const loops = slotsUsed(nodeTaskQueue(mcpd.node), 'ActivityWorker');
    const workflowTasks = slotsUsed(TASK_QUEUE, 'WorkflowWorker');
    quietSeconds = loops >= REPLICAS && workflowTasks === 0 ? quietSeconds + 1 : 0;
    if (quietSeconds >= DRAINED_QUIET_SECONDS) return elapsed();
    if (Date.now() > deadline) throw new Error(`the start did not drain: ${loops} probe loops running, ${workflowTasks} workflow tasks`);
    await sleep(1000);
  }
}

async function main(): Promise<void> {
  const stack = testEnv();
  ticksPerSecond = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || ticksPerSecond;
  const suffix = randomBytes(2).toString('hex');
  const server = `t-bench-scale-${suffix}`;
  const plainLabel = `${LABELS.server}=t-bench-scale-plain-${suffix}`;
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const client = new Client({ connection });
  const temporal = temporalPid(stack.temporalAddress);
  let mcpd: McpdProcess | undefined;
  console.log(
    `scale bench: ${REPLICAS} replicas of ${IMAGE}, readiness probe every ${PROBE_INTERVAL_SECONDS} s, start concurrency ${START_CONCURRENCY}` +
      `${process.env.MCPD_START_CONCURRENCY ? '' : ` (default ${DEFAULT_START_CONCURRENCY})`}, ${WINDOW_SECONDS} s window`,
  );
  try {
    console.log(`baseline: ${REPLICAS} x docker run -d`);
    const baseline = await plainDockerRuns(plainLabel, suffix);

    // BENCH_PROFILE_DIR=/tmp/prof CPU-profiles mcpd: one profile per phase (start, steady window, delete; bench/cpuProfile.ts).
    const profile = process.env.BENCH_PROFILE_DIR ? { NODE_OPTIONS: `--require ${path.join(__dirname, 'cpuProfile.js')}` } : {};
    mcpd = await startMcpd({ env: { MCPD_LOG_LEVEL: 'warn', MCPD_START_CONCURRENCY: String(START_CONCURRENCY), ...profile } });
    const pid = mcpd.pid;
    const nextProfile = () => process.env.BENCH_PROFILE_DIR && process.kill(pid, 'SIGWINCH');
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await callApi(mcpd!, method, path, body);
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
      return res.json as unknown;
    };

    // Idle: mcpd up with nothing to run, over a short window.
    const idleSeconds = 10;
    const idle0 = { mcpd: cpuTicks(pid), temporal: cpuTicks(temporal) };
    await sleep(idleSeconds * 1000);
    const idle1 = { mcpd: cpuTicks(pid), temporal: cpuTicks(temporal) };
    const cpuIdle = {
      mcpd: cpuPercentOfCore(idle0.mcpd, idle1.mcpd, ticksPerSecond, idleSeconds),
      temporal: cpuPercentOfCore(idle0.temporal, idle1.temporal, ticksPerSecond, idleSeconds),
    };
    const mcpdRssIdle = rssBytes(pid);
    const memBefore = memAvailableBytes();

    console.log(`applying ${server} with ${REPLICAS} replicas`);
    nextProfile();
    // Which process the start waits on: the CPU each one spends from apply to all healthy.
    const engine = enginePids();
    const startCpu0 = { mcpd: cpuSeconds([pid]), temporal: cpuSeconds([temporal]), engine: cpuSeconds(engine) };
    const machineBefore = machineTicks();
    const applied = process.hrtime.bigint();
    const appliedAtMs = Date.now();
    const elapsed = () => Number(process.hrtime.bigint() - applied) / 1e9;
    await api('PUT', `/api/v1/servers/${server}`, {
      name: server,
      image: IMAGE,
      replicas: REPLICAS,
      healthCheck: { tool: 'echo', arguments: { message: 'probe' }, intervalSeconds: PROBE_INTERVAL_SECONDS, timeoutSeconds: 10 },
    });
    await api('POST', `/api/v1/servers/${server}/start`);
    // The start update returns once the server workflow has started every instance workflow (not once they run).
    const secondsStartReturned = elapsed();
    const byServer = `WorkflowType = 'instanceWorkflow' AND ExecutionStatus = 'Running' AND ${SEARCH_ATTRIBUTES.server} = ${quoteLiteral(server)}`;
    const runningQuery = `${byServer} AND ${SEARCH_ATTRIBUTES.status} = 'RUNNING'`;
    const healthyQuery = `${runningQuery} AND ${SEARCH_ATTRIBUTES.health} = 'healthy'`;
    let secondsToRunning = 0;
    let lastPrint = 0;
    for (;;) {
      const [running, healthy] = await Promise.all([countWorkflows(client, runningQuery), countWorkflows(client, healthyQuery)]);
      if (!secondsToRunning && running >= REPLICAS) secondsToRunning = elapsed();
      if (healthy >= REPLICAS) break;
      if (elapsed() - lastPrint >= 10) {
        lastPrint = elapsed();
        console.log(`  ${elapsed().toFixed(0)} s: ${running} RUNNING, ${healthy} healthy`);
      }
      if (elapsed() * 1000 > READY_TIMEOUT_MS) throw new Error(`only ${healthy} of ${REPLICAS} healthy after ${elapsed().toFixed(0)} s`);
      await sleep(250);
    }
    const secondsToHealthy = elapsed();
    nextProfile();
    const startCpu = {
      mcpd: cpuSeconds([pid]) - startCpu0.mcpd,
      temporal: cpuSeconds([temporal]) - startCpu0.temporal,
      engine: cpuSeconds(engine) - startCpu0.engine,
    };
    const startMachine = machineSince(machineBefore);
    if (!secondsToRunning) secondsToRunning = secondsToHealthy;
    // Visibility can lag; the API's answer (status queries of every instance) is the truth.
    const views = (await api('GET', `/api/v1/instances?server=${server}`)) as { items: { status: string; health: string }[] };
    const notReady = views.items.filter((v) => v.status !== 'RUNNING' || v.health !== 'healthy');
    if (views.items.length !== REPLICAS || notReady.length) {
      throw new Error(`search attributes said all healthy, the API lists ${views.items.length} with ${notReady.length} not RUNNING and healthy`);
    }
    console.log(`  all ${REPLICAS} RUNNING after ${secondsToRunning.toFixed(1)} s, healthy after ${secondsToHealthy.toFixed(1)} s`);
    await printStartBreakdown(client, server, appliedAtMs);

    // Steady state: once the start's burst has drained, one window long enough for two probe rounds.
    const secondsToDrained = await untilStartDrained(mcpd, elapsed);
    console.log(`  the start's burst drained after ${secondsToDrained.toFixed(1)} s`);
    const sample = Array.from({ length: Math.min(HISTORY_SAMPLE, REPLICAS) }, (_, i) =>
      instanceId(server, Math.floor((i * REPLICAS) / Math.min(HISTORY_SAMPLE, REPLICAS))),
    );
    const lengthsBefore = new Map<string, Map<string, RunLength>>();
    for (const id of sample) lengthsBefore.set(id, await familyLengths(client, id));
    nextProfile();
    const t0 = { mcpd: cpuTicks(pid), temporal: cpuTicks(temporal), at: process.hrtime.bigint() };
    await sleep(WINDOW_SECONDS * 1000);
    const t1 = { mcpd: cpuTicks(pid), temporal: cpuTicks(temporal), at: process.hrtime.bigint() };
    nextProfile();
    const windowSeconds = Number(t1.at - t0.at) / 1e9;
    let events = 0;
    for (const id of sample) {
      const before = lengthsBefore.get(id)!;
      const now = await familyLengths(client, id);
      for (const workflowId of new Set([...before.keys(), ...now.keys()])) events += await eventsSince(client, workflowId, before.get(workflowId));
    }
    const cpuSteady = {
      mcpd: cpuPercentOfCore(t0.mcpd, t1.mcpd, ticksPerSecond, windowSeconds),
      temporal: cpuPercentOfCore(t0.temporal, t1.temporal, ticksPerSecond, windowSeconds),
    };
    const mcpdRssSteady = rssBytes(pid);
    const instanceMemory = await containerMemory(`${LABELS.server}=${server}`);
    const memDropPerInstance = (memBefore - memAvailableBytes()) / REPLICAS;

    console.log(`deleting ${server}`);
    const deleting = process.hrtime.bigint();
    const deletedAtMs = Date.now();
    await api('DELETE', `/api/v1/servers/${server}`);
    let left = { containers: -1, workflows: -1 };
    for (;;) {
      const containers = (await docker.listContainers({ all: true, filters: { label: [`${LABELS.server}=${server}`] } })).length;
      // The node's own workflow runs for as long as mcpd does; every other workflow is this server's.
      const workflows = await countWorkflows(client, `ExecutionStatus = 'Running' AND WorkflowType != 'nodeWorkflow'`);
      left = { containers, workflows };
      if (containers === 0 && workflows === 0) break;
      if (Number(process.hrtime.bigint() - deleting) / 1e6 > DELETE_TIMEOUT_MS) {
        throw new Error(`delete left ${containers} containers and ${workflows} running workflows after ${DELETE_TIMEOUT_MS / 1000} s`);
      }
      await sleep(250);
    }
    const secondsToDeleted = Number(process.hrtime.bigint() - deleting) / 1e9;
    await printStopBreakdown(client, server, deletedAtMs);

    const measured: ScaleMeasurement = {
      instances: REPLICAS,
      secondsToHealthy,
      secondsToDeleted,
      cpuIdle,
      cpuSteady,
      mcpdRssIdleBytes: mcpdRssIdle,
      mcpdRssSteadyBytes: mcpdRssSteady,
      historyEventsPerInstanceHour: eventsPerInstanceHour(events, sample.length, windowSeconds),
    };
    const at1000 = extrapolate(measured, 1000);
    const pct = (v: number) => `${v.toFixed(1)} %`;

    table(`Scale: ${REPLICAS} x ${IMAGE} on mcpd, readiness probe every ${PROBE_INTERVAL_SECONDS} s (this machine, ${new Date().toISOString()})`, [
      [
        'baseline: docker run -d x N, all started',
        `${baseline.seconds.toFixed(1)} s`,
        `${(REPLICAS / baseline.seconds).toFixed(1)} containers/s, no MCP handshake`,
      ],
      ['mcpd: apply -> POST start answered', `${secondsStartReturned.toFixed(1)} s`, 'every instance workflow started'],
      ['mcpd: apply -> all RUNNING', `${secondsToRunning.toFixed(1)} s`, `${(REPLICAS / secondsToRunning).toFixed(1)} instances/s`],
      ['mcpd: apply -> all RUNNING and healthy', `${secondsToHealthy.toFixed(1)} s`, `${(REPLICAS / secondsToHealthy).toFixed(1)} instances/s`],
      ['mcpd: apply -> start drained', `${secondsToDrained.toFixed(1)} s`, `a probe loop per instance, no workflow task for ${DRAINED_QUIET_SECONDS} s`],
      [
        'CPU during the start: mcpd / Temporal / dockerd+containerd',
        `${startCpu.mcpd.toFixed(0)} / ${startCpu.temporal.toFixed(0)} / ${startCpu.engine.toFixed(0)} s`,
        `CPU seconds from apply to all healthy (${(secondsToHealthy * os.cpus().length).toFixed(0)} s of ${os.cpus().length} cores); per instance ${((startCpu.mcpd / REPLICAS) * 1000).toFixed(0)} / ${((startCpu.temporal / REPLICAS) * 1000).toFixed(0)} / ${((startCpu.engine / REPLICAS) * 1000).toFixed(0)} ms`,
      ],
      [
        'machine CPU busy during the start: baseline / mcpd',
        `${startMachineLine(baseline.machine)} / ${startMachineLine(startMachine)}`,
        `all ${os.cpus().length} cores, every process and the kernel; near 100 %: the start waits for CPU, and ${(baseline.machine.busySeconds / REPLICAS).toFixed(3)} / ${(startMachine.busySeconds / REPLICAS).toFixed(3)} CPU s per container bound it`,
      ],
      ['CPU idle, mcpd / Temporal', `${pct(cpuIdle.mcpd)} / ${pct(cpuIdle.temporal)}`, `% of one core, ${idleSeconds} s before apply`],
      ['CPU steady, mcpd', pct(cpuSteady.mcpd), `% of one core over ${windowSeconds.toFixed(0)} s`],
      ['CPU steady, Temporal dev server', pct(cpuSteady.temporal), `% of one core over ${windowSeconds.toFixed(0)} s`],
      ['mcpd RSS idle / steady', `${mib(mcpdRssIdle)} / ${mib(mcpdRssSteady)}`, `${mib(at1000.mcpdRssPerInstanceBytes)} per instance`],
      [
        'history events per instance-hour',
        measured.historyEventsPerInstanceHour.toFixed(1),
        `${events} events, ${sample.length} instances + probes, ${windowSeconds.toFixed(0)} s`,
      ],
      ['baseline: docker rm -f x N', `${baseline.secondsToRemove.toFixed(1)} s`, `${(REPLICAS / baseline.secondsToRemove).toFixed(1)} containers/s`],
      ['delete -> no container, no workflow', `${secondsToDeleted.toFixed(1)} s`, `left: ${left.containers} containers, ${left.workflows} workflows`],
      ['container RSS, baseline: init+server / shim', `${mib(baseline.memory.processes)} / ${mib(baseline.memory.shim)}`, `average of ${MEMORY_SAMPLE}`],
      ['container RSS, mcpd: init+server / shim', `${mib(instanceMemory.processes)} / ${mib(instanceMemory.shim)}`, `average of ${MEMORY_SAMPLE}`],
      [
        'MemAvailable drop per container, baseline / mcpd',
        `${mib(baseline.memAvailableDropPerContainer)} / ${mib(memDropPerInstance)}`,
        'whole machine: dockerd, shims, kernel',
      ],
    ]);

    table('Extrapolated to 1,000 instances', [
      ['apply -> all healthy', `${at1000.secondsToHealthy.toFixed(0)} s`],
      ['control plane CPU added (mcpd + Temporal)', pct(at1000.controlPlaneCpuPercent)],
      ['  mcpd / Temporal', `${pct(at1000.mcpdCpuPercent)} / ${pct(at1000.temporalCpuPercent)}`],
      ['mcpd RSS', mib(at1000.mcpdRssBytes)],
      ['history events per day', at1000.historyEventsPerDay.toFixed(0)],
      ['delete all', `${at1000.secondsToDeleted.toFixed(0)} s`],
      ['machine memory (MemAvailable drop)', mib(memDropPerInstance * 1000)],
    ]);
    console.log('Formulas:');
    for (const line of FORMULAS) console.log(`  ${line}`);

    console.log('\nGoals (issue 9) against this run');
    for (const check of checkGoals(measured)) console.log(`  ${check.met ? 'met    ' : 'NOT met'}  ${check.goal.padEnd(48)} measured ${check.measured}`);
    console.log('(the machine may be shared: figures are under whatever else it runs)');
  } finally {
    if (mcpd) {
      await callApi(mcpd, 'DELETE', `/api/v1/servers/${server}`).catch(() => undefined);
      await mcpd.stop();
    }
    await removeContainers({ label: `${LABELS.server}=${server}` });
    await removeContainers({ label: plainLabel });
    await terminateRunning(client);
    await connection.close();
  }
}

/** Whatever a failed run left running in this bench's Temporal. */
async function terminateRunning(client: Client): Promise<void> {
  for await (const info of client.workflow.list({ query: `ExecutionStatus = 'Running'` })) {
    await client.workflow
      .getHandle(info.workflowId, info.runId)
      .terminate('scale bench cleanup')
      .catch(() => undefined);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`scale bench: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
