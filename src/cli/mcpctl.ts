#!/usr/bin/env node
/**
 * mcpctl: mcpd's kubectl-like command line. Talks to the REST API only.
 * Exit codes: 0 ok, 1 server/API error, 2 usage or invalid input, 3 not found,
 * 4 authentication. Errors are one line on stderr.
 */
// What every command needs is imported here; the rest (yaml, zod through the
// spec schema, child_process, the MCP SDK) is imported by the command that uses
// it, so `mcpctl --help` and `mcpctl get servers` start in a few tens of ms.
// tests/cli/unit.test.ts checks that these stay unloaded.
import { setTimeout as sleep } from 'node:timers/promises';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { EXIT, McpdClient, McpdError, exitCodeForStatus, resolveConnection, type ExitCode } from '../client/mcpdClient';
import { DocumentError } from '../client/documentError';
import { AWAIT_STARTED_MAX_SECONDS, DEFAULT_START_WAIT_SECONDS } from '../contracts/instance';
import { editBuffer, splitKeyValue, stripComments } from './documents';
import {
  OUTPUT_FORMATS,
  describeInstance,
  describeNode,
  describeServer,
  instanceColumns,
  nodeColumns,
  renderItems,
  renderObject,
  secretColumns,
  serverColumns,
  tokenColumns,
  virtualServerColumns,
  auditColumns,
  policyColumns,
  type Columns,
  type OutputFormat,
} from './format';

const WATCH_INTERVAL_MS = 2000;

type Kind = 'server' | 'instance' | 'secret' | 'node' | 'token' | 'virtualserver' | 'policy';
const KIND_ALIASES: Record<string, Kind> = {
  server: 'server',
  servers: 'server',
  srv: 'server',
  instance: 'instance',
  instances: 'instance',
  inst: 'instance',
  secret: 'secret',
  secrets: 'secret',
  node: 'node',
  nodes: 'node',
  no: 'node',
  token: 'token',
  tokens: 'token',
  virtualserver: 'virtualserver',
  virtualservers: 'virtualserver',
  vs: 'virtualserver',
  policy: 'policy',
  policies: 'policy',
};

const TOKEN_ROLE_NAMES = ['viewer', 'operator', 'admin', 'client'] as const;
const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "90s", "15m", "12h", "30d" -> seconds; the API bounds the value. */
function parseDuration(raw: string, option: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(raw.trim());
  if (!m || Number(m[1]) === 0) throw usage(`${option} must be a duration like 90s, 15m, 12h or 30d, got "${raw}"`);
  return Number(m[1]) * DURATION_UNITS[m[2]];
}

/**
 * A refused policy as one line naming the file's line: mcpd reports Cedar's problems at
 * lines of the policy text, which begins at some line of the file.
 */
function policyError(err: unknown, where: string, text: string, index: number, policyFirstLine: (text: string, index: number) => number | undefined): unknown {
  if (!(err instanceof McpdError) || err.status !== 400 || !Array.isArray(err.details)) return err;
  const problem = (err.details as { field?: string; line?: number; column?: number; message?: string }[]).find((d) => d.field === 'policy');
  if (!problem || problem.line === undefined) return new McpdError(`${where}: ${err.message}`, EXIT.usage, err.status, err.details);
  const first = policyFirstLine(text, index);
  const more = err.details.length > 1 ? ` (and ${err.details.length - 1} more)` : '';
  if (first === undefined) {
    return new McpdError(
      `${where}: invalid policy: policy line ${problem.line}, column ${problem.column}: ${problem.message}${more}`,
      EXIT.usage,
      400,
      err.details,
    );
  }
  const fileLine = first + problem.line - 1;
  return new McpdError(
    `${where}: invalid policy at line ${fileLine} (line ${problem.line}, column ${problem.column} of the policy): ${problem.message}${more}`,
    EXIT.usage,
    400,
    err.details,
  );
}

function usage(message: string): McpdError {
  return new McpdError(message, EXIT.usage);
}

function kindOf(word: string, allowed: Kind[]): Kind {
  const kind = KIND_ALIASES[word.toLowerCase()];
  if (!kind || !allowed.includes(kind)) {
    throw usage(`unknown resource type "${word}" (expected ${allowed.map((k) => k).join(' or ')})`);
  }
  return kind;
}

function outputFormat(opts: { output?: string }): OutputFormat {
  return (opts.output as OutputFormat | undefined) ?? 'table';
}

