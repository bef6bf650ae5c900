/**
 * How mcpctl shows things: tables for people, JSON/YAML for scripts. Pure
 * functions of their input (and `now`), so they are unit-tested.
 */
import type YAMLModule from 'yaml';
import type { InstanceView } from '../contracts/instance';
import type { ServerResource, TokenView } from '../contracts/api';
import type { NodeView } from '../contracts/node';
import type { VirtualServerResource } from '../contracts/virtualServer';
import { formatPackageRef, parsePackageRef } from '../contracts/packageRef';
import type { SecretInfo } from '../client/mcpdClient';
import type { AuditRecord } from '../contracts/audit';
import type { PolicyView } from '../contracts/policy';

/**
 * yaml is loaded on first use: it takes longer to load than a whole `get servers`
 * round trip, and tables never need it. (A dynamic import() would make every
 * renderer async.)
 */
function yaml(): typeof YAMLModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily on purpose (see above)
  return require('yaml') as typeof YAMLModule;
}

export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml';
export const OUTPUT_FORMATS = ['wide', 'json', 'yaml'] as const;

/** kubectl-style ages: "5s", "3m", "2h", "4d"; "-" when unknown. */
export function formatAge(iso: string | null | undefined, now: Date): string {
  if (!iso) return '-';
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '-';
  return formatDuration(Math.max(0, now.getTime() - then));
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** When a retry is due: "in 25s", "now" once past, "-" when none is scheduled. */
export function formatUntil(iso: string | null | undefined, now: Date): string {
  if (!iso) return '-';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return '-';
  const ms = at - now.getTime();
  return ms <= 0 ? 'now' : `in ${formatDuration(ms)}`;
}

/** Columns separated by three spaces, like kubectl; no trailing blanks. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function truncate(text: string | null | undefined, max: number): string {
  if (!text) return '-';
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}

function source(s: ServerResource['spec']): string {
  if (s.packageName) {
    const parsed = parsePackageRef(s.packageName);
    return parsed.ok ? formatPackageRef(parsed.ref, parsed.ref.version) : s.packageName;
  }
  return s.image ?? (s.command ? s.command.join(' ') : '-');
}

export interface Columns<T> {
  headers: string[];
  row: (item: T, now: Date) => string[];
  key: (item: T) => string;
  /** The column that says what state a row is in; `get -w` writes "<deleted>" there for rows that disappear. */
  stateColumn: number;
}

export function serverColumns(wide: boolean): Columns<ServerResource> {
  const headers = ['NAME', 'READY', 'STATE', 'TRANSPORT', 'SOURCE', 'AGE'];
  if (wide) headers.push('HEALTHCHECK', 'SPEC-VERSION', 'ROLLOUT');
  return {
    headers,
    key: (s) => s.name,
    stateColumn: 2,
    row: (s, now) => {
      const cells = [
        s.name,
        `${s.readyReplicas}/${s.spec.replicas}`,
        s.running ? 'Running' : 'Stopped',
        s.spec.transport,
        source(s.spec),
        formatAge(s.createdAt, now),
      ];
      if (wide) {
        cells.push(
          s.spec.healthCheck ? `${s.spec.healthCheck.tool} every ${s.spec.healthCheck.intervalSeconds}s` : 'tools/list',
          String(s.specVersion),
          s.rollout?.inProgress ? `${s.rollout.updated}/${s.rollout.total}` : '-',
        );
      }
      return cells;
    },
  };
}

export function instanceColumns(wide: boolean): Columns<InstanceView> {
  const headers = ['ID', 'STATUS', 'HEALTH', 'ATTEMPTS', 'UP', 'NEXT-RETRY', 'ERROR'];
  if (wide) headers.splice(6, 0, 'NODE', 'CONTAINER', 'LAST-ATTEMPT', 'REASON');
  return {
    headers,
    key: (i) => i.id,
    stateColumn: 1,
    row: (i, now) => {
      const cells = [i.id, i.status, i.health, String(i.attemptCount), formatAge(i.runningSince, now), formatUntil(i.nextRetryAt, now)];
      if (wide) cells.push(i.node ?? '-', i.containerId ? i.containerId.slice(0, 12) : '-', formatAge(i.lastAttemptAt, now), truncate(i.healthReason, 60));
      cells.push(truncate(i.error, wide ? 200 : 60));
      return cells;
    },
  };
}

/** "disk=ssd,zone=a"; "-" without labels. */
export function formatLabels(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : '-';
}

function engineOf(n: NodeView): string {
  if (!n.registration) return '-';
  return n.registration.engineVersion ? `docker ${n.registration.engineVersion}` : 'docker (not answering)';
}

