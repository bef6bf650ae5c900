/**
 * What a policy decision costs the gateway: p50 and p99 of PolicyEngine.decide for a
 * tools/call, uncached (one Cedar evaluation through @cedar-policy/cedar-wasm with the
 * preparsed policy set: what the first call of a principal to a tool costs) and cached
 * (every later call: a Map look-up), against a policy set of `--policies N` documents
 * (default 20, each a permit and a forbid) and principals with three groups. The goal
 * (issue 11) is p50 ≤ 50 µs a call. Needs no stack: `npm run bench -- policy`.
 */
import type { Principal } from '../src/contracts/api';
import type { PolicyView } from '../src/contracts/policy';
import { PolicyEngine } from '../src/policy/engine';

const GOAL_P50_US = 50;

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? undefined : Number(process.argv[at + 1]);
  return value !== undefined && Number.isInteger(value) && value > 0 ? value : fallback;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function measure(runs: number, once: (i: number) => void): { p50: number; p99: number } {
  for (let i = 0; i < Math.min(runs, 500); i++) once(i); // warm the JIT and the wasm module
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    once(i);
    samples.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

function main(): void {
  const documents = option('policies', 20);
  const runs = option('runs', 20_000);
  const at = new Date().toISOString();
  const policies: PolicyView[] = Array.from({ length: documents }, (_, i) => ({
    name: `team-${i}`,
    policy: [
      `permit(principal in Mcpd::Group::"team-${i}", action in [Mcpd::Action::"tools/list", Mcpd::Action::"tools/call"], resource in Mcpd::Server::"server-${i}");`,
      `forbid(principal, action == Mcpd::Action::"tools/call", resource) when { resource.server == "server-${i}" && resource.name like "admin_*" };`,
    ].join('\n'),
    createdAt: at,
    updatedAt: at,
  }));
  const engine = new PolicyEngine();
  engine.load({ revision: 1, policies });
  const principal: Principal = { name: 'alice', role: 'client', servers: null, source: 'scoped-token', groups: ['team-0', `team-${documents - 1}`, 'ops'] };
  const tool = { kind: 'tool' as const, server: `server-${documents - 1}`, name: 'get_issue' };
  if (!engine.decide(principal, 'tools/call', tool).allowed) throw new Error('the benchmark policy set should allow the call it measures');

  const uncached = measure(runs, () => engine.evaluateUncached(principal, 'tools/call', tool));
  const cached = measure(runs, () => engine.decide(principal, 'tools/call', tool));
  const fmt = (us: number) => `${us.toFixed(1)} µs`.padStart(10);
  console.log(`\npolicy decision (tools/call), ${documents} policy documents (${documents * 2} policies), ${runs} decisions each`);
  console.log(`${'case'.padEnd(40)}${'p50'.padStart(10)}${'p99'.padStart(10)}`);
  console.log(`${'first decision (Cedar evaluation)'.padEnd(40)}${fmt(uncached.p50)}${fmt(uncached.p99)}`);
  console.log(`${'repeated decision (cached)'.padEnd(40)}${fmt(cached.p50)}${fmt(cached.p99)}`);
  console.log(
    `goal: p50 ≤ ${GOAL_P50_US} µs a call — ${cached.p50 <= GOAL_P50_US ? 'met' : 'NOT met'} for repeated calls, ${uncached.p50 <= GOAL_P50_US ? 'met' : 'not met'} for a first call`,
  );
}

main();
