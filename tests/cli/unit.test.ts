/** mcpctl's pure parts: formatting, documents, connection and exit codes. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { InstanceView } from '../../src/contracts/instance';
import type { ServerResource } from '../../src/contracts/api';
import { EXIT, exitCodeForStatus, resolveConnection } from '../../src/client/mcpdClient';
import { editBuffer, splitKeyValue, stripComments } from '../../src/cli/documents';
import { DocumentError, parseDocuments } from '../../src/client/specDocuments';
import { describeInstance, describeServer, formatAge, formatUntil, instanceColumns, renderItems, renderTable, serverColumns } from '../../src/cli/format';

const NOW = new Date('2026-01-01T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();

function instance(overrides: Partial<InstanceView> = {}): InstanceView {
  return {
    id: 'mcp-instance:gitea:0',
    server: 'gitea',
    ordinal: 0,
    status: 'RUNNING',
    health: 'unhealthy',
    containerId: '0123456789abcdef0123',
    attemptCount: 2,
    lastAttemptAt: ago(90),
    nextRetryAt: null,
    error: null,
    healthReason: 'invalid token',
    runningSince: ago(65),
    events: [{ at: ago(30), type: 'HealthChanged', message: 'healthy -> unhealthy: invalid token' }],
    ...overrides,
  };
}

function server(): ServerResource {
  return {
    name: 'gitea',
    spec: {
      name: 'gitea',
      image: 'mcpd/gitea-like:dev',
      args: [],
      transport: 'stdio',
      replicas: 3,
      env: [
        { name: 'GITEA_TOKEN', secretRef: { name: 'gitea', key: 'token' } },
        { name: 'LOG', value: 'debug' },
      ],
      healthCheck: { tool: 'get_me', arguments: {}, intervalSeconds: 60, timeoutSeconds: 10, failureThreshold: 3 },
      retry: { fastDelaySeconds: 30, fastAttempts: 5, slowDelaySeconds: 300, stableSeconds: 600 },
      resources: {},
    },
    running: true,
    instances: ['mcp-instance:gitea:0'],
    specVersion: 2,
    rollout: null,
    createdAt: ago(4000),
    readyReplicas: 1,
  };
}

describe('cli: formatting', () => {
  it('shows ages like kubectl', () => {
    assert.equal(formatAge(ago(5), NOW), '5s');
    assert.equal(formatAge(ago(185), NOW), '3m');
    assert.equal(formatAge(ago(3 * 3600 + 5), NOW), '3h');
    assert.equal(formatAge(ago(5 * 86400), NOW), '5d');
    assert.equal(formatAge(null, NOW), '-');
    assert.equal(formatUntil(new Date(NOW.getTime() + 25_000).toISOString(), NOW), 'in 25s');
    assert.equal(formatUntil(ago(1), NOW), 'now');
  });

  it('aligns table columns', () => {
    assert.equal(
      renderTable(
        ['A', 'LONGER'],
        [
          ['xxxx', 'y'],
          ['z', 'w'],
        ],
      ),
      'A      LONGER\nxxxx   y\nz      w',
    );
  });

  it('lists servers with ready/desired and instances with status, health and attempts', () => {
    const servers = renderItems([server()], serverColumns(false), 'table', NOW).split('\n');
    assert.match(servers[0], /^NAME\s+READY\s+STATE\s+TRANSPORT\s+SOURCE\s+AGE$/);
    assert.match(servers[1], /^gitea\s+1\/3\s+Running\s+stdio\s+mcpd\/gitea-like:dev\s+1h$/);
    const rows = renderItems(
      [
        instance(),
        instance({
          id: 'mcp-instance:gitea:1',
          status: 'ERROR',
          health: 'unknown',
          error: 'secret resolution failed: x',
          nextRetryAt: new Date(NOW.getTime() + 30_000).toISOString(),
        }),
      ],
      instanceColumns(false),
      'table',
      NOW,
    ).split('\n');
    assert.match(rows[1], /^mcp-instance:gitea:0\s+RUNNING\s+unhealthy\s+2\s+1m\s+-\s+-$/);
    assert.match(rows[2], /ERROR\s+unknown\s+2\s+1m\s+in 30s\s+secret resolution failed: x$/);
    const wide = renderItems([instance()], instanceColumns(true), 'wide', NOW);
    assert.match(wide, /CONTAINER/);
    assert.match(wide, /0123456789ab/);
  });

  it('prints json and yaml for scripts', () => {
    assert.deepEqual(JSON.parse(renderItems([instance()], instanceColumns(false), 'json', NOW)).items[0].id, 'mcp-instance:gitea:0');
    assert.match(renderItems([instance()], instanceColumns(false), 'yaml', NOW), /^items:\n {2}- id: mcp-instance:gitea:0/);
  });

  it('describes an instance with its retry bookkeeping and events', () => {
    const text = describeInstance(instance({ status: 'ERROR', error: 'boom', nextRetryAt: new Date(NOW.getTime() + 30_000).toISOString() }), NOW);
    for (const field of ['Status:', 'Health:', 'attemptCount:', 'lastAttemptAt:', 'nextRetryAt:', 'error:', 'Events:']) assert.ok(text.includes(field), field);
    assert.match(text, /attemptCount:\s+2/);
    assert.match(text, /nextRetryAt:\s+\S+ \(in 30s\)/);
    assert.match(text, /error:\s+boom/);
    assert.match(text, /30s\s+HealthChanged\s+healthy -> unhealthy: invalid token/);
  });

  it('describes a server: secret refs by name only, plain values shown', () => {
    const text = describeServer(server(), [instance()], NOW);
    assert.match(text, /GITEA_TOKEN <- secret gitea\/token/);
    assert.match(text, /LOG=debug/);
    assert.match(text, /Ready:\s+1\/3/);
    assert.match(text, /tools\/call get_me every 60s/);
    assert.match(text, /mcp-instance:gitea:0\s+RUNNING/);
  });
});

describe('cli: documents', () => {
  it('reads several YAML documents, JSON, and lists', () => {
    assert.deepEqual(parseDocuments('name: a\n---\nname: b\n---\n', 'f'), [{ name: 'a' }, { name: 'b' }]);
    assert.deepEqual(parseDocuments('{"name": "a"}', 'f.json'), [{ name: 'a' }]);
    assert.deepEqual(parseDocuments('- name: a\n- name: b\n', 'f'), [{ name: 'a' }, { name: 'b' }]);
  });

  it('names the file and line of invalid YAML in one line', () => {
    assert.throws(
      () => parseDocuments('name: a\n  image: [x\n', 'spec.yaml'),
      (err: Error) => err instanceof DocumentError && /^spec\.yaml: invalid YAML at line \d+, column \d+: /.test(err.message) && !err.message.includes('\n'),
    );
    assert.throws(() => parseDocuments('just a string', 'f'), /document 1 is not a mapping/);
  });

  it('splits KEY=VALUE without echoing a value when the key is missing', () => {
    assert.deepEqual(splitKeyValue('token=a=b', '--from-literal'), ['token', 'a=b']);
    assert.throws(
      () => splitKeyValue('s3cretvalue', '--from-literal'),
      (err: Error) => !err.message.includes('s3cretvalue'),
    );
    assert.throws(() => splitKeyValue('=v', '--from-literal'), /KEY=VALUE/);
  });

  it('edit buffers carry the error as comments that do not count as content', () => {
    const buffer = editBuffer('name: a\n', 'replicas: too big');
    assert.match(buffer, /^# error: replicas: too big$/m);
    assert.equal(stripComments(buffer), 'name: a');
  });
});

describe('cli: connection and exit codes', () => {
  it('flags win over the environment, which wins over the token file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpd-cli-'));
    try {
      fs.writeFileSync(path.join(dir, 'api-token'), 'from-file\n');
      assert.deepEqual(resolveConnection({ env: { MCPD_DATA_DIR: dir } }), {
        url: 'http://127.0.0.1:7400',
        token: 'from-file',
        tokenSource: path.join(dir, 'api-token'),
      });
      assert.equal(resolveConnection({ env: { MCPD_DATA_DIR: dir, MCPD_TOKEN: 'from-env' } }).token, 'from-env');
      assert.equal(resolveConnection({ token: 'from-flag', env: { MCPD_TOKEN: 'from-env' } }).token, 'from-flag');
      assert.equal(resolveConnection({ server: 'http://127.0.0.1:9/', env: { MCPD_URL: 'http://x' } }).url, 'http://127.0.0.1:9');
      assert.equal(resolveConnection({ env: { MCPD_DATA_DIR: path.join(dir, 'none') } }).token, undefined);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('maps HTTP statuses to exit codes', () => {
    assert.equal(exitCodeForStatus(401), EXIT.auth);
    assert.equal(exitCodeForStatus(403), EXIT.auth);
    assert.equal(exitCodeForStatus(404), EXIT.notFound);
    assert.equal(exitCodeForStatus(400), EXIT.usage);
    assert.equal(exitCodeForStatus(409), EXIT.error);
    assert.equal(exitCodeForStatus(503), EXIT.error);
  });
});

describe('mcpctl start-up', () => {
  /** The package directories mcpctl loaded while running `args` (it cannot reach a server on port 1). */
  function packagesLoadedBy(args: string[]): string[] {
    const mcpctl = path.resolve(__dirname, '..', '..', 'src', 'cli', 'mcpctl.js');
    const script = `require(${JSON.stringify(mcpctl)}).main(['node', 'mcpctl', ...${JSON.stringify(args)}]).then(() => {
      const dirs = Object.keys(require.cache).map((f) => /node_modules\\/((@[^/]+\\/)?[^/]+)/.exec(f)?.[1]).filter(Boolean);
      process.stderr.write(JSON.stringify([...new Set(dirs)]));
    })`;
    const run = spawnSync(process.execPath, ['-e', script], {
      env: { PATH: process.env.PATH, MCPD_URL: 'http://127.0.0.1:1', MCPD_TOKEN: 'x' },
      encoding: 'utf8',
    });
    const lastLine = run.stderr.trim().split('\n').pop() ?? '';
    return JSON.parse(lastLine) as string[];
  }

  it('loads no yaml, zod, Temporal or MCP SDK for --help and get servers', () => {
    for (const args of [['--help'], ['get', 'servers']]) {
      const loaded = packagesLoadedBy(args);
      assert.ok(loaded.includes('commander'), `the probe sees what mcpctl loads (${loaded.join(', ')})`);
      assert.deepEqual(
        loaded.filter((p) => /^(yaml|zod|@temporalio\/.*|@modelcontextprotocol\/.*)$/.test(p)),
        [],
        `mcpctl ${args.join(' ')}`,
      );
    }
  });
});