export function nodeColumns(wide: boolean): Columns<NodeView> {
  const headers = ['NAME', 'ENGINE', 'STATUS', 'INSTANCES', 'CAPACITY', 'LABELS'];
  if (wide) headers.push('SINCE', 'HOST', 'REASON');
  return {
    headers,
    key: (n) => n.name,
    stateColumn: 2,
    row: (n, now) => {
      const cells = [
        n.name,
        engineOf(n),
        n.status,
        String(n.instances),
        n.registration ? String(n.registration.capacity) : '-',
        formatLabels(n.registration?.labels),
      ];
      if (wide) cells.push(formatAge(n.since, now), n.registration?.engineHost ?? '-', truncate(n.reason, 80));
      return cells;
    },
  };
}

export function describeNode(n: NodeView, instances: InstanceView[], now: Date): string {
  const r = n.registration;
  const lines = [
    fields([
      ['Name', n.name],
      ['Status', `${n.status} since ${n.since} (${formatAge(n.since, now)} ago)`],
      ['Reason', n.reason ?? '-'],
      ['Engine', engineOf(n)],
      ['Engine host', r?.engineHost ?? '-'],
      ['Worker', r?.worker ?? '-'],
      ['Labels', formatLabels(r?.labels)],
      ['Capacity', r ? `${n.instances} of ${r.capacity} instances` : `${n.instances} instances`],
    ]),
  ];
  lines.push(instancesSection(instances, now));
  return lines.join('\n');
}

/** The Instances part of a describe: a table of them, or <none>. */
function instancesSection(instances: InstanceView[], now: Date): string {
  if (instances.length === 0) return 'Instances:  <none>';
  const cols = instanceColumns(false);
  return `Instances:\n${indent(
    renderTable(
      cols.headers,
      instances.map((i) => cols.row(i, now)),
    ),
  )}`;
}

export function tokenColumns(wide: boolean): Columns<TokenView> {
  const headers = ['NAME', 'ROLE', 'SERVERS', 'AGE', 'EXPIRES'];
  if (wide) headers.push('CREATED');
  return {
    headers,
    key: (t) => t.name,
    stateColumn: 1,
    row: (t, now) => {
      const cells = [t.name, t.role, t.servers?.join(',') ?? '*', formatAge(t.createdAt, now), t.expiresAt === null ? 'never' : t.expiresAt];
      if (wide) cells.push(t.createdAt);
      return cells;
    },
  };
}

export function policyColumns(wide: boolean): Columns<PolicyView> {
  const headers = ['NAME', 'STATEMENTS', 'AGE', 'DESCRIPTION'];
  if (wide) headers.push('UPDATED');
  return {
    headers,
    key: (p) => p.name,
    stateColumn: 1,
    row: (p, now) => {
      // Effects outside comments and strings: a count for people (the API has the text).
      const code = p.policy.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\/\/[^\n]*/g, '');
      const statements = (code.match(/\b(permit|forbid)\s*\(/g) ?? []).length;
      const cells = [p.name, String(statements), formatAge(p.createdAt, now), p.description ?? '-'];
      if (wide) cells.push(p.updatedAt);
      return cells;
    },
  };
}

/** The audit trail: one row a record, newest first (the API's order). */
export function auditColumns(wide: boolean): Columns<AuditRecord> {
  const headers = ['TIME', 'PRINCIPAL', 'SERVER', 'METHOD', 'TARGET', 'DECISION', 'OUTCOME', 'LATENCY'];
  if (wide) headers.push('SOURCE', 'INSTANCE', 'DECIDED BY', 'REDACTIONS', 'ERROR');
  return {
    headers,
    key: (r) => `${r.time} ${r.method}`,
    stateColumn: 6,
    row: (r) => {
      const outcome = r.code !== undefined ? `${r.outcome} ${r.code}` : r.outcome;
      const cells = [r.time, r.principal?.name ?? '-', r.server ?? '-', r.method, r.target ?? '-', r.decision, outcome, `${r.latencyMs}ms`];
      if (wide) cells.push(r.principal?.source ?? '-', r.instance ?? '-', r.decidedBy, String(r.redactions), r.error ?? '-');
      return cells;
    },
  };
}

export function secretColumns(wide: boolean): Columns<SecretInfo> {
  const headers = ['NAME', 'KEYS', 'VERSION', 'AGE'];
  if (wide) headers.push('UPDATED');
  return {
    headers,
    key: (s) => s.name,
    stateColumn: 1,
    row: (s, now) => {
      const cells = [s.name, s.keys.join(',') || '-', String(s.version), formatAge(s.updatedAt, now)];
      if (wide) cells.push(s.updatedAt ?? '-');
      return cells;
    },
  };
}