const outputOption = () => new Option('-o, --output <format>', 'output format').choices([...OUTPUT_FORMATS]);

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Builds the program; `client` is created lazily so `--help` works without a server. */
export function buildProgram(): Command {
  const program = new Command('mcpctl');
  program
    .description('Command line for mcpd: run MCP servers as Docker containers.')
    .option('--server <url>', 'mcpd API URL (env MCPD_URL)', undefined)
    .option('--token <token>', 'API bearer token (env MCPD_TOKEN; default the token of mcpctl login, else <MCPD_DATA_DIR or ./.data>/api-token)')
    .addHelpText('after', '\nExit codes: 0 ok, 1 server or API error, 2 usage or invalid input, 3 not found, 4 authentication failed.')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text.trimEnd().split('\n')[0] + '\n') })
    .showSuggestionAfterError(true);

  const client = () => McpdClient.fromOptions(program.opts<{ server?: string; token?: string }>());

  // ---- get --------------------------------------------------------------------
  program
    .command('get')
    .description('List servers, virtual servers, instances, secrets, nodes, tokens or policies (NAME narrows to one; for instances a server name filters)')
    .argument('<resource>', 'servers | virtualservers | instances | secrets | nodes | tokens | policies')
    .argument('[name]', 'a server name, an instance id, a secret name, or a node name')
    .addOption(outputOption())
    .option('-w, --watch', 'keep watching and print rows that change')
    .option('--status <status>', 'instances: only this status (PENDING, STARTING, RUNNING, ERROR, STOPPING, STOPPED)')
    .option('--health <health>', 'instances: only this health (unknown, healthy, degraded, unhealthy)')
    .option('--node <node>', 'instances: only those placed on this node')
    .option('--all', 'instances: include ended ones')
    .action(
      async (
        resource: string,
        name: string | undefined,
        opts: { output?: string; watch?: boolean; status?: string; health?: string; node?: string; all?: boolean },
      ) => {
        const kind = kindOf(resource, ['server', 'virtualserver', 'instance', 'secret', 'node', 'token', 'policy']);
        const format = outputFormat(opts);
        const c = client();
        const wide = format === 'wide';
        let fetchItems: () => Promise<unknown[]>;
        let columns: Columns<never>;
        if (kind === 'server') {
          fetchItems = async () => (name ? [await c.getServer(name)] : c.listServers());
          columns = serverColumns(wide);
        } else if (kind === 'virtualserver') {
          fetchItems = async () => (name ? [await c.getVirtualServer(name)] : c.listVirtualServers());
          columns = virtualServerColumns(wide);
        } else if (kind === 'instance') {
          const single = name?.includes(':');
          fetchItems = async () =>
            single ? [await c.getInstance(name!)] : c.listInstances({ server: name, status: opts.status, health: opts.health, node: opts.node, all: opts.all });
          columns = instanceColumns(wide);
        } else if (kind === 'token') {
          fetchItems = async () => {
            const items = await c.listTokens();
            if (name === undefined) return items;
            const one = items.find((t) => t.name === name);
            if (!one) throw new McpdError(`token "${name}" not found`, EXIT.notFound);
            return [one];
          };
          columns = tokenColumns(wide);
        } else if (kind === 'policy') {
          fetchItems = async () => (name ? [await c.getPolicy(name)] : c.listPolicies());
          columns = policyColumns(wide);
        } else if (kind === 'node') {
          fetchItems = async () => (name ? [await c.getNode(name)] : c.listNodes());
          columns = nodeColumns(wide);
        } else {
          fetchItems = async () => (name ? [await c.getSecret(name)] : c.listSecrets());
          columns = secretColumns(wide);
        }
        const items = (await fetchItems()) as never[];
        if (!opts.watch) {
          if (items.length === 0 && (format === 'table' || format === 'wide')) {
            process.stderr.write(`No ${kind}s found.\n`);
            return;
          }
          const one = name !== undefined && (kind !== 'instance' || name.includes(':'));
          print(one && (format === 'json' || format === 'yaml') ? renderObject(items[0], format) : renderItems(items, columns, format, new Date()));
          return;
        }
        await watch(items, fetchItems as () => Promise<never[]>, columns, format);
      },
    );

  // ---- describe -------------------------------------------------------------------
  program
    .command('describe')
    .description('Show a server, an instance or a node in detail (instances: node, status, health, attempts, retry times, error, events)')
    .argument('<resource>', 'server | instance | node')
    .argument('<name>', 'server name, instance id or node name')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['json', 'yaml']))
    .action(async (resource: string, name: string, opts: { output?: 'json' | 'yaml' }) => {
      const kind = kindOf(resource, ['server', 'instance', 'node']);
      const c = client();
      const now = new Date();
      if (kind === 'node') {
        const node = await c.getNode(name);
        const instances = await c.listInstances({ node: name });
        print(opts.output ? renderObject({ ...node, instanceViews: instances }, opts.output) : describeNode(node, instances, now));
      } else if (kind === 'server') {
        const server = await c.getServer(name);
        const instances = await c.listInstances({ server: name });
        print(opts.output ? renderObject({ ...server, instanceViews: instances }, opts.output) : describeServer(server, instances, now));
      } else {
        const instance = await c.getInstance(name);
        print(opts.output ? renderObject(instance, opts.output) : describeInstance(instance, now));
      }
    });

  // ---- apply ----------------------------------------------------------------------
  program
    .command('apply')
    .description(
      'Create or update servers, virtual servers (kind: VirtualServer) and policies (kind: Policy) from spec files (YAML or JSON, several documents), and start the servers',
    )
    .requiredOption('-f, --filename <file...>', 'spec file(s); "-" reads stdin')
    .option('--no-start', 'only store the spec; do not start instances')
    .action(async (opts: { filename: string[]; start: boolean }) => {
      const { parseDocuments, policyFirstLine } = await import('../client/specDocuments.js');
      const { describeFieldErrors, validateSpec } = await import('../contracts/spec.js');
      const { isVirtualServerDocument, validateVirtualServerSpec } = await import('../contracts/virtualServer.js');
      const specs: { spec: unknown; where: string }[] = [];
      const policies: { doc: { name: string }; where: string; text: string; index: number }[] = [];
      for (const file of opts.filename) {
        let text: string;
        try {
          text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
        } catch (err) {
          throw usage(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
        const docs = parseDocuments(text, file);
        if (docs.length === 0) throw usage(`${file}: no documents`);
        docs.forEach((doc, i) => {
          const where = docs.length > 1 ? `${file} (document ${i + 1})` : file;
          const { kind, ...rest } = doc as { kind?: unknown };
          if (kind === 'Policy') policies.push({ doc: doc as { name: string }, where, text, index: i });
          else if (isVirtualServerDocument(doc)) specs.push({ spec: doc, where });
          else if (kind === undefined || kind === 'McpServer') specs.push({ spec: rest, where });
          else throw usage(`${where}: unknown kind ${JSON.stringify(kind)} (expected McpServer, the default, VirtualServer or Policy)`);
        });
      }
      // Check everything before changing anything, so a bad document applies nothing.
      for (const { spec, where } of specs) {
        const virtual = isVirtualServerDocument(spec);
        const validation = virtual ? validateVirtualServerSpec(spec) : validateSpec(spec);
        if (!validation.ok) throw usage(`${where}: invalid ${virtual ? 'virtual server ' : ''}spec: ${describeFieldErrors(validation.errors)}`);
      }
      const c = client();
      // Servers first: a virtual server's clash check sees the tools of servers applied with it once they run.
      specs.sort((a, b) => Number(isVirtualServerDocument(a.spec)) - Number(isVirtualServerDocument(b.spec)));
      // mcpd checks a policy's Cedar text; every policy is checked (dry run) before anything is applied.
      for (const { doc, where, text, index } of policies) {
        await c.applyPolicy(doc, true).catch((err: unknown) => {
          throw policyError(err, where, text, index, policyFirstLine);
        });
      }
      for (const { spec } of specs) {
        if (isVirtualServerDocument(spec)) {
          const applied = await c.applyVirtualServer(spec);
          print(`virtualserver/${applied.name} ${applied.outcome}`);
          continue;
        }
        const applied = await c.applyServer(spec);
        if (opts.start && !applied.running) await c.startServer(applied.name);
        print(`server/${applied.name} ${applied.outcome}`);
      }
      for (const { doc } of policies) {
        const applied = await c.applyPolicy(doc);
        print(`policy/${applied.name} ${applied.outcome}`);
      }
    });

  // ---- edit -----------------------------------------------------------------------
  program
    .command('edit')
    .description('Edit a server spec in $EDITOR (reopened with the error until it is valid), then apply it')
    .argument('<resource>', 'server')
    .argument('<name>', 'server name')
    .action(async (resource: string, name: string) => {
      kindOf(resource, ['server']);
      await editServer(client(), name);
    });

  // ---- delete ---------------------------------------------------------------------
  program
    .command('delete')
    .description('Delete a server (stops its instances and removes their containers), a virtual server, a secret, a token (revoked at once) or a policy')
    .argument('<resource>', 'server | virtualserver | secret | token | policy')
    .argument('<name>', 'name')
    .action(async (resource: string, name: string) => {
      const kind = kindOf(resource, ['server', 'virtualserver', 'secret', 'token', 'policy']);
      const c = client();
      if (kind === 'server') await c.deleteServer(name);
      else if (kind === 'virtualserver') await c.deleteVirtualServer(name);
      else if (kind === 'policy') await c.deletePolicy(name);
      else if (kind === 'token') await c.deleteToken(name);
      else await c.deleteSecret(name);
      print(`${kind}/${name} deleted`);
    });

  // ---- create secret ------------------------------------------------------------------
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  program
    .command('create')
    .description('Create or replace a secret in OpenBao (values are write-only), or create a scoped token (printed once on stdout; only its hash is kept)')
    .argument('<resource>', 'secret | token')
    .argument('<name>', 'secret or token name')
    .option('--from-literal <key=value>', 'secret: a key and its value (repeatable)', collect)
    .option('--from-file <key=path>', 'secret: a key and a file holding its value (repeatable)', collect)
    .option('--role <role>', `token: ${TOKEN_ROLE_NAMES.join(' | ')}`)
    .option('--expires <duration>', 'token: lifetime, e.g. 12h or 30d (default: never)')
    .option('--servers <names>', 'token: only these servers through the gateway, comma-separated (default: all)')
    .option('--groups <names>', 'token: groups of its principal for policies (Mcpd::Group), comma-separated')
    .action(
      async (
        resource: string,
        name: string,
        opts: { fromLiteral?: string[]; fromFile?: string[]; role?: string; expires?: string; servers?: string; groups?: string },
      ) => {
        if (kindOf(resource, ['secret', 'token']) === 'token') {
          if (opts.fromLiteral || opts.fromFile) throw usage('--from-literal and --from-file are for secrets, not tokens');
          if (!opts.role) throw usage(`create token needs --role (${TOKEN_ROLE_NAMES.join(', ')})`);
          const role = opts.role as (typeof TOKEN_ROLE_NAMES)[number];
          if (!TOKEN_ROLE_NAMES.includes(role)) throw usage(`--role must be one of ${TOKEN_ROLE_NAMES.join(', ')}, got "${opts.role}"`);
          const expires = opts.expires === undefined ? undefined : parseDuration(opts.expires, '--expires');
          const servers = opts.servers === undefined ? undefined : opts.servers.split(',').map((s) => s.trim());
          const groups = opts.groups === undefined ? undefined : opts.groups.split(',').map((g) => g.trim());
          const created = await client().createToken(name, role, { expiresInSeconds: expires, servers, groups });
          const reach = created.servers?.join(',') ?? 'all';
          process.stderr.write(
            `token/${created.name} created (role ${created.role}, servers ${reach}, expires ${created.expiresAt ?? 'never'}); it is shown only now:\n`,
          );
          print(created.token);
          return;
        }
        if (opts.role || opts.expires || opts.servers || opts.groups) throw usage('--role, --expires, --servers and --groups are for tokens, not secrets');
        const data: Record<string, string> = {};
        for (const pair of opts.fromLiteral ?? []) {
          const [key, value] = splitKeyValue(pair, '--from-literal');
          data[key] = value;
        }
        for (const pair of opts.fromFile ?? []) {
          const [key, file] = splitKeyValue(pair, '--from-file');
          try {
            data[key] = fs.readFileSync(file, 'utf8');
          } catch (err) {
            throw usage(`--from-file ${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          }
        }
        if (Object.keys(data).length === 0) throw usage('create secret needs at least one --from-literal KEY=VALUE or --from-file KEY=PATH');
        const written = await client().putSecret(name, data);
        print(`secret/${name} ${written.version > 1 ? 'configured' : 'created'} (keys: ${written.keys.join(', ')}; version ${written.version})`);
      },
    );

  // ---- instance actions ---------------------------------------------------------------
  program
    .command('retry')
    .description("Cut an instance's retry wait short (the forceRetry signal)")
    .argument('<resource>', 'instance')
    .argument('<id>', 'instance id (mcp-instance:<server>:<n> or <server>:<n>)')
    .action(async (resource: string, id: string) => {
      kindOf(resource, ['instance']);
      const { id: full } = await client().retryInstance(id);
      print(`instance/${full} retry requested`);
    });
  program
    .command('restart')
    .description("Replace an instance's container with a fresh one")
    .argument('<resource>', 'instance')
    .argument('<id>', 'instance id')
    .action(async (resource: string, id: string) => {
      kindOf(resource, ['instance']);
      const { id: full } = await client().restartInstance(id);
      print(`instance/${full} restart requested`);
    });

  // ---- server actions -----------------------------------------------------------------
  program
    .command('scale')
    .description("Set a server's number of replicas")
    .argument('<resource>', 'server')
    .argument('<name>', 'server name')
    .requiredOption('--replicas <n>', 'number of replicas (0-1000, as the spec allows)')
    .action(async (resource: string, name: string, opts: { replicas: string }) => {
      kindOf(resource, ['server']);
      const { REPLICAS, replicasSchema } = await import('../contracts/spec.js');
      const replicas = Number(opts.replicas);
      if (!/^\d+$/.test(opts.replicas) || !replicasSchema.safeParse(replicas).success) {
        throw usage(`--replicas must be an integer from ${REPLICAS.min} to ${REPLICAS.max}, got "${opts.replicas}"`);
      }
      await client().scaleServer(name, replicas);
      print(`server/${name} scaled to ${replicas}`);
    });
  const instancesCount = (n: number) => `${n} instance${n === 1 ? '' : 's'}`;
  program
    .command('start')
    .description("Start a server's instances")
    .argument('<resource>', 'server')
    .argument('<name>', 'server name')
    .option('--wait', 'wait until every instance is RUNNING (or its start failed); exit 1 unless all run')
    .option('--timeout <seconds>', `with --wait, the longest wait (1-${AWAIT_STARTED_MAX_SECONDS})`, String(DEFAULT_START_WAIT_SECONDS))
    .action(async (resource: string, name: string, opts: { wait?: boolean; timeout: string }) => {
      kindOf(resource, ['server']);
      const timeout = Number(opts.timeout);
      if (!/^\d+$/.test(opts.timeout) || timeout < 1 || timeout > AWAIT_STARTED_MAX_SECONDS) {
        throw usage(`--timeout must be whole seconds from 1 to ${AWAIT_STARTED_MAX_SECONDS}, got "${opts.timeout}"`);
      }
      if (!opts.wait) {
        const result = await client().startServer(name);
        print(`server/${name} started (${instancesCount(result.instances.length)})`);
        return;
      }
      const { views } = await client().startServerAndWait(name, timeout);
      for (const v of views) print(`${v.id}\t${v.status}\t${v.health}${v.error ? `\t${v.error}` : ''}`);
      const notRunning = views.filter((v) => v.status !== 'RUNNING');
      if (notRunning.length) throw new McpdError(`server/${name}: ${notRunning.length} of ${views.length} instances not RUNNING after the wait`, EXIT.error);
      print(`server/${name} running (${instancesCount(views.length)})`);
    });
  program
    .command('stop')
    .description("Stop a server's instances (the spec is kept)")
    .argument('<resource>', 'server')
    .argument('<name>', 'server name')
    .action(async (resource: string, name: string) => {
      kindOf(resource, ['server']);
      const result = await client().stopServer(name);
      print(`server/${name} stopped (${instancesCount(result.instances.length)})`);
    });

  // ---- audit ------------------------------------------------------------------------------
  program
    .command('audit')
    .description('Show the audit trail, newest first: MCP requests through the gateway and changes through the API (admin and operator)')
    // The server is an argument, like `get instances <server>`: --server is mcpctl's global option (mcpd's URL).
    .argument('[server]', 'only records about this MCP server')
    .option('--principal <name>', 'only records of this principal (token name)')
    .option('--since <time>', 'only records from this time on: a duration back from now (90s, 10m, 12h, 7d) or an RFC 3339 time')
    .option('--limit <n>', 'most records shown (default 100, at most 10000)')
    .addOption(outputOption())
    .action(async (server: string | undefined, opts: { principal?: string; since?: string; limit?: string; output?: string }) => {
      const { parseSince } = await import('../contracts/audit.js');
      if (opts.since !== undefined && !parseSince(opts.since)) {
        throw usage(`--since must be a duration like 90s, 10m, 12h or 7d, or an RFC 3339 time like 2026-11-27T06:00:00Z, got "${opts.since}"`);
      }
      if (opts.limit !== undefined && !/^\d+$/.test(opts.limit)) throw usage(`--limit must be a whole number, got "${opts.limit}"`);
      const format = outputFormat(opts);
      const items = await client().listAudit({
        principal: opts.principal,
        server,
        since: opts.since,
        limit: opts.limit === undefined ? undefined : Number(opts.limit),
      });
      if (items.length === 0 && (format === 'table' || format === 'wide')) {
        process.stderr.write('No audit records found.\n');
        return;
      }
      print(renderItems(items, auditColumns(format === 'wide'), format, new Date()));
    });

  // ---- logs -------------------------------------------------------------------------------
  program
    .command('logs')
    .description("Print an instance's container stderr (stdout carries the MCP protocol)")
    .argument('<resource>', 'instance')
    .argument('<id>', 'instance id')
    .option('-f, --follow', 'keep streaming')
    .option('--tail <n>', 'lines from the end ("all" for everything)', '200')
    .action(async (resource: string, id: string, opts: { follow?: boolean; tail: string }) => {
      kindOf(resource, ['instance']);
      if (opts.tail !== 'all' && !/^\d+$/.test(opts.tail)) throw usage(`--tail must be a number or "all", got "${opts.tail}"`);
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      const body = await client().instanceLogs(id, { follow: opts.follow, tail: opts.tail === 'all' ? 'all' : Number(opts.tail), signal: abort.signal });
      try {
        for await (const chunk of body) process.stdout.write(chunk as Buffer);
      } catch (err) {
        if (!abort.signal.aborted) throw new McpdError(`log stream broke: ${(err as Error).message}`, EXIT.error);
      }
    });

  // ---- call -------------------------------------------------------------------------------
  program
    .command('call')
    .description('Call a tool of a server through the gateway')
    .argument('<server>', 'server name')
    .argument('<tool>', 'tool name')
    .option('--args <json>', 'tool arguments as a JSON object', '{}')
    .addOption(new Option('-o, --output <format>', 'print the whole result').choices(['json', 'yaml']))
    .action(async (server: string, tool: string, opts: { args: string; output?: 'json' | 'yaml' }) => {
      let args: unknown;
      try {
        args = JSON.parse(opts.args);
      } catch (err) {
        throw usage(`--args is not valid JSON: ${(err as Error).message}`);
      }
      if (args === null || typeof args !== 'object' || Array.isArray(args)) throw usage('--args must be a JSON object');
      const connection = resolveConnection(program.opts());
      const result = await callTool(connection, server, tool, args as Record<string, unknown>);
      if (opts.output) {
        print(renderObject(result, opts.output));
      } else {
        const content = Array.isArray(result.content) ? (result.content as { type: string; text?: string }[]) : [];
        const text = content.map((c) => (c.type === 'text' ? (c.text ?? '') : JSON.stringify(c))).join('\n');
        if (result.isError) throw new McpdError(`tool ${tool} failed: ${text.replace(/\s+/g, ' ').trim() || 'isError without a message'}`, EXIT.error);
        if (text) print(text);
        else if (result.structuredContent !== undefined) print(JSON.stringify(result.structuredContent, null, 2));
      }
      if (result.isError) process.exitCode = EXIT.error;
    });

  // ---- login / logout -------------------------------------------------------------------------
  program
    .command('login')
    .description("Log in at mcpd's OAuth issuer (authorization code + PKCE, redirect to a loopback port); later commands use the token")
    .option('--scope <scopes>', 'scopes to ask for, space-separated (default: every scope mcpd lists; the issuer grants what you may have)')
    .option('--client-id <id>', 'a public client registered at the issuer (default: register one dynamically)')
    .option('--port <port>', 'loopback port for the redirect (default: any free one)')
    .option('--timeout <duration>', 'how long to wait for the browser', '5m')
    .action(async (opts: { scope?: string; clientId?: string; port?: string; timeout: string }) => {
      const port = opts.port === undefined ? undefined : Number(opts.port);
      if (port !== undefined && !(/^\d+$/.test(opts.port!) && port >= 1 && port <= 65_535))
        throw usage(`--port must be a port number 1-65535, got "${opts.port}"`);
      const { url } = resolveConnection({ ...program.opts(), token: 'unused' });
      const { login } = await import('./login.js');
      const { login: done, file } = await login({
        url,
        scope: opts.scope,
        clientId: opts.clientId,
        port,
        timeoutSeconds: parseDuration(opts.timeout, '--timeout'),
        announce: (authorizationUrl) => process.stderr.write(`Open this URL in a browser to log in:\n\n  ${authorizationUrl}\n\nWaiting for the login...\n`),
      });
      print(`logged in to ${url} as ${done.subject ?? 'unknown'} (scopes ${done.scope ?? 'none'}; expires ${done.expiresAt}); token kept in ${file}`);
    });

  program
    .command('logout')
    .description('Forget the token mcpctl login got for this mcpd')
    .action(async () => {
      const { url } = resolveConnection({ ...program.opts(), token: 'unused' });
      const { removeLogin } = await import('../client/credentials.js');
      print(removeLogin(url) ? `logged out of ${url}` : `not logged in to ${url}`);
    });

  // ---- config -------------------------------------------------------------------------------
  program
    .command('config')
    .description('Print the snippet that points an MCP client at the gateway')
    .action(() => {
      const { url, token } = resolveConnection(program.opts());
      if (!token) throw new McpdError('no API token: pass --token, set MCPD_TOKEN, or run where the data dir holds api-token', EXIT.auth);
      print(JSON.stringify({ mcpServers: { mcpd: { type: 'http', url: `${url}/mcp`, headers: { Authorization: `Bearer ${token}` } } } }, null, 2));
    });

  return program;
}

/**
 * Prints the table once, then only rows whose content changed, that are new, or
 * that disappeared (shown once more with "<deleted>" in their state column).
 */
async function watch<T>(initial: T[], fetchItems: () => Promise<T[]>, columns: Columns<T>, format: OutputFormat): Promise<void> {
  const structured = format === 'json' || format === 'yaml';
  const YAML = format === 'yaml' ? (await import('yaml')).default : undefined;
  const lastSeen = new Map<string, { fingerprint: string; item: T }>();
  let widths: number[] = [];
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i] ?? c.length) : c))
      .join('   ')
      .trimEnd();
  const emit = (items: T[], first: boolean) => {
    const now = new Date();
    const changed: T[] = [];
    const present = new Set<string>();
    for (const item of items) {
      const key = columns.key(item);
      const fingerprint = JSON.stringify(item);
      present.add(key);
      if (lastSeen.get(key)?.fingerprint !== fingerprint) changed.push(item);
      lastSeen.set(key, { fingerprint, item });
    }
    const gone = [...lastSeen.entries()].filter(([key]) => !present.has(key)).map(([key, { item }]) => ({ key, item }));
    for (const { key } of gone) lastSeen.delete(key);
    if (structured) {
      const out = (value: unknown) => print(YAML ? `---\n${YAML.stringify(value).trimEnd()}` : JSON.stringify(value));
      for (const item of changed) out(item);
      for (const { item } of gone) out({ deleted: true, item });
      return;
    }
    const rows = changed.map((i) => columns.row(i, now));
    for (const { item } of gone) {
      const cells = columns.row(item, now);
      cells[columns.stateColumn] = '<deleted>';
      rows.push(cells);
    }
    if (first) {
      widths = columns.headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
      print([columns.headers, ...rows].map(line).join('\n'));
    } else if (rows.length) {
      print(rows.map(line).join('\n'));
    }
  };
  emit(initial, true);
  for (;;) {
    await sleep(WATCH_INTERVAL_MS);
    emit(await fetchItems(), false);
  }
}

async function editServer(c: McpdClient, name: string): Promise<void> {
  const { default: YAML } = await import('yaml');
  const { spawnSync } = await import('node:child_process');
  const current = await c.getServer(name);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpctl-edit-'));
  const file = path.join(dir, `${name}.yaml`);
  const editor = process.env.MCPCTL_EDITOR ?? process.env.EDITOR ?? process.env.VISUAL ?? 'vi';
  let buffer = editBuffer(YAML.stringify(current.spec));
  let lastError: string | undefined;
  try {
    for (;;) {
      fs.writeFileSync(file, buffer, { mode: 0o600 });
      const run = spawnSync(`${editor} '${file.replace(/'/g, `'\\''`)}'`, { shell: true, stdio: 'inherit' });
      if (run.error) throw new McpdError(`cannot run editor "${editor}": ${run.error.message}`, EXIT.error);
      if (run.status !== 0) throw new McpdError(`editor "${editor}" exited with ${run.status ?? run.signal}; nothing applied`, EXIT.error);
      const edited = fs.readFileSync(file, 'utf8');
      const content = stripComments(edited);
      if (content === '') {
        if (lastError) throw new McpdError(`edit cancelled (empty file); last error: ${lastError}`, EXIT.usage);
        print('Edit cancelled, empty file.');
        return;
      }
      if (content === stripComments(buffer)) {
        if (lastError) throw new McpdError(`edit cancelled, no valid changes were saved: ${lastError}`, EXIT.usage);
        print('Edit cancelled, no changes made.');
        return;
      }
      const problem = await tryApplyEdited(c, name, content);
      if (problem === null) {
        print(`server/${name} edited`);
        return;
      }
      lastError = problem;
      process.stderr.write(`error: ${problem}\n`);
      buffer = editBuffer(content + '\n', problem);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** null when applied; otherwise the problem, to show at the top of the reopened file. */
async function tryApplyEdited(c: McpdClient, name: string, content: string): Promise<string | null> {
  const { parseDocuments } = await import('../client/specDocuments.js');
  const { describeFieldErrors, validateSpec } = await import('../contracts/spec.js');
  let docs: unknown[];
  try {
    docs = parseDocuments(content, 'edited spec');
  } catch (err) {
    return (err as Error).message;
  }
  if (docs.length !== 1) return `edited spec: expected one document, found ${docs.length}`;
  const validation = validateSpec(docs[0]);
  if (!validation.ok) return `invalid spec: ${describeFieldErrors(validation.errors)}`;
  if (validation.spec.name !== name) return `name: cannot be changed (was "${name}", now "${validation.spec.name}")`;
  try {
    await c.applyServer(docs[0]);
    return null;
  } catch (err) {
    if (err instanceof McpdError && (err.status === 400 || err.status === 409)) return err.message;
    throw err;
  }
}

/** One tool call through the gateway's per-server endpoint, with the API token. */
async function callTool(connection: { url: string; token: string | undefined }, server: string, tool: string, args: Record<string, unknown>) {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport, StreamableHTTPError } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  const headers: Record<string, string> = connection.token ? { Authorization: `Bearer ${connection.token}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL(`${connection.url}/mcp/servers/${encodeURIComponent(server)}`), { requestInit: { headers } });
  const mcp = new Client({ name: 'mcpctl', version: '0.1.0' });
  try {
    await mcp.connect(transport);
    return await mcp.callTool({ name: tool, arguments: args });
  } catch (err) {
    if (err instanceof StreamableHTTPError && err.code !== undefined && err.code >= 400) {
      const code = exitCodeForStatus(err.code);
      const what = code === EXIT.notFound ? `server "${server}" not found at the gateway` : code === EXIT.auth ? 'gateway refused the token' : `gateway error`;
      throw new McpdError(`${what} (HTTP ${err.code})`, code, err.code);
    }
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') throw new McpdError(`cannot reach mcpd at ${connection.url}: ECONNREFUSED`, EXIT.error);
    throw new McpdError(`call ${server}/${tool} failed: ${(err as Error).message.replace(/\s+/g, ' ')}`, EXIT.error);
  } finally {
    await mcp.close().catch(() => undefined);
  }
}

export async function main(argv: string[] = process.argv): Promise<ExitCode> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return (process.exitCode as ExitCode | undefined) ?? EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its one-line message; help and version are not errors.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof McpdError) {
      process.stderr.write(`error: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
      return err.exitCode;
    }
    if (err instanceof DocumentError) {
      process.stderr.write(`error: ${err.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`error: ${(err as Error)?.message?.replace(/\s*\n\s*/g, ' ') ?? String(err)}\n`);
    return EXIT.error;
  }
}

if (require.main === module) {
  // Exit explicitly: an idle keep-alive socket must not hold a finished command open.
  void main().then((code) => process.exit(code));
}