export function renderItems<T>(items: T[], columns: Columns<T>, format: OutputFormat, now: Date): string {
  if (format === 'json') return JSON.stringify({ items }, null, 2);
  if (format === 'yaml') return yaml().stringify({ items }).trimEnd();
  return renderTable(
    columns.headers,
    items.map((i) => columns.row(i, now)),
  );
}

export function renderObject(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : yaml().stringify(value).trimEnd();
}

function fields(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 2;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`).join('\n');
}

function eventsBlock(events: InstanceView['events'], now: Date): string {
  if (events.length === 0) return 'Events:  <none>';
  const table = renderTable(
    ['AGE', 'TYPE', 'MESSAGE'],
    events.map((e) => [formatAge(e.at, now), e.type, e.message.replace(/\s+/g, ' ')]),
  );
  return `Events:\n${indent(table)}`;
}

function indent(text: string, by = '  '): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

export function describeInstance(i: InstanceView, now: Date): string {
  return [
    fields([
      ['ID', i.id],
      ['Server', i.server],
      ['Ordinal', String(i.ordinal)],
      ['Node', i.node ?? '-'],
      ['Status', i.status],
      ['Health', i.health],
      ['Health reason', i.healthReason ?? '-'],
      ['Container', i.containerId ?? '-'],
      ['Running since', i.runningSince ? `${i.runningSince} (${formatAge(i.runningSince, now)})` : '-'],
      ['attemptCount', String(i.attemptCount)],
      ['lastAttemptAt', i.lastAttemptAt ? `${i.lastAttemptAt} (${formatAge(i.lastAttemptAt, now)} ago)` : '-'],
      ['nextRetryAt', i.nextRetryAt ? `${i.nextRetryAt} (${formatUntil(i.nextRetryAt, now)})` : '-'],
      ['error', i.error ?? '-'],
      ...(i.progress ? ([['progress', i.progress]] as [string, string][]) : []),
    ]),
    eventsBlock(i.events, now),
  ].join('\n');
}

export function describeServer(s: ServerResource, instances: InstanceView[], now: Date): string {
  const spec = s.spec;
  const env = spec.env.length ? spec.env.map((e) => (e.secretRef ? `${e.name} <- secret ${e.secretRef.name}/${e.secretRef.key}` : `${e.name}=${e.value}`)) : [];
  const hc = spec.healthCheck;
  const lines = [
    fields([
      ['Name', s.name],
      ['State', s.running ? 'Running' : 'Stopped'],
      ['Ready', `${s.readyReplicas}/${spec.replicas}`],
      ['Source', source(spec)],
      ['Args', spec.args.length ? spec.args.join(' ') : '-'],
      ['Transport', spec.transport + (spec.port ? ` (port ${spec.port}${spec.path ?? ''})` : '')],
      [
        'Health check',
        hc ? `tools/call ${hc.tool} every ${hc.intervalSeconds}s, timeout ${hc.timeoutSeconds}s, ${hc.failureThreshold} failures` : 'liveness (tools/list)',
      ],
      ['Retry', `${spec.retry.fastAttempts} attempts ${spec.retry.fastDelaySeconds}s apart, then every ${spec.retry.slowDelaySeconds}s`],
      ['Spec version', String(s.specVersion)],
      ['Rollout', s.rollout?.inProgress ? `${s.rollout.updated}/${s.rollout.total} updated` : '-'],
      ['Created', s.createdAt ? `${s.createdAt} (${formatAge(s.createdAt, now)} ago)` : '-'],
    ]),
    env.length ? `Env:\n${indent(env.join('\n'))}` : 'Env:  <none>',
  ];
  lines.push(instancesSection(instances, now));
  return lines.join('\n');
}

export function virtualServerColumns(wide: boolean): Columns<VirtualServerResource> {
  const headers = ['NAME', 'SERVERS', 'NAMING', 'TOOL-SEARCH', 'ENDPOINT', 'AGE'];
  if (wide) headers.push('GENERATION', 'UPDATED');
  return {
    headers,
    key: (v) => v.name,
    stateColumn: 1,
    row: (v, now) => {
      const cells = [
        v.name,
        v.spec.servers.map((s) => s.name).join(','),
        v.spec.naming,
        v.spec.toolSearch ? 'yes' : 'no',
        v.endpoint,
        formatAge(v.createdAt, now),
      ];
      if (wide) cells.push(String(v.generation), v.updatedAt);
      return cells;
    },
  };
}
